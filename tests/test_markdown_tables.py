"""Every Markdown table dsopt prints renders as a table (issue 20 item 2): chapter 06's scaling table once rendered
as one paragraph because a header cell held pipes ("|acc - 1 worker|").

The tables checked are the ones people read: every table in the committed notebooks' Markdown outputs and cells
(they are what nbval re-creates from the stored runs), rendered with mistune's GFM table rules (what nbconvert's
HTML export uses). A table passes when it renders as one ``<table>`` whose header and every body row have the
same number of cells as its delimiter row has columns (GFM pads or drops cells silently otherwise).
"""
from __future__ import annotations

import json
import re

import mistune
import pytest

from dsopt.chapters.registry import CHAPTERS, notebooks_dir

_render = mistune.create_markdown(plugins=["table"])
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _cells(line: str) -> int:
    """Cells of one GFM table row: unescaped pipes between the outer ones."""
    return len(_CELL_SPLIT.split(line.strip().strip("|")))


def table_blocks(markdown: str) -> list[str]:
    """Runs of consecutive lines that start with ``|`` (outside code fences)."""
    blocks, current, fenced = [], [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and line.lstrip().startswith("|"):
            current.append(line.strip())
            continue
        if current:
            blocks.append("\n".join(current))
            current = []
    if current:
        blocks.append("\n".join(current))
    return blocks


def table_problems(block: str) -> list[str]:
    """Why ``block`` does not render as a well-formed table ([] when it does)."""
    lines = block.splitlines()
    if len(lines) < 2 or not re.fullmatch(r"\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?", lines[1]):
        return [f"no delimiter row under the header: {lines[:2]}"]
    columns = _cells(lines[1])
    problems = [f"row {i} has {_cells(line)} cells, the delimiter row {columns}: {line[:100]}"
                for i, line in enumerate(lines) if i != 1 and _cells(line) != columns]
    html = _render(block)
    if html.count("<table>") != 1:
        problems.append(f"renders as {html.count('<table>')} tables: {html[:120]}")
    elif len(re.findall(r"<th[ >]", html)) != columns:
        problems.append(f"renders {len(re.findall(r'<th[ >]', html))} header cells, the delimiter row has {columns}")
    return problems


def _markdown_of(notebook) -> list[tuple[str, str]]:
    out = []
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "markdown":
            out.append((f"cell {i}", "".join(cell["source"])))
        for output in cell.get("outputs", []):
            md = output.get("data", {}).get("text/markdown")
            if md:
                out.append((f"cell {i} output", "".join(md)))
    return out


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_every_markdown_table_in_the_committed_notebook_renders(chapter):
    nb = json.loads((notebooks_dir() / CHAPTERS[chapter].notebook).read_text())
    checked, problems = 0, []
    for where, md in _markdown_of(nb):
        for block in table_blocks(md):
            checked += 1
            problems += [f"{where}: {p}" for p in table_problems(block)]
    assert checked >= 1, "a chapter notebook with no table at all: the table finder is broken"
    assert problems == []
    printed = [f"cell {i}" for i, cell in enumerate(nb["cells"]) for o in cell.get("outputs", [])
               if o.get("output_type") == "stream" and table_blocks("".join(o.get("text", "")))]
    assert printed == [], "a Markdown table printed as text (raw pipes on the page): display(Markdown(...)) it"


def test_the_checker_catches_pipes_in_a_header_cell_and_ragged_rows():
    good = "| arm | value |\n|---|---|\n| a | 1 |"
    assert table_problems(good) == []
    assert table_problems("| arm | value (\\|x\\|) |\n|---|---|\n| a | 1 |") == []  # escaped pipes are text
    assert table_problems("| arm | |acc - 1 worker| |\n|---|---|\n| a | 1 |")  # chapter 06's old header
    assert table_problems("| arm | value |\n|---|---|\n| a | 1 | 2 |")
    assert table_problems("| arm | value |\n| a | 1 |")
    assert table_blocks("text\n| a | b |\n|---|---|\n| 1 | 2 |\nmore\n```\n| not | a table |\n```") == [
        "| a | b |\n|---|---|\n| 1 | 2 |"]
