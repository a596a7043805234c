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
    ax_t.legend(handles=class_legend(2, ("background", "object")), fontsize=6, loc="lower left", framealpha=0.8)
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
    fig.legend(handles=class_legend(num_classes, names), loc="outside lower center", ncol=num_classes, fontsize=8,
               title="class colours (true mask, prediction)", title_fontsize=8)
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


def plot_upsampling(
    pattern: torch.Tensor, interior: slice, kernel: int, stride: int, mode: str, weights: str = "ones"
) -> Figure:
    """The up-sampled constant image as a heat map (interior boxed) and its middle row.

    Args:
        pattern: ``demos.upsample_pattern(mode, kernel, stride, weights=weights)`` ``(L, L)``.
        interior: ``demos.pattern_interior(...)``, the part no border affects.
        weights: ``"ones"`` or ``"random"``, for the title.

    Built in ``notebooks/02_building_blocks.ipynb``.
    """
    values = as_numpy(pattern)
    fig = new_figure(10, 4)
    ax_map, ax_row = fig.subplots(1, 2, width_ratios=[1, 1.3])
    shown = ax_map.imshow(values, cmap="viridis", interpolation="nearest", vmin=0)
    if values.shape[0] <= 24 and weights == "ones":  # small whole counts: write them in
        for (y, x), v in np.ndenumerate(values):
            ax_map.text(x, y, f"{v:g}", ha="center", va="center", fontsize=6, color="white" if v < values.max() / 2 else "black")
    lo, hi = interior.start, interior.stop
    ax_map.add_patch(Rectangle((lo - 0.5, lo - 0.5), hi - lo, hi - lo, fill=False, ec="red", lw=1.5, ls="--"))
    name = f"ConvTranspose2d k={kernel}, s={stride}" if mode == "transpose" else f"bilinear x{stride} + conv k={kernel}"
    described = "all-one weights" if weights == "ones" else "random weights in [0.5, 1.5)"
    ax_map.set_title(f"{name}\n(constant input, {described})", fontsize=9)
    ax_map.set_axis_off()
    fig.colorbar(shown, ax=ax_map, shrink=0.8)
    middle = (lo + hi) // 2
    ax_row.step(np.arange(values.shape[1]), values[middle], where="mid", color="#1F77B4")
    ax_row.axvspan(lo - 0.5, hi - 0.5, color="red", alpha=0.08, label="interior")
    inner = values[lo:hi, lo:hi]
    even = float(inner.max() - inner.min()) <= 1e-5 * max(1.0, float(np.abs(inner).max()))  # float rounding
    verdict = "even" if even else f"uneven: {float(inner.min()):.3g} to {float(inner.max()):.3g}"
    ax_row.set(title=f"row {middle}: {verdict}", xlabel="column", ylabel="output value", ylim=(0, values.max() * 1.15 + 0.1))
    ax_row.legend(fontsize=7)
    ax_row.grid(alpha=0.3)
    return fig


def transposed_coverage(kernel: int, stride: int, inputs: int) -> np.ndarray:
    """How many stamps of a 1-D transposed convolution cover each output pixel.

    Input pixel ``i`` writes its ``kernel`` taps to outputs ``i * stride ... i * stride + kernel - 1``.
    A 2-D transposed convolution with all-one weights is the outer product of two of these
    (``demos.upsample_pattern``).

    Shape:
        - Output: ``((inputs - 1) * stride + kernel,)`` int64
    """
    counts = np.zeros((inputs - 1) * stride + kernel, dtype=np.int64)
    for i in range(inputs):
        counts[i * stride : i * stride + kernel] += 1
    return counts


def plot_transposed_overlap(
    settings: Sequence[tuple[int, int]] = ((3, 2), (2, 2), (4, 2)), inputs: int = 4
) -> Figure:
    """Where the stamps of a transposed convolution land, in one dimension, for each ``(kernel, stride)``.

    Each input pixel stamps ``kernel`` output pixels, ``stride`` apart from the next one's stamp; the
    bottom row counts the stamps on each output pixel. Where the counts alternate (kernel 3,
    stride 2) the output of a constant input alternates too: uneven overlap. Pixels near the two
    ends (hatched, faded) are the border: fewer stamps reach them whatever the kernel.

    Args:
        settings: ``(kernel, stride)`` pairs, one panel each.
        inputs: input pixels drawn.

    Built in ``notebooks/02_building_blocks.ipynb``.
    """
    import matplotlib

    colours = matplotlib.colormaps["Pastel1"].colors
    fig = new_figure(4.2 * len(settings), 0.45 * (inputs + 3) + 0.9)
    axes = np.atleast_1d(fig.subplots(1, len(settings)))
    for ax, (kernel, stride) in zip(axes, settings):
        counts = transposed_coverage(kernel, stride, inputs)
        length = len(counts)
        inside = slice(kernel - 1, (inputs - 1) * stride + 1)  # outputs that every tap can reach
        shade = matplotlib.colormaps["Blues"]
        for i in range(inputs):
            row = inputs - i  # input 0 on top
            for a in range(kernel):  # one cell per output pixel the stamp writes
                ax.add_patch(Rectangle((i * stride + a, row), 1, 0.8, fc=colours[i % len(colours)], ec="#555555",
                                       lw=0.8, gid=f"stamp:{i}:{a}"))
            ax.text(i * stride + kernel / 2, row + 0.4, f"x{i}", ha="center", va="center", fontsize=8)
        for y, count in enumerate(counts):
            border = not inside.start <= y < inside.stop
            ax.add_patch(Rectangle((y, -0.9), 1, 0.8, fc=shade(min(0.15 + 0.25 * count, 0.9)), ec="#555555",
                                   hatch="///" if border else None, alpha=0.45 if border else 1.0, gid=f"count:{y}"))
            ax.text(y + 0.5, -0.5, str(count), ha="center", va="center", fontsize=9, weight="bold",
                    color="white" if count >= 3 else "black")
        inner = counts[inside]
        verdict = "even" if inner.min() == inner.max() else f"uneven: {inner.min()} and {inner.max()} alternate"
        ax.set_title(f"kernel {kernel}, stride {stride}: {verdict}", fontsize=9)
        ax.set_xlim(-0.2, length + 0.2)
        ax.set_ylim(-1.1, inputs + 1.0)
        ax.set_yticks([-0.5, inputs / 2 + 0.9], ["stamps per\noutput pixel", "one stamp\nper input"], fontsize=8)
        ax.set_xticks(np.arange(length) + 0.5, [str(y) for y in range(length)], fontsize=7)
        ax.set_xlabel("output pixel", fontsize=8)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
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
