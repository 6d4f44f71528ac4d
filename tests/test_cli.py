"""The dsopt command line and the chapter registry (no kernel is started here)."""
from __future__ import annotations

import json
from pathlib import Path

import papermill
import re

import pytest

from dsopt.chapters.registry import CHAPTERS, get_chapter, notebooks_dir
from dsopt.cli import main
from dsopt.cli.chapters import parse_value


def test_list_shows_chapters_and_parameter_defaults(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "01  Learning-rate warm restarts" in out
    assert '-p epochs 20' in out and '-p tasks "digits,financial_phrasebank"' in out


@pytest.mark.parametrize("argv, message", [
    (["run", "01", "-p", "foo", "1"], "chapter 01 has no parameter 'foo'; parameters: tasks, epochs"),
    (["run", "01", "-p", "epochs", "1"], "epochs must be an integer in [2, 500]; got 1"),
    (["run", "01", "-p", "scale", "huge"], "scale must be one of 'tiny', 'workshop', 'full'; got 'huge'"),
    (["run", "01", "-p", "tasks", "digits,mnist"], "tasks must be one of 'digits', 'financial_phrasebank'; got 'mnist'"),
    (["run", "01", "-p", "control_schedule", "[[1, 2]]"], "control_schedule must be a list of [step >= 0, knob name, value]"),
    (["run", "99"], "unknown chapter '99'; chapters: 01"),
])
def test_run_rejects_bad_input_before_a_kernel_starts(monkeypatch, capsys, argv, message):
    started = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: started.append(a))
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert started == []


def test_run_passes_validated_parameters_to_papermill(monkeypatch, tmp_path, capsys):
    calls = []

    def fake_execute(src, dst, parameters, **kw):
        calls.append((src, dst, parameters, kw))
        import shutil
        shutil.copy(src, dst)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "1", "-p", "epochs", "4", "-p", "tasks", "digits", "--out", "out", "-q"]) == 0
    (src, dst, params, kw) = calls[0]
    assert params["epochs"] == 4 and params["tasks"] == "digits"
    assert params["metrics_path"] == "out/metrics.json"  # relative to the kernel's folder: no machine path
    assert kw["cwd"] == str(tmp_path.resolve()) and kw["config"].KernelManager.transport == "ipc"
    assert kw["store_widget_state"] is False and kw["kernel_name"] == "python3"
    out = capsys.readouterr().out
    assert "notebook: out/01_lr_restarts.ipynb" in out and "metrics:  out/metrics.json (not written)" in out


def _fake_kernel(seen: list, env_name: str, provenance: dict):
    """A papermill stand-in: copies the notebook, records ``$env_name`` as the kernel would inherit it, and writes
    metrics holding ``provenance`` (what the notebook's last cell saves)."""
    def fake(src, dst, parameters, **kw):
        import os
        import shutil
        shutil.copy(src, dst)
        seen.append(os.environ.get(env_name))
        (Path(kw["cwd"]) / parameters["metrics_path"]).write_text(json.dumps({"provenance": provenance}))

    return fake


