"""The test suite's own setup (issue 20 item 12): skip reasons name a fix that works, the data folder read
when DSOPT_DATA is unset is the user's own cache, and the session's scratch folder goes with the session."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from data_skips import BESIDE, SET_BY_YOU, SHARED, USER_CACHE, choose_data_dir, data_reason, nltk_reason

from dsopt.data.registry import get_info

TESTS = Path(__file__).resolve().parent


def test_skip_reason_names_the_folder_read_and_a_fix_that_works(tmp_path):
    cache = Path("/home/me/.cache/dsopt/data")
    reason = data_reason(["sms_spam_collection", "sst2"], cache, USER_CACHE)
    assert f"not found in {cache} (your data cache, `dsopt data path`)" in reason
    assert "DSOPT_DATA=/path/to/data" in reason and "dsopt-test-home" not in reason
    (fetched,) = re.findall(r"`dsopt data fetch ([^`]+)`", reason)
    assert fetched == "sms_spam_collection sst2"
    for name in fetched.split():
        get_info(name)  # names the CLI accepts
    whole = data_reason([SHARED], cache, USER_CACHE)
    assert "dsopt data fetch" not in whole and "DSOPT_DATA=/path/to/data" in whole  # `fetch shared` is refused
    nltk = nltk_reason(RuntimeError("NLTK package 'stopwords' is missing: /x\nmore"), cache, USER_CACHE)
    assert "`dsopt data nltk --allow-download`" in nltk and "DSOPT_DATA=/path/to/data" in nltk
    assert "dsopt data fetch" not in nltk and "more" not in nltk


def test_the_data_folder_is_yours_never_a_temp_one(tmp_path):
    beside, user = tmp_path / "shared" / "data", tmp_path / "home" / ".cache" / "dsopt" / "data"
    assert choose_data_dir(None, beside, user) == (user, USER_CACHE)  # not an empty temp folder
    beside.mkdir(parents=True)
    assert choose_data_dir(None, beside, user) == (beside, BESIDE)
    assert choose_data_dir("/data/mine", beside, user) == (Path("/data/mine"), SET_BY_YOU)
    assert os.environ["DSOPT_DATA"] and "dsopt-test-home" not in os.environ["DSOPT_DATA"]  # this session's


def test_the_scratch_home_is_removed_when_the_session_ends_even_on_failure(tmp_path):
    """A session of two tiny tests (one fails) with this suite's conftest: its /tmp/dsopt-test-home-* is gone."""
    (tmp_path / "test_tiny.py").write_text(
        "import os, pathlib\n"
        "def test_writes_under_home():\n"
        "    pathlib.Path(os.environ['HOME'], 'notes.txt').write_text('x')\n"
        "    pathlib.Path(os.environ['WHERE']).write_text(os.environ['HOME'])\n"
        "def test_fails():\n"
        "    assert False\n")
    where = tmp_path / "home.txt"
    env = {**os.environ, "WHERE": str(where), "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                           "-c", os.devnull, "--rootdir", str(tmp_path), "test_tiny.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1 and "1 failed, 1 passed" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    home = Path(where.read_text())
    assert home.parent.name.startswith("dsopt-test-home-")
    assert not home.parent.exists(), f"{home.parent} left behind"

