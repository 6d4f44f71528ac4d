"""Is a live Jupyter frontend attached to this kernel? Panels ask before showing live widgets.

With no frontend (papermill, nbval, a plain script) panels render a static figure and never wait
for a browser. Detection: ``DSOPT_FRONTEND=1/0`` overrides; otherwise a kernel started by
jupyter_server for a notebook carries ``JPY_SESSION_NAME`` (papermill/nbclient kernels do not).
``dsopt run`` clears it for the kernels it starts, so a headless run launched from JupyterLab
stays headless.
"""
from __future__ import annotations

import os

#: Static plotly output: ONE output per figure, plotly's JSON mimetype, which JupyterLab renders with the
#: jupyterlab-plotly extension (no CDN, no network). An HTML export with offline figures:
#: ``jupyter nbconvert --to dsopt_html`` (dsopt_widgets.export), or ``dsopt run --html``.
STATIC_RENDERER = "plotly_mimetype"


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
    """Display a plotly figure as static output: its JSON once (no widget state, no plotly.js, no CDN)."""
    fig.show(renderer=STATIC_RENDERER)
