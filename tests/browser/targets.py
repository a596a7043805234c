"""Which notebook and which elements the browser test drives.

Until the lessons exist, both views live in ``tests/browser/demo_views.ipynb``. When
``notebooks/05_metrics.ipynb`` shows ``MetricPlayground`` and ``notebooks/06_training.ipynb``
shows ``TrainingDashboard``, change the two ``notebook=`` paths below; the selectors are the CSS
classes every view puts on its root (``LiveView.css_class``), so they stay the same.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ViewTarget:
    notebook: str  # path relative to the repository root
    view: str  # CSS selector of the view's root widget
    readout: str = ".unet-readout"  # the text the view writes its numbers into
    image: str = ".widget-image"  # the rendered figure (an <img>)


DEMO = "tests/browser/demo_views.ipynb"
METRIC_PLAYGROUND = ViewTarget(notebook=DEMO, view=".unet-metric-playground")
TRAINING_DASHBOARD = ViewTarget(notebook=DEMO, view=".unet-dashboard")
# Further views that must render an image (lessons 03, 04, 06 and 08 will host them).
OTHER_VIEWS = tuple(ViewTarget(notebook=DEMO, view=v) for v in (
    ".unet-loss-playground", ".unet-upsampling-explorer", ".unet-mask-explorer", ".unet-tiling-explorer"))

METRIC_SLIDER = "shift right"  # the slider of the metric playground the test drags
METRIC_CLASS = "circle"  # the row of the metric table whose IoU must change
