"""Check of exercise 04: the U-Net's ``forward``, encoder, bottleneck, decoder with skips, head.

The learner gets ``__init__`` (``inc``, ``downs``, ``ups``, ``head`` built from the package's
``DoubleConv``, ``Down`` and ``Up``, exactly as ``unet_helpers.UNet`` builds them) and writes
``forward``. Reference: ``unet_helpers.unet.UNet`` with the learner's randomised weights and
BatchNorm statistics copied in by call order; outputs, gradients of every parameter and the
running statistics a train-mode forward leaves behind are compared, at depths 2, 3 and 4.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..unet import UNet
from .compare import Variant, expect_same, same
from .core import Property, PropertyFailed
from .isolation import build_module, call_learner
from .spec import ExerciseSpec
from .tools import generator, layers_in_call_order, randomize_, require_tensor, share_weights

CONFIGS = ((3, 2, 4, 3), (1, 4, 4, 2), (2, 3, 2, 4))  # (in_channels, num_classes, base, depth)
EVEN = ((2, 32, 32), (1, 16, 24))  # (N, H, W)
ODD = ((1, 33, 35), (2, 19, 24), (1, 17, 17))


def _build(cls: type, config: tuple[int, int, int, int]) -> nn.Module:
    in_channels, num_classes, base, depth = config
    return build_module(cls, in_channels, num_classes, base, depth)


def _image(config: tuple[int, ...], size: tuple[int, int, int], seed: int) -> torch.Tensor:
    n, h, w = size
    return torch.randn(n, config[0], h, w, generator=generator(seed))


def _paired(cls: type, config: tuple[int, int, int, int], seed: int) -> tuple[UNet, nn.Module]:
    """A randomised reference ``UNet`` and the learner's model with the same weights, paired by call order."""
    reference = randomize_(UNet(*config), seed=seed).eval()
    module = _build(cls, config).eval()
    probe = _image(config, (1, 32, 32), seed=1)
    share_weights(layers_in_call_order(reference, lambda m: m(probe), learner=False),
                  layers_in_call_order(module, lambda m: m(probe)))
    return reference, module


def _without_skips(reference: UNet, x: torch.Tensor) -> torch.Tensor:
    features = [reference.inc(x)]
    for down in reference.downs:
        features.append(down(features[-1]))
    y = features.pop()
    for up in reference.ups:
        y = up(y, torch.zeros_like(features.pop()))
    return reference.head(y)


def _variants(reference: UNet, x: torch.Tensor) -> list[Variant]:
    return [
        Variant("same output as unet_helpers.UNet", lambda: reference(x).softmax(dim=1),
                "You return softmax probabilities; the model returns logits (the losses apply softmax themselves, "
                "and a second softmax would squash the scores)."),
        Variant("same output as unet_helpers.UNet", lambda: _without_skips(reference, x),
                "Your decoder gets zeros instead of the encoder maps: without skips the fine detail of the early "
                "stages never reaches the output."),
    ]


def _shapes(cls: type, sizes: tuple) -> None:
    for config in CONFIGS:
        module = _build(cls, config).eval()
        for seed, size in enumerate(sizes):
            x = _image(config, size, seed)
            with torch.no_grad():
                out = require_tensor(call_learner(module, x), "The output")
            wanted = (size[0], config[1], size[1], size[2])
            if tuple(out.shape) != wanted:
                raise PropertyFailed(f"MyUNet(in_channels={config[0]}, num_classes={config[1]}, base={config[2]}, "
                                     f"depth={config[3]}) on {tuple(x.shape)} gives the wrong shape.",
                                     tuple(out.shape), wanted)


def _even(cls: type) -> None:
    _shapes(cls, EVEN)


def _odd(cls: type) -> None:
    _shapes(cls, ODD)


def _matches(cls: type) -> None:
    for index, config in enumerate(CONFIGS):
        reference, module = _paired(cls, config, seed=50 + index)
        for seed, size in enumerate(EVEN + ODD):
            x = _image(config, size, seed=60 + seed)
            with torch.no_grad():
                expected = reference(x)
                got = require_tensor(call_learner(module, x), "The output")
                expect_same(got, expected, f"depth {config[3]}, input {tuple(x.shape)}, eval mode",
                            _variants(reference, x), atol=1e-4,
                            shown=lambda t: t[0, :, -1, -1] if isinstance(t, torch.Tensor) and t.ndim == 4 else t)


