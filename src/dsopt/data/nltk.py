"""The NLTK data textattack needs, put in place offline and verified: stopwords and WordNet 3.0.

textattack 0.3.11 reads NLTK's English ``stopwords`` when it is imported and WordNet for its
synonym swaps, EDA and synonym insertion. ``nltk.download`` needs the network, so dsopt builds an
NLTK data folder (``corpora/stopwords``, ``corpora/wordnet``) from verified sources instead:

* **stopwords**: the NLTK package zip, a file of dsopt's data cache (``$DSOPT_DATA/nltk_data/packages/
  corpora/stopwords.zip``, the layout of ``shared/data``), checked against its SHA-256 and downloaded
  from a pinned nltk_data commit when missing (never with ``DSOPT_OFFLINE=1``).
* **wordnet**: WordNet 3.0 as Debian ships it (``apt-get install wordnet-base wordnet-sense-index``:
  ``/usr/share/wordnet``, or ``$WNSEARCHDIR``). Every file is checked against the SHA-256 of Debian's
  1:3.0 packages and *copied* (NLTK refuses symlinks); NLTK's ``lexnames`` file, which Debian does
  not ship, is generated from Debian's ``lexnames(5WN)`` man page (or, where man pages are not
  installed, from the same 45-line table of WordNet 3.0's lexicographer files) and checked too.
  Where Debian's packages are absent, NLTK's own ``wordnet.zip`` in the data cache (official
  SHA-256) is used, downloaded when the network is allowed.

Each package folder is built in a temporary sibling and renamed into place, with a ``.dsopt-ok``
stamp written last, so an interrupted build never leaves a folder that looks complete. The folder is
``$DSOPT_NLTK_DATA`` when set, else ``nltk_data`` in the user cache dir; ``dsopt data nltk`` builds it.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from dsopt.data.cache import data_dir, sha256_file
from dsopt.data.errors import DataError
from dsopt.util.atomic import atomic_write_text
from dsopt.util.validation import check_choice

STAMP = ".dsopt-ok"
PACKAGES = ("stopwords", "wordnet")

#: Install instructions, shown by every error that finds WordNet missing.
WORDNET_HINT = (
    "WordNet 3.0 is needed by the WordNet swap, EDA and synonym insertion recipes. Offline, install "
    "Debian's packages and let dsopt build NLTK's layout from them:\n"
    "  sudo apt-get install wordnet-base wordnet-sense-index\n"
    "  dsopt data nltk\n"
    "Or, where the network is allowed, `dsopt data nltk --allow-download` fetches NLTK's wordnet.zip "
    "(SHA-256 checked), or put that zip at {zip_path}."
)


class NltkDataError(DataError):
    """The NLTK data could not be put in place; the message says what is missing and how to fix it."""


class WordNetMissingError(NltkDataError):
    """No WordNet source: neither Debian's wordnet packages nor NLTK's wordnet.zip are available."""


@dataclass(frozen=True)
class NltkZip:
    """An NLTK data package zip: relpath in the data cache (shared/data layout), SHA-256, size, URLs."""

    name: str
    subdir: str
    relpath: str
    sha256: str
    size: int
    urls: tuple[str, ...]
    licence: str


_NLTK_PIN = "https://raw.githubusercontent.com/nltk/nltk_data/5db857e6f7df11eabb5e5665836db9ec8df07e28/packages"
ZIPS = {
    "stopwords": NltkZip(
        "stopwords", "corpora", "nltk_data/packages/corpora/stopwords.zip",
        "15c94179887425ca1bedc265608cab9f27d650211f709bb929e320990a4b01d1", 34276,
        (f"{_NLTK_PIN}/corpora/stopwords.zip",),
        "no licence stated by nltk_data (\"unclarified\")",
    ),
    # The official index's checksum of the current gh-pages file (not stored in shared/data: > 4 MiB).
    "wordnet": NltkZip(
        "wordnet", "corpora", "nltk_data/packages/corpora/wordnet.zip",
        "cbda5ea6eef7f36a97a43d4a75f85e07fccbb4f23657d27b4ccbc93e2646ab59", 10775600,
        ("https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/corpora/wordnet.zip",),
        "WordNet 3.0 licence (Princeton University)",
    ),
}

#: Debian's wordnet-base + wordnet-sense-index (1:3.0-37, WordNet 3.0): file -> SHA-256.
DEBIAN_WORDNET = {
    "adj.exc": "8824cc24bbedd797b9702316b27f07cd4c2b76b629539f0a1276f03926758016",
    "adv.exc": "e7291461b629abfe63301bbe1998cee09fd575ed7107abd7ea9763adb05bf0a8",
    "cntlist": "2694cf6c60234cb5b997c5d02ce50663a73b3ad204afc59644d32451dd24fbf2",
    "cntlist.rev": "a198580b8f705fa02797bba8b13e5cbe4a9f9f40cb1697e774c7fc6a5865b035",
    "data.adj": "c89120dfc1f046ddff4a631bf9b7e9fa1a36b5e86565a23bf82dbe14f30b88a7",
    "data.adv": "444a63bf3955080ab7524f5079cfc07ff9bc682cb98bdb1db73b0fb9829f1139",
    "data.noun": "fea17d2f9656611334eac790e5d69e47645fa180c4aa481fb4cd9b3520754ca2",
    "data.verb": "adcf43e35b581e8036d8b5a52d63d9cd3d3b4870b2720d3c03c799df44777bc2",
    "frames.vrb": "e7edc9055e1fafb77622e1df54cb22da82bf5853527687c2b1409acd9c0dc49b",
    "index.adj": "c9865d7b4d1f805bdef82ccdcea5282436e23083e6f6f1b33e716327c4eda810",
    "index.adv": "6f5465ed5758fe9c8a2f7ec17b1300f3aa875756c70ff7cba162f7e71bcf88ea",
    "index.noun": "a490d99d93d017bf4822fe2f0ffa51fd73911ce271dc7535fade21f8814b5a04",
    "index.sense": "ce997000ec806318ff1dfadf77d314ac527358e127d7bbe3d1f4e83a1c5c1c2b",
    "index.verb": "e2ac24816c3a8289dcb72aaa9cf8db81fdf25ec34d792bfc96ac5b7a20c8b4ae",
    "noun.exc": "2b5d675c380b39ecf595af9fa9d4e7feb1d58c643b0bff08c40ed5bfe41fab7a",
    "sentidx.vrb": "129e267389fe88ea413b90addda3fcfb2a42b009339298b60711676b2b5d9bf0",
    "sents.vrb": "6fb59507c96c4aeb267e016ce4a654a1791a438815de98c52e7975df20db15c9",
    "verb.exc": "dbbcf9a601b2d77e934e413b91d90e88ec7f933a8b77cfc00602a923b891b42c",
}
DEBIAN_WORDNET_DIR = "/usr/share/wordnet"
DEBIAN_LEXNAMES_MAN = "/usr/share/man/man5/lexnames.5WN.gz"
#: WordNet 3.0's 45 lexicographer files in number order (lexnames(5WN)); the fallback when the man
#: page is not installed (Docker images often drop /usr/share/man). Both give LEXNAMES_SHA256.
LEXNAMES_30 = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
LEXNAMES_SHA256 = "c871b6797d2109f563f7a162b64e8ebf18f6f42d00918572846034c7f393a214"
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


# -- where -----------------------------------------------------------------------------------------
def nltk_data_dir() -> Path:
    """The NLTK data folder dsopt builds: ``$DSOPT_NLTK_DATA``, else ``nltk_data`` in the user cache dir."""
    env = os.environ.get("DSOPT_NLTK_DATA")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("dsopt")) / "nltk_data"


def package_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """``ROOT/corpora/NAME``: where package ``name`` lives in an NLTK data folder."""
    check_choice("package", name, PACKAGES)
    return Path(root or nltk_data_dir()) / "corpora" / name


def is_ready(name: str, root: str | os.PathLike | None = None) -> bool:
    """True when package ``name`` was built completely (its stamp is present and readable)."""
    stamp = package_dir(name, root) / STAMP
    try:
        return bool(json.loads(stamp.read_text()).get("package") == name)
    except (OSError, ValueError):
        return False


def status(root: str | os.PathLike | None = None) -> dict[str, dict]:
    """Per package: ``ready`` (built) and the sources available on this machine."""
    debian = _debian_dir()
    return {
        "stopwords": {"ready": is_ready("stopwords", root), "zip": str(data_dir() / ZIPS["stopwords"].relpath),
                      "zip_present": (data_dir() / ZIPS["stopwords"].relpath).is_file()},
        "wordnet": {"ready": is_ready("wordnet", root), "debian": str(debian) if debian else None,
                    "zip": str(data_dir() / ZIPS["wordnet"].relpath),
                    "zip_present": (data_dir() / ZIPS["wordnet"].relpath).is_file()},
    }


# -- building --------------------------------------------------------------------------------------
def ensure_nltk_data(packages: Iterable[str] = PACKAGES, root: str | os.PathLike | None = None, *,
                     allow_download: bool | None = None, rebuild: bool = False) -> Path:
    """Build (if needed) the NLTK data folder with ``packages``; return its root (use it as ``NLTK_DATA``).

    A package already built is kept (``rebuild`` builds it again). ``allow_download`` (default: not
    ``DSOPT_OFFLINE``) lets a missing zip be fetched from its URL, verified. Raises
    :class:`NltkDataError` (:class:`WordNetMissingError` for WordNet) saying how to fix it.
    """
    from dsopt.data.download import is_offline

    root = Path(root or nltk_data_dir())
    allow_download = (not is_offline()) if allow_download is None else bool(allow_download)
    wanted = [check_choice("package", p, PACKAGES) for p in packages]
    for name in wanted:
        if is_ready(name, root) and not rebuild:
            continue
        if name == "stopwords":
            archive = _zip_path("stopwords", allow_download)
            _build(root, name, lambda tmp, a=archive: _extract_zip(a, tmp, "stopwords"), source="stopwords.zip")
        else:
            debian = _debian_dir()
            if debian is not None:
                _build(root, name, lambda tmp, d=debian: _wordnet_from_debian(d, tmp), source=f"debian:{debian}")
            else:
                try:
                    archive = _zip_path("wordnet", allow_download)
                except NltkDataError as exc:
                    zip_path = data_dir() / ZIPS["wordnet"].relpath
                    raise WordNetMissingError(
                        f"WordNet not found: no Debian WordNet in {DEBIAN_WORDNET_DIR} (or $WNSEARCHDIR) and "
                        f"no usable wordnet.zip ({exc.args[0].splitlines()[0]}).\n"
                        + WORDNET_HINT.format(zip_path=zip_path)) from None
                _build(root, name, lambda tmp, a=archive: _extract_zip(a, tmp, "wordnet"), source="wordnet.zip")
    return root


def _debian_dir() -> Path | None:
    """Debian's WordNet dict folder when it holds every expected file, else None."""
    base = Path(os.environ.get("WNSEARCHDIR") or DEBIAN_WORDNET_DIR)
    if all((base / f).is_file() for f in DEBIAN_WORDNET):
        return base
    return None


