"""Segmentation metrics from a confusion matrix accumulated over a whole dataset.

Built step by step in ``notebooks/05_metrics.ipynb``.

Why accumulate counts: averaging per-batch IoUs weights a batch with 10 pixels of a class the same
as one with 10,000, so the result changes with the batch size. Summing intersections and unions
over the dataset first (what ``ConfusionMatrix`` does) gives one answer for any batching.

Why NaN: a class absent from both prediction and target has IoU 0/0. Counting it as 0 (or 1)
would move mIoU for no reason, so it is NaN and left out of every mean. Every other 0/0 (for
example precision of a class never predicted) is NaN too.

Shapes: ``N`` batch, ``K`` classes, ``H, W`` height and width (see ``losses.py``).
"""
from __future__ import annotations

import math

import torch

from .validate import require_class_ids, require_positive_int, require_same_spatial, require_tensor


def nan_divide(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` as float64, NaN where ``den == 0`` (the metrics' one rule for 0/0).

    >>> nan_divide(torch.tensor([1, 0]), torch.tensor([2, 0]))
    tensor([0.5000,    nan], dtype=torch.float64)
    """
    num, den = num.double(), den.double()
    return torch.where(den > 0, num / den.clamp(min=1), torch.full_like(num, math.nan))


def to_class_ids(scores_or_ids: torch.Tensor, num_classes: int, name: str = "preds") -> torch.Tensor:
    """Turn model output into class ids.

    Accepts class ids ``(N, H, W)`` (integer), logits or probabilities ``(N, K, H, W)``
    (argmax over ``K``), or binary logits ``(N, 1, H, W)`` when ``num_classes == 2``
    (foreground where the logit is > 0).

    Shape:
        - Output: ``(N, H, W)`` int64

    Raises:
        ValueError: scores holding NaN (a diverged model): argmax would turn them into some class
            and give the model a finite score it has not earned.
    """
    require_tensor(scores_or_ids, name)
    x = scores_or_ids
    if x.is_floating_point():
        if x.ndim != 4:
            raise ValueError(
                f"{name} is float, so it should be scores of shape (N, K, H, W); got {tuple(x.shape)}. "
                "Hint: pass class ids as an integer tensor (N, H, W)"
            )
        if x.isnan().any():
            raise ValueError(
                f"{name} holds {int(x.isnan().sum()):,} NaN scores, so they have no class: the model diverged "
                "(lower the learning rate) or its input holds NaN"
            )
        if x.shape[1] == 1 and num_classes == 2:
            return (x[:, 0] > 0).long()  # binary logits
        if x.shape[1] != num_classes:
            raise ValueError(f"{name} has {x.shape[1]} class channels but num_classes={num_classes}")
        return x.max(dim=1).indices  # (N, H, W); = argmax(dim=1), first index on ties
    if x.ndim != 3:
        raise ValueError(f"{name} as class ids must have shape (N, H, W); got {tuple(x.shape)}")
    return require_class_ids(x, num_classes, name=name)


class ConfusionMatrix:
    """Accumulates a ``K x K`` confusion matrix (rows: true class, columns: predicted class).

    Args:
        num_classes: number of classes ``K``.
        ignore_index: target value whose pixels are not counted (``None``: all pixels count).

    Examples::

        >>> cm = ConfusionMatrix(num_classes=3)
        >>> cm.update(torch.tensor([[[0, 1], [1, 1]]]), torch.tensor([[[0, 1], [0, 1]]]))
        >>> cm.iou()  # class 2 is absent from both: NaN
        tensor([0.5000, 0.6667,    nan], dtype=torch.float64)
        >>> round(cm.miou(), 4)
        0.5833
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        self.num_classes = require_positive_int(num_classes, "num_classes")
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def reset(self) -> None:
        """Forget everything counted so far."""
        self.matrix.zero_()

    @torch.no_grad()
    def update(self, logits_or_preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch.

        Shape:
            - ``logits_or_preds``: ``(N, K, H, W)`` scores, ``(N, 1, H, W)`` binary logits, or
              ``(N, H, W)`` class ids
            - ``target``: ``(N, H, W)`` class ids (or ``ignore_index``)
        """
        k = self.num_classes
        preds = to_class_ids(logits_or_preds, k)
        require_tensor(target, "target")
        require_same_spatial(preds.unsqueeze(1), target, "preds", "target")
        target = require_class_ids(target, k, self.ignore_index)
        preds, target = preds.reshape(-1), target.reshape(-1)
        if self.ignore_index is not None:
            keep = target != self.ignore_index
            preds, target = preds[keep], target[keep]
        counts = torch.bincount(target * k + preds, minlength=k * k)  # (K * K,)
        self.matrix += counts.reshape(k, k).cpu()

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add the counts of ``other`` (e.g. from another process) to this one; returns ``self``."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes}-class counts into {self.num_classes}-class counts")
        self.matrix += other.matrix
        return self

    # -- counts --------------------------------------------------------------------------------
    @property
    def true_positives(self) -> torch.Tensor:
        """``(K,)`` pixels of class k predicted as k."""
        return self.matrix.diagonal()

    @property
    def support(self) -> torch.Tensor:
        """``(K,)`` pixels whose true class is k."""
        return self.matrix.sum(dim=1)

    @property
    def predicted(self) -> torch.Tensor:
        """``(K,)`` pixels predicted as class k."""
        return self.matrix.sum(dim=0)

    # -- metrics (float64; NaN where undefined) ------------------------------------------------
    def _undefined_ignored(self, values: torch.Tensor) -> torch.Tensor:
        """NaN for the class that ``ignore_index`` names, if it is one of the ``K`` classes: its true
        pixels are not counted, so any score of it would only count its false positives."""
        if self.ignore_index is not None and 0 <= self.ignore_index < self.num_classes:
            values[self.ignore_index] = math.nan
        return values

    def iou(self) -> torch.Tensor:
        """``(K,)`` IoU = TP / (TP + FP + FN); NaN for classes absent from prediction and target."""
        tp = self.true_positives
        return self._undefined_ignored(nan_divide(tp, self.support + self.predicted - tp))

    def dice(self) -> torch.Tensor:
        """``(K,)`` Dice = 2 TP / (2 TP + FP + FN) = 2 IoU / (1 + IoU); NaN like ``iou``."""
        return self._undefined_ignored(nan_divide(2 * self.true_positives, self.support + self.predicted))

    def precision(self) -> torch.Tensor:
        """``(K,)`` TP / predicted; NaN for classes never predicted."""
        return self._undefined_ignored(nan_divide(self.true_positives, self.predicted))

    def recall(self) -> torch.Tensor:
        """``(K,)`` TP / support; NaN for classes absent from the target."""
        return self._undefined_ignored(nan_divide(self.true_positives, self.support))

    def pixel_accuracy(self) -> float:
        """Fraction of counted pixels predicted correctly (NaN before any update)."""
        return float(nan_divide(self.true_positives.sum(), self.matrix.sum()))

    def miou(self) -> float:
        """Mean IoU over classes where it is defined (NaN if none is)."""
        return _nanmean(self.iou())

    def mean_dice(self) -> float:
        """Mean Dice over classes where it is defined."""
        return _nanmean(self.dice())

    def compute(self) -> dict[str, object]:
        """All metrics at once: per-class lists (NaN where undefined) and the means."""
        return {
            "iou": self.iou().tolist(),
            "dice": self.dice().tolist(),
            "precision": self.precision().tolist(),
            "recall": self.recall().tolist(),
            "miou": self.miou(),
            "mean_dice": self.mean_dice(),
            "pixel_accuracy": self.pixel_accuracy(),
        }

    def __repr__(self) -> str:
        return f"ConfusionMatrix(num_classes={self.num_classes}, pixels={int(self.matrix.sum())}, miou={self.miou():.4f})"


def _nanmean(values: torch.Tensor) -> float:
    defined = values[~values.isnan()]
    return float(defined.mean()) if defined.numel() else math.nan


def confusion_matrix(
    logits_or_preds: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """``(K, K)`` int64 confusion matrix of one batch (rows: true, columns: predicted)."""
    cm = ConfusionMatrix(num_classes, ignore_index)
    cm.update(logits_or_preds, target)
    return cm.matrix


def iou_per_class(
    logits: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """Per-class IoU of one batch, NaN for classes absent from prediction and target.

    For a dataset, accumulate a ``ConfusionMatrix`` instead of averaging these per batch.

    Shape:
        - ``logits``: ``(N, K, H, W)`` (or class ids ``(N, H, W)``); ``target``: ``(N, H, W)``
        - Output: ``(K,)`` float64
    """
    cm = ConfusionMatrix(num_classes, ignore_index)
    cm.update(logits, target)
    return cm.iou()
