"""Views of a model at work: the training dashboard and the mask explorer (notebook 06)."""
from __future__ import annotations

import math
from typing import Sequence

import ipywidgets as W
import numpy as np
import torch
import torch.nn as nn
from matplotlib.figure import Figure

from ...data import stack_dataset
from ...inference import predict
from ...records import History
from ...train import infer_num_classes
from ...viz import class_names_or_default, plot_dashboard, plot_mask_row, plot_message
from .. import playground as pg
from .base import WIDE, LiveView, resolve_num_classes


class TrainingDashboard(LiveView):
    """Live loss curves, per-class IoU bars and predictions on fixed images, redrawn every epoch.

    Pass it to ``fit(..., callbacks=[dashboard])`` after displaying it once (``dashboard`` as the
    last line of a cell). Its ``preview_images`` attribute asks ``fit`` to keep that many validation
    images with the predictions ``evaluate`` already made (``history[-1].val.preview``), so the
    dashboard never runs the model itself.

    Args:
        class_names: one name per class (default "class k").
        num_classes: ``K`` (default: from the model's config at the first epoch).
        max_images: preview images drawn.
        ignore_index: target value of unlabelled pixels (drawn grey, not an error).
        dpi: resolution of the rendered figure.
    """

    css_class = "unet-dashboard"

    def __init__(self, class_names: Sequence[str] | None = None, num_classes: int | None = None,
                 max_images: int = 3, ignore_index: int | None = None, dpi: int = 72) -> None:
        super().__init__(dpi)
        self.ignore_index = ignore_index
        self.class_names = list(class_names) if class_names is not None else None
        self.num_classes = num_classes or (len(class_names) if class_names is not None else None)
        self.preview_images = max_images
        self.history: History = []
        self._layout([])

    def __call__(self, history: History, model: nn.Module) -> None:
        self.history = list(history)
        self.num_classes = self.num_classes or infer_num_classes(model)
        self.refresh()
        self._update_static()

    def figure(self) -> Figure:
        if not self.history:
            return plot_message("waiting for the first epoch: fit(..., callbacks=[dashboard])")
        return plot_dashboard(self.history, self.num_classes, self.class_names, self.ignore_index, self.preview_images)

    def summary(self) -> str:
        if not self.history:
            return "training dashboard: waiting for the first epoch"
        last = self.history[-1]
        parts = [f"epoch {last.epoch}", f"train loss {last.train.loss:.4f}"]
        if last.val is not None and math.isfinite(last.val.loss):
            parts.append(f"val loss {last.val.loss:.4f}")
        if math.isfinite(last.miou):
            parts.append(f"val mIoU {last.miou:.3f}")
        return " | ".join(parts)


class MaskExplorer(LiveView):
    """Browse images with their true and predicted masks and TP/FP/FN errors, worst first.

    Args:
        images: ``(N, C, H, W)``; targets: ``(N, H, W)``.
        model: predicts the masks (``inference.predict``) unless ``preds`` ``(N, H, W)`` is given.
        num_classes: ``K`` (default: from ``model`` or ``class_names``).
        class_names: one name per class.
        ignore_index: target value that is not scored.
    """

    css_class = "unet-mask-explorer"

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, model: nn.Module | None = None,
                 preds: torch.Tensor | None = None, num_classes: int | None = None,
                 class_names: Sequence[str] | None = None, ignore_index: int | None = None, dpi: int = 72) -> None:
        super().__init__(dpi)
        if preds is None and model is None:
            raise ValueError("MaskExplorer needs a model or preds (N, H, W); got neither")
        self.images, self.targets, self.ignore_index = images, targets, ignore_index
        self.preds = predict(model, images) if preds is None else preds
        self.num_classes = resolve_num_classes(num_classes, class_names, model, self.preds, targets, ignore_index=ignore_index)
        self.class_names = class_names_or_default(class_names, self.num_classes)
        self.scores = pg.per_image_iou(self.preds, targets, self.num_classes, ignore_index)  # (N, K)
        options = [("worst mIoU first", "miou"), ("dataset order", "index")]
        options += [(f"worst {name} IoU first", k) for k, name in enumerate(self.class_names)]
        self.sort = W.Dropdown(options=options, value="miou", description="order", style=WIDE)
        self.rank = W.IntSlider(0, 0, max(len(images) - 1, 0), description="rank", style=WIDE)
        self.class_toggles = [W.ToggleButton(value=k > 0, description=name, tooltip="show errors of this class")
                              for k, name in enumerate(self.class_names)]
        self._watch(self.sort, self.rank, *self.class_toggles)
        self._layout([W.HBox([self.sort, self.rank]), W.HBox([W.Label("errors of:"), *self.class_toggles])])

    @classmethod
    def from_dataset(cls, dataset, model: nn.Module, indices: Sequence[int] | None = None, **kwargs) -> "MaskExplorer":
        """Explore (some items of) a dataset of ``(image, mask)`` pairs."""

        return cls(*stack_dataset(dataset, indices), model=model, **kwargs)

    def _compute(self) -> None:
        self.order = pg.image_order(self.scores, self.sort.value)
        self.current_index = self.order[self.rank.value]
        self.current_scores = self.scores[self.current_index]  # (K,) IoU, NaN if undefined
        self.current_classes = [k for k, t in enumerate(self.class_toggles) if t.value]

    def figure(self) -> Figure:
        i = self.current_index
        return plot_mask_row(self.images[i], self.targets[i], self.preds[i], self.num_classes, self.class_names,
                             self.current_classes, f"image {i} (rank {self.rank.value} of {len(self.order)})",
                             self.ignore_index)

    def summary(self) -> str:
        ious = ", ".join(f"{n} {'n/a' if np.isnan(v) else f'{v:.3f}'}" for n, v in zip(self.class_names, self.current_scores))
        return f"image {self.current_index}: IoU {ious}"
