"""Figures are stored once (plotly's JSON) and render offline: in JupyterLab (jupyterlab-plotly) and in the
HTML export (``dsopt_html``: plotly.js inlined once, no CDN)."""
from __future__ import annotations

import re

import nbformat
import pytest

from dsopt_widgets.export import PLOTLY_MIME, OfflineHTMLExporter
from dsopt_widgets.frontend import STATIC_RENDERER


def _figure(title: str) -> dict:
    import plotly.graph_objects as go

    return go.Figure(go.Scatter(x=[0, 1, 2], y=[1, 3, 2]), layout={"title": title}).to_plotly_json()


def _notebook(n: int = 2):
    nb = nbformat.v4.new_notebook()
    for i in range(n):
        out = nbformat.v4.new_output("display_data", data={PLOTLY_MIME: _figure(f"figure {i}")})
        nb.cells.append(nbformat.v4.new_code_cell(f"show_static(fig{i})", outputs=[out]))
    return nb


def test_static_figures_are_one_plotly_json_output():
    assert STATIC_RENDERER == "plotly_mimetype"  # no second renderer (HTML + CDN) storing the figure again


def test_html_export_inlines_plotly_once_and_draws_every_figure():
    html, _ = OfflineHTMLExporter().from_notebook_node(_notebook(3))
    assert len(re.findall(r"Plotly\.newPlot\(", html)) == 3
    assert html.count("plotly.js v") <= 2 and len(html) > 3_000_000  # the library once (its banner), inline
    assert not re.search(r"<script[^>]+src=[\"']https?://[^\"']*plot", html)  # no plotly.js from a CDN


@pytest.mark.browser
def test_html_export_renders_its_figures_without_network(tmp_path):
    """Open the export in headless Chromium with every network request refused: the figures draw."""
    from jupyterlab_harness import chromium

    path = tmp_path / "export.html"
    path.write_text(OfflineHTMLExporter().from_notebook_node(_notebook(2))[0])
    refused = []
    with chromium() as browser:  # the browser tests' shared Chromium when it runs; a fresh context either way
        context = browser.new_context()
        try:
            page = context.new_page()
            page.route(re.compile(r"^https?://"), lambda route: (refused.append(route.request.url), route.abort()))
            page.goto(path.as_uri())
            page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)
            assert page.locator(".js-plotly-plot").count() == 2
            assert page.locator(".js-plotly-plot .scatterlayer .trace").count() == 2
        finally:
            context.close()
    assert not [u for u in refused if "plot" in u]  # nothing of plotly was looked for online
