"""Check of exercise 03: the ``Up`` block, up-sample, align to the skip, concatenate ``[skip, x]``, DoubleConv.

Reference: ``unet_helpers.blocks.Up`` (bilinear, ``align_corners=False``) and ``align_to``. The
learner may use ``DoubleConv`` (exercise 02); ``Up`` and ``align_to`` are the piece under test.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..blocks import Up
from .compare import Variant
from .core import Property
from .isolation import build_module
from .spec import ExerciseSpec
from .tools import randomize_
from .up_blocks import RESIZE_WHY, alignment_variants, check_shapes, compare_blocks, describe_pairs, first_conv_channels, realign

ARGS = (8, 4, 6)  # in_channels, skip_channels, out_channels
EVEN = (((2, 8, 5, 6), (2, 4, 10, 12)), ((1, 8, 4, 4), (1, 4, 8, 8)))  # (x shape, skip shape)
ODD = (((1, 8, 4, 4), (1, 4, 9, 9)), ((2, 8, 3, 5), (2, 4, 7, 11)), ((1, 8, 4, 5), (1, 4, 8, 11)))
SHAPE_HINT = "Up-sample x (not the skip) by 2, then concatenate; the output keeps the skip's size."


def _variants(ref: Up, odd: bool):
    def make(x: torch.Tensor, skip: torch.Tensor) -> list[Variant]:
        def run(mode: str = "bilinear", corners: bool = False, x_first: bool = False, align: str = "replicate"):
            options = {} if mode == "nearest" else {"align_corners": corners}
            if align == "to the skip":  # x interpolated straight to the skip's size, no factor of 2
                up = F.interpolate(x, size=tuple(skip.shape[-2:]), mode=mode, **options)
            else:
                up = realign(F.interpolate(x, scale_factor=2, mode=mode, **options), tuple(skip.shape[-2:]), align)
            return ref.conv(torch.cat([up, skip] if x_first else [skip, up], dim=1))  # (N, 12, H, W) -> (N, 6, H, W)

        sampling = "bilinear up-sampling, align_corners=False"
        direct = [Variant("odd sizes: pad bottom/right by replicating", lambda: run(align="to the skip"),
                          "You interpolate x straight to the skip's size instead of up-sampling by 2 and padding "
                          "the missing row.", convention=RESIZE_WHY)] if odd else []
        return alignment_variants(run, odd) + direct + [
            Variant(sampling, lambda: run(corners=True), "You up-sample with align_corners=True: it pins the corner "
                    "pixels and stretches the rest, so up-sampled pixels no longer sit over their sources."),
            Variant(sampling, lambda: run(mode="nearest"), "You up-sample with mode='nearest': blocky 2x2 copies "
                    "instead of the bilinear interpolation the course's Up uses."),
        ]
    return make


def _reference() -> Up:
    return randomize_(Up(*ARGS), seed=3)


def _builds(cls: type) -> None:
    build_module(cls, *ARGS)


def _concat_channels(cls: type) -> None:
    first_conv_channels(cls, ARGS, ARGS[0] + ARGS[1], skip_channels=ARGS[1], up_channels=ARGS[0])


def _even(cls: type) -> None:
    check_shapes(cls, ARGS, EVEN, SHAPE_HINT)


def _odd(cls: type) -> None:
    check_shapes(cls, ARGS, ODD, SHAPE_HINT)


def _matches_even(cls: type) -> None:
    reference = _reference()
    compare_blocks(cls, reference, ARGS, EVEN[0], EVEN, _variants(reference, odd=False), seed=20)


def _matches_odd(cls: type) -> None:
    reference = _reference()
    compare_blocks(cls, reference, ARGS, EVEN[0], ODD, _variants(reference, odd=True), seed=20)


def _properties() -> list[Property]:
    return [
        Property("builds a module", "MyUp(8, 4, 6)", _builds),
        Property("concatenate, don't add: DoubleConv(skip_channels + in_channels, out_channels)",
                 "MyUp(8, 4, 6): first convolution takes 12 channels", _concat_channels),
        Property("output has the skip's size (even sizes)", describe_pairs(EVEN), _even),
        Property("odd sizes: output still has the skip's size", describe_pairs(ODD), _odd,
                 "x has h = H // 2 rows, so doubling gives H - 1 when H is odd. Pad the up-sampled map at the bottom "
                 "and right: `F.pad(x, (0, W - w2, 0, H - h2), mode='replicate')`."),
        Property("same output as unet_helpers.Up (even sizes)", "random weights copied in, eval mode, " + describe_pairs(EVEN),
                 _matches_even, "nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False), then "
                 "`torch.cat([skip, x], dim=1)`, then the `DoubleConv`."),
        Property("odd sizes: pad bottom/right by replicating", "random weights copied in, eval mode, " + describe_pairs(ODD),
                 _matches_odd, "F.pad(x, (0, dw, 0, dh), mode='replicate') adds dw columns on the right and dh rows "
                 "at the bottom."),
    ]


UP_BLOCK = ExerciseSpec(
    name="up_block",
    title="Up: up-sample, align to the skip, concatenate [skip, x], DoubleConv",
    notebook="ex03_up_block",
    task="Write `class MyUp(nn.Module)` with `__init__(self, in_channels, skip_channels, out_channels)` and "
         "`forward(self, x, skip)`: `x (N, in_channels, h, w)` and `skip (N, skip_channels, H, W)` -> "
         "`(N, out_channels, H, W)`.",
    properties=_properties,
    hints=(
        "Three steps in `forward`: up-sample x by 2; make it exactly the skip's H and W; concatenate and convolve.",
        "`nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False)`; then `dh = skip.shape[-2] - x.shape[-2]` "
        "and `dw` likewise, `F.pad(x, (0, dw, 0, dh), mode='replicate')`.",
        "`torch.cat([skip, x], dim=1)` has `skip_channels + in_channels` channels, so build "
        "`DoubleConv(skip_channels + in_channels, out_channels)` in `__init__`.",
    ),
    defines=("MyUp",),
    reference="unet_helpers/blocks.py: Up and align_to",
    forbidden=("unet_helpers.blocks.Up", "unet_helpers.blocks.align_to", "unet_helpers.unet.UNet"),
    next_steps="build `unet_helpers.UNet(base=8)` and run it on a 33x35 image: every decoder stage meets the odd "
               "sizes your padding handles. Exercise 04 assembles the whole U-Net from these blocks.",
    answer_kind="class",
)
