"""What the two up-block exercises (03: bilinear ``Up``, 11: transposed ``Up``) check alike.

Both blocks take ``forward(x, skip)``: up-sample ``x``, align it to the skip (replicate-pad at the
bottom/right), concatenate ``[skip, x]``, ``DoubleConv``. Outputs are compared by copying the
reference's randomised weights into the learner's layers, in the order the learner's ``forward``
calls them; on a mismatch, known slips and equivalent conventions are tried (``compare.Variant``).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..blocks import align_to
from .compare import Variant, expect_same
from .core import PropertyFailed
from .isolation import build_module, call_learner
from .tools import generator, layers_in_call_order, require_tensor, share_weights

ORDER_WHY = (
    "The course's blocks, `unet_helpers.Up` and every checkpoint of the course put the skip's channels first: "
    "the first convolution's weights `[:, :skip_channels]` read the skip. `[x, skip]` builds the same family of "
    "networks, but a block written that way cannot load weights trained with the course's blocks (nor they its), "
    "and the lessons' channel figures would read the wrong way round.")
RESIZE_WHY = (
    "Resizing the doubled map to the skip's odd size stretches it by H / (H - 1): each up-sampled pixel moves by up "
    "to half a pixel against the skip pixel it is glued to, most at the bottom/right. Padding the missing row keeps "
    "every up-sampled pixel over the input pixels it came from, so encoder and decoder maps stay pixel-aligned. "
    "Both train; the course pads (and so does `unet_helpers.Up`, whose weights you may want to load).")


def pair(x_shape: tuple[int, ...], skip_shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded ``x`` and ``skip`` tensors of the given shapes."""
    gen = generator(seed)
    return torch.randn(x_shape, generator=gen), torch.randn(skip_shape, generator=gen)


def describe_pairs(cases: tuple) -> str:
    return ", ".join(f"x {x} + skip {s}" for x, s in cases)


def check_shapes(cls: type, args: tuple, cases: tuple, hint: str) -> None:
    """``cls(*args)(x, skip)`` has the skip's ``(N, out_channels, H, W)`` for every case."""
    module = build_module(cls, *args)
    for seed, (x_shape, skip_shape) in enumerate(cases):
        x, skip = pair(x_shape, skip_shape, seed)
        out = require_tensor(call_learner(module, x, skip), "The output")
        wanted = (skip_shape[0], args[2], *skip_shape[2:])
        if tuple(out.shape) != wanted:
            raise PropertyFailed(f"For x {x_shape} and skip {skip_shape} the output should have the skip's H and W.",
                                 tuple(out.shape), wanted, hint=hint)


def first_conv_channels(cls: type, args: tuple, wanted: int, skip_channels: int, up_channels: int) -> None:
    """The first ``Conv2d`` reads the concatenation: ``skip_channels + up_channels`` channels."""
    layers = [m for m in build_module(cls, *args).modules() if isinstance(m, nn.Conv2d)]
    if not layers:
        raise PropertyFailed(f"{cls.__name__}{args} has no Conv2d layer.", 0, f"a DoubleConv({wanted}, {args[2]})")
    if layers[0].in_channels != wanted:
        raise PropertyFailed(f"The first convolution after up-sampling takes the concatenation of the skip "
                             f"({skip_channels} channels) and the up-sampled x ({up_channels} channels).",
                             layers[0].in_channels, wanted,
                             hint="`torch.cat([skip, x], dim=1)` stacks channels: build `DoubleConv(skip_channels + "
                                  "up-sampled channels, out_channels)`. Adding x and skip would need equal channel counts.")


def realign(up: torch.Tensor, size: tuple[int, int], align: str) -> torch.Tensor:
    """The up-sampled map brought to the skip's ``size`` one way or another (the right one: ``"replicate"``)."""
    dh, dw = size[0] - up.shape[-2], size[1] - up.shape[-1]
    if align == "replicate":
        return align_to(up, size)
    if align == "zeros":
        return F.pad(up, (0, dw, 0, dh))
    if align == "top/left":
        return F.pad(up, (dw, 0, dh, 0), mode="replicate")
    if align == "resize":
        return F.interpolate(up, size=size, mode="bilinear", align_corners=False)
    raise ValueError(align)


def alignment_variants(run: Callable[..., torch.Tensor], odd: bool) -> list[Variant]:
    """Slips and conventions of ordering and alignment; ``run(x_first=..., align=...)`` computes one."""
    order = "concatenation order [skip, x]"
    align = "odd sizes: pad bottom/right by replicating"
    variants = [Variant(order, lambda: run(x_first=True), "You concatenate [x, skip]; the course's convention is "
                        "[skip, x].", convention=ORDER_WHY)]
    if odd:
        variants += [
            Variant(align, lambda: run(align="resize"), "You resize the up-sampled map to the skip's size instead of "
                    "padding the missing row.", convention=RESIZE_WHY),
            Variant(align, lambda: run(align="resize", x_first=True), "You resize the up-sampled map to the skip's "
                    "size and concatenate [x, skip]: two conventions that differ from the course's.",
                    convention=f"{RESIZE_WHY} {ORDER_WHY}"),
            Variant(align, lambda: run(align="zeros"), "You pad with zeros instead of replicating the edge: the new "
                    "row is 0, a value the network never sees elsewhere, so the bottom/right border gets an edge "
                    "that is not in the image."),
            Variant(align, lambda: run(align="top/left"), "You pad at the top/left: max-pooling dropped the last "
                    "row and column, so every up-sampled pixel is now one row and column away from its skip pixel."),
        ]
    return variants


def compare_blocks(cls: type, reference: nn.Module, args: tuple, probe: tuple, cases: tuple,
                   variants: Callable[[torch.Tensor, torch.Tensor], list[Variant]], seed: int) -> None:
    """Copy ``reference``'s weights into ``cls(*args)`` and compare outputs on every ``(x, skip)`` case.

    Layers are paired by the order they run in on the ``probe`` shapes (an even case). On a
    mismatch ``variants(x, skip)`` names the slip or the other convention.
    """
    reference = reference.eval()
    module = build_module(cls, *args)
    x, skip = pair(*probe, seed=10)
    share_weights(layers_in_call_order(reference, lambda m: m(x, skip), learner=False),
                  layers_in_call_order(module, lambda m: m(x, skip)))
    module.eval()
    for i, (x_shape, skip_shape) in enumerate(cases):
        x, skip = pair(x_shape, skip_shape, seed=seed + i)
        with torch.no_grad():
            expected = reference(x, skip)
            got = require_tensor(call_learner(module, x, skip), "The output")
            expect_same(got, expected, f"x {x_shape}, skip {skip_shape}, eval mode", variants(x, skip), atol=1e-4,
                        shown=lambda t: t[0, 0, -1, -4:] if isinstance(t, torch.Tensor) and t.ndim == 4 else t)
