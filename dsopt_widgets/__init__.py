"""dsopt_widgets: ipywidgets + plotly panels on live dsopt runs.

Panels read dsopt (Recorder by cursor, Controls for changes); dsopt never imports this package.
With no frontend (papermill, nbval) every panel renders a static figure and never blocks.
"""
from .frontend import has_frontend, show_static
from .live import RecorderFeed, poll
from .lr_panel import LRPanel
from .pruning_panel import PruningPanel
from .weighting_panel import WeightingPanel

__all__ = ["LRPanel", "PruningPanel", "RecorderFeed", "WeightingPanel", "has_frontend", "poll", "show_static"]
