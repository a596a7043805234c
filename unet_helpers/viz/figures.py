"""Pictures of images, masks, errors and training curves; every plot returns a ``Figure``.

Used from ``notebooks/05_metrics.ipynb`` on (masks, overlays, TP/FP/FN error maps), in
``06_training.ipynb`` (history curves, IoU bars, the dashboard) and ``09_real_data.ipynb`` (the
weight map); ``views/widgets/`` wires these to controls. Nothing here calls ``plt.show()``.

Colours and masks as RGB arrays come from ``viz/colors.py``. Figures are made with ``plt.figure``
and closed at once, so they are not drawn twice in a notebook (once by the inline backend and once
as the cell's value) and do not pile up in memory; they still display, save and render to PNG
(``figure_to_png``).

Shapes: images ``(C, H, W)`` or ``(H, W)``; masks ``(H, W)`` class ids; batches add ``N`` in front.
"""
from __future__ import annotations

import io
import math
from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from ..records import EpochRecord
from ..validate import as_numpy
from .colors import (
    class_colors, class_legend, class_names_or_default, colorize_mask, error_legend, error_overlay, to_display_image,
)


def new_figure(width: float, height: float) -> Figure:
    """A figure of explicit size (inches) with constrained layout, not kept by pyplot."""
    import matplotlib.pyplot as plt  # here, so that importing viz does not load a GUI backend

    fig = plt.figure(figsize=(width, height), layout="constrained")
    plt.close(fig)  # pyplot forgets it: no second copy from the inline backend, no leak
    return fig