def test_a_plain_run_reads_the_runs_stored_beside_the_notebook_and_says_so(monkeypatch, tmp_path, capsys):
    """The notebook's ``stored_runs`` parameter promises the runs stored beside it: a ``dsopt run`` from an empty
    folder reads the shipped ones (and prints where its runs came from); a folder with its own ``stored_runs/`` or an
    explicit ``$DSOPT_STORED_RUNS`` wins."""
    seen = []
    monkeypatch.setattr(papermill, "execute_notebook", _fake_kernel(seen, "DSOPT_STORED_RUNS", {
        "stored": 12, "computed": 0, "text": "12 runs read from stored runs. Reused runs were made on X"}))
    monkeypatch.delenv("DSOPT_STORED_RUNS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "01", "-p", "tasks", "digits", "--out", "a", "-q"]) == 0
    shipped = notebooks_dir() / "stored_runs" / "01_lr_restarts"
    assert shipped.is_dir() and seen[-1] == str(shipped)
    out = capsys.readouterr().out
    assert "runs:     12 runs read from stored runs. Reused runs were made on X; -p stored_runs False measures " \
           "them here" in out
    (tmp_path / "stored_runs").mkdir()  # the folder's own stored runs (what `dsopt lab` copies) are read there
    assert main(["run", "01", "-p", "tasks", "digits", "--out", "b", "-q"]) == 0 and seen[-1] is None
    monkeypatch.setenv("DSOPT_STORED_RUNS", "0")
    assert main(["run", "01", "-p", "tasks", "digits", "--out", "c", "-q"]) == 0 and seen[-1] == "0"


def test_verify_re_executes_stored_runs_in_the_kernel_and_says_so(monkeypatch, tmp_path, capsys):
    """``dsopt run NN --verify K`` (issue 23 item 6): the kernel is told to re-execute K stored runs per
    comparison (DSOPT_STORED_RUNS_VERIFY, otherwise never passed to a user's kernel), and the line says how many
    reproduced. Bad counts and combinations are refused before a kernel starts."""
    seen = []
    monkeypatch.setattr(papermill, "execute_notebook", _fake_kernel(seen, "DSOPT_STORED_RUNS_VERIFY", {
        "stored": 12, "verified": 2, "text": "12 runs read from stored runs"}))
    monkeypatch.setenv("DSOPT_STORED_RUNS_VERIFY", "5")  # a test-only setting of the caller: not inherited
    monkeypatch.chdir(tmp_path)
    assert main(["run", "01", "-p", "tasks", "digits", "--out", "a", "-q"]) == 0 and seen == [None]
    capsys.readouterr()
    assert main(["run", "01", "-p", "tasks", "digits", "--verify", "2", "--out", "b", "-q"]) == 0 and seen[-1] == "2"
    out = capsys.readouterr().out
    assert re.search(r"12 runs read from stored runs; 2 of them re-executed here first \(--verify, picked at random: "
                     r"DSOPT_SPOT_CHECK_SEED=[0-9a-f]{12} repeats the pick\) and reproduced", out), out
    monkeypatch.setenv("DSOPT_SPOT_CHECK_SEED", "abc")  # a given seed repeats an earlier pick
    assert main(["run", "01", "-p", "tasks", "digits", "--verify", "2", "--out", "c", "-q"]) == 0
    assert "DSOPT_SPOT_CHECK_SEED=abc repeats" in capsys.readouterr().out and seen.pop() == "2"
    for argv in (["--verify", "2", "--update-notebook"], ["--verify", "2", "--decide"],
                 ["--verify", "2", "-p", "stored_runs", "false"], ["--verify", "2", "--prepare-only"]):
        assert main(["run", "01", *argv]) == 2 and "--verify" in capsys.readouterr().err
    for bad in ("0", "x", "101"):
        with pytest.raises(SystemExit):
            main(["run", "01", "--verify", bad])
        assert "--verify takes a whole number of runs, 1 to 100" in capsys.readouterr().err
    assert len(seen) == 2


def test_metrics_path_is_confined_to_the_run_folder(monkeypatch, tmp_path, capsys):
    """``-p metrics_path /abs/path`` wrote outside --out while the CLI printed "(not written)": a path outside the
    run folder is refused before a kernel starts (and no folder is made); one inside it is used and printed."""
    seen = []

    def fake(src, dst, parameters, **kw):
        import shutil
        shutil.copy(src, dst)
        seen.append(parameters["metrics_path"])
        (Path(kw["cwd"]) / parameters["metrics_path"]).write_text("{}")

    monkeypatch.setattr(papermill, "execute_notebook", fake)
    monkeypatch.chdir(tmp_path)
    for bad in (str(tmp_path / "elsewhere.json"), "../x.json", "o/../x.json", "o"):
        assert main(["run", "01", "-p", "tasks", "digits", "-p", "metrics_path", bad, "--out", "o", "-q"]) == 2
        assert "metrics_path must name a file inside the run folder o" in capsys.readouterr().err
    assert seen == [] and not (tmp_path / "o").exists() and not (tmp_path / "elsewhere.json").exists()
    assert main(["run", "01", "-p", "tasks", "digits", "-p", "metrics_path", "o/m.json", "--out", "o", "-q"]) == 0
    assert seen == ["o/m.json"] and "metrics:  o/m.json\n" in capsys.readouterr().out


def test_a_negative_parameter_value_is_a_value_not_an_option(monkeypatch, tmp_path, capsys):
    """``-p base_lr -1e-3`` was read as an option ("expected 2 arguments"): now it is the value, and refused by
    the parameter's own range check like any other value."""
    seen = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda src, dst, parameters, **kw: seen.append(parameters))
    monkeypatch.chdir(tmp_path)
    assert main(["run", "01", "-p", "base_lr", "-1e-3", "-q"]) == 2
    err = capsys.readouterr().err
    assert "base_lr must be" in err and "got -0.001" in err and "expected 2 arguments" not in err and seen == []
    assert main(["run", "01", "-p", "tasks", "digits", "-p", "seed", "-1"]) == 2
    assert "seed must be an integer in [0, " in capsys.readouterr().err
    assert main(["run", "01", "-p", "control_schedule", "[" * 50_000]) == 2  # not a RecursionError traceback
    assert "-p control_schedule: the value (50,000 characters) is nested too deeply" in capsys.readouterr().err
    assert main(["run", "01", "-p", "base_lr", "-"]) == 2  # a lone "-" stays what argparse makes of it
    with pytest.raises(SystemExit) as info:  # a missing value is still a usage error (exit 2)
        main(["run", "01", "-p", "base_lr"])
    assert info.value.code == 2 and "expected 2 arguments" in capsys.readouterr().err


