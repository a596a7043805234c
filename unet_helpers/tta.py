"""Test-time augmentation (TTA): predict the flipped (and turned) image too, and average.

A segmentation network is not exactly equivariant to flips: the same cell seen mirrored gets a
slightly different mask. Averaging the class *probabilities* of a few transformed copies, each
transformed back, removes some of that noise. ``TTA(model, "flips")`` averages the image and its
left-right, up-down and double flips (4 forward passes); ``TTA(model, "d4")`` adds the four
transposed turns (8 passes). It is a module wrapping the model, so every prediction path takes it
unchanged: ``predict(TTA(model), images)``, ``predict_tiled(TTA(model), image)`` (each tile is
augmented), ``slides.stream.predict_slide``, and the command line's ``predict --tta``.

Its forward returns the *logarithm* of the averaged probabilities. Those are
valid logits: the softmax of ``log p`` is ``p`` again, so ``scores_to_probs`` of its output is the
average itself. A one-logit binary model becomes a two-class one (``[1 - p, p]``), as
``scores_to_probs`` reads it anyway. Probabilities are clamped at 1e-12 before the logarithm, so
the round trip is exact to about that much.

Transposed turns (``"d4"``) swap height and width, which a U-Net of this package accepts at any size.
Shapes: images ``(N, C, H, W)``; output ``(N, max(K, 2), H, W)``.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from .inference import scores_to_probs

Transform = tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _flip(dims: tuple[int, ...]) -> Transform:
    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.flip(x, dims)

    return forward, forward  # a flip is its own inverse


def _turn(k: int) -> Transform:
    """Rotation by ``k`` quarter turns in the (H, W) plane, and its inverse."""
    return (lambda x: torch.rot90(x, k, dims=(-2, -1))), (lambda x: torch.rot90(x, -k, dims=(-2, -1)))


def _turn_transposed(k: int) -> Transform:
    """Transpose H and W, then turn by ``k``; the inverse undoes the turn, then transposes."""
    return ((lambda x: torch.rot90(x.transpose(-2, -1), k, dims=(-2, -1))),
            (lambda x: torch.rot90(x, -k, dims=(-2, -1)).transpose(-2, -1)))


TTA_MODES: dict[str, tuple[Transform, ...]] = {
    "flips": ((_identity, _identity), _flip((-1,)), _flip((-2,)), _flip((-2, -1))),
    "d4": ((_identity, _identity), _turn(1), _turn(2), _turn(3),
           _turn_transposed(0), _turn_transposed(1), _turn_transposed(2), _turn_transposed(3)),
}


def check_tta_mode(mode: object) -> str:
    """``mode`` if it names a TTA mode, else a ``ValueError`` listing them."""
    if not isinstance(mode, str) or mode not in TTA_MODES:
        raise ValueError(f"tta must be one of {sorted(TTA_MODES)} (or None for no augmentation); got {mode!r}")
    return mode


class TTA(nn.Module):
    """``model`` averaged over the transforms of ``mode``; returns log-probabilities.

    Args:
        model: any segmentation network returning logits ``(N, K, H, W)`` (``K = 1``: binary).
        mode: ``"flips"`` (4 passes) or ``"d4"`` (8 passes).

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, max(K, 2), H, W)``: ``log`` of the mean probabilities
    """

    def __init__(self, model: nn.Module, mode: str = "flips"):
        super().__init__()
        self.model = model
        self.mode = check_tta_mode(mode)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        transforms = TTA_MODES[self.mode]
        total = None
        for forward, inverse in transforms:
            probs = inverse(scores_to_probs(self.model(forward(images))))  # (N, K', H, W)
            total = probs if total is None else total + probs
        mean = total / len(transforms)  # (N, K', H, W)
        return mean.clamp_min(1e-12).log()
