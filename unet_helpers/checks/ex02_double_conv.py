"""Check of exercise 02: ``DoubleConv``, (3x3 conv -> BatchNorm -> ReLU) twice.

Reference: ``unet_helpers.blocks.DoubleConv``. Behaviour is compared by copying the reference's
randomised weights *and* BatchNorm statistics into the learner's layers, in the order the
learner's ``forward`` calls them, then comparing outputs (train and eval mode) and the running
statistics a train-mode forward leaves behind.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..blocks import DoubleConv
from .compare import same
from .core import Property, PropertyFailed
from .isolation import build_module, call_learner
from .spec import ExerciseSpec
from .tools import generator, layers_in_call_order, randomize_, require_tensor, share_weights

SIZES = ((2, 3, 16, 16), (2, 3, 17, 20), (1, 3, 9, 7))  # (N, C, H, W): even, odd, batch of one


def _builds(cls: type) -> None:
    build_module(cls, 3, 8)


def _keeps_size(cls: type) -> None:
    module = build_module(cls, 3, 8)
    for n, c, h, w in SIZES:
        out = require_tensor(call_learner(module, torch.randn(n, c, h, w, generator=generator(h))), "The output")
        if tuple(out.shape) != (n, 8, h, w):
            raise PropertyFailed(f"On an input of shape {(n, c, h, w)} the output has the wrong shape.",
                                 tuple(out.shape), (n, 8, h, w))


def convs(module: nn.Module) -> list[nn.Conv2d]:
    """The ``Conv2d`` layers of ``module`` in registration order."""
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def _two_convs(cls: type) -> None:
    layers = convs(build_module(cls, 3, 8))
    if len(layers) != 2:
        raise PropertyFailed(f"DoubleConv(3, 8) has {len(layers)} Conv2d layer(s).", len(layers), 2)
    for index, (conv, channels) in enumerate(zip(layers, ((3, 8), (8, 8))), start=1):
        if conv.kernel_size != (3, 3) or conv.stride != (1, 1):
            raise PropertyFailed(f"Convolution {index} has kernel_size={conv.kernel_size}, stride={conv.stride}.",
                                 conv, f"Conv2d({channels[0]}, {channels[1]}, kernel_size=3, padding=1, bias=False)")
        if (conv.in_channels, conv.out_channels) != channels:
            raise PropertyFailed(f"Convolution {index} maps {conv.in_channels} -> {conv.out_channels} channels.",
                                 (conv.in_channels, conv.out_channels), channels,
                                 hint="The second convolution takes the first one's output: out_channels -> out_channels.")


def _no_bias(cls: type) -> None:
    for index, conv in enumerate(convs(build_module(cls, 3, 8)), start=1):
        if conv.bias is not None:
            raise PropertyFailed(f"Convolution {index} has a bias.", "bias=True", "bias=False")


def _batchnorm(cls: type) -> None:
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


def paired(cls: type, seed: int = 1) -> tuple[nn.Module, nn.Module]:
    """``(reference, learner)``: a randomised ``DoubleConv(3, 8)`` and the learner's block with its weights."""
    reference = randomize_(DoubleConv(3, 8), seed=seed)
    module = build_module(cls, 3, 8)
    x = torch.randn(2, 3, 12, 10, generator=generator(2))
    share_weights(layers_in_call_order(reference, lambda m: m(x), learner=False),
                  layers_in_call_order(module, lambda m: m(x)))
    return reference, module


def _order(cls: type) -> None:
    for mode in ("eval", "train"):
        reference, module = paired(cls)
        reference.train(mode == "train")
        module.train(mode == "train")
        for n, c, h, w in SIZES:
            x = torch.randn(n, c, h, w, generator=generator(n * h + w))
            with torch.no_grad():
                expected, got = reference(x), require_tensor(call_learner(module, x), "The output")
            if not same(got, expected, atol=1e-4):
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


