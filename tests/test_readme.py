"""Every code block of README.md runs as written (issue #11 item 5), or says which test runs it and why not here.

Each fenced block is preceded by ``<!-- readme-test: run|install|skip (reason) -->``: ``run`` blocks are executed
here (Python in a fresh interpreter, shell line by line in bash), ``install`` blocks by tests/test_install.py in a
fresh virtualenv, ``skip`` blocks are the test suite's own command lines. The data table's licences are the
registry's (one licence per dataset everywhere).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"<!-- readme-test: (run|install|skip)\b[^>]*-->\n```(\w+)\n(.*?)```", re.S)


def blocks(kind: str | None = None) -> list[tuple[str, str, str]]:
    found = [(m.group(1), m.group(2), m.group(3)) for m in BLOCK.finditer(README.read_text())]
    return [b for b in found if kind is None or b[0] == kind]


def test_every_code_block_is_accounted_for():
    text = README.read_text()
    assert text.count("```") // 2 == len(blocks()), "a README code block without a <!-- readme-test: ... --> line"
    assert {k for k, _, _ in blocks()} == {"run", "install", "skip"}


@pytest.mark.data("shared")
@pytest.mark.parametrize("i", range(len(blocks("run"))))
def test_run_blocks_run_as_written(i, tmp_path):
    _, lang, code = blocks("run")[i]
    env = {**os.environ, "PYTHONWARNINGS": "error::RuntimeWarning"}
    if lang == "python":
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]  # e.g. a background run still going at exit: rc 134
        assert "terminate called" not in proc.stderr
    else:
        bindir = Path(sys.executable).parent
        env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
        for line in (ln.split("#")[0].strip() for ln in code.splitlines()):
            if line:
                proc = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True,
                                      timeout=600, check=False)
                assert proc.returncode == 0, f"{line}: {proc.stderr[-2000:]}"


def test_data_table_licences_are_the_registrys():
    from dsopt.data.registry import DATASETS

    rows = re.findall(r"^\| (\w+) \| [^|]+ \| [^|]+ \| ([^|]+) \|$", README.read_text(), flags=re.M)
    table = {name: licence.strip() for name, licence in rows if name in DATASETS}
    assert table == {name: info.licence for name, info in DATASETS.items()}
