"""HTML export of an executed notebook whose figures render with no network access.

Executed notebooks store each plotly figure once, as plotly's JSON mimetype: JupyterLab renders it with
the jupyterlab-plotly extension (shipped with plotly, no CDN). nbconvert's plain HTML export does not know
that mimetype, so :class:`OfflineHTMLExporter` (``jupyter nbconvert --to dsopt_html NB.ipynb``, also in
JupyterLab's "Save and Export Notebook As" menu, and ``dsopt run --html``) turns every figure into HTML
drawn by plotly.js, inlined ONCE per page from plotly's own package (no CDN, ~4.7 MB).
"""
from __future__ import annotations

import copy

from nbconvert.exporters import HTMLExporter

PLOTLY_MIME = "application/vnd.plotly.v1+json"


def figure_html(spec: dict, *, include_plotlyjs: bool) -> str:
    """One figure as an HTML fragment (``include_plotlyjs``: inline plotly.js before it)."""
    import plotly.io as pio

    fig = {k: spec[k] for k in ("data", "layout", "frames") if k in spec}
    return pio.to_html(fig, include_plotlyjs=include_plotlyjs, full_html=False, config=spec.get("config"),
                       validate=False)


def with_offline_figures(nb):
    """A copy of ``nb`` where every plotly output also carries HTML (plotly.js inlined in the first one)."""
    nb = copy.deepcopy(nb)
    first = True
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if PLOTLY_MIME in data:
                data["text/html"] = figure_html(data[PLOTLY_MIME], include_plotlyjs=first)
                data.pop(PLOTLY_MIME)  # nbconvert would otherwise warn that it cannot show it
                first = False
    return nb


class OfflineHTMLExporter(HTMLExporter):
    """HTML with every plotly figure drawn offline (plotly.js inlined once)."""

    export_from_notebook = "HTML, figures offline (dsopt)"

    def from_notebook_node(self, nb, resources=None, **kw):
        return super().from_notebook_node(with_offline_figures(nb), resources, **kw)
