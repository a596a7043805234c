"""Colours for classes and errors, and masks turned into RGB arrays (no figures).

Class ``k`` has the same colour in every view (``class_colors``); error maps use their own legend
(``ERROR_LABELS``: true positive, false positive, false negative, wrong class, ignored). Built up in
``notebooks/05_metrics.ipynb``; ``viz/figures.py``, ``viz/playgrounds.py`` and the widgets draw with these.

Shapes: images ``(C, H, W)`` or ``(H, W)``; masks ``(H, W)`` class ids; RGB arrays ``(H, W, 3)`` in [0, 1].
"""
from __future__ import annotations

from typing import Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.colors import ListedColormap, to_rgb
from matplotlib.patches import Patch

from ..validate import as_numpy

# Okabe-Ito colours (readable with colour blindness), class 0 dark; more classes take tab20.
PALETTE = ("#262626", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
IGNORE_COLOR = "#BDBDBD"
ERROR_LABELS = ("correct / not shown", "true positive", "false positive", "false negative",
                "wrong class", "ignored")
ERROR_COLORS = ("#000000", "#2CA02C", "#D62728", "#1F77B4", "#FFD92F", IGNORE_COLOR)
TP, FP, FN, CONFUSED, IGNORED = 1, 2, 3, 4, 5


def class_colors(num_classes: int) -> np.ndarray:
    """RGB colour of each class, the same in every view; ``(K, 3)`` floats in ``[0, 1]``."""
    extra = [matplotlib.colormaps["tab20"](i % 20)[:3] for i in range(max(0, num_classes - len(PALETTE)))]
    return np.array([to_rgb(c) for c in PALETTE[:num_classes]] + extra).reshape(num_classes, 3)


def class_colormap(num_classes: int) -> ListedColormap:
    """A ``ListedColormap`` of ``class_colors`` for ``imshow(mask, cmap=..., vmin=0, vmax=K-1)``."""
    return ListedColormap(class_colors(num_classes), name=f"classes{num_classes}")


def to_display_image(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """An image ready for ``imshow``: channels last, each image stretched to ``[0, 1]``.

    Dim microscopy (mean 4-21 of 255) needs the stretch to be visible at all.

    Shape:
        - Input: ``(C, H, W)`` with ``C`` in 1 or 3, ``(H, W)``, or ``(H, W, 3)``
        - Output: ``(H, W, 3)`` float in ``[0, 1]``
    """
    x = as_numpy(image).astype(np.float64)
    if x.ndim == 3 and x.shape[0] in (1, 3) and x.shape[-1] not in (1, 3):
        x = np.moveaxis(x, 0, -1)  # (H, W, C)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[-1] not in (1, 3):
        raise ValueError(f"image must be (C, H, W) with C in (1, 3), (H, W) or (H, W, 3); got {x.shape}")
    lo, hi = float(x.min()), float(x.max())
    x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x  # (H, W, 3)


def colorize_mask(mask: np.ndarray | torch.Tensor, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """Class ids to colours; ``ignore_index`` pixels light grey.

    Shape:
        - Input: ``(H, W)``; Output: ``(H, W, 3)`` float in ``[0, 1]``
    """
    mask = as_numpy(mask).astype(np.int64)
    ignored = mask == ignore_index if ignore_index is not None else np.zeros(mask.shape, bool)
    bad = (~ignored) & ((mask < 0) | (mask >= num_classes))
    if bad.any():
        raise ValueError(f"mask has class id {int(mask[bad][0])} but num_classes={num_classes}; pass ignore_index for void labels")
    rgb = class_colors(num_classes)[np.where(ignored, 0, mask)]  # (H, W, 3)
    rgb[ignored] = to_rgb(IGNORE_COLOR)
    return rgb


def overlay_mask(
    image: np.ndarray | torch.Tensor,
    mask: np.ndarray | torch.Tensor,
    num_classes: int,
    alpha: float = 0.5,
    classes: Sequence[int] | None = None,
) -> np.ndarray:
    """Blend class colours into the image where the mask holds one of ``classes``.

    ``classes`` defaults to every class but 0 (the background is left as it is).

    Shape:
        - Output: ``(H, W, 3)`` float in ``[0, 1]``
    """
    base = to_display_image(image)
    mask = as_numpy(mask).astype(np.int64)
    classes = range(1, num_classes) if classes is None else classes
    shown = np.isin(mask, list(classes))[..., None]  # (H, W, 1)
    colours = class_colors(num_classes)[np.clip(mask, 0, num_classes - 1)]  # (H, W, 3)
    return np.where(shown, (1 - alpha) * base + alpha * colours, base)


def error_codes(
    pred: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    classes: Sequence[int],
    ignore_index: int | None = None,
) -> np.ndarray:
    """Label each pixel TP / FP / FN for the chosen classes (codes index ``ERROR_LABELS``).

    With ``S = classes``: TP where the true class is in ``S`` and predicted right; FN where it is
    in ``S`` and the prediction is outside ``S``; FP where a class of ``S`` is predicted on a
    pixel of another class outside ``S``; ``CONFUSED`` where true and predicted are different
    classes both in ``S`` (an FN of one and an FP of the other); 0 elsewhere; ``IGNORED`` on
    ``ignore_index``. For one class ``k`` the TP/FP/FN counts are the confusion-matrix entries.

    Shape:
        - ``pred``, ``target``: ``(H, W)`` (or ``(N, H, W)``); Output: same shape, int64
    """
    pred, target = as_numpy(pred).astype(np.int64), as_numpy(target).astype(np.int64)
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} must have the same shape")
    chosen = np.array(list(classes), dtype=np.int64)
    true_in, pred_in = np.isin(target, chosen), np.isin(pred, chosen)
    codes = np.zeros(target.shape, dtype=np.int64)
    codes[true_in & (pred == target)] = TP
    codes[true_in & ~pred_in] = FN
    codes[~true_in & pred_in] = FP
    codes[true_in & pred_in & (pred != target)] = CONFUSED
    if ignore_index is not None:
        codes[target == ignore_index] = IGNORED
    return codes


def error_overlay(
    image: np.ndarray | torch.Tensor,
    pred: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    classes: Sequence[int],
    alpha: float = 0.8,
    ignore_index: int | None = None,
) -> np.ndarray:
    """The image, grey and dimmed, with TP / FP / FN pixels of ``classes`` in ``ERROR_COLORS``.

    Shape:
        - Output: ``(H, W, 3)`` float in ``[0, 1]``
    """
    grey = 0.6 * to_display_image(image).mean(axis=-1, keepdims=True)  # (H, W, 1): colours stand out
    base = np.repeat(grey, 3, axis=-1)  # (H, W, 3)
    codes = error_codes(pred, target, classes, ignore_index)
    colours = np.array([to_rgb(c) for c in ERROR_COLORS])[codes]  # (H, W, 3)
    return np.where((codes > 0)[..., None], (1 - alpha) * base + alpha * colours, base)


def class_names_or_default(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    """``class_names`` as a list, or ``["class 0", ...]``; ``ValueError`` when the count is not ``K``."""
    names = list(class_names) if class_names is not None else [f"class {k}" for k in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"class_names has {len(names)} names but num_classes={num_classes}")
    return names


def class_legend(num_classes: int, class_names: Sequence[str] | None = None) -> list[Patch]:
    """Legend handles, one coloured patch per class: ``fig.legend(handles=class_legend(K))``."""
    return [Patch(color=c, label=n) for c, n in zip(class_colors(num_classes), class_names_or_default(class_names, num_classes))]


def error_legend(with_ignored: bool = False) -> list[Patch]:
    """Legend handles for ``error_overlay`` (TP, FP, FN, wrong class)."""
    codes = [TP, FP, FN, CONFUSED] + ([IGNORED] if with_ignored else [])
    return [Patch(color=ERROR_COLORS[c], label=ERROR_LABELS[c]) for c in codes]
