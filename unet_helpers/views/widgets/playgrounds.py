"""Playgrounds: losses (04), metrics (05), up-sampling (02) and tiling (08)."""
from __future__ import annotations

import math
from typing import Sequence

import ipywidgets as W
import numpy as np
import torch
import torch.nn as nn
from matplotlib.figure import Figure

from ...inference import BLEND_MODES
from ...viz import class_names_or_default, plot_loss_playground, plot_metric_playground, plot_tiling, plot_upsampling
from .. import demos
from .. import playground as pg
from .base import WIDE, LiveView, resolve_num_classes


class LossPlayground(LiveView):
    """Sliders for foreground fraction, quality (share of the object found) and confidence; shows
    cross-entropy, Dice loss and ``CE + lam * Dice`` (``playground.loss_values``) side by side."""

    css_class = "unet-loss-playground"

    def __init__(self, foreground_fraction: float = 0.05, quality: float = 0.5, confidence: float = 0.99,
                 lam: float = 1.0, size: int = 64, dpi: int = 72) -> None:
        super().__init__(dpi)
        self.lam, self.size = lam, size
        self.qualities = np.linspace(0, 1, 11)
        self.fraction = W.FloatLogSlider(foreground_fraction, base=10, min=-2.5, max=-0.3, step=0.05,
                                         description="foreground fraction", readout_format=".3f", style=WIDE)
        self.quality = W.FloatSlider(quality, min=0, max=1, step=0.05, description="quality", style=WIDE)
        self.confidence = W.FloatSlider(confidence, min=0.6, max=0.999, step=0.001, description="confidence",
                                        readout_format=".3f", style=WIDE)
        self._watch(self.fraction, self.quality, self.confidence)
        self._layout([W.HBox([self.fraction, self.quality, self.confidence])])

    def _compute(self) -> None:
        args = (self.fraction.value, self.quality.value, self.size, self.confidence.value)
        self.current_losses = pg.loss_values(*args, lam=self.lam)
        self.current_sweep = pg.loss_sweep(args[0], self.qualities, self.size, args[3], self.lam)

    def figure(self) -> Figure:
        logits, target = pg.synthetic_binary_case(self.fraction.value, self.quality.value, self.size, self.confidence.value)
        return plot_loss_playground(target[0], logits.softmax(1)[0, 1], self.current_losses, self.qualities,
                                    self.current_sweep, self.quality.value)

    def summary(self) -> str:
        v = self.current_losses
        return f"CE {v['ce']:.4f} | Dice loss {v['dice']:.4f} | CE + {self.lam:g} * Dice {v['combined']:.4f}"


class MetricPlayground(LiveView):
    """Shift, dilate, erode or clean a predicted mask and watch IoU, Dice and boundary F1.

    Args:
        target: true mask ``(H, W)``.
        pred: the mask to perturb (default: the target itself, a perfect prediction).
        num_classes: ``K`` (default: from ``class_names`` or the masks).
        class_names: one name per class.
        tolerance: boundary F1 match distance in pixels (a slider).
        image: optional image ``(C, H, W)`` drawn under the error colours.
    """

    css_class = "unet-metric-playground"

    def __init__(self, target: np.ndarray | torch.Tensor, pred: np.ndarray | torch.Tensor | None = None,
                 num_classes: int | None = None, class_names: Sequence[str] | None = None, tolerance: float = 2.0,
                 image: torch.Tensor | None = None, max_shift: int = 8, dpi: int = 72) -> None:
        super().__init__(dpi)
        self.target = np.asarray(target.cpu() if isinstance(target, torch.Tensor) else target).astype(np.int64)
        base = self.target if pred is None else pred
        self.base_pred = np.asarray(base.cpu() if isinstance(base, torch.Tensor) else base).astype(np.int64)
        k = resolve_num_classes(num_classes, class_names, None, self.target, self.base_pred)
        self.num_classes, self.class_names, self.image = k, class_names_or_default(class_names, k), image
        self.shift_y = W.IntSlider(0, -max_shift, max_shift, description="shift down", style=WIDE)
        self.shift_x = W.IntSlider(0, -max_shift, max_shift, description="shift right", style=WIDE)
        self.dilate = W.IntSlider(0, 0, 6, description="dilate (px)", style=WIDE)
        self.erode = W.IntSlider(0, 0, 6, description="erode (px)", style=WIDE)
        self.min_size = W.IntSlider(0, 0, 400, step=10, description="drop objects < (px)", style=WIDE)
        self.tolerance = W.FloatSlider(tolerance, min=1, max=6, step=0.5, description="boundary tolerance (px)", style=WIDE)
        self._watch(self.shift_y, self.shift_x, self.dilate, self.erode, self.min_size, self.tolerance)
        self._layout([W.HBox([self.shift_y, self.shift_x, self.dilate]), W.HBox([self.erode, self.min_size, self.tolerance])])

    def _compute(self) -> None:
        self.current_mask = pg.perturb_mask(self.base_pred, (self.shift_y.value, self.shift_x.value),
                                            self.dilate.value, self.erode.value, self.min_size.value)
        self.current_metrics = pg.mask_metrics(self.current_mask, self.target, self.num_classes, self.tolerance.value)

    def figure(self) -> Figure:
        return plot_metric_playground(self.target, self.current_mask, self.current_metrics, self.num_classes,
                                      self.class_names, self.image)

    def summary(self) -> str:
        m = self.current_metrics
        rows = [f"{'class':<14}{'IoU':>7}{'Dice':>7}{'BF1':>7}"]
        present = set(np.unique(self.target).tolist()) | set(np.unique(self.current_mask).tolist())
        for k in sorted(present):  # classes in neither mask have no IoU and a trivial boundary F1
            name = self.class_names[k]
            cells = ["n/a" if math.isnan(m[key][k]) else f"{m[key][k]:.3f}" for key in ("iou", "dice", "boundary_f1")]
            rows.append(f"{name:<14}" + "".join(f"{c:>7}" for c in cells))
        return "\n".join(rows)