def _running_statistics(cls: type) -> None:
    reference, module = paired(cls, seed=4)
    reference.train()
    module.train()
    x = 2.0 + 3.0 * torch.randn(4, 3, 11, 13, generator=generator(40))
    with torch.no_grad():
        reference(x)
        call_learner(module, x)
    norms = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    for index, (ref, mine) in enumerate(zip([m for m in reference.modules() if isinstance(m, nn.BatchNorm2d)], norms), 1):
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            got, expected = getattr(mine, name), getattr(ref, name)
            if got is None or not same(got, expected, atol=1e-4):
                raise PropertyFailed(f"After one train-mode forward, BatchNorm {index}'s `{name}` differs from the "
                                     "reference's: its statistics are not updated the standard way.",
                                     got, expected, hint="Use `nn.BatchNorm2d(out_channels)` with its defaults "
                                     "(momentum=0.1, eps=1e-5, track_running_stats=True): eval mode relies on them.")


def _properties() -> list[Property]:
    sizes = ", ".join(str(s) for s in SIZES)
    return [
        Property("builds a module", "MyDoubleConv(3, 8)", _builds),
        Property("keeps height and width", f"inputs {sizes} (odd sizes, batch of one)", _keeps_size,
                 "A 3x3 convolution with padding=1 keeps H and W; padding=0 loses 2 pixels per convolution."),
        Property("two 3x3 convolutions", "MyDoubleConv(3, 8): Conv2d 3 -> 8 then 8 -> 8", _two_convs,
                 "`nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)`, then the same from "
                 "`out_channels` to `out_channels`."),
        Property("convolutions without bias", "every Conv2d of MyDoubleConv(3, 8)", _no_bias,
                 "BatchNorm subtracts the per-channel mean right after the convolution, which cancels any bias; "
                 "pass `bias=False`."),
        Property("BatchNorm2d after each convolution", "MyDoubleConv(3, 8): two BatchNorm2d(8)", _batchnorm,
                 "`nn.BatchNorm2d(out_channels)` after each convolution."),
        Property("order conv -> BatchNorm -> ReLU", "outputs with a random DoubleConv's weights and statistics copied "
                 f"in, train and eval mode, inputs {sizes}", _order,
                 "Conv -> BatchNorm -> ReLU, then the same again; `nn.Sequential` keeps the order readable."),
        Property("BatchNorm statistics update as the reference's", "running mean, variance and batch count after a "
                 "train-mode forward on (4, 3, 11, 13)", _running_statistics),
    ]


DOUBLE_CONV = ExerciseSpec(
    name="double_conv",
    title="DoubleConv: (3x3 conv -> BatchNorm -> ReLU) twice",
    notebook="ex02_double_conv",
    task="Write `class MyDoubleConv(nn.Module)` with `__init__(self, in_channels, out_channels)` and "
         "`forward(self, x)`: `(N, in_channels, H, W) -> (N, out_channels, H, W)`.",
    properties=_properties,
    hints=(
        "Build the layers in `__init__` and only call them in `forward`. `nn.Sequential(...)` holds six layers.",
        "The six layers: `Conv2d(in, out, 3, padding=1, bias=False)`, `BatchNorm2d(out)`, `ReLU()`, then "
        "`Conv2d(out, out, 3, padding=1, bias=False)`, `BatchNorm2d(out)`, `ReLU()`.",
        "Keep them in `self.net = nn.Sequential(...)`; `forward` is `return self.net(x)`.",
    ),
    defines=("MyDoubleConv",),
    reference="unet_helpers/blocks.py: DoubleConv",
    forbidden=("unet_helpers.blocks.DoubleConv", "unet_helpers.blocks.Down", "unet_helpers.blocks.Up",
               "unet_helpers.unet.UNet"),
    next_steps="count the parameters of `MyDoubleConv(64, 128)` (no conv biases) and compare with "
               "`unet_helpers.DoubleConv`; then look at how `Down` reuses it.",
    answer_kind="class",
)
