"""Live views for the lessons: ipywidgets controls wired to plain functions.

The only code of ``unet_helpers`` that imports ``ipywidgets`` (``pip install unet_helpers[widgets]``);
``import unet_helpers`` never imports it. The views live in ``base.py`` (``LiveView``),
``training.py``, ``playgrounds.py`` and ``tasks.py``. Every number comes from ``views/playground.py``,
``views/demos.py``, ``views/tasks.py`` or the library, every picture from ``viz/``; the classes here
only connect controls to those functions and keep the results in ``current_*`` attributes.

Static fallback. A view displays as one output carrying three representations:

- ``application/vnd.jupyter.widget-view+json``: the live widget (JupyterLab, Notebook 7, VS Code);
- ``image/png``: the current figure, what a page without a widget manager shows (GitHub,
  nbconvert/nbviewer without saved widget state, a Jupyter without ipywidgets);
- ``text/plain``: the current values, what a terminal IPython prints.

Front ends show the richest one they can render. ``TrainingDashboard`` also replaces the stored
PNG after each epoch, so a saved notebook shows the last epoch. Outside a kernel (plain Python),
``view.show()`` prints the values and returns the figure (``view.show().savefig("view.png")``).

Used in notebooks 01 (``TaskPicker``), 02 (``UpsamplingExplorer``), 04 (``LossPlayground``), 05 (``MetricPlayground``),
06 (``TrainingDashboard``, ``MaskExplorer``) and 08 (``TilingExplorer``).
"""
from .base import LiveView, has_kernel
from .playgrounds import LossPlayground, MetricPlayground, TilingExplorer, UpsamplingExplorer
from .tasks import TaskPicker
from .training import MaskExplorer, TrainingDashboard

__all__ = [
    "LiveView",
    "LossPlayground",
    "MaskExplorer",
    "MetricPlayground",
    "TaskPicker",
    "TilingExplorer",
    "TrainingDashboard",
    "UpsamplingExplorer",
    "has_kernel",
]
