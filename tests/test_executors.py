"""Choosing where a grid's runs execute (dsopt.studies.executors): specs, refusals, and the plain install."""
from __future__ import annotations

import subprocess
import sys

import pytest

from dsopt.studies.executors import ExecutorSpec, current_executor, parse_executor, scheduler_answers
from dsopt.studies.jobs import execution, run_jobs
from dsopt.util.validation import ParameterError


@pytest.mark.parametrize("spec, kind, address", [
    (None, "local", None), ("local", "local", None), (" LOCAL ", "local", None), ("dask", "dask-local", None),
    ("dask://local", "dask-local", None), ("dask://10.0.0.5:8786", "dask", "tcp://10.0.0.5:8786"),
    ("tcp://node-1.cluster:8786", "dask", "tcp://node-1.cluster:8786"), ("tcp://[::1]:8786", "dask", "tcp://[::1]:8786"),
])
def test_specs(spec, kind, address):
    parsed = parse_executor(spec)
    assert (parsed.kind, parsed.address) == (kind, address)


@pytest.mark.parametrize("spec", ["dask:/h:1", "dask://h", "dask://h:0", "dask://h:70000", "ray://h:1", "2", "localhost:8786",
                                  "dask://h:1;rm -rf /"])
def test_bad_specs_are_refused_naming_the_option_and_the_forms(spec):
    with pytest.raises(ParameterError) as err:
        parse_executor(spec, name="--executor")
    assert "--executor must be one of 'local'" in str(err.value) and "dask://HOST:PORT" in str(err.value)


def test_env_and_context_choose_the_executor_and_a_bad_env_names_the_variable(monkeypatch):
    monkeypatch.setenv("DSOPT_EXECUTOR", "dask://127.0.0.1:8786")
    assert current_executor().address == "tcp://127.0.0.1:8786"
    assert current_executor("local").kind == "local"  # execution(executor=...) wins over the variable
    monkeypatch.setenv("DSOPT_EXECUTOR", "dsk://x:1")
    with pytest.raises(ParameterError, match="DSOPT_EXECUTOR must be one of"):
        run_jobs([1], dict, lambda j: ((), {}), key=str, progress=False)
    with pytest.raises(ParameterError, match="executor must be one of"):
        with execution(executor="nope"):
            pass


def test_a_scheduler_that_does_not_answer_is_said_plainly():
    pytest.importorskip("distributed")
    ok, text = scheduler_answers(ExecutorSpec("dask", address="tcp://127.0.0.1:9"), timeout=1)
    assert not ok and "no Dask scheduler answers at tcp://127.0.0.1:9" in text


def test_without_dask_the_error_says_how_to_install_it_and_local_needs_nothing():
    code = ("import sys; sys.modules['distributed'] = None\n"
            "from dsopt.studies.executors import parse_executor, scheduler_answers, import_distributed\n"
            "print(scheduler_answers(parse_executor('local'))[0])\n"
            "print(scheduler_answers(parse_executor('dask'))[1])\n"
            "import dsopt.studies.jobs\n"
            "print('distributed' in sys.modules and sys.modules['distributed'] is not None)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "True" and "pip install 'dsopt[cluster]'" in lines[1] and lines[2] == "False"


def test_cli_refuses_a_bad_executor_before_any_kernel_starts(capsys):
    from dsopt.cli import main

    assert main(["run", "01", "-p", "tasks", "digits", "--executor", "spark://x:1"]) == 2
    assert "--executor must be one of" in capsys.readouterr().err
    assert main(["run", "01", "--update-notebook", "--executor", "dask"]) == 2
    assert "drop --executor" in capsys.readouterr().err


def test_run_gives_the_executor_to_the_kernel_as_its_environment(monkeypatch, tmp_path):
    """`dsopt run NN --executor SPEC`: the chapter's kernel (papermill) sees DSOPT_EXECUTOR=SPEC."""
    import os

    from dsopt.chapters import runner

    seen = {}

    class Stop(Exception):
        pass

    def fake_execute(fn, *args, **kwargs):
        seen["executor"] = os.environ.get("DSOPT_EXECUTOR")
        raise Stop

    monkeypatch.setattr(runner, "execute", fake_execute)
    monkeypatch.delenv("DSOPT_EXECUTOR", raising=False)
    with pytest.raises(Stop):
        runner.run_chapter("01", {"tasks": "digits"}, tmp_path / "out", cwd=tmp_path, check_data=False,
                           executor="dask://127.0.0.1:8786 ")
    assert seen["executor"] == "dask://127.0.0.1:8786" and "DSOPT_EXECUTOR" not in os.environ


def test_doctor_reports_the_executor_and_fails_when_it_cannot_run_jobs(monkeypatch, capsys):
    import dsopt.distributed.doctor as doc
    from dsopt.cli import main

    monkeypatch.setattr(doc, "doctor", lambda smoke=False: [{"ok": True, "backend": "ddp", "device": "cpu",
                                                             "why": "torch with gloo"}])
    monkeypatch.delenv("DSOPT_EXECUTOR", raising=False)
    assert main(["doctor"]) == 0 and "executor: ok  local processes" in capsys.readouterr().out
    pytest.importorskip("distributed")
    monkeypatch.setenv("DSOPT_EXECUTOR", "dask://127.0.0.1:9")
    monkeypatch.setattr("dsopt.studies.executors.scheduler_answers",
                        lambda spec: (False, f"no Dask scheduler answers at {spec.address} (OSError)"))
    assert main(["doctor"]) == 1 and "executor: NO  no Dask scheduler answers at tcp://127.0.0.1:9" in \
        capsys.readouterr().out
    assert main(["doctor", "--executor", "dask://"]) == 2 and "--executor must be one of" in capsys.readouterr().err
