"""Figures of the playgrounds: losses, perturbed masks, up-sampling patterns, tiles and seams.

The numbers come from ``views/playground.py`` and ``views/demos.py``; ``views/widgets/`` redraws
these when a slider moves. Each function returns a ``Figure`` (never ``plt.show()``); class
colours are ``viz.colors.class_colors``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..validate import as_numpy
from .colors import class_legend, class_names_or_default, colorize_mask, error_legend, error_overlay, to_display_image
from .figures import new_figure

LOSS_COLORS = {"ce": "#1F77B4", "dice": "#D62728", "combined": "#7F7F7F"}
LOSS_LABELS = {"ce": "cross-entropy", "dice": "Dice loss", "combined": "CE + lam * Dice"}


def plot_loss_playground(
    target: torch.Tensor,
    foreground_prob: torch.Tensor,
    values: dict[str, float],
    qualities: np.ndarray,
    sweep: dict[str, np.ndarray],
    quality: float,
) -> Figure:
    """Target, predicted foreground probability, the three losses now, and the losses vs quality.

    Args:
        target: true mask ``(H, W)``.
        foreground_prob: the model's foreground probability ``(H, W)``.
        values: ``playground.loss_values`` at the current settings.
        qualities, sweep: ``(Q,)`` qualities and ``playground.loss_sweep`` over them.
        quality: the current quality (a vertical line on the curves).

    Built in ``notebooks/04_losses.ipynb``.
    """
    fig = new_figure(12, 3.2)
    ax_t, ax_p, ax_bar, ax_curve = fig.subplots(1, 4, width_ratios=[1, 1, 1.1, 1.6])
    target, foreground_prob = as_numpy(target), as_numpy(foreground_prob)
    fraction = float((target == 1).mean())
    ax_t.imshow(colorize_mask(target, 2), interpolation="nearest")
    ax_t.set_title(f"true mask ({100 * fraction:.1f} % foreground)", fontsize=9)
    ax_p.imshow(foreground_prob, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    ax_p.set_title(f"P(foreground), quality {quality:.2f}", fontsize=9)
    for ax in (ax_t, ax_p):
        ax.set_axis_off()
    top = max(1.0, 1.1 * float(np.max(sweep["combined"])))
    keys = ("ce", "dice", "combined")
    bars = ax_bar.bar(range(3), [values[k] for k in keys], color=[LOSS_COLORS[k] for k in keys])
    for bar, key in zip(bars, keys):
        ax_bar.text(bar.get_x() + bar.get_width() / 2, values[key] + 0.02 * top, f"{values[key]:.3f}",
                    ha="center", fontsize=8)
    ax_bar.set_xticks(range(3), ["CE", "Dice", "CE+Dice"], fontsize=8)
    ax_bar.set(ylim=(0, top), title="losses now")
    for key in keys:
        ax_curve.plot(qualities, sweep[key], color=LOSS_COLORS[key], label=LOSS_LABELS[key])
    ax_curve.axvline(quality, color="black", lw=1, ls="--")
    ax_curve.set(xlabel="quality (share of the object found)", ylim=(0, top), title="losses vs quality")
    ax_curve.legend(fontsize=7)
    ax_curve.grid(alpha=0.3)
    return fig


def _background(shape: tuple[int, int]) -> np.ndarray:
    return np.full((*shape, 3), 0.85)  # a light grey "image" under the error colours


def plot_metric_playground(
    target: np.ndarray,
    pred: np.ndarray,
    metrics: dict[str, object],
    num_classes: int,
    class_names: Sequence[str] | None = None,
    image: np.ndarray | torch.Tensor | None = None,
) -> Figure:
    """True mask, perturbed prediction, its errors, and IoU / Dice / boundary F1 per class.

    Args:
        target, pred: class ids ``(H, W)``.
        metrics: ``playground.mask_metrics(pred, target, ...)``.
        image: optional image ``(C, H, W)`` under the error colours (default plain grey).

    Built in ``notebooks/05_metrics.ipynb``.
    """
    names = class_names_or_default(class_names, num_classes)
    fig = new_figure(12, 3.4)
    ax_t, ax_p, ax_e, ax_m = fig.subplots(1, 4, width_ratios=[1, 1, 1, 1.5])
    ax_t.imshow(colorize_mask(target, num_classes), interpolation="nearest")
    ax_p.imshow(colorize_mask(pred, num_classes), interpolation="nearest")
    base = _background(np.shape(target)) if image is None else image
    ax_e.imshow(error_overlay(base, pred, target, range(1, num_classes)), interpolation="nearest")
    for ax, title in ((ax_t, "true mask"), (ax_p, "perturbed prediction"), (ax_e, "errors")):
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    ax_e.legend(handles=error_legend()[:3], fontsize=6, loc="lower left", framealpha=0.8)
    present = sorted(set(np.unique(target).tolist()) | set(np.unique(pred).tolist()))
    shown = [k for k in present if k != 0] or present  # classes in either mask, background last resort
    width = 0.8 / 3
    for i, (key, label, colour) in enumerate((("iou", "IoU", "#2CA02C"), ("dice", "Dice", "#9467BD"),
                                               ("boundary_f1", "boundary F1", "#8C564B"))):
        heights = [np.nan if metrics[key][k] is None else metrics[key][k] for k in shown]
        bars = ax_m.bar(np.arange(len(shown)) + (i - 1) * width, np.nan_to_num(heights), width, color=colour, label=label)
        for bar, h in zip(bars, heights):
            ax_m.text(bar.get_x() + width / 2, np.nan_to_num(h) + 0.02, "n/a" if np.isnan(h) else f"{h:.2f}",
                      ha="center", fontsize=7)
    ax_m.set_xticks(range(len(shown)), [names[k] for k in shown], fontsize=8)
    ax_m.set(ylim=(0, 1.3), yticks=np.linspace(0, 1, 6), title="metrics of the prediction")
    ax_m.legend(fontsize=7, loc="upper center", ncol=3)
    return fig


def plot_upsampling(pattern: torch.Tensor, interior: slice, kernel: int, stride: int, mode: str) -> Figure:
    """The up-sampled constant image as a heat map (interior boxed) and its middle row.

    Args:
        pattern: ``playground.upsample_pattern(mode, kernel, stride)`` ``(L, L)``.
        interior: ``playground.pattern_interior(...)``, the part no border affects.

    Built in ``notebooks/02_building_blocks.ipynb``.
    """
    values = as_numpy(pattern)
    fig = new_figure(10, 4)
    ax_map, ax_row = fig.subplots(1, 2, width_ratios=[1, 1.3])
    shown = ax_map.imshow(values, cmap="viridis", interpolation="nearest", vmin=0)
    if values.shape[0] <= 24:
        for (y, x), v in np.ndenumerate(values):
            ax_map.text(x, y, f"{v:g}", ha="center", va="center", fontsize=6, color="white" if v < values.max() / 2 else "black")
    lo, hi = interior.start, interior.stop
    ax_map.add_patch(Rectangle((lo - 0.5, lo - 0.5), hi - lo, hi - lo, fill=False, ec="red", lw=1.5, ls="--"))
    name = f"ConvTranspose2d k={kernel}, s={stride}" if mode == "transpose" else f"bilinear x{stride} + conv k={kernel}"
    ax_map.set_title(f"{name}\n(constant input, all-one weights)", fontsize=9)
    ax_map.set_axis_off()
    fig.colorbar(shown, ax=ax_map, shrink=0.8)
    middle = (lo + hi) // 2
    ax_row.step(np.arange(values.shape[1]), values[middle], where="mid", color="#1F77B4")
    ax_row.axvspan(lo - 0.5, hi - 0.5, color="red", alpha=0.08, label="interior")
    inner = values[lo:hi, lo:hi]
    verdict = "even" if inner.max() == inner.min() else f"uneven: {inner.min():g} to {inner.max():g}"
    ax_row.set(title=f"row {middle}: {verdict}", xlabel="column", ylabel="output value", ylim=(0, values.max() * 1.15 + 0.1))
    ax_row.legend(fontsize=7)
    ax_row.grid(alpha=0.3)
    return fig


def plot_tiling(
    image: torch.Tensor,
    boxes: Sequence[tuple[int, int, int, int]],
    ids: torch.Tensor,
    difference: torch.Tensor,
    num_classes: int,
    edges: tuple[Sequence[int], Sequence[int]],
    class_names: Sequence[str] | None = None,
    title: str = "",
) -> Figure:
    """The tile grid on the image, the tiled prediction, and where it differs from whole-image
    inference (tile edges dashed).

    Args:
        image: ``(C, H, W)``.
        boxes: ``playground.tile_boxes``; ``edges``: ``playground.tile_edges``.
        ids: tiled class ids ``(H, W)``; ``difference``: ``(H, W)`` from ``playground.tiled_vs_whole``.

    Built in ``notebooks/08_large_images.ipynb``.
    """
    fig = new_figure(12, 4.2)
    ax_i, ax_p, ax_d = fig.subplots(1, 3)
    ax_i.imshow(to_display_image(image), interpolation="nearest")
    for y, x, h, w in boxes:  # translucent fills: overlaps look brighter
        ax_i.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fc=(1, 1, 1, 0.12), ec="white", lw=1.0))
    ax_i.set_title(f"{len(boxes)} tiles (overlaps brighter)", fontsize=9)
    ax_p.imshow(colorize_mask(ids, num_classes), interpolation="nearest")
    ax_p.set_title("tiled prediction", fontsize=9)
    top = max(0.05, float(difference.max()))
    shown = ax_d.imshow(as_numpy(difference), cmap="inferno", vmin=0, vmax=top, interpolation="nearest")
    for e in edges[0]:
        ax_d.axhline(e - 0.5, color="cyan", lw=0.6, ls="--")
    for e in edges[1]:
        ax_d.axvline(e - 0.5, color="cyan", lw=0.6, ls="--")
    ax_d.set_title("|tiled - whole image| (probabilities)", fontsize=9)
    fig.colorbar(shown, ax=ax_d, shrink=0.8)
    for ax in (ax_i, ax_p, ax_d):
        ax.set_axis_off()
    fig.legend(handles=class_legend(num_classes, class_names), loc="outside lower center", ncol=num_classes, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
