"""Check for the transposed-convolution up-block exercise (ex07).

Reference: ``unet_helpers.blocks.Up(in_channels, skip_channels, out_channels, up_mode="transpose")``:
``ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)``, then ``align_to`` the
skip (replicate-pad bottom/right), ``torch.cat([skip, x])``, then
``DoubleConv(skip_channels + in_channels // 2, out_channels)``. Behaviour is compared by copying the
reference's randomised weights into the learner's layers (in the order its ``forward`` calls them).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..blocks import Up, align_to
from .blocks import build_module, check_up_shapes, compare_up_block  # the same inputs, building and comparison as the bilinear Up (ex02)
from .core import Property, PropertyFailed
from .spec import ExerciseSpec
from .tools import randomize_

_ARGS = (8, 6, 5)  # in_channels, skip_channels, out_channels: ConvTranspose2d(8 -> 4), DoubleConv(6 + 4 -> 5)
_HALF = _ARGS[0] // 2
_EVEN = (((2, 8, 5, 6), (2, 6, 10, 12)), ((1, 8, 4, 4), (1, 6, 8, 8)))  # (x shape, skip shape)
_ODD = (((1, 8, 4, 4), (1, 6, 9, 9)), ((2, 8, 3, 5), (2, 6, 7, 11)), ((1, 8, 4, 5), (1, 6, 8, 11)))


def _transposed(module: nn.Module) -> list[nn.ConvTranspose2d]:
    return [m for m in module.modules() if isinstance(m, nn.ConvTranspose2d)]


def _builds(cls: type) -> None:
    build_module(cls, *_ARGS)


def _structure(cls: type) -> None:
    layers = _transposed(build_module(cls, *_ARGS))
    if not layers:
        raise PropertyFailed("MyUpTranspose(8, 6, 5) has no ConvTranspose2d: it up-samples with a fixed interpolation "
                             "(nn.Upsample / F.interpolate), which has no weights to learn.", "no ConvTranspose2d",
                             f"ConvTranspose2d(8, {_HALF}, kernel_size=2, stride=2)", name="a learnable ConvTranspose2d")
    if len(layers) > 1:
        raise PropertyFailed(f"MyUpTranspose(8, 6, 5) has {len(layers)} ConvTranspose2d layers; one up-samples x.",
                             len(layers), 1)
    up = layers[0]
    wanted = f"ConvTranspose2d(8, {_HALF}, kernel_size=2, stride=2)"
    if up.kernel_size != (2, 2) or up.stride != (2, 2) or up.padding != (0, 0) or up.output_padding != (0, 0):
        raise PropertyFailed(
            f"Your transposed convolution has kernel_size={up.kernel_size}, stride={up.stride}, padding={up.padding}, "
            f"output_padding={up.output_padding}. With stride 2 a kernel of 2 covers every output pixel exactly once; "
            "an odd kernel such as 3 makes neighbouring kernels overlap on every other row and column (the "
            "checkerboard).", up, wanted, name="kernel_size=2, stride=2 (no overlap)")
    if (up.in_channels, up.out_channels) != (8, _HALF):
        raise PropertyFailed(f"Your ConvTranspose2d maps {up.in_channels} -> {up.out_channels} channels; it should "
                             f"halve them, 8 -> {_HALF}, as in the U-Net paper.", (up.in_channels, up.out_channels),
                             (8, _HALF), name="halves the channels: in_channels -> in_channels // 2")


def _concat_channels(cls: type) -> None:
    convs = [m for m in build_module(cls, *_ARGS).modules() if isinstance(m, nn.Conv2d)]
    wanted = _ARGS[1] + _HALF
    if not convs:
        raise PropertyFailed("MyUpTranspose(8, 6, 5) has no Conv2d layer.", 0, f"a DoubleConv({wanted}, 5)")
    if convs[0].in_channels != wanted:
        raise PropertyFailed(f"The first convolution takes the skip (6 channels) concatenated with the up-sampled x "
                             f"({_HALF} channels after halving).", convs[0].in_channels, wanted,
                             hint="`DoubleConv(skip_channels + in_channels // 2, out_channels)`.")


_SHAPE_HINT = "Up-sample x (never crop the skip): the output keeps the skip's size."


def _even(cls: type) -> None:
    check_up_shapes(cls, _ARGS, _EVEN, _SHAPE_HINT)


def _odd(cls: type) -> None:
    check_up_shapes(cls, _ARGS, _ODD, _SHAPE_HINT)


def _variant(ref: Up, x: torch.Tensor, skip: torch.Tensor, x_first: bool = False, align: str = "replicate") -> torch.Tensor:
    """What ``ref`` computes with one convention changed (used to name the learner's mistake)."""
    up = ref.up(x)  # (N, C/2, 2h, 2w)
    size = tuple(skip.shape[-2:])
    dh, dw = size[0] - up.shape[-2], size[1] - up.shape[-1]
    if align == "replicate":
        up = align_to(up, size)
    elif align == "zeros":
        up = F.pad(up, (0, dw, 0, dh))
    elif align == "top/left":
        up = F.pad(up, (dw, 0, dh, 0), mode="replicate")
    elif align == "resize":
        up = F.interpolate(up, size=size, mode="bilinear", align_corners=False)
    return ref.conv(torch.cat([up, skip] if x_first else [skip, up], dim=1))  # (N, out, H, W)


_ORDER = (("concatenation order [skip, x]", dict(x_first=True), "You concatenate [x, skip]; the convention is [skip, x]."),)
_ALIGN = (
    ("odd sizes: pad bottom/right by replicating", dict(align="zeros"), "You pad with zeros instead of replicating the edge."),
    ("odd sizes: pad bottom/right by replicating", dict(align="top/left"), "You pad at the top/left."),
    ("odd sizes: pad bottom/right by replicating", dict(align="resize"),
     "You resize the up-sampled map to the skip's size, which shifts every pixel a little."),
)


def _compare_with_reference(cls: type, cases: tuple, mistakes: tuple) -> None:
    reference = randomize_(Up(*_ARGS, up_mode="transpose"), seed=5)
    compare_up_block(cls, reference, _ARGS, _EVEN[0], cases, mistakes, _variant, seed=30)


def _matches_even(cls: type) -> None:
    _compare_with_reference(cls, _EVEN, _ORDER)


def _matches_odd(cls: type) -> None:
    _compare_with_reference(cls, _ODD, _ALIGN + _ORDER)


def _properties() -> list[Property]:
    pairs = lambda cases: ", ".join(f"x {x} + skip {s}" for x, s in cases)  # noqa: E731
    return [
        Property("builds a module", "MyUpTranspose(8, 6, 5)", _builds),
        Property("ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)",
                 "the ConvTranspose2d layers of MyUpTranspose(8, 6, 5)", _structure,
                 f"`nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)`: 8 -> {_HALF} here."),
        Property("DoubleConv(skip_channels + in_channels // 2, out_channels)",
                 f"MyUpTranspose(8, 6, 5): first convolution takes 6 + {_HALF} channels", _concat_channels),
        Property("output has the skip's size (even sizes)", pairs(_EVEN), _even),
        Property("odd sizes: output still has the skip's size", pairs(_ODD), _odd,
                 "Doubling h = H // 2 rows gives H - 1 when H is odd: pad the up-sampled map at the bottom/right, "
                 "`F.pad(x, (0, W - w2, 0, H - h2), mode='replicate')` (or `unet_helpers.blocks.align_to`)."),
        Property("same output as Up(up_mode='transpose') (even sizes)", "random weights copied in, eval mode, "
                 + pairs(_EVEN), _matches_even, "up-sample, then `torch.cat([skip, x], dim=1)`, then the DoubleConv."),
        Property("odd sizes: pad bottom/right by replicating", "random weights copied in, eval mode, " + pairs(_ODD),
                 _matches_odd, "F.pad(x, (0, dw, 0, dh), mode='replicate') adds dw columns on the right and dh rows at "
                 "the bottom."),
    ]


UP_TRANSPOSE = ExerciseSpec(
    name="up_transpose",
    title="Up-block with a transposed convolution",
    notebook="ex07_transposed_up",
    task="Write `class MyUpTranspose(nn.Module)` with `__init__(self, in_channels, skip_channels, out_channels)` and "
         "`forward(self, x, skip)`: a learnable `ConvTranspose2d` doubles `x (N, in_channels, h, w)` and halves its "
         "channels; align it to `skip (N, skip_channels, H, W)`, concatenate `[skip, x]`, DoubleConv -> "
         "`(N, out_channels, H, W)`.",
    properties=_properties,
    hints=(
        "Same three steps as the bilinear `Up` of exercise 2; only the first changes: a layer with weights "
        "does the up-sampling, and it also halves the channels.",
        "`self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)` and "
        "`self.conv = DoubleConv(skip_channels + in_channels // 2, out_channels)`.",
        "In `forward`: `x = self.up(x)`; `dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]`; "
        "`x = F.pad(x, (0, dw, 0, dh), mode='replicate')`; `return self.conv(torch.cat([skip, x], dim=1))`.",
    ),
    defines=("MyUpTranspose",),
    reference="unet_helpers/blocks.py: Up(up_mode='transpose')",
    next_steps="the cells below put your block into a U-Net and compare it with bilinear up-sampling.",
    answer_kind="class",
)
