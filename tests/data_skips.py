"""Which data folder the tests read, and the skip reason naming the fix that works (used by conftest.py).

The folder: ``$DSOPT_DATA`` when set, else ``../shared/data`` beside the checkout when it exists, else the
user's own data cache (what ``dsopt data path`` prints, filled by ``dsopt data fetch``). Tests only read it:
conftest checks at the end of the session that nothing in a user cache changed.

A skip names that folder, how it was chosen, and a fix that works: ``dsopt data fetch NAME`` with the
dataset's registry name, or ``DSOPT_DATA=/path/to/data`` (never a temp folder the user did not set, never
``dsopt data fetch shared``, which the CLI refuses).
"""
from __future__ import annotations

import os
from pathlib import Path

#: A ``data`` marker name for the project's whole offline folder (its SHA256SUMS and every dataset).
SHARED = "shared"
SET_BY_YOU = "from $DSOPT_DATA"
BESIDE = "../shared/data beside the checkout"
USER_CACHE = "your data cache, `dsopt data path`"


def choose_data_dir(env: str | None, beside: Path, user_cache: Path) -> tuple[Path, str]:
    """(the folder the tests read, how it was chosen: SET_BY_YOU, BESIDE or USER_CACHE)."""
    if env:
        return Path(env).expanduser(), SET_BY_YOU
    if beside.is_dir():
        return beside, BESIDE
    return user_cache, USER_CACHE


def data_reason(names, data_dir: Path, source: str) -> str:
    """Why a test is skipped for lack of ``names`` (registry names, or SHARED), and the fix."""
    names = list(dict.fromkeys(names))
    where = f"{data_dir} ({source})"
    if SHARED in names:
        return (f"needs the project's offline data folder (its SHA256SUMS and every dataset), not found in {where}: "
                f"set DSOPT_DATA=/path/to/data, the folder that holds it (a clone's ../shared/data)")
    listed = " ".join(names)
    return (f"needs dataset(s) {listed}, not found in {where}: run `dsopt data fetch {listed}`, "
            f"or set DSOPT_DATA=/path/to/data (a folder that holds them)")


def nltk_reason(error: Exception, data_dir: Path, source: str) -> str:
    """Why a test needing the NLTK stopwords zip (read from the data folder) is skipped, and the fix."""
    return (f"needs the NLTK stopwords zip, not found in {data_dir} ({source}): run `dsopt data nltk "
            f"--allow-download`, or set DSOPT_DATA=/path/to/data (a folder that holds nltk_data/, like a "
            f"clone's ../shared/data). {str(error).splitlines()[0]}")


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime in ns) of every file below ``folder``, to tell afterwards that nothing was written there."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root, name)
            try:
                st = path.stat()
            except OSError:
                continue
            out[str(path.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out
