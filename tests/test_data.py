"""Tests of the real-data layer (dsopt.data), with no network.

Real files come from the project's read-only offline folder (``$DSOPT_DATA`` if set, else
``<repo>/../shared/data``). Every test runs with the network replaced by a guard that only lets
``file://`` URLs through, and with DSOPT_DATA pointing at a fresh tmp dir unless the test
points it elsewhere, so the user's cache is never touched.
"""
from __future__ import annotations

import io
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from dsopt import data
from dsopt.data import cache as cache_mod
from dsopt.data import download as download_mod
from dsopt.util.validation import ParameterError

SHARED = (
    Path(os.environ["DSOPT_DATA"]) if os.environ.get("DSOPT_DATA")
    else Path(__file__).resolve().parents[2] / "shared" / "data"
)
needs_shared = pytest.mark.data("shared")  # conftest: skipped naming DSOPT_DATA / `dsopt data fetch` (fails in CI)
_real_urlopen = urllib.request.urlopen


def _url(req) -> str:
    return req.full_url if isinstance(req, urllib.request.Request) else str(req)


class _Resp(io.BytesIO):
    """What urlopen returns, enough for the downloader: read(), headers, context manager."""

    def __init__(self, payload: bytes):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No network (file:// only), a private empty cache, fresh hash memo."""

    def guard(req, *args, **kwargs):
        if _url(req).startswith("file:"):
            return _real_urlopen(req, *args, **kwargs)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", guard)
    for var in ("DSOPT_DATA_MIRROR", "DSOPT_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DSOPT_DATA", str(tmp_path / "cache"))
    cache_mod.clear_hash_cache()
    yield
    cache_mod.clear_hash_cache()


@pytest.fixture
def shared(monkeypatch):
    """DSOPT_DATA = the read-only shared folder; any download attempt fails the test."""
    monkeypatch.setenv("DSOPT_DATA", str(SHARED))

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download/write while every file is present and valid")

    monkeypatch.setattr(download_mod, "_download_missing", no_download)
    return SHARED


@pytest.fixture
def cache(monkeypatch, tmp_path) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("DSOPT_DATA", str(path))
    return path


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _serve(monkeypatch, routes: dict[str, bytes]) -> list[str]:
    """Replace urlopen with one serving ``routes`` (url -> bytes; other URLs 404). Returns the call log."""
    calls: list[str] = []

    def fake(req, *args, **kwargs):
        url = _url(req)
        calls.append(url)
        if url in routes:
            return _Resp(routes[url])
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    monkeypatch.setattr(urllib.request, "urlopen", fake)
    return calls


# --- registry and verification -------------------------------------------------------------

@needs_shared
def test_registry_matches_sha256sums():
    lines = (SHARED / "SHA256SUMS").read_text().splitlines()
    sums = {rel: digest for digest, rel in (line.split() for line in lines if line.strip())}
    registered = {f.relpath: f for info in data.list_datasets() for f in info.files}
    assert set(registered) == {k for k in sums if not k.startswith("nltk_data/")}
    for rel, spec in registered.items():
        assert spec.sha256 == sums[rel], rel
        assert spec.size == (SHARED / rel).stat().st_size, rel


@needs_shared
def test_verify_reports_every_file_ok(shared):
    results = data.verify()
    assert len(results) == 15
    assert all(r.status == data.OK for r in results), [(r.relpath, r.status) for r in results]
    assert {r.path for r in results} == {shared / r.relpath for r in results}
    assert data.data_dir() == shared
    assert data.dataset_path("sst2") == shared / "sst2"


@needs_shared
def test_verification_is_memoised(shared, monkeypatch):
    data.load("symptom2disease")

    def no_open(*a, **k):
        raise AssertionError("file re-hashed although unchanged")

    monkeypatch.setattr(cache_mod, "open", no_open, raising=False)
    assert all(r.ok for r in data.verify("symptom2disease"))


# --- parsers: counts from the data README --------------------------------------------------

@needs_shared
@pytest.mark.parametrize(
    "variant, counts",
    [(None, (303, 1391, 570)), ("allagree", (303, 1391, 570)), ("75", (420, 2146, 887)),
     ("66Agree", (514, 2535, 1168)), (50, (604, 2879, 1363))],
)
def test_financial_phrasebank(shared, variant, counts):
    ds = data.load("financial_phrasebank", variant)
    assert ds.class_names == ["negative", "neutral", "positive"]
    assert len(ds) == sum(counts) and tuple(np.bincount(ds.y)) == counts
    assert ds.y.dtype == np.int64 and ds.modality == "text"
    assert not any("\r" in t or "\n" in t for t in ds.texts)
    if variant is None:
        assert ds.variant == "allagree" and len(ds) == 2264


@needs_shared
def test_sms_spam(shared):
    ds = data.load("sms_spam_collection")
    assert (len(ds), int(ds.y.sum())) == (5574, 747)
    assert ds.class_names == ["ham", "spam"]
    assert any('"' in t for t in ds.texts)  # quotes are literal, rows not merged


@needs_shared
def test_sst2(shared):
    train, dev = data.load("sst2"), data.load("sst2", "dev")
    assert (train.variant, len(train), len(dev)) == ("train", 67349, 872)
    assert tuple(np.bincount(train.y)) == (29780, 37569) and tuple(np.bincount(dev.y)) == (428, 444)
    assert train.class_names == ["negative", "positive"]
    assert all(t == t.strip() and t for t in train.texts[:2000])
    with pytest.raises(ParameterError, match="variant"):
        data.load("sst2", "test")


@needs_shared
def test_symptom2disease(shared):
    ds = data.load("symptom2disease")
    assert len(ds) == 1200 and ds.num_classes == 24
    assert set(ds.class_counts().values()) == {50}
    assert ds.class_names == sorted(ds.class_names, key=str.casefold)
    assert "Psoriasis" in ds.class_names and not ds.texts[0][:1].isdigit()


@needs_shared
def test_credit_card_default(shared):
    ds = data.load("credit_card_default")
    assert ds.X.shape == (30000, 23) and ds.X.dtype == np.float32
    assert int(ds.y.sum()) == 6636 and ds.class_names == ["no_default", "default"]
    assert "ID" not in ds.feature_names and "default.payment.next.month" not in ds.feature_names
    assert ds.feature_names[0] == "LIMIT_BAL" and ds.X[0, 0] == 20000
    assert (ds.X[:, 0] == 200000).sum() > 0  # written as 2e+05 in the file


def test_digits_needs_no_file(cache, monkeypatch):
    monkeypatch.setenv("DSOPT_OFFLINE", "1")
    ds = data.load("digits")
    assert len(ds) == 1797 and ds.X.shape == (1797, 64) and ds.X.dtype == np.float32
    assert ds.class_names == [str(i) for i in range(10)]
    assert data.fetch("digits") == [] and data.verify("digits") == []
    assert not cache.exists()


def test_bad_name_and_variant():
    with pytest.raises(ParameterError, match="financial_phrasebank"):
        data.load("nope")
    with pytest.raises(ParameterError, match="allagree"):
        data.load("financial_phrasebank", "90")
    with pytest.raises(ParameterError, match="variant"):
        data.load("sms_spam_collection", "x")


# --- corruption and missing files ----------------------------------------------------------

@needs_shared
def test_corrupt_file_is_rejected_naming_it(cache, monkeypatch):
    monkeypatch.setenv("DSOPT_OFFLINE", "1")
    rel = "financial_phrasebank/FinancialPhraseBank-v1.0/Sentences_AllAgree.txt"
    target = cache / rel
    target.parent.mkdir(parents=True)
    raw = bytearray((SHARED / rel).read_bytes())
    raw[100] ^= 0x01
    target.write_bytes(bytes(raw))
    with pytest.raises(data.CorruptFileError) as err:
        data.load("financial_phrasebank")
    msg = str(err.value)
    expected = data.get_info("financial_phrasebank").file(rel).sha256
    assert str(target) in msg and expected in msg and err.value.actual in msg
    assert err.value.actual != expected
    assert "dsopt data fetch financial_phrasebank" in msg
    status = {r.relpath: r.status for r in data.verify("financial_phrasebank")}
    assert status[rel] == data.CORRUPT and status[rel.replace("AllAgree", "50Agree")] == data.MISSING


def test_missing_file_offline_names_dataset_url_and_path(cache, monkeypatch):
    monkeypatch.setenv("DSOPT_OFFLINE", "1")
    with pytest.raises(data.DataUnavailableError) as err:
        data.load("sst2")
    msg = str(err.value)
    assert "'sst2'" in msg and "DSOPT_OFFLINE" in msg
    assert "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip" in msg
    assert str(cache / "sst2" / "train.tsv") in msg
    assert not cache.exists()  # offline: nothing created


def test_missing_file_network_down_lists_urls_tried(cache):
    with pytest.raises(data.DataUnavailableError) as err:
        data.load("financial_phrasebank", progress=False)
    msg = str(err.value)
    assert "'financial_phrasebank'" in msg and "network disabled in tests" in msg
    for url in data.get_info("financial_phrasebank").urls():
        assert url in msg
    assert str(cache / "financial_phrasebank/FinancialPhraseBank-v1.0/Sentences_AllAgree.txt") in msg
    assert "FinancialPhraseBank-v1.0.zip" in msg  # hint: the archive works too
    assert _files(cache) == []


# --- downloads -----------------------------------------------------------------------------

@needs_shared
@pytest.mark.parametrize("offline", [False, True])
def test_file_mirror_download_is_verified_and_atomic(cache, monkeypatch, offline):
    monkeypatch.setenv("DSOPT_DATA_MIRROR", SHARED.as_uri())
    if offline:
        monkeypatch.setenv("DSOPT_OFFLINE", "1")  # a file:// mirror is not the network
    ds = data.load("symptom2disease", progress=False)
    assert len(ds) == 1200
    rel = "symptom2disease/Symptom2Disease.csv"
    assert _files(cache) == [cache / rel]  # no temp/.part files left
    assert (cache / rel).read_bytes() == (SHARED / rel).read_bytes()


@needs_shared
def test_zip_download_extracts_needed_members_then_reuses_archive(cache, monkeypatch):
    info = data.get_info("financial_phrasebank")
    zip_bytes = (SHARED / "financial_phrasebank/FinancialPhraseBank-v1.0.zip").read_bytes()
    calls = _serve(monkeypatch, {info.sources[0].urls[0]: zip_bytes})
    ds = data.load("financial_phrasebank", progress=False)
    assert len(ds) == 2264 and len(calls) == 1
    got = {p.relative_to(cache).as_posix() for p in _files(cache)}
    assert got == {"financial_phrasebank/FinancialPhraseBank-v1.0.zip",
                   "financial_phrasebank/FinancialPhraseBank-v1.0/Sentences_AllAgree.txt"}
    paths = data.fetch("financial_phrasebank", progress=False)  # members from the kept archive
    assert len(calls) == 1 and len(paths) == 7
    for p in paths:
        assert p.read_bytes() == (SHARED / p.relative_to(cache)).read_bytes()
    assert all(r.ok for r in data.verify("financial_phrasebank"))


@needs_shared
def test_stored_archive_is_used_offline(cache, monkeypatch):
    monkeypatch.setenv("DSOPT_OFFLINE", "1")
    rel = "sms_spam_collection/smsspamcollection.zip"
    (cache / rel).parent.mkdir(parents=True)
    shutil.copyfile(SHARED / rel, cache / rel)
    assert int(data.load("sms_spam_collection").y.sum()) == 747
    assert (cache / "sms_spam_collection/SMSSpamCollection").is_file()


@needs_shared
def test_load_does_not_overwrite_a_corrupt_archive(cache, monkeypatch):
    info = data.get_info("financial_phrasebank")
    zip_rel = "financial_phrasebank/FinancialPhraseBank-v1.0.zip"
    (cache / zip_rel).parent.mkdir(parents=True)
    (cache / zip_rel).write_bytes(b"broken zip")
    _serve(monkeypatch, {info.sources[0].urls[0]: (SHARED / zip_rel).read_bytes()})
    assert len(data.load("financial_phrasebank", "75", progress=False)) == 3453
    assert (cache / zip_rel).read_bytes() == b"broken zip"  # left for the user to see
    assert {r.relpath: r.status for r in data.verify("financial_phrasebank")}[zip_rel] == data.CORRUPT
    data.fetch("financial_phrasebank", progress=False)  # fetch does replace it
    assert all(r.ok for r in data.verify("financial_phrasebank"))


@needs_shared
def test_sst2_falls_back_to_pinned_files(cache, monkeypatch):
    pin = [s for s in data.get_info("sst2").sources if isinstance(s, data.registry.FileSource)]
    dev_url = next(s.urls[0] for s in pin if s.relpath == "sst2/dev.tsv")
    calls = _serve(monkeypatch, {dev_url: (SHARED / "sst2/dev.tsv").read_bytes()})
    ds = data.load("sst2", "dev", progress=False)
    assert len(ds) == 872
    assert calls == ["https://dl.fbaipublicfiles.com/glue/data/SST-2.zip", dev_url]
    assert _files(cache) == [cache / "sst2/dev.tsv"]


@needs_shared
def test_wrong_bytes_leave_no_file_and_next_url_is_tried(cache, monkeypatch):
    info = data.get_info("credit_card_default")
    first, second = info.sources[0].urls
    _serve(monkeypatch, {first: b"not,the,file\n", second: b"also wrong"})
    with pytest.raises(data.DataUnavailableError) as err:
        data.load("credit_card_default", progress=False)
    assert "sha256 mismatch" in str(err.value) and first in str(err.value) and second in str(err.value)
    assert _files(cache) == []
    good = (SHARED / "credit_card_default/UCI_Credit_Card.csv").read_bytes()
    calls = _serve(monkeypatch, {first: b"truncated", second: good})
    assert int(data.load("credit_card_default", progress=False).y.sum()) == 6636
    assert calls == [first, second]
    assert _files(cache) == [cache / "credit_card_default/UCI_Credit_Card.csv"]


@needs_shared
def test_fetch_replaces_a_corrupt_file(cache, monkeypatch):
    rel = "symptom2disease/Symptom2Disease.csv"
    (cache / rel).parent.mkdir(parents=True)
    (cache / rel).write_bytes(b"garbage")
    monkeypatch.setenv("DSOPT_DATA_MIRROR", str(SHARED))  # a plain folder works as a mirror
    with pytest.raises(data.CorruptFileError):
        data.load("symptom2disease")
    data.fetch("symptom2disease", progress=False)
    assert len(data.load("symptom2disease")) == 1200


# --- splits --------------------------------------------------------------------------------

def _check_splits(s: data.Splits, n: int, y_all: np.ndarray):
    idx = [p.meta["indices"] for p in s]
    assert sum(len(i) for i in idx) == n
    assert len(np.unique(np.concatenate(idx))) == n  # disjoint and complete
    overall = np.bincount(y_all) / n
    for part, i in zip(s, idx):
        np.testing.assert_array_equal(part.y, y_all[i])
        frac = np.bincount(part.y, minlength=len(overall)) / len(part)
        assert np.abs(frac - overall).max() < 0.01  # stratified


@needs_shared
def test_splits_stratified_disjoint_deterministic(shared):
    full = data.load("sms_spam_collection")
    a = data.load_splits("sms_spam_collection", seed=3)
    _check_splits(a, len(full), full.y)
    assert [len(p) for p in a] == [3901, 836, 837]
    b = data.load_splits("sms_spam_collection", seed=3)
    for pa, pb in zip(a, b):
        assert pa.texts == pb.texts and pa.y.tobytes() == pb.y.tobytes()
    c = data.load_splits("sms_spam_collection", seed=4)
    assert c.test.texts != a.test.texts
    assert [p.meta["split"] for p in a] == ["train", "val", "test"]


@needs_shared
def test_splits_tabular_and_text_variants(shared):
    credit = data.load("credit_card_default")
    s = data.load_splits("credit_card_default", val_fraction=0.1, test_fraction=0.2)
    _check_splits(s, 30000, credit.y)
    assert len(s.test) == 6000 and len(s.val) == 3000
    assert s.train.X.tobytes() == data.load_splits("credit_card_default", val_fraction=0.1,
                                                   test_fraction=0.2).train.X.tobytes()
    fpb = data.load_splits("financial_phrasebank", variant="50")
    assert sum(len(p) for p in fpb) == 4846


@needs_shared
def test_sst2_splits_use_dev_as_test(shared):
    s = data.load_splits("sst2", val_fraction=0.1)
    assert len(s.test) == 872 and len(s.train) + len(s.val) == 67349
    assert abs(len(s.val) - 6735) <= 1
    assert not set(s.train.meta["indices"]) & set(s.val.meta["indices"])


def test_split_arguments_are_validated():
    with pytest.raises(ParameterError, match="val_fraction"):
        data.load_splits("digits", val_fraction=0)
    with pytest.raises(ParameterError, match="test_fraction"):
        data.load_splits("digits", test_fraction=1.5)
    with pytest.raises(ParameterError, match="< 1"):
        data.load_splits("digits", val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ParameterError, match="seed"):
        data.load_splits("digits", seed=-1)
    with pytest.raises(ParameterError, match="variant"):
        data.load_splits("sst2", variant="dev")
    s = data.load_splits("digits", seed=1)
    _check_splits(s, 1797, data.load("digits").y)


# --- CLI -----------------------------------------------------------------------------------

def _cli(*argv: str) -> int:
    """The real command line (``dsopt data ...``), refusals and exit codes included."""
    from dsopt.cli import main

    return main(list(argv))


@needs_shared
def test_cli_verify_list_path(shared, capsys):
    assert _cli("data", "verify") == 0
    out = capsys.readouterr().out
    assert out.count("OK ") >= 15 and str(shared / "sst2" / "train.tsv") in out
    assert _cli("data", "list") == 0
    out = capsys.readouterr().out
    for name in data.names():
        assert name in out
    assert "bundled" in out and "CC BY-NC-SA 3.0" in out and " yes" in out
    assert _cli("data", "path") == 0
    assert capsys.readouterr().out.strip() == str(shared)
    assert _cli("data", "path", "sst2") == 0
    assert capsys.readouterr().out.strip() == str(shared / "sst2")


def test_cli_verify_fails_on_missing_and_fetch_offline(cache, monkeypatch, capsys):
    monkeypatch.setenv("DSOPT_OFFLINE", "1")
    assert _cli("data", "verify", "sms_spam_collection") == 1
    captured = capsys.readouterr()
    assert "MISSING" in captured.out and "dsopt data fetch sms_spam_collection" in captured.err
    assert _cli("data", "fetch", "digits") == 0
    assert _cli("data", "fetch", "sst2", "--quiet") == 1
    assert "DSOPT_OFFLINE" in capsys.readouterr().err
    assert _cli("data", "fetch", "nope") == 2  # bad input: exit 2 with the dsopt: prefix, like every refusal
    err = capsys.readouterr().err
    assert err.startswith("dsopt: error: name must be one of 'financial_phrasebank'")
    assert _cli("data", "verify") == 1
    err = capsys.readouterr().err
    assert "missing" in err and "delete" not in err and "corrupt file" not in err  # nothing corrupt: no "delete"


def test_a_notebooks_first_cell_refuses_missing_data_at_once(cache, monkeypatch):
    """Issue 20 item 14: papermill run on a notebook directly (no `dsopt run` check first) failed 33 s in with a
    raw traceback when a dataset was missing; the first cell's `start` now checks, naming what to do."""
    from dsopt.chapters.notebook import start
    from dsopt.chapters.registry import get_chapter

    monkeypatch.setenv("DSOPT_OFFLINE", "1")
    defaults = {n: p.default for n, p in get_chapter("02").params.items()}
    with pytest.raises(data.DataUnavailableError) as err:
        start("02", defaults)
    assert "dsopt data fetch financial_phrasebank" in str(err.value)
    assert not cache.exists()  # offline: nothing created
    # digits ship with dsopt: chapter 01 on digits starts with no dataset at all
    assert start("01", {**{n: p.default for n, p in get_chapter("01").params.items()}, "tasks": "digits"})["tasks"] == "digits"
