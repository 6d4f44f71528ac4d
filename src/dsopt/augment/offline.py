"""Importing and running textattack 0.3.11 with no network access.

What textattack does on its own, and what dsopt does instead:

* ``import textattack`` runs a one-time "post install" that calls ``nltk.download`` six times unless
  ``$TA_CACHE_DIR/post_install_check_3`` exists: dsopt creates that marker in its own cache folder.
* With ``TA_CACHE_DIR`` set, textattack rewrites ``HF_HOME``, ``XDG_CACHE_HOME`` (which moves every
  platformdirs cache, dsopt's data cache included), ``TFHUB_CACHE_DIR`` and
  ``PYTORCH_TRANSFORMERS_CACHE`` for the whole process: dsopt restores them right after the import.
* Its recipes read NLTK's English stopwords at import time and WordNet when a WordNet recipe is built:
  the NLTK data folder (built by ``dsopt data nltk``) is put first on ``nltk.data.path``.
* ``WordSwapWordNet()`` calls ``nltk.download("omw-1.4")`` (the network, every time): inside
  :func:`no_downloads` that call is answered from the local folder instead, and textattack's own
  ``download_from_s3`` raises :class:`OfflineError` (it would fetch GloVe, for instance).
"""
from __future__ import annotations

import contextlib
import os
import threading
import warnings
from pathlib import Path
from typing import Iterator

_ENV_TOUCHED = ("TFHUB_CACHE_DIR", "PYTORCH_TRANSFORMERS_CACHE", "HF_HOME", "XDG_CACHE_HOME", "TA_CACHE_DIR")
_POST_INSTALL_MARKER = "post_install_check_3"
_lock = threading.RLock()


class OfflineError(RuntimeError):
    """textattack tried to download something; dsopt runs it offline only."""


class NltkDataMissing(RuntimeError):
    """The NLTK data textattack needs is not in the folder given; the message says how to build it."""


def textattack_cache_dir() -> Path:
    """Where textattack may write (its post-install marker): ``$DSOPT_TA_CACHE`` or the user cache."""
    env = os.environ.get("DSOPT_TA_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("dsopt")) / "textattack"


def use_nltk_data(root: str | os.PathLike) -> Path:
    """Put the NLTK data folder ``root`` first on NLTK's search path (and ``NLTK_DATA`` for children)."""
    import nltk

    root = str(Path(root).resolve())
    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)
    paths = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["NLTK_DATA"] = os.pathsep.join([root, *paths])
    return Path(root)


def check_nltk_data(root: str | os.PathLike, *, wordnet: bool) -> None:
    """Raise :class:`NltkDataMissing` unless ``root`` holds the stopwords (and WordNet when asked)."""
    root = Path(root)
    need = [("stopwords", root / "corpora" / "stopwords" / "english")]
    if wordnet:
        need.append(("wordnet", root / "corpora" / "wordnet" / "lexnames"))
    missing = [name for name, path in need if not path.is_file()]
    if missing:
        hint = ""
        if "wordnet" in missing:
            hint = ("\nWordNet offline: `sudo apt-get install wordnet-base wordnet-sense-index`, then "
                    "`dsopt data nltk` (copies Debian's WordNet 3.0 into NLTK's layout, SHA-256 checked).")
        raise NltkDataMissing(
            f"NLTK data missing in {root}: {', '.join(missing)}. Build it with `dsopt data nltk --dest {root}` "
            f"(or dsopt.data.nltk.ensure_nltk_data()).{hint}")


def import_textattack(nltk_data: str | os.PathLike):
    """``import textattack`` offline, with ``nltk_data`` on NLTK's path; returns the module.

    Idempotent; the process environment is left as it was (see the module docstring).
    """
    with _lock:
        check_nltk_data(nltk_data, wordnet=False)
        use_nltk_data(nltk_data)
        import sys

        if "textattack" in sys.modules:
            return sys.modules["textattack"]
        cache = textattack_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        (cache / _POST_INSTALL_MARKER).touch()
        saved = {k: os.environ.get(k) for k in _ENV_TOUCHED}
        os.environ["TA_CACHE_DIR"] = str(cache)
        try:
            with no_downloads(), warnings.catch_warnings():
                # transformers warns once about the PYTORCH_TRANSFORMERS_CACHE textattack sets (restored below)
                warnings.filterwarnings("ignore", message=".*PYTORCH_TRANSFORMERS_CACHE.*", category=FutureWarning)
                import textattack
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return textattack


def _local_nltk_download(info_or_id=None, *args, **kwargs) -> bool:
    """Stand-in for ``nltk.download``: True if the package is already on NLTK's path, never a download."""
    import nltk

    name = str(info_or_id or "")
    for sub in ("corpora", "taggers", "tokenizers"):
        for suffix in ("", ".zip"):
            try:
                nltk.data.find(f"{sub}/{name}{suffix}")
                return True
            except LookupError:
                pass
    return False


def _no_s3(*args, **kwargs):
    raise OfflineError(
        f"textattack tried to download {args[0] if args else kwargs}: dsopt runs textattack offline. Build the "
        "component from local data instead (e.g. dsopt.augment.DomainEmbedding for word embeddings).")


@contextlib.contextmanager
def no_downloads() -> Iterator[None]:
    """Within the block, ``nltk.download`` only looks locally and textattack's S3 downloads raise."""
    import nltk

    with _lock:
        saved_nltk = nltk.download
        nltk.download = _local_nltk_download
        patched = []
        try:
            import sys

            install = sys.modules.get("textattack.shared.utils.install")
            if install is not None:
                for mod in [install, sys.modules.get("textattack.shared.utils")]:
                    if mod is not None and hasattr(mod, "download_from_s3"):
                        patched.append((mod, mod.download_from_s3))
                        mod.download_from_s3 = _no_s3
            yield
        finally:
            nltk.download = saved_nltk
            for mod, fn in patched:
                mod.download_from_s3 = fn
