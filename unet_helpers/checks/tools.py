"""Small helpers shared by the exercise checks: seeded inputs, type checks, weight sharing.

Used by the exercise modules ``checks/exNN_*.py``; values are compared with ``compare.py``.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn

from .core import PropertyFailed
from .isolation import call_learner

LAYER_TYPES = (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d)


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (checks never touch the global random state)."""
    return torch.Generator().manual_seed(seed)


def random_target(shape: tuple[int, ...], num_classes: int, seed: int, classes: list[int] | None = None) -> torch.Tensor:
    """Class ids ``(N, H, W)`` int64 drawn from ``classes`` (default all ``K``), each one present."""
    classes = list(range(num_classes)) if classes is None else classes
    picks = torch.randint(0, len(classes), shape, generator=generator(seed))
    target = torch.tensor(classes)[picks]  # (N, H, W)
    flat = target.view(-1)
    flat[: len(classes)] = torch.tensor(classes)  # every listed class has at least one pixel
    return target


def require_tensor(value: Any, what: str, shape: tuple[int, ...] | None = None, floating: bool = True) -> torch.Tensor:
    """Fail the property unless ``value`` is a (float) tensor of ``shape``."""
    if not isinstance(value, torch.Tensor):
        raise PropertyFailed(f"{what} should be a torch.Tensor; got a {type(value).__name__}.", value,
                             "a torch.Tensor" + ("" if shape is None else f" of shape {shape}"))
    if shape is not None and tuple(value.shape) != shape:
        raise PropertyFailed(f"{what} has shape {tuple(value.shape)}, expected {shape}.", tuple(value.shape), shape)
    if floating and not value.is_floating_point():
        raise PropertyFailed(f"{what} has dtype {value.dtype}; it should be a float tensor.", value.dtype, "a float dtype",
                             hint="Integer division or counting gives integers: convert with .float() or .double().")
    return value


def layers_in_call_order(module: nn.Module, run: Callable[[nn.Module], Any], learner: bool = True) -> list[nn.Module]:
    """The conv and BatchNorm layers of ``module`` in the order ``run(module)`` calls them (once each).

    ``learner``: ``module`` is the learner's (run through ``call_learner``) or the reference (run directly).
    """
    order: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda m, _i, _o: order.append(m)) for m in module.modules()
             if isinstance(m, LAYER_TYPES)]
    try:
        with torch.no_grad():
            call_learner(run, module) if learner else run(module)
    finally:
        for hook in hooks:
            hook.remove()
    unique: list[nn.Module] = []
    for layer in order:
        if all(layer is not seen for seen in unique):
            unique.append(layer)
    return unique


def share_weights(reference: list[nn.Module], learner: list[nn.Module]) -> None:
    """Copy parameters and buffers of each reference layer into the learner's layer at the same position.

    Raises:
        PropertyFailed: when the layers differ in kind, number or shape.
    """
    kinds = lambda layers: [type(layer).__name__ for layer in layers]  # noqa: E731
    if kinds(reference) != kinds(learner):
        raise PropertyFailed("Your layers, in the order your forward uses them, differ from the expected ones.",
                             " -> ".join(kinds(learner)), " -> ".join(kinds(reference)))
    for ref, mine in zip(reference, learner):
        mine_state = mine.state_dict()
        for key, value in ref.state_dict().items():
            if key not in mine_state or mine_state[key].shape != value.shape:
                got = tuple(mine_state[key].shape) if key in mine_state else "missing"
                raise PropertyFailed(f"{type(ref).__name__} `{key}` has shape {got}, expected {tuple(value.shape)}.",
                                     got, tuple(value.shape))
        mine.load_state_dict(ref.state_dict())


def randomize_(module: nn.Module, seed: int) -> nn.Module:
    """Give every parameter and BatchNorm statistic random values, so that each of them matters."""
    gen = generator(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.BatchNorm2d):
                layer.weight.copy_(0.5 + torch.rand(layer.weight.shape, generator=gen))
                layer.bias.copy_(0.5 * torch.randn(layer.bias.shape, generator=gen))
                layer.running_mean.copy_(0.3 * torch.randn(layer.running_mean.shape, generator=gen))
                layer.running_var.copy_(0.5 + torch.rand(layer.running_var.shape, generator=gen))
            elif isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                layer.weight.copy_(0.3 * torch.randn(layer.weight.shape, generator=gen))
                if layer.bias is not None:
                    layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=gen))
    return module