def _zip_path(name: str, allow_download: bool) -> Path:
    """The verified zip of package ``name`` in the data cache, downloaded first when allowed."""
    from dsopt.data.download import download_file

    spec = ZIPS[name]
    path = data_dir() / spec.relpath
    if path.is_file():
        actual = sha256_file(path)
        if actual != spec.sha256:
            raise NltkDataError(f"Corrupt NLTK package {path}: sha256 {actual}, expected {spec.sha256}. "
                                f"Delete it and run `dsopt data nltk --allow-download`.")
        return path
    if not allow_download:
        raise NltkDataError(
            f"NLTK package {name!r} is missing: {path}\n(downloads are off: DSOPT_OFFLINE=1 or "
            f"allow_download=False). Put {spec.urls[0]} there (sha256 {spec.sha256}), or run "
            f"`dsopt data nltk --allow-download` where the network is reachable.")
    errors = []
    for url in spec.urls:
        try:
            return download_file(url, path, sha256=spec.sha256)
        except Exception as exc:  # noqa: BLE001 - every failure is reported with its URL below
            errors.append(f"{url}: {type(exc).__name__}: {exc}")
    raise NltkDataError(f"Could not download NLTK package {name!r} to {path}:\n  " + "\n  ".join(errors))


def _build(root: Path, name: str, fill, *, source: str) -> None:
    """Fill a temporary sibling of ``corpora/NAME`` with ``fill(tmp)``, stamp it, rename it into place."""
    final = package_dir(name, root)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=final.parent))
    try:
        fill(tmp)
        atomic_write_text(tmp / STAMP, json.dumps({"package": name, "source": source}))
        old = None
        if final.exists():
            old = final.parent / f".{name}.old-{os.getpid()}"
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _extract_zip(archive: Path, dest: Path, name: str) -> None:
    """Extract the members under ``NAME/`` of an NLTK package zip into ``dest`` (path-safe)."""
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            parts = Path(member.filename).parts
            if not parts or parts[0] != name or member.is_dir() or ".." in parts:
                continue
            target = dest.joinpath(*parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)


