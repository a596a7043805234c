"""The base of every live view: the widget tree, a figure, a text summary and the static fallback."""
from __future__ import annotations

import base64
import html
from typing import Sequence

import ipywidgets as W
import numpy as np
import torch
import torch.nn as nn
from IPython.display import DisplayHandle, display
from matplotlib.figure import Figure

from ...train import infer_num_classes
from ...viz import figure_to_png

WIDE = {"description_width": "initial"}


def has_kernel() -> bool:
    """True inside a Jupyter kernel (``ipykernel``), where widgets can reach a front end."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def resolve_num_classes(num_classes: int | None, class_names: Sequence[str] | None, model: nn.Module | None,
                 *masks: np.ndarray | torch.Tensor, ignore_index: int | None = None) -> int:
    """``K`` from the argument, the names, the model's config, or else the largest id in the masks
    (not counting ``ignore_index``)."""
    if num_classes:
        return num_classes
    if class_names:
        return len(class_names)
    if model is not None:
        return infer_num_classes(model)
    arrays = [np.asarray(m.cpu() if isinstance(m, torch.Tensor) else m) for m in masks]
    labelled = [a[a != ignore_index] if ignore_index is not None else a.ravel() for a in arrays]
    return int(max(int(a.max()) if a.size else 0 for a in labelled)) + 1


class LiveView:
    """Base class: ``widget`` (the ipywidgets tree), ``figure()``, ``summary()`` and the fallback.

    Subclasses build their controls, call ``self._layout(controls)`` and implement ``figure``,
    ``summary`` and ``_compute`` (which fills the ``current_*`` attributes).
    """

    css_class = "unet-view"

    def __init__(self, dpi: int = 72) -> None:
        self.dpi = dpi
        self.error: str | None = None
        self._image = W.Image(format="png")
        self._readout = W.HTML()
        self._readout.add_class("unet-readout")
        self._handles: list[DisplayHandle] = []

    def _layout(self, controls: Sequence[W.Widget]) -> None:
        self.widget = W.VBox([*controls, self._readout, self._image])
        self.widget.add_class(self.css_class)
        self.refresh()

    def _compute(self) -> None:
        """Recompute the ``current_*`` values from the controls."""

    def figure(self) -> Figure:
        raise NotImplementedError

    def summary(self) -> str:
        raise NotImplementedError

    def readout_html(self) -> str:
        return f"<pre style='margin:0'>{html.escape(self.summary())}</pre>"

    def text(self) -> str:
        """The current values, or the error that stopped the last update."""
        return f"error: {self.error}" if self.error else self.summary()

    def refresh(self, *_: object) -> None:
        """Recompute and redraw (every control calls this when it changes)."""
        try:
            self._compute()
            png = figure_to_png(self.figure(), self.dpi)
            self.error = None
        except ValueError as exc:  # e.g. a kernel too large for the image: say so, keep going
            self.error = str(exc)
            self._readout.value = f"<b style='color:#D62728'>{html.escape(self.error)}</b>"
            return
        self._image.value = png
        self._readout.value = self.readout_html()  # after the figure: the numbers never run ahead of it

    def _watch(self, *controls: W.Widget) -> None:
        for control in controls:
            control.observe(self.refresh, names="value")

    # -- display -----------------------------------------------------------------------------
    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, object]:
        live = self.widget._repr_mimebundle_  # None once the widget is closed
        bundle = dict(live() if callable(live) else {})  # text/plain + widget view
        bundle["image/png"] = base64.b64encode(self._image.value).decode("ascii")
        bundle["text/plain"] = self.text()
        return bundle

    def _ipython_display_(self) -> None:
        # One output with all three representations, with an id so that it can be updated.
        handle = display(self._repr_mimebundle_(), raw=True, display_id=True)
        if handle is not None:  # None outside IPython, where display() just prints
            self._handles.append(handle)

    def _update_static(self) -> None:
        """Replace the stored output (and its PNG) of every place this view is displayed."""
        for handle in self._handles:
            handle.update(self._repr_mimebundle_(), raw=True)

    def show(self) -> Figure | None:
        """Display the view in Jupyter; outside a kernel print the values and return the figure."""
        if has_kernel():
            self._ipython_display_()
            return None
        print(self.text())
        return None if self.error else self.figure()
