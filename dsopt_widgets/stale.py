"""What a live control looks like once its kernel is gone: greyed out, unclickable, saying why.

After Kernel > Restart (or a kernel that died) JupyterLab keeps showing the widgets the old kernel drew: a
progress line frozen at "18 / 24 ... the kernel stays free", buttons whose clicks fail with "Cannot send" in the
browser console (issue 20 item 5). ipywidgets marks every view whose kernel connection is gone with the CSS
class ``jupyter-widgets-disconnected`` (it shows only a small broken-chain icon). :func:`live_box` wraps a panel
or a background job's progress in a box with the class ``dsopt-live`` and a stylesheet for the pair: its
content is dimmed and ignores the pointer, and one line above it says what happened and what to do (instead of
ipywidgets' icon on every widget inside). The stylesheet travels in a hidden HTML widget inside the box, so it
lasts as long as the stale view does.
"""
from __future__ import annotations

import ipywidgets as W

#: The class a live box carries (ipywidgets adds ``jupyter-widgets-disconnected`` beside it when stale).
LIVE_CLASS = "dsopt-live"
#: What the stale box says, above its dimmed content.
STALE_TEXT = ("The kernel behind these controls was restarted or shut down: they no longer reach Python "
              "(a background measurement stopped with it; its finished runs stay cached). Run the cell again.")

STYLE = f"""<style>
.{LIVE_CLASS}.jupyter-widgets-disconnected > * {{ opacity: 0.35; filter: grayscale(1); pointer-events: none; }}
.{LIVE_CLASS}.jupyter-widgets-disconnected .jupyter-widgets-disconnected::before {{ content: none; }}
.{LIVE_CLASS}.jupyter-widgets-disconnected::before {{
  content: "{STALE_TEXT}"; display: block; font: 600 13px/1.4 var(--jp-ui-font-family, sans-serif);
  color: #b00020; padding: 4px 0; white-space: normal; }}
</style>"""


def live_box(*children: W.Widget, layout: W.Layout | None = None) -> W.VBox:
    """A VBox of ``children`` that greys out and says why once its kernel is gone (see the module doc)."""
    box = W.VBox([W.HTML(STYLE, layout=W.Layout(display="none")), *children],
                 layout=layout or W.Layout(width="100%"))
    box.add_class(LIVE_CLASS)
    return box