@pytest.mark.parametrize("text, value", [("3", 3), ("1e-3", 1e-3), ('"a,b"', "a,b"), ("digits", "digits"),
                                         ("[[3, \"T_0\", 2]]", [[3, "T_0", 2]]), ("True", True)])
def test_parse_value(text, value):
    assert parse_value(text) == value


@pytest.mark.parametrize("chapter_id", sorted(CHAPTERS))
def test_notebook_parameters_cell_matches_registry(chapter_id):
    ch = get_chapter(chapter_id)
    declared = papermill.inspect_notebook(str(notebooks_dir() / ch.notebook))
    assert list(declared) == list(ch.params)
    for name, p in ch.params.items():
        assert eval(declared[name]["default"]) == p.default, name


def test_repeated_parameter_is_refused(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "01", "-p", "epochs", "4", "-p", "epochs", "5"])
    assert info.value.code == 2
    assert "-p epochs given twice ('4' and '5'); give each parameter once" in capsys.readouterr().err


def test_missing_data_is_refused_before_a_kernel_starts(monkeypatch, tmp_path, capsys):
    started = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: started.append(a))
    monkeypatch.setenv("DSOPT_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("DSOPT_OFFLINE", "1")
    assert main(["run", "04", "-p", "scale", "tiny", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dsopt: error: Dataset 'credit_card_default' is not available")
    assert str(tmp_path / "empty" / "credit_card_default" / "UCI_Credit_Card.csv") in err
    assert started == [] and not (tmp_path / "empty").exists()
    monkeypatch.setenv("DSOPT_DATA", str(tmp_path / "empty2"))
    assert main(["run", "01", "-p", "tasks", "digits", "--out", str(tmp_path / "out"), "-q"]) == 0
    assert len(started) == 1  # digits is bundled: no file needed, the run starts


def test_a_failing_cell_prints_its_error_and_the_partial_notebook(monkeypatch, tmp_path, capsys):
    from papermill.exceptions import PapermillExecutionError

    def failing(src, dst, **kw):
        import shutil
        shutil.copy(src, dst)
        raise PapermillExecutionError(7, 3, "x = 1 / 0", "ZeroDivisionError", "division by zero",
                                      ["\x1b[0;31mZeroDivisionError\x1b[0m", "Cell \x1b[0;32mIn[3], line 1\x1b[0m", "x = 1 / 0"])

    monkeypatch.setattr(papermill, "execute_notebook", failing)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "01", "-p", "tasks", "digits", "--out", "out", "-q"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "dsopt: chapter 01 failed in cell 3: ZeroDivisionError: division by zero"
    assert err[1] == "  at Cell In[3], line 1" and err[-1] == "partial notebook: out/01_lr_restarts.ipynb"
    assert len(err) <= 6


def test_a_damaged_run_noticed_in_the_kernel_reaches_the_terminal(monkeypatch, tmp_path, capsys):
    """Issue 23 item 7: "dsopt: run file ...: checksum mismatch; computing the run again" was printed only inside
    the notebook (the kernel's stderr); dsopt run now repeats each such notice on its own stderr, once."""
    import nbformat

    def fake(src, dst, parameters, **kw):
        nb = nbformat.read(src, as_version=4)
        notice = "dsopt: run file .dsopt-cache/01/ab.json: checksum mismatch; computing the run again\n"
        nb.cells[3].outputs = [nbformat.v4.new_output("stream", name="stderr", text="progress 3/12\n" + notice),
                               nbformat.v4.new_output("stream", name="stderr", text=notice)]
        nbformat.write(nb, dst)

    monkeypatch.setattr(papermill, "execute_notebook", fake)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "01", "-p", "tasks", "digits", "--out", "o", "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("dsopt: run file .dsopt-cache/01/ab.json: checksum mismatch") == 1 and "progress" not in err


def test_success_prints_the_verdict_headline(monkeypatch, tmp_path, capsys):
    def fake(src, dst, parameters, **kw):
        import shutil
        shutil.copy(src, dst)
        claim = {"status": "inconclusive", "line": "**inconclusive at this budget**: '30 % faster' ...", "point": 0.1,
                 "line_text": "inconclusive at this budget: '30 % faster' ..."}
        old = {"status": "not testable here", "line": "**not testable here**: '2.3x faster' ...", "point": 0.2}
        (tmp_path / parameters["metrics_path"]).write_text(json.dumps({"verdict": {
            "claims": {"speed": {"text": "30 % faster"}}, "per_task": {"digits": {"speed": claim, "old": old}}}}))

    monkeypatch.setattr(papermill, "execute_notebook", fake)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "01", "-p", "tasks", "digits", "--out", "o", "-q"]) == 0
    out = capsys.readouterr().out.splitlines()
    # the terminal gets plain text: line_text, or the Markdown line without its emphasis (older metrics files)
    assert out[:3] == ["verdict:", "  digits: inconclusive at this budget: '30 % faster' ...",
                       "  digits: not testable here: '2.3x faster' ..."]
    assert "**" not in "\n".join(out)


def test_start_validates_and_sets_threads():
    import torch

    from dsopt.chapters.notebook import start
    from dsopt.util.validation import ParameterError

    ns = {**{name: p.default for name, p in get_chapter("01").params.items()}, "tasks": "digits"}  # no dataset
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert start("01", ns)["epochs"] == 20 and torch.get_num_threads() == 1
        torch.set_num_threads(2)
        start("01", {**ns, "scale": "full"})
        assert torch.get_num_threads() == 2  # full scale: left to torch
        with pytest.raises(ParameterError, match=r"epochs must be an integer in \[2, 500\]; got 1"):
            start("01", {**ns, "epochs": 1})
        with pytest.raises(ParameterError, match="does not define seed"):
            start("01", {k: v for k, v in ns.items() if k != "seed"})
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("chapter_id", sorted(CHAPTERS))
def test_first_screen_cites_the_shipped_claims_table_and_says_what_to_do(chapter_id):
    """Issue 20 item 9: every chapter cited "row NN of CLAIMS.md", a file neither shipped nor copied; test markers
    (# NBVAL_CHECK_OUTPUT) showed in cells attendees read; no first screen said what to do."""
    import re

    nb = json.loads((notebooks_dir() / get_chapter(chapter_id).notebook).read_text())
    first = "".join(nb["cells"][0]["source"])
    assert f"row {chapter_id} of [CLAIMS.md](CLAIMS.md)" in first
    claims = (notebooks_dir() / "CLAIMS.md").read_text()
    assert re.search(rf"^\| {chapter_id} \|", claims, re.M)  # the row cited is in the table shipped beside it
    sections = {int(m) for c in nb["cells"] if c["cell_type"] == "markdown"
                for m in re.findall(r"^## (\d+) ·", "".join(c["source"]), re.M)}
    m = re.search(r"\*Run All\*.*steer the panel in section (\d+).*verdict \(section (\d+)\)", first, re.S)
    assert m and {int(m.group(1)), int(m.group(2))} <= sections
    sources = "".join("".join(c["source"]) for c in nb["cells"])
    assert "NBVAL" not in sources  # markers live in cell tags, out of the reader's way
    assert any("nbval-check-output" in c.get("metadata", {}).get("tags", []) for c in nb["cells"])


@pytest.mark.parametrize("chapter_id", sorted(CHAPTERS))
def test_first_code_cell_is_the_one_start_call(chapter_id):
    """The validate-then-set-threads boilerplate is one call in every notebook (no copies to drift)."""
    import nbformat

    ch = get_chapter(chapter_id)
    nb = nbformat.read(notebooks_dir() / ch.notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert f'params = start("{ch.id}", globals())' in code[1].source
    assert "set_num_threads" not in code[1].source and ".validate(" not in code[1].source


FAST = [["--help"], ["list"], ["data", "list"], ["data", "path"], ["data", "verify", "digits"],
        ["data", "fetch", "nope"], ["run", "01", "-p", "epochs", "1"], ["run", "99"],
        ["run", "01", "-p", "seed", "1", "-p", "seed", "2"], ["lab", "--help"]]


@pytest.mark.parametrize("argv", FAST, ids=[" ".join(a) for a in FAST])
def test_cli_answers_without_importing_torch_in_under_a_second_of_cpu(argv, tmp_path):
    """`--help`, `list`, `data ...` and refusals load no torch/numpy/papermill; their CPU time is measured.

    CPU time (user + sys of the child), not wall time: the machine may be loaded by other work.
    """
    import os
    import resource
    import subprocess
    import sys

    probe = ("import sys, runpy; sys.argv = ['dsopt', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('dsopt.cli', run_name='__main__')\n"
             "except SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
             "heavy = sorted(m for m in ('torch', 'numpy', 'papermill', 'nbformat', 'sklearn') if m in sys.modules)\n"
             "print('HEAVY', heavy, file=sys.stderr)\nsys.exit(code)")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "DSOPT_DATA": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, env=env, cwd=tmp_path,
                          check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert "HEAVY []" in proc.stderr, proc.stderr
    assert cpu < 1.0, f"{' '.join(argv)}: {cpu:.2f} s of CPU"
    assert proc.returncode in (0, 1, 2)
    if proc.returncode == 2 and argv[0] != "lab":
        assert "dsopt" in proc.stderr.splitlines()[-2] or "dsopt" in proc.stderr


@pytest.mark.data("financial_phrasebank")  # the committed defaults read it (the preflight refuses without it)
def test_update_notebook_stores_the_runs_it_made_beside_the_notebook(monkeypatch, tmp_path, capsys):
    """--update-notebook: executed in a fresh folder with stored runs off, then notebook + runs + index replace the old."""
    import os
    import shutil

    from dsopt.chapters.runner import INDEX
    from dsopt.studies.jobs import cache_key, run_jobs
    from dsopt.util.runfile import read_run

    checkout = tmp_path / "checkout"
    (checkout / "src" / "dsopt").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("")
    shutil.copytree(notebooks_dir(), checkout / "notebooks", ignore=shutil.ignore_patterns(".*", "stored_runs"))
    old = checkout / "notebooks" / "stored_runs" / "01_lr_restarts"
    old.mkdir(parents=True)
    (old / "stale.json").write_text("{}")
    monkeypatch.setenv("DSOPT_NOTEBOOKS", str(checkout / "notebooks"))
    seen = {}

    def fake_execute(src, dst, **kw):
        seen.update(kw, stored=os.environ.get("DSOPT_STORED_RUNS"), cwd_now=kw["cwd"])
        shutil.copy(src, dst)
        run_jobs([1, 2, 3], _square, lambda j: ((j,), {}), key=lambda j: cache_key("probe", j),
                 cache_dir=os.path.join(kw["cwd"], ".dsopt-cache", "01"), workers=1, progress=False)
        (Path(kw["cwd"]) / ".dsopt-cache" / "01" / "weights.pt.json").write_text("not a run")

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    assert main(["run", "01", "--update-notebook", "-q"]) == 0
    assert seen["stored"] == "0" and "parameters" not in seen  # computed from nothing, no injected paths
    assert str(checkout) not in seen["cwd_now"]
    store = checkout / "notebooks" / "stored_runs" / "01_lr_restarts"
    index = json.loads((store / INDEX).read_text())
    files = sorted(p.stem for p in store.glob("*.json") if p.name != INDEX)
    assert index["keys"] == files and len(files) == 3 and not (store / "stale.json").exists()
    assert sorted(read_run(store / f"{k}.json")["result"]["y"] for k in files) == [1, 4, 9]
    assert "stored runs: " in capsys.readouterr().out
    assert main(["run", "01", "--update-notebook", "-p", "epochs", "3"]) == 2
    assert main(["run", "01", "--reuse-stored"]) == 2  # only with --update-notebook

    # --reuse-stored: current stored runs are read, not computed; the store keeps exactly the runs used
    def reuse_execute(src, dst, **kw):
        seen.update(stored=os.environ.get("DSOPT_STORED_RUNS"))
        shutil.copy(src, dst)
        done = run_jobs([2, 3, 4], _square, lambda j: ((j,), {}), key=lambda j: cache_key("probe", j),
                        cache_dir=os.path.join(kw["cwd"], ".dsopt-cache", "01"), workers=1, progress=False)
        seen["computed"] = sorted(p.name for p in (Path(kw["cwd"]) / ".dsopt-cache" / "01").glob("*.json"))
        assert done[4] == {"y": 16}

    monkeypatch.setattr(papermill, "execute_notebook", reuse_execute)
    assert main(["run", "01", "--update-notebook", "--reuse-stored", "-q"]) == 0
    assert seen["stored"] == str(store) and len(seen["computed"]) == 1  # only job 4 computed
    files = sorted(p.stem for p in store.glob("*.json") if p.name != INDEX)
    assert json.loads((store / INDEX).read_text())["keys"] == files and len(files) == 3
    assert sorted(read_run(store / f"{k}.json")["result"]["y"] for k in files) == [4, 9, 16]


def _square(x: int) -> dict:
    return {"y": x * x}


def test_data_list_is_short_and_shows_each_registered_licence(capsys):
    from dsopt.data.registry import DATASETS

    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    for name, info in DATASETS.items():
        assert any(line.startswith(name) and info.licence in line for line in out.splitlines()), name


@pytest.mark.parametrize("value, message", [("-1", "must be in [0, 604800] seconds (0: no limit); got -1"),
                                            ("1e9", "must be whole seconds; got '1e9'"),
                                            ("soon", "must be whole seconds; got 'soon'")])
def test_a_bad_timeout_is_refused_before_a_kernel_starts(monkeypatch, capsys, value, message):
    started = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: started.append(a))
    with pytest.raises(SystemExit) as info:
        main(["run", "01", "--timeout", value])
    assert info.value.code == 2 and message in capsys.readouterr().err and started == []


def test_decide_adds_seeds_in_looks_until_decided_and_writes_its_record(monkeypatch, tmp_path, capsys):
    """`dsopt run NN --decide`: looks of n_seeds seeds through the Study's measure (cached per seed), each claim
    stopping once decided, the outcome printed as plain text and written to OUT/decide.json."""
    import numpy as np

    import dsopt.studies.catalog as catalog
    from dsopt.stats import Claim, Verdict, assess_all, paired
    from dsopt.studies.study import Study

    measured = []

    class Probe(Study):  # chapter 01's parameters, a constructed measurement: a clear effect, one on the claim's end
        id = "01"

        def measure(self, params, *, cache_dir=None, progress=True, **options):
            seeds = self.seeds(params)
            measured.append(len(seeds))
            rng = np.random.default_rng(7)
            noise = rng.normal(0, 1, size=(2, 64))
            return {"params": params, "runs": {"clear": 3.0 + noise[0, :len(seeds)], "null": 1.0 + noise[1, :len(seeds)]}}

        def summarize(self, results):
            return results["runs"]

        def compute(self, summary, *, alpha=0.05):
            claim = Claim.at_least(1.0, text="helps")
            vs = assess_all([(paired(summary[k], np.zeros(len(summary[k]))), claim) for k in ("clear", "null")],
                            alpha=alpha)
            return {k: v.as_dict() for k, v in zip(("clear", "null"), vs)}

        def claim_verdicts(self, verdict):
            return {k: Verdict.from_dict(d) for k, d in verdict.items()}

    monkeypatch.setattr(catalog, "get_study", lambda cid: Probe())
    monkeypatch.chdir(tmp_path)
    assert main(["run", "01", "-p", "tasks", "digits", "--decide", "--max-seeds", "9", "--out", "d"]) == 0
    out, err = capsys.readouterr()
    assert "look 1/3 done, 3 seeds spent" in err and "**" not in out
    record = json.loads((tmp_path / "d" / "decide.json").read_text())
    assert record["max_seeds"] == 9 and record["design"]["looks"] == [3, 6, 9]
    assert record["provenance"]["text"] and record["seeds_spent"] == 9
    outcomes = record["claims"]
    assert outcomes["clear"]["status"] == "supported" and outcomes["null"]["label"] == "inconclusive at 9 seeds"
    assert measured == sorted(measured) and measured[0] == 3 and measured[-1] == 9  # one look per batch of 3
    assert "inconclusive at 9 seeds" in out and "decide:" in out
    # refusals name the option: a budget beyond the chapter's seeds, a combination that makes no sense
    assert main(["run", "01", "--decide", "--max-seeds", "500"]) == 2
    assert "--max-seeds" in capsys.readouterr().err
    assert main(["run", "01", "--decide", "--update-notebook"]) == 2


def test_stored_runs_parameter_is_a_boolean(capsys):
    """Every chapter has `stored_runs` (false: measure every run on this machine); 1 or "yes" are refused by name."""
    for cid in ("01", "07"):
        assert get_chapter(cid).validate({"stored_runs": False}) == {"stored_runs": False}
    assert main(["run", "01", "-p", "stored_runs", "1"]) == 2
    assert "stored_runs must be true or false" in capsys.readouterr().err
