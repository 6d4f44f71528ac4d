"""dsopt_widgets: ipywidgets + plotly panels on live dsopt runs.

Panels read dsopt (Recorder by cursor, Controls for changes); dsopt never imports this package.
With no frontend (papermill, nbval) every panel renders a static figure and never blocks.
"""
from dsopt_widgets.attention_pruning_panel import PruningPanel
from dsopt_widgets.augmentation_panel import AugmentationPanel
from dsopt_widgets.background import BackgroundJob, run_in_background
from dsopt_widgets.dynamic_weighting_panel import WeightingPanel
from dsopt_widgets.frontend import has_frontend, markdown_table, show_static
from dsopt_widgets.live import RecorderFeed, poll
from dsopt_widgets.lr_restarts_panel import LRPanel
from dsopt_widgets.mixed_precision_panel import MixedPrecisionPanel
from dsopt_widgets.verdict_actions import VerdictActions

__all__ = ["AugmentationPanel", "BackgroundJob", "LRPanel", "MixedPrecisionPanel", "PruningPanel", "RecorderFeed",
           "VerdictActions", "WeightingPanel", "has_frontend", "markdown_table", "poll", "run_in_background",
           "show_static"]
