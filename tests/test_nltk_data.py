"""The NLTK data layer for textattack (dsopt.data.nltk): built offline, verified, atomic, clear errors."""
from __future__ import annotations

import argparse
import gzip
import os
import shutil
from pathlib import Path

import pytest

from dsopt.data import nltk as nd
from dsopt.cli.data import register

DEBIAN = Path(nd.DEBIAN_WORDNET_DIR)
needs_debian_wordnet = pytest.mark.skipif(
    not all((DEBIAN / f).is_file() for f in nd.DEBIAN_WORDNET),
    reason="Debian's wordnet-base/wordnet-sense-index are not installed (.ci/run installs them)")


def _cli(*argv) -> int:
    parser = argparse.ArgumentParser(prog="dsopt")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_lexnames_from_debian_man_page_equal_the_builtin_table(tmp_path):
    fallback = nd.lexnames_text(man_page=None)
    assert fallback.count("\n") == 45 and fallback.startswith("00\tadj.all\t3\n") and "\n44\tadj.ppl\t3\n" in fallback
    man = Path(nd.DEBIAN_LEXNAMES_MAN)
    if man.is_file():
        assert nd.lexnames_text(man) == fallback
    # a man page with a broken table is refused, not half-used
    bad = tmp_path / "lexnames.5WN.gz"
    bad.write_bytes(gzip.compress(b"00\tadj.all\tall adjective clusters\n"))
    with pytest.raises(nd.NltkDataError, match="lexnames"):
        nd.lexnames_text(bad)


@needs_debian_wordnet
def test_build_offline_from_shared_cache_and_debian(tmp_path, monkeypatch, shared_data):  # stopwords from the data
    monkeypatch.setenv("DSOPT_OFFLINE", "1")
    root = nd.ensure_nltk_data(root=tmp_path / "nltk")
    assert (root / "corpora/stopwords/english").is_file()
    wn = root / "corpora/wordnet"
    assert {p.name for p in wn.iterdir()} >= set(nd.DEBIAN_WORDNET) | {"lexnames", nd.STAMP}
    assert not any(p.is_symlink() for p in wn.iterdir())  # nltk refuses links
    assert nd.is_ready("wordnet", root) and nd.is_ready("stopwords", root)
    # NLTK really reads it: synonyms of a common word through the real WordNet reader
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    from dsopt.augment.offline import use_nltk_data

    use_nltk_data(root)  # NLTK >= 3.9 reads corpora only under its data path
    reader = WordNetCorpusReader(str(wn), None)
    lemmas = {lemma for s in reader.synsets("fever") for lemma in s.lemma_names()}
    assert "febrility" in lemmas or "pyrexia" in lemmas
    # a second call reuses the built folders (no copy): the stamp's mtime does not move
    stamp = wn / nd.STAMP
    before = stamp.stat().st_mtime_ns
    nd.ensure_nltk_data(root=root)
    assert stamp.stat().st_mtime_ns == before


