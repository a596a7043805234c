"""Checks for the block exercises: ``DoubleConv`` (ex01) and the ``Up`` block with its skip (ex02).

References: ``unet_helpers.blocks.DoubleConv`` and ``unet_helpers.blocks.Up``. Behaviour is
compared by copying the reference's (randomised) weights into the learner's layers, in the order
the learner's ``forward`` calls them, and comparing outputs.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..blocks import DoubleConv, Up, align_to
from .core import Property, PropertyFailed, call_learner
from .spec import ExerciseSpec
from .tools import close, generator, layers_in_call_order, randomize_, require_tensor, share_weights

# ---------------------------------------------------------------------------------------------
# ex01: DoubleConv
# ---------------------------------------------------------------------------------------------
_DC_SIZES = ((2, 3, 16, 16), (2, 3, 17, 20), (1, 3, 9, 7))  # (N, C, H, W): even, odd, batch of one


def build_module(cls: type, *args: int) -> nn.Module:
    module = call_learner(cls, *args)
    if not isinstance(module, nn.Module):
        raise PropertyFailed(f"{cls.__name__}{args} did not build an nn.Module.", type(module).__name__, "an nn.Module")
    return module


def _dc_builds(cls: type) -> None:
    build_module(cls, 3, 8)


def _dc_keeps_size(cls: type) -> None:
    module = build_module(cls, 3, 8)
    for n, c, h, w in _DC_SIZES:
        out = require_tensor(call_learner(module, torch.randn(n, c, h, w, generator=generator(h))), "The output")
        if tuple(out.shape) != (n, 8, h, w):
            raise PropertyFailed(f"On an input of shape {(n, c, h, w)} the output has the wrong shape.",
                                 tuple(out.shape), (n, 8, h, w))


def _convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def _dc_two_convs(cls: type) -> None:
    convs = _convs(build_module(cls, 3, 8))
    if len(convs) != 2:
        raise PropertyFailed(f"DoubleConv(3, 8) has {len(convs)} Conv2d layer(s).", len(convs), 2)
    for index, (conv, channels) in enumerate(zip(convs, ((3, 8), (8, 8))), start=1):
        if conv.kernel_size != (3, 3) or conv.stride != (1, 1):
            raise PropertyFailed(f"Convolution {index} has kernel_size={conv.kernel_size}, stride={conv.stride}.",
                                 conv, f"Conv2d({channels[0]}, {channels[1]}, kernel_size=3, padding=1, bias=False)")
        if (conv.in_channels, conv.out_channels) != channels:
            raise PropertyFailed(f"Convolution {index} maps {conv.in_channels} -> {conv.out_channels} channels.",
                                 (conv.in_channels, conv.out_channels), channels,
                                 hint="The second convolution takes the first one's output: out_channels -> out_channels.")


def _dc_no_bias(cls: type) -> None:
    for index, conv in enumerate(_convs(build_module(cls, 3, 8)), start=1):
        if conv.bias is not None:
            raise PropertyFailed(f"Convolution {index} has a bias.", "bias=True", "bias=False")


def _dc_batchnorm(cls: type) -> None:
    norms = [m for m in build_module(cls, 3, 8).modules() if isinstance(m, nn.BatchNorm2d)]
    features = [bn.num_features for bn in norms]
    if features != [8, 8]:
        raise PropertyFailed(f"DoubleConv(3, 8) has {len(norms)} BatchNorm2d layer(s) with num_features {features}.",
                             features, [8, 8])


def _call_sequence(module: nn.Module, x: torch.Tensor) -> list[str]:
    names: list[str] = []
    leaves = [m for m in module.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(lambda m, _i, _o: names.append(type(m).__name__)) for m in leaves]
    try:
        with torch.no_grad():
            call_learner(module, x)
    finally:
        for hook in hooks:
            hook.remove()
    return names


def _dc_order(cls: type) -> None:
    for mode in ("eval", "train"):
        reference = randomize_(DoubleConv(3, 8), seed=1)
        module = build_module(cls, 3, 8)
        x = torch.randn(2, 3, 12, 10, generator=generator(2))
        share_weights(layers_in_call_order(reference, lambda m: m(x)), layers_in_call_order(module, lambda m: m(x)))
        reference.train(mode == "train")
        module.train(mode == "train")
        for n, c, h, w in _DC_SIZES:
            x = torch.randn(n, c, h, w, generator=generator(n * h + w))
            with torch.no_grad():
                expected, got = reference(x), require_tensor(call_learner(module, x), "The output")
            if not close(got, expected, atol=1e-4):
                _diagnose_order(module, got, expected, x, mode)


def _diagnose_order(module: nn.Module, got: torch.Tensor, expected: torch.Tensor, x: torch.Tensor, mode: str) -> None:
    sequence = [name for name in _call_sequence(module, x) if name in ("Conv2d", "BatchNorm2d", "ReLU")]
    wanted = ["Conv2d", "BatchNorm2d", "ReLU"] * 2
    shown = " -> ".join(sequence)
    if "ReLU" in sequence and sequence != wanted:
        count = sequence.count("ReLU")
        message = ("Your layers run in another order: ReLU must come after BatchNorm." if count == 2 else
                   f"Your block applies ReLU {count} time(s); it needs one after each BatchNorm.")
        raise PropertyFailed(message, shown, " -> ".join(wanted), name="order conv -> BatchNorm -> ReLU")
    if bool((got < 0).any()):
        raise PropertyFailed("Your output has negative values, so it does not end with a ReLU.",
                             float(got.min()), ">= 0", name="order conv -> BatchNorm -> ReLU")
    raise PropertyFailed(f"With the reference's weights copied into your layers, the outputs differ ({mode} mode, "
                         f"input {tuple(x.shape)}; largest difference {float((got - expected).abs().max()):.3g}).",
                         got[0, 0, 0, :4], expected[0, 0, 0, :4], name="order conv -> BatchNorm -> ReLU")


def _double_conv_properties() -> list[Property]:
    return [
        Property("builds a module", "DoubleConv(3, 8)", _dc_builds),
        Property("keeps height and width", "inputs " + ", ".join(str(s) for s in _DC_SIZES) + " (odd sizes, batch of one)",
                 _dc_keeps_size, "A 3x3 convolution with padding=1 keeps H and W; padding=0 loses 2 pixels per convolution."),
        Property("two 3x3 convolutions", "DoubleConv(3, 8): Conv2d 3 -> 8 then 8 -> 8", _dc_two_convs,
                 "`nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)`, then the same from "
                 "`out_channels` to `out_channels`."),
        Property("convolutions without bias", "every Conv2d of DoubleConv(3, 8)", _dc_no_bias,
                 "BatchNorm subtracts the per-channel mean right after the convolution, which cancels any bias; "
                 "pass `bias=False`."),
        Property("BatchNorm2d after each convolution", "DoubleConv(3, 8): two BatchNorm2d(8)", _dc_batchnorm,
                 "`nn.BatchNorm2d(out_channels)` after each convolution."),
        Property("order conv -> BatchNorm -> ReLU", "outputs with unet_helpers.DoubleConv's random weights copied in, "
                 "train and eval mode, inputs " + ", ".join(str(s) for s in _DC_SIZES), _dc_order,
                 "Conv -> BatchNorm -> ReLU, then the same again; `nn.Sequential` keeps the order readable."),
    ]


DOUBLE_CONV = ExerciseSpec(
    name="double_conv",
    title="DoubleConv: (3x3 conv -> BatchNorm -> ReLU) twice",
    notebook="ex01_double_conv",
    task="Write `class MyDoubleConv(nn.Module)` with `__init__(self, in_channels, out_channels)` and "
         "`forward(self, x)`: `(N, in_channels, H, W) -> (N, out_channels, H, W)`.",
    properties=_double_conv_properties,
    hints=(
        "Build the layers in `__init__` and only call them in `forward`. `nn.Sequential(...)` holds six layers.",
        "The six layers: `Conv2d(in, out, 3, padding=1, bias=False)`, `BatchNorm2d(out)`, `ReLU()`, then "
        "`Conv2d(out, out, 3, padding=1, bias=False)`, `BatchNorm2d(out)`, `ReLU()`.",
        "Keep them in `self.net = nn.Sequential(...)`; `forward` is `return self.net(x)`.",
    ),
    defines=("MyDoubleConv",),
    reference="unet_helpers/blocks.py: DoubleConv",
    next_steps="count the parameters of `MyDoubleConv(64, 128)` (no conv biases) and compare with "
               "`unet_helpers.DoubleConv`; then look at how `Down` reuses it.",
    answer_kind="class",
)

# ---------------------------------------------------------------------------------------------
# ex02: Up with the skip connection
# ---------------------------------------------------------------------------------------------
_UP_ARGS = (8, 4, 6)  # in_channels, skip_channels, out_channels
_EVEN = (((2, 8, 5, 6), (2, 4, 10, 12)), ((1, 8, 4, 4), (1, 4, 8, 8)))  # (x shape, skip shape)
_ODD = (((1, 8, 4, 4), (1, 4, 9, 9)), ((2, 8, 3, 5), (2, 4, 7, 11)), ((1, 8, 4, 5), (1, 4, 8, 11)))


def _pair(x_shape: tuple[int, ...], skip_shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = generator(seed)
    return torch.randn(x_shape, generator=gen), torch.randn(skip_shape, generator=gen)


def _up_builds(cls: type) -> None:
    build_module(cls, *_UP_ARGS)


def _up_concat_channels(cls: type) -> None:
    convs = _convs(build_module(cls, *_UP_ARGS))
    if not convs:
        raise PropertyFailed("Up(8, 4, 6) has no Conv2d layer.", 0, "a DoubleConv(4 + 8, 6)")
    if convs[0].in_channels != 12:
        raise PropertyFailed("The first convolution after up-sampling takes the concatenation of the skip (4 channels) "
                             "and the up-sampled x (8 channels).", convs[0].in_channels, 12,
                             hint="`torch.cat([skip, x], dim=1)` stacks channels: `DoubleConv(skip_channels + in_channels, "
                                  "out_channels). Adding x and skip would need equal channel counts.")


def check_up_shapes(cls: type, args: tuple, cases: tuple, hint: str) -> None:
    """``cls(*args)(x, skip)`` has shape ``(N, out_channels, H, W)`` of the skip for every case (ex02, ex07)."""
    module = build_module(cls, *args)
    for seed, (x_shape, skip_shape) in enumerate(cases):
        x, skip = _pair(x_shape, skip_shape, seed)
        out = require_tensor(call_learner(module, x, skip), "The output")
        wanted = (skip_shape[0], args[2], *skip_shape[2:])
        if tuple(out.shape) != wanted:
            raise PropertyFailed(f"For x {x_shape} and skip {skip_shape} the output should have the skip's H and W.",
                                 tuple(out.shape), wanted, hint=hint)


_SHAPE_HINT = "Up-sample x (not the skip) by 2, then concatenate; the output keeps the skip's size."


def _up_even(cls: type) -> None:
    check_up_shapes(cls, _UP_ARGS, _EVEN, _SHAPE_HINT)


def _up_odd(cls: type) -> None:
    check_up_shapes(cls, _UP_ARGS, _ODD, _SHAPE_HINT)


def _variant(ref: Up, x: torch.Tensor, skip: torch.Tensor, mode: str = "bilinear", corners: bool = False,
             x_first: bool = False, align: str = "replicate bottom/right") -> torch.Tensor:
    """What ``ref`` computes with one convention changed (used to name the learner's mistake)."""
    size = tuple(skip.shape[-2:])
    if align == "resize":
        up = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    else:
        up = F.interpolate(x, scale_factor=2, mode=mode, **({} if mode == "nearest" else {"align_corners": corners}))
        dh, dw = size[0] - up.shape[-2], size[1] - up.shape[-1]
        if align == "replicate bottom/right":
            up = align_to(up, size)
        elif align == "zeros":
            up = F.pad(up, (0, dw, 0, dh))
        elif align == "replicate top/left":
            up = F.pad(up, (dw, 0, dh, 0), mode="replicate")
    return ref.conv(torch.cat([up, skip] if x_first else [skip, up], dim=1))  # (N, 12, H, W) -> (N, 6, H, W)


_EVEN_MISTAKES = (
    ("concatenation order [skip, x]", dict(x_first=True), "You concatenate [x, skip]; the convention is [skip, x]."),
    ("bilinear up-sampling, align_corners=False", dict(corners=True), "You up-sample with align_corners=True."),
    ("bilinear up-sampling, align_corners=False", dict(mode="nearest"), "You up-sample with mode='nearest'."),
)
_ODD_MISTAKES = (
    ("odd sizes: pad bottom/right by replicating", dict(align="resize"),
     "You resize x to the skip's size, which shifts every up-sampled pixel a little."),
    ("odd sizes: pad bottom/right by replicating", dict(align="zeros"), "You pad with zeros instead of replicating the edge."),
    ("odd sizes: pad bottom/right by replicating", dict(align="replicate top/left"), "You pad at the top/left."),
)


def compare_up_block(cls: type, reference: nn.Module, args: tuple, probe: tuple, cases: tuple, mistakes: tuple,
                     variant, seed: int = 20) -> None:
    """Copy ``reference``'s weights into ``cls(*args)`` and compare outputs on every ``(x, skip)`` case.

    The layers are paired by the order they run in on the ``probe`` shapes (an even case).

    On a mismatch, each ``(property name, variant kwargs, message)`` of ``mistakes`` is tried with
    ``variant(reference, x, skip, **kwargs)``; the first that reproduces the learner's output names
    the slip. Used by ex02 (bilinear ``Up``) and ex07 (transposed ``Up``).
    """
    reference = reference.eval()
    module = build_module(cls, *args)
    x, skip = _pair(*probe, seed=10)
    share_weights(layers_in_call_order(reference, lambda m: m(x, skip)),
                  layers_in_call_order(module, lambda m: m(x, skip)))
    module.eval()
    for i, (x_shape, skip_shape) in enumerate(cases):
        x, skip = _pair(x_shape, skip_shape, seed=seed + i)
        with torch.no_grad():
            expected, got = reference(x, skip), require_tensor(call_learner(module, x, skip), "The output")
            if close(got, expected, atol=1e-4):
                continue
            for name, change, message in mistakes:
                if close(got, variant(reference, x, skip, **change), atol=1e-4):
                    raise PropertyFailed(message, name=name)
        raise PropertyFailed(f"With the reference's weights copied into your layers, the outputs differ for x "
                             f"{x_shape}, skip {skip_shape} (eval mode).", got[0, 0, -1, -4:], expected[0, 0, -1, -4:])


def _compare_with_reference(cls: type, cases: tuple, mistakes: tuple) -> None:
    compare_up_block(cls, randomize_(Up(*_UP_ARGS), seed=3), _UP_ARGS, _EVEN[0], cases, mistakes, _variant, seed=20)


def _up_matches_even(cls: type) -> None:
    _compare_with_reference(cls, _EVEN, _EVEN_MISTAKES)


def _up_matches_odd(cls: type) -> None:
    _compare_with_reference(cls, _ODD, _ODD_MISTAKES + _EVEN_MISTAKES)


def _up_properties() -> list[Property]:
    pairs = lambda cases: ", ".join(f"x {x} + skip {s}" for x, s in cases)  # noqa: E731
    return [
        Property("builds a module", "MyUp(8, 4, 6)", _up_builds),
        Property("concatenate, don't add: DoubleConv(skip_channels + in_channels, out_channels)",
                 "MyUp(8, 4, 6): first convolution takes 12 channels", _up_concat_channels),
        Property("output has the skip's size (even sizes)", pairs(_EVEN), _up_even),
        Property("odd sizes: output still has the skip's size", pairs(_ODD), _up_odd,
                 "x has h = H // 2 rows, so doubling gives H - 1 when H is odd. Pad the up-sampled map at the bottom "
                 "and right: `F.pad(x, (0, W - w2, 0, H - h2), mode='replicate')`."),
        Property("same output as unet_helpers.Up (even sizes)", "random weights copied in, eval mode, " + pairs(_EVEN),
                 _up_matches_even, "nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False), then "
                 "`torch.cat([skip, x], dim=1)`, then the `DoubleConv`."),
        Property("odd sizes: pad bottom/right by replicating", "random weights copied in, eval mode, " + pairs(_ODD),
                 _up_matches_odd, "F.pad(x, (0, dw, 0, dh), mode='replicate') adds dw columns on the right and dh rows "
                 "at the bottom."),
    ]


UP_BLOCK = ExerciseSpec(
    name="up_block",
    title="Up: up-sample, align to the skip, concatenate [skip, x], DoubleConv",
    notebook="ex02_up_block",
    task="Write `class MyUp(nn.Module)` with `__init__(self, in_channels, skip_channels, out_channels)` and "
         "`forward(self, x, skip)`: `x (N, in_channels, h, w)` and `skip (N, skip_channels, H, W)` -> "
         "`(N, out_channels, H, W)`.",
    properties=_up_properties,
    hints=(
        "Three steps in `forward`: up-sample x by 2; make it exactly the skip's H and W; concatenate and convolve.",
        "`nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False)`; then `dh = skip.shape[-2] - x.shape[-2]` "
        "and `dw` likewise, `F.pad(x, (0, dw, 0, dh), mode='replicate')`.",
        "`torch.cat([skip, x], dim=1)` has `skip_channels + in_channels` channels, so build "
        "`DoubleConv(skip_channels + in_channels, out_channels)` in `__init__`.",
    ),
    defines=("MyUp",),
    reference="unet_helpers/blocks.py: Up and align_to",
    next_steps="build `unet_helpers.UNet(base=8)` and run it on a 33x35 image: every decoder stage meets the odd "
               "sizes your padding handles.",
    answer_kind="class",
)

