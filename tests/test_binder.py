"""The Binder image (binder/) holds what CI installs for the chapters, and fails its build when it does not
(issue 20 item 17). Read from the files, checked against .ci/run's apt packages so the two cannot drift."""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
#: What .ci/run installs for the browser tests only (no chapter uses them).
BROWSER_ONLY = {"chromium", "fonts-dejavu-core"}
#: What .ci/run installs to build Horovod (chapter 06's optional backend) from source.
BUILD_TOOLS = {"cmake", "g++", "make"}


def ci_apt_packages() -> set[str]:
    """Every package a `apt-get install` line of .ci/run names."""
    packages = set()
    for line in (REPO / ".ci" / "run").read_text().splitlines():
        if re.match(r"\s*apt-get install\b", line):
            words = shlex.split(line.split(">")[0])
            packages.update(w for w in words[2:] if not w.startswith("-"))
    return packages


def commands(path: Path) -> list[str]:
    """The non-comment, non-blank lines of a shell script."""
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.strip().startswith("#")]


def test_apt_txt_holds_every_system_package_the_chapters_need():
    ci = ci_apt_packages()
    assert {"prometheus", "wordnet-base", "wordnet-sense-index"} <= ci  # the parser reads .ci/run
    apt = set(commands(BINDER / "apt.txt"))
    needed = ci - BROWSER_ONLY - BUILD_TOOLS
    assert needed <= apt, f"binder/apt.txt lacks {sorted(needed - apt)} (installed by .ci/run)"
    if "install_horovod.sh" in (BINDER / "postBuild").read_text():
        assert BUILD_TOOLS <= apt, "postBuild builds Horovod: apt.txt needs cmake, g++ and make"
    assert apt <= ci, f"binder/apt.txt has {sorted(apt - ci)}, which CI never installs (untested)"


def test_runtime_is_python_3_11():
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    assert 'requires-python = ">=3.10"' in (REPO / "pyproject.toml").read_text()


def test_post_build_fails_on_any_failure_and_builds_the_nltk_data():
    script = BINDER / "postBuild"
    lines = commands(script)
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert lines[0] == "set -euo pipefail", "the first command must make every later failure fail the build"
    assert not [ln for ln in lines if "||" in ln], "a failure is swallowed (`|| echo`, `|| true`)"
    assert "dsopt data fetch all" in lines and "dsopt data verify" in lines
    nltk = [ln for ln in lines if ln.startswith("dsopt data nltk")]
    assert nltk and "--check" not in nltk[0], "postBuild must build the NLTK data (not only check it)"
    assert lines.index("dsopt data fetch all") < lines.index(nltk[0])  # the stopwords zip lives in the data cache
    syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr
