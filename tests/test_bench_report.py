"""benchmarks/report.py and run_all.py's assembly, on constructed records (no benchmark is run)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import report  # noqa: E402
import run_all  # noqa: E402

UNDECIDED = "not distinguishable at this noise"


def test_t_quantiles():
    assert report._t975(1) == pytest.approx(12.706)
    assert report._t975(4) == pytest.approx(2.776)
    assert report._t975(30) == pytest.approx(2.042)
    assert report._t975(60) == pytest.approx(2.000, abs=2e-3)
    assert report._t975(10_000) == pytest.approx(1.960, abs=1e-3)


def test_interval_is_a_t_interval_on_the_mean():
    lo, hi = report.interval([1.0, 1.1, 1.2])  # mean 1.1, sd 0.1, t(2) = 4.303
    assert lo == pytest.approx(1.1 - 4.303 * 0.1 / 3 ** 0.5)
    assert hi == pytest.approx(1.1 + 4.303 * 0.1 / 3 ** 0.5)
    assert report.interval([1.0]) is None and report.interval([]) is None


@pytest.mark.parametrize("target", ["<= 1.05", "< 1.05"])
def test_upper_bound(target):
    assert report.status(1.00, target, [0.99, 1.00, 1.01, 1.00]) == "met"
    assert report.status(1.20, target, [1.19, 1.20, 1.21, 1.20]) == "not met"
    assert report.status(1.04, target, [0.95, 1.04, 1.15]) == UNDECIDED


@pytest.mark.parametrize("target", [">= 10", "> 10", ">= 10x"])
def test_lower_bound(target):
    assert report.status(20, target, [19, 20, 21]) == "met"
    assert report.status(5, target, [4.9, 5.0, 5.1]) == "not met"
    assert report.status(10.5, target, [8, 11, 13]) == UNDECIDED


def test_interval_decides_not_the_point():
    # a point on the right side does not make it "met" when the repeats straddle the bound
    assert report.status(1.04, "<= 1.05", [0.90, 1.04, 1.25]) == UNDECIDED
    # and a point on the wrong side is "met" when every repeat says so tightly (mean paired ratio)
    assert report.status(1.06, "<= 1.05", [1.00, 1.001, 1.002]) == "met"


def test_one_repeat_point_decides():
    assert report.status(1.01, "<= 1.05", [1.01]) == "met (1 repeat: no interval)"
    assert report.status(1.10, "<= 1.05", [1.10]) == "not met (1 repeat: no interval)"
    assert report.status(12, ">= 10", None) == "met (1 repeat: no interval)"
    assert report.status(8, ">= 10", []) == "not met (1 repeat: no interval)"


def test_bad_target():
    with pytest.raises(ValueError):
        report.parse_target("about 1")
    assert report.parse_target(" >= 100x") == (">=", 100.0)


def test_record_prints_and_appends_json_lines(tmp_path, monkeypatch, capsys):
    out = tmp_path / "res.jsonl"
    monkeypatch.setenv(report.ENV, str(out))
    kw = dict(baseline=(2.0, "s", "plain"), measured=(2.1, "s", "Trainer"), target="<= 1.2")
    r1 = report.record("b", "t1", ratio=1.05, repeats=[1.04, 1.05, 1.06], **kw)
    report.record("b", "t2", ratio=1.5, repeats=[1.5], **kw)
    recs = report.read_records(str(out))
    assert [r["name"] for r in recs] == ["t1", "t2"] and recs[0] == json.loads(json.dumps(r1))
    assert recs[0]["status"] == "met" and recs[0]["n_repeats"] == 3
    assert recs[0]["baseline"] == {"value": 2.0, "unit": "s", "what": "plain"}
    assert recs[0]["target"] == {"op": "<=", "bound": 1.2, "text": "<= 1.2"}
    assert recs[0]["interval"]["low"] < 1.05 < recs[0]["interval"]["high"]
    assert recs[1]["interval"] is None and recs[1]["status"] == "not met (1 repeat: no interval)"
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2 and "95 % interval" in printed[0] and printed[0].endswith(": met")


def test_record_without_env_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(report.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    report.record("b", "t", baseline=None, measured=(3.0, "ms", "latency"), ratio=3.0, target="< 50",
                  repeats=[2.0, 3.0, 4.0])
    assert list(tmp_path.iterdir()) == []
    assert "met" in capsys.readouterr().out


def _run(name, outcome="ok", records=(), reason="", rc=0, tail=()):
    return {"benchmark": name, "args": [], "rc": rc, "outcome": outcome, "reason": reason, "seconds": 1.5,
            "load_before": [2.0, 2.1, 2.2], "load_after": [2.5, 2.1, 2.2], "stderr_tail": list(tail),
            "stdout": "", "records": list(records)}


FACTS = {"cpu_model": "Test CPU 9000", "cores": 2, "python": "3.11", "platform": "x", "torch": "2.9",
         "cpu_capability": "AVX2"}


def test_assemble_and_table():
    met = report.make_record("trainer_overhead", "Trainer / plain", baseline=(1.0, "s", "plain"),
                             measured=(1.01, "s", "Trainer"), ratio=1.01, target="<= 1.05",
                             repeats=[1.0, 1.01, 1.02])
    missed = report.make_record("augmentation", "dsopt / textattack", baseline=(5, "sentences/s", "ta"),
                                measured=(30, "sentences/s", "dsopt"), ratio=6.0, target=">= 10", repeats=[6.0])
    runs = [_run("trainer_overhead", records=[met]), _run("augmentation", records=[missed]),
            _run("monitoring", "skipped", reason="prometheus_client is not installed", rc=77,
                 tail=["SKIPPED monitoring: prometheus_client is not installed"]),
            _run("distributed", "failed", reason="exit status 1", rc=1, tail=["Traceback", "RuntimeError: boom"])]
    doc = run_all.assemble(runs, FACTS, quick=True)
    assert [r["name"] for r in doc["records"]] == ["Trainer / plain", "dsopt / textattack"]
    assert doc["failed"] == ["distributed"]  # a missed target is not a failure
    json.loads(json.dumps(doc))  # machine-readable as is
    table = run_all.format_table(doc)
    lines = table.splitlines()
    row = next(ln for ln in lines if ln.startswith("trainer_overhead") and "Trainer / plain" in ln)
    assert "1.01 [" in row and "<= 1.05" in row and row.rstrip().endswith("met")
    row = next(ln for ln in lines if ln.startswith("augmentation") and "textattack" in ln)
    assert "6 (n=1)" in row and row.endswith("not met (1 repeat: no interval)")
    assert any(ln.startswith("monitoring") and "skipped: prometheus_client is not installed" in ln for ln in lines)
    assert any(ln.startswith("distributed") and "failed: exit status 1" in ln for ln in lines)
    assert "RuntimeError: boom" in table and "Test CPU 9000" in table and "AVX2" in table
    assert "2.00 2.10 2.20 -> 2.50 2.10 2.20" in table


def test_classify():
    assert run_all.classify(0, "") == ("ok", "")
    assert run_all.classify(77, "SKIPPED monitoring: no prometheus\n") == ("skipped", "no prometheus")
    assert run_all.classify(1, "ModuleNotFoundError: No module named 'horovod'")[0] == "skipped"
    assert run_all.classify(1, "ModuleNotFoundError: No module named 'dsopt.x'")[0] == "failed"
    assert run_all.classify(1, "ValueError: x") == ("failed", "exit status 1")


def test_main_exit_status_only_on_failures(monkeypatch, capsys, tmp_path):
    missed = report.make_record("lr_schedule", "x", baseline=None, measured=(80, "ms", "lat"), ratio=80,
                                target="< 50", repeats=[79, 80, 81])
    outcomes = {"lr_schedule": _run("lr_schedule", records=[missed]),
                "monitoring": _run("monitoring", "skipped", reason="nope", rc=77)}
    monkeypatch.setattr(run_all, "run_one", lambda name, args, timeout=None: outcomes[name])
    monkeypatch.setattr(run_all, "machine_facts", lambda: FACTS)
    out = tmp_path / "o.json"
    assert run_all.main(["--only", "lr_schedule,monitoring", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["machine"]["cpu_model"] == "Test CPU 9000" and doc["records"][0]["status"] == "not met"
    outcomes["monitoring"] = _run("monitoring", "failed", reason="exit status 1", rc=1)
    assert run_all.main(["--only", "lr_schedule,monitoring"]) == 1
    with pytest.raises(SystemExit):
        run_all.main(["--only", "nosuch"])
    capsys.readouterr()