def _gradients(cls: type) -> None:
    config = CONFIGS[0]
    reference, module = _paired(cls, config, seed=70)
    x = _image(config, (2, 24, 20), seed=71)
    weights = torch.randn(2, config[1], 24, 20, generator=generator(72))
    (reference(x) * weights).sum().backward()
    out = require_tensor(call_learner(module, x), "The output")
    if not out.requires_grad:
        raise PropertyFailed("The output has no gradient: part of your forward runs without autograd "
                             "(torch.no_grad(), .detach(), or NumPy).", "requires_grad=False", "requires_grad=True")
    call_learner(lambda: (out * weights).sum().backward())
    ref_layers = layers_in_call_order(reference, lambda m: m(x), learner=False)
    my_layers = layers_in_call_order(module, lambda m: m(x))
    for index, (ref, mine) in enumerate(zip(ref_layers, my_layers)):
        for (name, p), q in zip(ref.named_parameters(), mine.parameters()):
            if q.grad is None or not same(q.grad, p.grad, atol=1e-4, rtol=1e-3):
                raise PropertyFailed(f"The gradient of layer {index} ({type(mine).__name__}.{name}) differs from the "
                                     "reference's: some path of your forward is cut off from training (a detached or "
                                     "recomputed skip, say).", None if q.grad is None else q.grad.reshape(-1)[:4],
                                     p.grad.reshape(-1)[:4],
                                     hint="Keep the encoder maps themselves as skips (no .detach(), no torch.no_grad()).")


def _buffers(cls: type) -> None:
    config = CONFIGS[0]
    reference, module = _paired(cls, config, seed=80)
    reference.train()
    module.train()
    x = 1.0 + 2.0 * _image(config, (3, 32, 32), seed=81)
    with torch.no_grad():
        reference(x)
        call_learner(module, x)
    ref_norms = [m for m in layers_in_call_order(reference, lambda m: m.eval()(x), learner=False)
                 if isinstance(m, nn.BatchNorm2d)]
    my_norms = [m for m in layers_in_call_order(module, lambda m: m.eval()(x)) if isinstance(m, nn.BatchNorm2d)]
    for index, (ref, mine) in enumerate(zip(ref_norms, my_norms)):
        if int(mine.num_batches_tracked) != int(ref.num_batches_tracked) or not same(mine.running_mean, ref.running_mean, atol=1e-4):
            raise PropertyFailed(f"After one train-mode forward, BatchNorm layer {index} has seen "
                                 f"{int(mine.num_batches_tracked)} batch(es) and other running statistics than the "
                                 "reference's: your forward runs some block more than once.",
                                 int(mine.num_batches_tracked), int(ref.num_batches_tracked),
                                 hint="Compute each encoder map once and keep it: `features.append(down(features[-1]))`.")


def _properties() -> list[Property]:
    configs = "; ".join(f"in {c[0]}, K {c[1]}, base {c[2]}, depth {c[3]}" for c in CONFIGS)
    return [
        Property("output (N, K, H, W) (even sizes)", f"{configs}; inputs {', '.join(map(str, EVEN))} (N, H, W)", _even,
                 "The head maps base channels to K; every Up returns its skip's size, so the output has the input's."),
        Property("odd sizes: output keeps H and W", f"the same models; inputs {', '.join(map(str, ODD))}", _odd),
        Property("same output as unet_helpers.UNet", "random weights copied in, eval mode, depths 2, 3, 4, even and "
                 "odd sizes", _matches,
                 "Encoder: `features = [self.inc(x)]`, then `features.append(down(features[-1]))` for every Down. "
                 "Decoder: start from the deepest map, `x = features.pop()`, then `x = up(x, features.pop())`."),
        Property("gradients reach every layer as in the reference", "loss = sum(output * random weights), "
                 "gradient of every parameter", _gradients),
        Property("each block runs once per forward", "BatchNorm statistics after one train-mode forward", _buffers),
    ]


UNET_FORWARD = ExerciseSpec(
    name="unet_forward",
    title="The U-Net's forward: encoder, bottleneck, decoder with skips",
    notebook="ex04_unet",
    task="Complete `MyUNet.forward(self, x)`: `x (N, in_channels, H, W)` -> logits `(N, num_classes, H, W)`, using "
         "the blocks `__init__` builds: `self.inc`, `self.downs`, `self.ups` (deepest first) and `self.head`.",
    properties=_properties,
    hints=(
        "On the way down, keep every map the decoder will need: the output of `inc` and of each `Down`.",
        "`features = [self.inc(x)]`; `for down in self.downs: features.append(down(features[-1]))`. The last one is "
        "the bottleneck.",
        "`x = features.pop()`; `for up in self.ups: x = up(x, features.pop())`; `return self.head(x)`. `pop()` hands "
        "the deepest remaining map to the deepest remaining Up.",
    ),
    defines=("MyUNet",),
    reference="unet_helpers/unet.py: UNet.forward",
    forbidden=("unet_helpers.unet.UNet", "unet_helpers.unet.unet_from_config"),
    next_steps="count the parameters of `MyUNet(3, 2, base=32)` (7,849,634 with bilinear up-sampling) and run it on "
               "a 250x250 image.",
    answer_kind="class",
)
