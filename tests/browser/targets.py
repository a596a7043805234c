"""Which notebook and which elements the browser test drives.

Every live view is tested in the lesson that hosts it. The selectors are the CSS classes every
view puts on its root (``LiveView.css_class``); the notebook paths are relative to the repository.
``tests/test_browser.py`` runs each notebook once per session, in the order the tests need them,
so ``OTHER_VIEWS`` starts with the view in the dashboard's notebook (already run) and then takes
one notebook after the other.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ViewTarget:
    notebook: str  # path relative to the repository root
    view: str  # CSS selector of the view's root widget
    readout: str = ".unet-readout"  # the text the view writes its numbers into
    image: str = ".widget-image"  # the rendered figure (an <img>)


# Lesson 5 shows a MetricPlayground on synthetic shapes, starting from a perfect prediction.
METRIC_PLAYGROUND = ViewTarget(notebook="notebooks/05_metrics.ipynb", view=".unet-metric-playground")
# Lesson 6 displays a TrainingDashboard before fit(..., callbacks=[dashboard]).
TRAINING_DASHBOARD = ViewTarget(notebook="notebooks/06_training.ipynb", view=".unet-dashboard")
# Further views that must render a figure and a readout, each in the lesson that hosts it.
OTHER_VIEWS = (
    ViewTarget(notebook="notebooks/06_training.ipynb", view=".unet-mask-explorer"),
    ViewTarget(notebook="notebooks/01_segmentation_tasks.ipynb", view=".unet-task-picker"),
    ViewTarget(notebook="notebooks/02_building_blocks.ipynb", view=".unet-upsampling-explorer"),
    ViewTarget(notebook="notebooks/04_losses.ipynb", view=".unet-loss-playground"),
    ViewTarget(notebook="notebooks/08_large_images.ipynb", view=".unet-tiling-explorer"),
)

METRIC_SLIDER = "shift right"  # the slider of the metric playground the test drags
METRIC_CLASS = "circle"  # the row of the metric table whose IoU must change
