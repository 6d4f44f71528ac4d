"""Is a live Jupyter frontend attached to this kernel? Panels ask before showing live widgets.

With no frontend (papermill, nbval, a plain script) panels render a static figure and never wait
for a browser. Detection: ``DSOPT_FRONTEND=1/0`` overrides; otherwise a kernel started by
jupyter_server for a notebook carries ``JPY_SESSION_NAME`` (papermill/nbclient kernels do not).
``dsopt run`` clears it for the kernels it starts, so a headless run launched from JupyterLab
stays headless.
"""
from __future__ import annotations

import os

#: Static plotly output: the JSON mimetype (JupyterLab renders it) plus a small HTML fallback that
#: loads plotly.js from a CDN instead of embedding 3.5 MB of it in the notebook.
STATIC_RENDERER = "plotly_mimetype+notebook_connected"


def has_frontend() -> bool:
    """True when widgets will be seen by a live frontend (JupyterLab, Notebook, Voila)."""
    override = os.environ.get("DSOPT_FRONTEND")
    if override is not None:
        return override.strip().lower() in ("1", "true", "yes")
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    ip = get_ipython()
    if ip is None or not hasattr(ip, "kernel"):
        return False
    return bool(os.environ.get("JPY_SESSION_NAME"))


def show_static(fig) -> None:
    """Display a plotly figure as static output (no widget state, no embedded plotly.js)."""
    fig.show(renderer=STATIC_RENDERER)


def markdown_table(markdown: str):
    """``IPython.display.Markdown`` of a study's Markdown table, with each ``mean +- sd`` kept on one line.

    Studies format numbers as plain text (``0.912 +- 0.004``); in a narrow column the browser would
    wrap that over three lines. Non-breaking spaces around a ``±`` keep every number whole.
    """
    import re

    from IPython.display import Markdown

    return Markdown(re.sub(r"(\d) \+- (\d)", "\\1\u00a0±\u00a0\\2", markdown))