class UpsamplingExplorer(LiveView):
    """Kernel, stride and weights of a transposed convolution (or bilinear + conv) on a constant
    image. With all-one weights the pattern appears when the stride does not divide the kernel
    (uneven overlap); with random weights every transposed kernel repeats with period ``stride``,
    and only bilinear + conv stays flat."""

    css_class = "unet-upsampling-explorer"

    def __init__(self, kernel: int = 3, stride: int = 2, mode: str = "transpose", weights: str = "ones",
                 size: int = 8, seed: int = 0, dpi: int = 72) -> None:
        super().__init__(dpi)
        self.size, self.seed = size, seed
        self.kernel = W.IntSlider(kernel, 1, 7, description="kernel", style=WIDE)
        self.stride = W.IntSlider(stride, 1, 4, description="stride", style=WIDE)
        self.mode = W.ToggleButtons(options=list(demos.UPSAMPLE_MODES), value=mode, description="layer", style=WIDE)
        self.weights = W.ToggleButtons(options=list(demos.WEIGHT_KINDS), value=weights, description="weights",
                                       style=WIDE)
        self._watch(self.kernel, self.stride, self.mode, self.weights)
        self._layout([W.HBox([self.kernel, self.stride]), self.mode, self.weights])

    def _compute(self) -> None:
        k, s, mode = self.kernel.value, self.stride.value, self.mode.value
        self.current_pattern = demos.upsample_pattern(mode, k, s, self.size, self.weights.value, self.seed)
        self.current_interior = demos.pattern_interior(mode, k, s, self.size)
        inner = self.current_pattern[self.current_interior, self.current_interior]
        self.current_unevenness = demos.unevenness(inner)

    def figure(self) -> Figure:
        return plot_upsampling(self.current_pattern, self.current_interior, self.kernel.value, self.stride.value,
                               self.mode.value, self.weights.value)

    def summary(self) -> str:
        k, s = self.kernel.value, self.stride.value
        even = self.current_unevenness < 1e-5  # float rounding of the random weights
        verdict = "even" if even else f"uneven ((max-min)/mean = {self.current_unevenness:.2f})"
        text = f"{self.mode.value}, {self.weights.value} weights: interior {verdict}"
        if self.mode.value == "transpose" and self.weights.value == "ones":
            text += f"; stride {s} {'divides' if k % s == 0 else 'does not divide'} kernel {k}"
        elif self.mode.value == "transpose" and not even:
            text += f"; output repeats every {s} pixels"
        return text


class TilingExplorer(LiveView):
    """Tile size, overlap and blending of ``predict_tiled``; shows the tiles, the prediction and
    where it differs from whole-image inference (``playground.tiled_vs_whole``).

    Args:
        model: a segmentation model; image: one image ``(C, H, W)``.
        num_classes, class_names: as in the other views.
        tile, overlap, blend: starting values of the controls.
    """

    css_class = "unet-tiling-explorer"

    def __init__(self, model: nn.Module, image: torch.Tensor, num_classes: int | None = None,
                 class_names: Sequence[str] | None = None, tile: int = 64, overlap: float = 0.25,
                 blend: str = "none", min_tile: int = 16, dpi: int = 72) -> None:
        super().__init__(dpi)
        self.model, self.image = model, image
        self.num_classes = resolve_num_classes(num_classes, class_names, model)
        self.class_names = class_names_or_default(class_names, self.num_classes)
        largest = max(image.shape[-2:])
        self.tile = W.IntSlider(min(tile, largest), min_tile, largest, step=8, description="tile",
                                continuous_update=False, style=WIDE)
        self.overlap = W.FloatSlider(overlap, min=0, max=0.75, step=0.05, description="overlap",
                                     continuous_update=False, style=WIDE)
        self.blend = W.ToggleButtons(options=list(BLEND_MODES), value=blend, description="blend", style=WIDE)
        self._watch(self.tile, self.overlap, self.blend)
        self._layout([W.HBox([self.tile, self.overlap]), self.blend])

    def _compute(self) -> None:
        self.current_result = demos.tiled_vs_whole(self.model, self.image, self.tile.value, self.overlap.value, self.blend.value)
        self.current_seam_strength = self.current_result["seam_strength"]

    def figure(self) -> Figure:
        r = self.current_result
        edges = demos.tile_edges(*self.image.shape[-2:], r["boxes"])
        return plot_tiling(self.image, r["boxes"], r["probs"].argmax(0), r["difference"], self.num_classes, edges,
                           self.class_names, self.summary())

    def summary(self) -> str:
        r = self.current_result
        return (f"{len(r['boxes'])} tiles, blend {self.blend.value}: seam strength {r['seam_strength']:.2f} "
                f"(0 = seamless), max |tiled - whole| {float(r['difference'].max()):.3f}")