def figure_to_png(fig: Figure, dpi: int = 80) -> bytes:
    """The figure as PNG bytes (for ``ipywidgets.Image`` and the static fallback)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


def _off(ax, title: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()


def draw_mask_row(
    axes: Sequence,
    image: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    pred: np.ndarray | torch.Tensor | None,
    num_classes: int,
    error_classes: Sequence[int] | None = None,
    ignore_index: int | None = None,
    titles: Sequence[str] = ("image", "true mask", "predicted mask", "errors"),
) -> None:
    """Fill ``axes`` with image | true mask | prediction | error overlay (as many as given)."""
    panels = [to_display_image(image), colorize_mask(target, num_classes, ignore_index)]
    if pred is not None:
        panels.append(colorize_mask(pred, num_classes))
        chosen = range(1, num_classes) if error_classes is None else error_classes
        panels.append(error_overlay(image, pred, target, chosen, ignore_index=ignore_index))
    for ax, panel, title in zip(axes, panels, titles):
        ax.imshow(panel, interpolation="nearest")
        _off(ax, title)


def plot_predictions(
    images: torch.Tensor,
    targets: torch.Tensor,
    preds: torch.Tensor | None,
    num_classes: int,
    class_names: Sequence[str] | None = None,
    errors: bool = True,
    max_rows: int = 4,
    ignore_index: int | None = None,
) -> Figure:
    """One row per image: image, true mask, predicted mask and (``errors``) the error overlay.

    Shape:
        - ``images``: ``(N, C, H, W)``; ``targets``, ``preds``: ``(N, H, W)``
    """
    rows = min(len(images), max_rows)
    cols = 2 if preds is None else (4 if errors else 3)
    fig = new_figure(2.4 * cols, 2.4 * rows + 0.6)
    axes = np.array(fig.subplots(rows, cols, squeeze=False))
    for r in range(rows):
        draw_mask_row(axes[r], images[r], targets[r], None if preds is None else preds[r], num_classes,
                      ignore_index=ignore_index)
    handles = class_legend(num_classes, class_names) + (error_legend() if cols == 4 else [])
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), fontsize=8)
    return fig


def draw_history(ax_loss, ax_metric, history: Sequence[EpochRecord]) -> None:
    """Loss curves (train, validation, and their parts dashed) and validation mIoU / mean Dice per epoch.

    Undefined values (NaN: no validation, no loss function) leave gaps in the curves.
    """
    epochs = [r.epoch for r in history]
    ax_loss.plot(epochs, [r.train.loss for r in history], "o-", color="#1F77B4", label="train")
    val_loss = [math.nan if r.val is None else r.val.loss for r in history]
    if any(math.isfinite(v) for v in val_loss):
        ax_loss.plot(epochs, val_loss, "o-", color="#D62728", label="validation")
    for part, style in zip(sorted({p for r in history for p in r.train.parts}), ("--", ":", "-.")):
        ax_loss.plot(epochs, [r.train.parts.get(part, math.nan) for r in history], style, color="#1F77B4",
                     alpha=0.6, label=f"train {part}")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_loss.legend(fontsize=7)
    for key, colour in (("miou", "#2CA02C"), ("mean_dice", "#9467BD")):
        ax_metric.plot(epochs, [math.nan if r.val is None else getattr(r.val, key) for r in history], "o-",
                       color=colour, label=key)
    ax_metric.set(xlabel="epoch", ylim=(0, 1), title="validation")
    ax_metric.legend(fontsize=7)
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
        if epochs:
            ax.set_xticks(epochs if len(epochs) <= 10 else ax.get_xticks())


def draw_iou_bars(ax, iou: Sequence[float], class_names: Sequence[str] | None = None) -> None:
    """One bar per class in its class colour; undefined (NaN) classes say "n/a"."""
    names = class_names_or_default(class_names, len(iou))
    values = [float(v) for v in iou]
    bars = ax.bar(range(len(values)), np.nan_to_num(values), color=class_colors(len(values)), edgecolor="black")
    for bar, value in zip(bars, values):
        label = "n/a" if math.isnan(value) else f"{value:.2f}"
        ax.text(bar.get_x() + bar.get_width() / 2, max(0.0, np.nan_to_num(value)) + 0.02, label,
                ha="center", fontsize=8)
    ax.set_xticks(range(len(values)), names, rotation=30 if len(values) > 4 else 0, fontsize=8)
    ax.set(ylim=(0, 1.1), ylabel="IoU", title="IoU per class")
    ax.grid(axis="y", alpha=0.3)


def plot_history(history: Sequence[EpochRecord]) -> Figure:
    """Loss curves and validation mIoU / mean Dice of a ``fit`` history."""
    fig = new_figure(9, 3.2)
    draw_history(*fig.subplots(1, 2), history)
    return fig


def plot_iou_bars(iou: Sequence[float], class_names: Sequence[str] | None = None) -> Figure:
    """Per-class IoU bars (e.g. ``history[-1].val.iou`` or ``ConfusionMatrix.iou()``)."""
    fig = new_figure(max(3.5, 0.8 * len(iou) + 1.5), 3)
    draw_iou_bars(fig.subplots(), iou, class_names)
    return fig


def plot_mask_row(
    image: torch.Tensor,
    target: torch.Tensor,
    pred: torch.Tensor,
    num_classes: int,
    class_names: Sequence[str] | None = None,
    error_classes: Sequence[int] | None = None,
    title: str = "",
    ignore_index: int | None = None,
) -> Figure:
    """Image | true mask | prediction | errors of ``error_classes`` (default: all but class 0).

    Shape:
        - ``image``: ``(C, H, W)``; ``target``, ``pred``: ``(H, W)``
    """
    fig = new_figure(11, 3.4)
    draw_mask_row(fig.subplots(1, 4), image, target, pred, num_classes, error_classes, ignore_index)
    handles = class_legend(num_classes, class_names) + error_legend(ignore_index is not None)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 8), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_message(text: str, width: float = 8, height: float = 1.5) -> Figure:
    """A figure holding only ``text`` (e.g. "waiting for the first epoch")."""
    fig = new_figure(width, height)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, color="#555555")
    return fig


def plot_dashboard(
    history: Sequence[EpochRecord],
    num_classes: int,
    class_names: Sequence[str] | None = None,
    ignore_index: int | None = None,
    max_images: int = 3,
) -> Figure:
    """The training dashboard: loss, validation metrics and IoU bars of the last epoch on top,
    then one row of image | true | predicted | errors per preview image of the last epoch
    (``history[-1].val.preview``, at most ``max_images``); ``ignore_index`` pixels are drawn grey.

    Built in ``notebooks/06_training.ipynb`` (``views.widgets.TrainingDashboard`` redraws it every epoch).
    """
    last = history[-1] if history else None
    preview = last.val.preview if last is not None and last.val is not None else None
    rows = 0 if preview is None else min(len(preview.images), max_images)
    fig = new_figure(11, 3.0 + 2.3 * rows)
    subfigs = fig.subfigures(2, 1, height_ratios=[3.0, 2.3 * rows]) if rows else [fig]
    draw_history(*subfigs[0].subplots(1, 3)[:2], history)
    last_iou = last.val.iou if last is not None and last.val is not None else [math.nan] * num_classes
    draw_iou_bars(subfigs[0].axes[2], last_iou, class_names)
    if rows:
        axes = np.array(subfigs[1].subplots(rows, 4, squeeze=False))
        for r in range(rows):
            draw_mask_row(axes[r], preview.images[r], preview.targets[r], preview.preds[r], num_classes,
                          ignore_index=ignore_index)
        handles = class_legend(num_classes, class_names) + error_legend(with_ignored=ignore_index is not None)
        subfigs[1].legend(handles=handles, loc="outside right center", fontsize=8)
    fig.suptitle(f"epoch {last.epoch}" if last is not None else "no epoch yet", fontsize=11)
    return fig


def plot_weight_map(
    image: np.ndarray | torch.Tensor, weights: np.ndarray | torch.Tensor, figsize: tuple[float, float] = (9, 4)
) -> Figure:
    """Image and the U-Net paper's weight map side by side (``realdata.weightmap``), with a colour bar.

    Shape:
        - ``image``: ``(H, W)`` or ``(1, H, W)``; ``weights``: ``(H, W)``
    """
    image, weights = as_numpy(image).squeeze(), as_numpy(weights)
    if image.shape != weights.shape or weights.ndim != 2:
        raise ValueError(f"image {image.shape} and weights {weights.shape} must both be (H, W)")
    fig = new_figure(*figsize)
    left, right = fig.subplots(1, 2)
    left.imshow(image, cmap="gray")
    shown = right.imshow(weights, cmap="magma")
    fig.colorbar(shown, ax=right, label="weight")
    for ax, title in ((left, "image"), (right, "weight map w(x)")):
        ax.set_title(title)
        ax.set_axis_off()
    return fig