def test_interrupted_build_leaves_no_complete_looking_folder(tmp_path, monkeypatch):
    def boom(src, dest):
        (dest / "data.noun").write_text("partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(nd, "_wordnet_from_debian", boom)
    monkeypatch.setattr(nd, "_debian_dir", lambda: tmp_path)
    with pytest.raises(KeyboardInterrupt):
        nd.ensure_nltk_data(["wordnet"], root=tmp_path / "nltk")
    assert not nd.is_ready("wordnet", tmp_path / "nltk")
    assert not (tmp_path / "nltk/corpora/wordnet").exists()
    assert not [p for p in (tmp_path / "nltk/corpora").iterdir()]  # the temporary sibling is gone too


def test_wrong_debian_file_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "wn"
    fake.mkdir()
    for f in nd.DEBIAN_WORDNET:
        (fake / f).write_text("not wordnet")
    monkeypatch.setenv("WNSEARCHDIR", str(fake))
    with pytest.raises(nd.NltkDataError, match="is not Debian's WordNet 3.0 file"):
        nd.ensure_nltk_data(["wordnet"], root=tmp_path / "nltk")
    assert not nd.is_ready("wordnet", tmp_path / "nltk")


def test_missing_wordnet_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("WNSEARCHDIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("DSOPT_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("DSOPT_OFFLINE", "1")
    with pytest.raises(nd.WordNetMissingError) as exc:
        nd.ensure_nltk_data(["wordnet"], root=tmp_path / "nltk")
    msg = str(exc.value)
    assert "apt-get install wordnet-base wordnet-sense-index" in msg and "dsopt data nltk" in msg
    assert str(tmp_path / "data" / nd.ZIPS["wordnet"].relpath) in msg


def test_stopwords_missing_offline_and_corrupt(tmp_path, monkeypatch):
    monkeypatch.setenv("DSOPT_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("DSOPT_OFFLINE", "1")
    with pytest.raises(nd.NltkDataError, match="DSOPT_OFFLINE=1"):
        nd.ensure_nltk_data(["stopwords"], root=tmp_path / "nltk")
    bad = tmp_path / "data" / nd.ZIPS["stopwords"].relpath
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"PK not really")
    with pytest.raises(nd.NltkDataError, match="Corrupt NLTK package"):
        nd.ensure_nltk_data(["stopwords"], root=tmp_path / "nltk")


def test_stopwords_download_is_verified(tmp_path, monkeypatch, shared_data):
    """With the network allowed, the zip comes from its URL and must match its SHA-256 (here: file://)."""
    monkeypatch.setenv("DSOPT_DATA", str(tmp_path / "data"))
    src = shared_data / nd.ZIPS["stopwords"].relpath
    good = nd.NltkZip(**{**nd.ZIPS["stopwords"].__dict__, "urls": (src.resolve().as_uri(),)})
    monkeypatch.setitem(nd.ZIPS, "stopwords", good)
    root = nd.ensure_nltk_data(["stopwords"], root=tmp_path / "nltk", allow_download=True)
    assert "the" in (root / "corpora/stopwords/english").read_text().split()
    wrong = tmp_path / "other.zip"
    shutil.copy(src, wrong)
    with open(wrong, "ab") as fh:
        fh.write(b"x")
    monkeypatch.setitem(nd.ZIPS, "stopwords", nd.NltkZip(**{**good.__dict__, "urls": (wrong.as_uri(),)}))
    monkeypatch.setenv("DSOPT_DATA", str(tmp_path / "data2"))
    with pytest.raises(nd.NltkDataError, match="sha256 mismatch"):
        nd.ensure_nltk_data(["stopwords"], root=tmp_path / "nltk2", allow_download=True)
    assert not (tmp_path / "data2" / good.relpath).exists()


@needs_debian_wordnet
def test_cli_builds_and_checks(tmp_path, monkeypatch, capsys, shared_data):  # the stopwords come from the data
    monkeypatch.setenv("DSOPT_OFFLINE", "1")
    dest = tmp_path / "nltk"
    assert _cli("data", "nltk", "--dest", str(dest), "--check") == 1
    assert "MISSING" in capsys.readouterr().out
    assert _cli("data", "nltk", "--dest", str(dest)) == 0
    assert f"export NLTK_DATA={dest}" in capsys.readouterr().out
    assert _cli("data", "nltk", "--dest", str(dest), "--check") == 0
    assert _cli("data", "nltk", "--dest", str(dest), "--packages", "stopwords,omw") == 1
    assert "package must be one of" in capsys.readouterr().err


def test_nltk_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DSOPT_NLTK_DATA", str(tmp_path / "x"))
    assert nd.nltk_data_dir() == tmp_path / "x"
    assert nd.package_dir("wordnet") == tmp_path / "x/corpora/wordnet"
    assert os.fspath(nd.status()["stopwords"]["zip"]).endswith("stopwords.zip")