def _wordnet_from_debian(src: Path, dest: Path) -> None:
    """Copy (never link) and verify Debian's WordNet files; write NLTK's ``lexnames``."""
    for fname, expected in DEBIAN_WORDNET.items():
        h = hashlib.sha256()
        with open(src / fname, "rb") as fin, open(dest / fname, "wb") as fout:
            for chunk in iter(lambda: fin.read(1 << 20), b""):
                h.update(chunk)
                fout.write(chunk)
        if h.hexdigest() != expected:
            raise NltkDataError(
                f"{src / fname} is not Debian's WordNet 3.0 file: sha256 {h.hexdigest()}, expected {expected}. "
                f"Reinstall wordnet-base/wordnet-sense-index (WordNet 3.0), or use NLTK's wordnet.zip "
                f"(`dsopt data nltk --allow-download`).")
    text = lexnames_text()
    if hashlib.sha256(text.encode()).hexdigest() != LEXNAMES_SHA256:
        raise NltkDataError("the generated WordNet lexnames file does not have WordNet 3.0's 45 entries")
    (dest / "lexnames").write_text(text)


def lexnames_text(man_page: str | os.PathLike | None = DEBIAN_LEXNAMES_MAN) -> str:
    """NLTK's ``lexnames``: ``NN<TAB>name<TAB>category`` per line (category 1 noun ... 4 adverb).

    Parsed from Debian's ``lexnames(5WN)`` man page when it is installed, else from :data:`LEXNAMES_30`.
    """
    names = list(LEXNAMES_30)
    if man_page and Path(man_page).is_file():
        names = parse_lexnames_man(gzip.decompress(Path(man_page).read_bytes()).decode("utf-8", "replace"))
    return "".join(f"{i:02d}\t{n}\t{_CATEGORY[n.split('.')[0]]}\n" for i, n in enumerate(names))


def parse_lexnames_man(text: str) -> list[str]:
    """The lexicographer file names, in number order, from the troff table of ``lexnames(5WN)``."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^(\d\d)\t(\S+)\s*\t", line)
        if m:
            rows[int(m.group(1))] = m.group(2)
    if sorted(rows) != list(range(len(rows))) or len(rows) != 45:
        raise NltkDataError(f"unexpected lexnames(5WN) table: {len(rows)} rows")
    return [rows[i] for i in range(len(rows))]

