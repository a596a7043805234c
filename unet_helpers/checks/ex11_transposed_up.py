"""Check of exercise 11: an up-block with a learnable ``ConvTranspose2d`` (the original paper's).

Reference: ``unet_helpers.blocks.Up(in_channels, skip_channels, out_channels, up_mode="transpose")``:
``ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)``, then ``align_to`` the
skip, ``torch.cat([skip, x])``, ``DoubleConv(skip_channels + in_channels // 2, out_channels)``. The
learner may use ``DoubleConv`` and ``align_to`` (exercises 02 and 03); ``Up`` is the piece under test.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..blocks import Up
from .core import Property, PropertyFailed
from .isolation import build_module
from .spec import ExerciseSpec
from .tools import randomize_
from .up_blocks import alignment_variants, check_shapes, compare_blocks, describe_pairs, first_conv_channels, realign

ARGS = (8, 6, 5)  # in_channels, skip_channels, out_channels: ConvTranspose2d(8 -> 4), DoubleConv(6 + 4 -> 5)
HALF = ARGS[0] // 2
EVEN = (((2, 8, 5, 6), (2, 6, 10, 12)), ((1, 8, 4, 4), (1, 6, 8, 8)))  # (x shape, skip shape)
ODD = (((1, 8, 4, 4), (1, 6, 9, 9)), ((2, 8, 3, 5), (2, 6, 7, 11)), ((1, 8, 4, 5), (1, 6, 8, 11)))
SHAPE_HINT = "Up-sample x (never crop the skip): the output keeps the skip's size."


def _transposed(module: nn.Module) -> list[nn.ConvTranspose2d]:
    return [m for m in module.modules() if isinstance(m, nn.ConvTranspose2d)]


def _builds(cls: type) -> None:
    build_module(cls, *ARGS)


def _structure(cls: type) -> None:
    layers = _transposed(build_module(cls, *ARGS))
    if not layers:
        raise PropertyFailed("MyUpTranspose(8, 6, 5) has no ConvTranspose2d: it up-samples with a fixed interpolation "
                             "(nn.Upsample / F.interpolate), which has no weights to learn.", "no ConvTranspose2d",
                             f"ConvTranspose2d(8, {HALF}, kernel_size=2, stride=2)", name="a learnable ConvTranspose2d")
    if len(layers) > 1:
        raise PropertyFailed(f"MyUpTranspose(8, 6, 5) has {len(layers)} ConvTranspose2d layers; one up-samples x.",
                             len(layers), 1)
    up = layers[0]
    wanted = f"ConvTranspose2d(8, {HALF}, kernel_size=2, stride=2)"
    if up.kernel_size != (2, 2) or up.stride != (2, 2) or up.padding != (0, 0) or up.output_padding != (0, 0):
        raise PropertyFailed(
            f"Your transposed convolution has kernel_size={up.kernel_size}, stride={up.stride}, padding={up.padding}, "
            f"output_padding={up.output_padding}. The course's block (and the U-Net paper's) uses kernel 2, stride 2: "
            "each output pixel then comes from exactly one input pixel and one of four weights; with kernel 3 "
            "neighbouring patches overlap on every other row and column. (Whether either leaves a checkerboard in a "
            "trained network is what the experiment below measures.)", up, wanted,
            name="kernel_size=2, stride=2 (no overlap)")
    if (up.in_channels, up.out_channels) != (8, HALF):
        raise PropertyFailed(f"Your ConvTranspose2d maps {up.in_channels} -> {up.out_channels} channels; it should "
                             f"halve them, 8 -> {HALF}, as in the U-Net paper.", (up.in_channels, up.out_channels),
                             (8, HALF), name="halves the channels: in_channels -> in_channels // 2")


def _concat_channels(cls: type) -> None:
    first_conv_channels(cls, ARGS, ARGS[1] + HALF, skip_channels=ARGS[1], up_channels=HALF)


def _even(cls: type) -> None:
    check_shapes(cls, ARGS, EVEN, SHAPE_HINT)


def _odd(cls: type) -> None:
    check_shapes(cls, ARGS, ODD, SHAPE_HINT)


def _variants(ref: Up, odd: bool):
    def make(x: torch.Tensor, skip: torch.Tensor):
        def run(x_first: bool = False, align: str = "replicate") -> torch.Tensor:
            up = realign(ref.up(x), tuple(skip.shape[-2:]), align)  # (N, C/2, H, W)
            return ref.conv(torch.cat([up, skip] if x_first else [skip, up], dim=1))  # (N, out, H, W)

        return alignment_variants(run, odd)
    return make


def _reference() -> Up:
    return randomize_(Up(*ARGS, up_mode="transpose"), seed=5)


def _matches_even(cls: type) -> None:
    reference = _reference()
    compare_blocks(cls, reference, ARGS, EVEN[0], EVEN, _variants(reference, odd=False), seed=30)


def _matches_odd(cls: type) -> None:
    reference = _reference()
    compare_blocks(cls, reference, ARGS, EVEN[0], ODD, _variants(reference, odd=True), seed=30)


def _properties() -> list[Property]:
    return [
        Property("builds a module", "MyUpTranspose(8, 6, 5)", _builds),
        Property("ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)",
                 "the ConvTranspose2d layers of MyUpTranspose(8, 6, 5)", _structure,
                 f"`nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)`: 8 -> {HALF} here."),
        Property("DoubleConv(skip_channels + in_channels // 2, out_channels)",
                 f"MyUpTranspose(8, 6, 5): first convolution takes 6 + {HALF} channels", _concat_channels),
        Property("output has the skip's size (even sizes)", describe_pairs(EVEN), _even),
        Property("odd sizes: output still has the skip's size", describe_pairs(ODD), _odd,
                 "Doubling h = H // 2 rows gives H - 1 when H is odd: pad the up-sampled map at the bottom/right, "
                 "`F.pad(x, (0, W - w2, 0, H - h2), mode='replicate')` (or `unet_helpers.blocks.align_to`)."),
        Property("same output as Up(up_mode='transpose') (even sizes)", "random weights copied in, eval mode, "
                 + describe_pairs(EVEN), _matches_even, "up-sample, then `torch.cat([skip, x], dim=1)`, then the DoubleConv."),
        Property("odd sizes: pad bottom/right by replicating", "random weights copied in, eval mode, " + describe_pairs(ODD),
                 _matches_odd, "F.pad(x, (0, dw, 0, dh), mode='replicate') adds dw columns on the right and dh rows at "
                 "the bottom."),
    ]


UP_TRANSPOSE = ExerciseSpec(
    name="up_transpose",
    title="Up-block with a transposed convolution",
    notebook="ex11_transposed_up",
    task="Write `class MyUpTranspose(nn.Module)` with `__init__(self, in_channels, skip_channels, out_channels)` and "
         "`forward(self, x, skip)`: a learnable `ConvTranspose2d` doubles `x (N, in_channels, h, w)` and halves its "
         "channels; align it to `skip (N, skip_channels, H, W)`, concatenate `[skip, x]`, DoubleConv -> "
         "`(N, out_channels, H, W)`.",
    properties=_properties,
    hints=(
        "Same three steps as the bilinear `Up` of exercise 03; only the first changes: a layer with weights "
        "does the up-sampling, and it also halves the channels.",
        "`self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)` and "
        "`self.conv = DoubleConv(skip_channels + in_channels // 2, out_channels)`.",
        "In `forward`: `x = self.up(x)`; `dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]`; "
        "`x = F.pad(x, (0, dw, 0, dh), mode='replicate')`; `return self.conv(torch.cat([skip, x], dim=1))`.",
    ),
    defines=("MyUpTranspose",),
    reference="unet_helpers/blocks.py: Up(up_mode='transpose')",
    forbidden=("unet_helpers.blocks.Up", "unet_helpers.unet.UNet"),
    next_steps="the cells below put your block into a U-Net and compare it with bilinear up-sampling over several seeds.",
    answer_kind="class",
)
