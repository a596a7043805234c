"""Views of a model at work: the training dashboard and the mask explorer (notebook 06)."""
from __future__ import annotations

from typing import Sequence

import ipywidgets as W
import numpy as np
import torch
import torch.nn as nn
from matplotlib.figure import Figure

from .. import playground as pg
from ..data import stack_dataset
from ..inference import predict
from ..train import History, infer_num_classes
from ..viz import _names, plot_dashboard, plot_mask_row, plot_message
from .base import WIDE, LiveView, _num_classes


class TrainingDashboard(LiveView):
    """Live loss curves, per-class IoU bars and predictions on fixed images, redrawn every epoch.

    Pass it to ``fit(..., callbacks=[dashboard])`` after displaying it once (``dashboard`` as the
    last line of a cell). It predicts the first ``max_images`` images of the preview batch with
    ``inference.predict`` (eval mode; the model's mode is restored).

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
        self.max_images = max_images
        self.history: History = []
        self.preview: tuple[torch.Tensor, torch.Tensor] | None = None
        self.predictions: torch.Tensor | None = None
        self._layout([])

    def __call__(self, history: History, model: nn.Module, preview_batch: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        self.history = list(history)
        self.num_classes = self.num_classes or infer_num_classes(model)
        if preview_batch is not None:
            images, targets = preview_batch[0][: self.max_images], preview_batch[1][: self.max_images]
            self.preview = (images, targets)
            self.predictions = predict(model, images)  # (n, H, W)
        self.refresh()
        self._update_static()

    def figure(self) -> Figure:
        if not self.history:
            return plot_message("waiting for the first epoch: fit(..., callbacks=[dashboard])")
        images, targets = self.preview if self.preview is not None else (None, None)
        return plot_dashboard(self.history, images, targets, self.predictions, self.num_classes, self.class_names,
                              self.ignore_index)

    def summary(self) -> str:
        if not self.history:
            return "training dashboard: waiting for the first epoch"
        last = self.history[-1]
        parts = [f"epoch {last['epoch']}", f"train loss {last['train_loss']:.4f}"]
        if last.get("val_loss") is not None:
            parts.append(f"val loss {last['val_loss']:.4f}")
        if last.get("miou") is not None:
            parts.append(f"val mIoU {last['miou']:.3f}")
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
        self.num_classes = _num_classes(num_classes, class_names, model, self.preds, targets, ignore_index=ignore_index)
        self.class_names = _names(class_names, self.num_classes)
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
