"""The dsopt command line and the chapter registry (no kernel is started here)."""
from __future__ import annotations

import json

import papermill
import pytest

from dsopt.chapters.cli import main, parse_value
from dsopt.chapters.registry import CHAPTERS, get_chapter, notebooks_dir


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
        (tmp_path / "metrics.json").write_text(json.dumps({"ok": True}))

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    assert main(["run", "1", "-p", "epochs", "4", "-p", "tasks", "digits", "--out", str(tmp_path), "-q"]) == 0
    (src, dst, params, kw) = calls[0]
    assert params["epochs"] == 4 and params["tasks"] == "digits"
    assert params["metrics_path"] == str(tmp_path.resolve() / "metrics.json")
    assert kw["store_widget_state"] is False and kw["kernel_name"] == "python3"
    assert "metrics:" in capsys.readouterr().out


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
        assert eval(declared[name]["default"]) == p.default, name  # noqa: S307 - our own notebook
