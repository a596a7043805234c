"""Segmentation losses: pixel cross-entropy, soft Dice, CE + Dice, BCE + Dice.

Built step by step in ``notebooks/04_losses.ipynb``.

Conventions used across ``unet_helpers``:
    - ``N`` batch, ``K`` classes, ``H, W`` height and width.
    - ``logits``: float ``(N, K, H, W)``, raw scores before softmax.
    - ``target``: int64 ``(N, H, W)`` of class ids in ``[0, K)``, or ``ignore_index`` for pixels
      that count nowhere (unlabelled, or the border of an object you are unsure about).
    - Binary tasks use one logit channel ``(N, 1, H, W)`` and a ``{0, 1}`` target ``(N, H, W)``.

About Dice and absent classes: a class with no pixel in the target has Dice 0/0 (undefined) before
smoothing. With the usual ``(2I + eps) / (P + T + eps)`` it scores about 0 whatever the model
does, so the loss can never reach 0 and carries a constant offset. Here such classes are left
out of the mean by default (``skip_absent=True``), the same rule the metrics use for mIoU; their
false positives are still penalised, by the background's Dice and by cross-entropy.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .validate import require_class_ids, require_logits, require_same_spatial, require_tensor


def _check_pair(logits: torch.Tensor, target: torch.Tensor, ignore_index: int | None) -> torch.Tensor:
    require_logits(logits)
    require_tensor(target, "target")
    require_same_spatial(logits, target)
    return require_class_ids(target, logits.shape[1], ignore_index)


def _class_weights(weight: torch.Tensor | Sequence[float] | None, logits: torch.Tensor) -> torch.Tensor | None:
    if weight is None:
        return None
    weight = torch.as_tensor(weight, dtype=torch.float32, device=logits.device)
    if weight.shape != (logits.shape[1],):
        raise ValueError(
            f"weight must have one entry per class, shape ({logits.shape[1]},); got {tuple(weight.shape)}"
        )
    return weight


def pixel_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | Sequence[float] | None = None,
    ignore_index: int | None = None,
    pixel_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy averaged over every labelled pixel.

    ``F.cross_entropy`` already accepts ``(N, K, H, W)``; this adds input checks, ``pixel_weights``
    (the U-Net paper's weight map) and returns 0 instead of NaN when every pixel is ignored.

    Args:
        logits: class scores.
        target: class ids.
        weight: optional per-class weights ``(K,)``; the mean is then weighted as in PyTorch.
        ignore_index: class id whose pixels are left out (``None``: no pixel is left out).
        pixel_weights: optional per-pixel multipliers ``(N, H, W)`` (e.g. ``border_weight_map``).

    Shape:
        - ``logits``: ``(N, K, H, W)``; ``target``: ``(N, H, W)``; ``pixel_weights``: ``(N, H, W)``
        - Output: scalar

    Returns:
        The mean loss, ``sum(pw * w[y] * -log p[y]) / sum(w[y])`` over labelled pixels.

    Examples::

        >>> logits, target = torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long)
        >>> round(pixel_cross_entropy(logits, target).item(), 4)  # log(3)
        1.0986
    """
    target = _check_pair(logits, target, ignore_index)
    weight = _class_weights(weight, logits)
    ignore = -100 if ignore_index is None else ignore_index
    if pixel_weights is None:
        if ignore_index is not None and bool((target == ignore_index).all()):
            return logits.sum() * 0.0  # nothing labelled: 0 with a graph, not NaN
        return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore)
    require_tensor(pixel_weights, "pixel_weights")
    if pixel_weights.shape != target.shape:
        raise ValueError(
            f"pixel_weights must match target, shape {tuple(target.shape)}; got {tuple(pixel_weights.shape)}"
        )
    per_pixel = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore, reduction="none")  # (N, H, W)
    valid = target != ignore
    safe_target = target.where(valid, 0)
    class_w = torch.ones_like(per_pixel) if weight is None else weight[safe_target]  # (N, H, W)
    denominator = (class_w * valid).sum()
    if denominator == 0:
        return logits.sum() * 0.0
    return (pixel_weights.to(per_pixel.dtype) * per_pixel).sum() / denominator


def _one_hot(target: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """``(N, H, W)`` class ids (all valid) -> ``(N, K, H, W)`` one-hot of ``dtype``."""
    one_hot = torch.zeros(target.shape[0], num_classes, *target.shape[1:], dtype=dtype, device=target.device)
    return one_hot.scatter_(1, target.unsqueeze(1), 1.0)  # (N, K, H, W)


def soft_dice_per_class(
    logits: torch.Tensor,
    target: torch.Tensor,
    eps: float = 1e-6,
    ignore_index: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft Dice of every class over the whole batch, and which classes the target contains.

    ``dice[k] = (2 * sum(p_k * y_k) + eps) / (sum(p_k) + sum(y_k) + eps)``, sums over ``N, H, W``,
    ``p = softmax(logits)``, ``y`` the one-hot target; ignored pixels are removed from both sums.

    Shape:
        - ``logits``: ``(N, K, H, W)``; ``target``: ``(N, H, W)``
        - Output: ``dice`` ``(K,)`` float and ``present`` ``(K,)`` bool
    """
    target = _check_pair(logits, target, ignore_index)
    num_classes = logits.shape[1]
    probs = logits.float().softmax(dim=1)  # (N, K, H, W)
    if ignore_index is None:
        one_hot = _one_hot(target, num_classes, probs.dtype)  # (N, K, H, W)
    else:
        valid = (target != ignore_index).unsqueeze(1)  # (N, 1, H, W)
        one_hot = _one_hot(target.where(valid.squeeze(1), 0), num_classes, probs.dtype) * valid
        probs = probs * valid  # ignored pixels count in neither term
    dims = (0, 2, 3)
    intersection = (probs * one_hot).sum(dims)  # (K,)
    target_sum = one_hot.sum(dims)  # (K,)
    dice = (2 * intersection + eps) / (probs.sum(dims) + target_sum + eps)  # (K,)
    return dice, target_sum > 0


def dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    eps: float = 1e-6,
    ignore_index: int | None = None,
    skip_absent: bool = True,
) -> torch.Tensor:
    """Soft multi-class Dice loss: ``1 - mean over classes of soft Dice`` (macro).

    Args:
        logits: class scores (softmax is applied here).
        target: class ids.
        eps: smoothing added to numerator and denominator.
        ignore_index: class id whose pixels are removed from both terms.
        skip_absent: leave classes absent from the target out of the mean (see module docstring);
            ``False`` reproduces the usual formula (and MONAI's ``DiceLoss(batch=True)``).

    Shape:
        - ``logits``: ``(N, K, H, W)``; ``target``: ``(N, H, W)``
        - Output: scalar in ``[0, 1]``

    Examples::

        >>> target = torch.tensor([[[0, 1], [1, 1]]])
        >>> perfect = 20.0 * F.one_hot(target, 2).permute(0, 3, 1, 2).float()
        >>> dice_loss(perfect, target).item() < 1e-6
        True
    """
    dice, present = soft_dice_per_class(logits, target, eps, ignore_index)
    if not skip_absent:
        return 1 - dice.mean()
    if not bool(present.any()):
        return logits.sum() * 0.0  # every pixel ignored
    return 1 - dice[present].mean()


def combined_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    lam: float = 1.0,
    weight: torch.Tensor | Sequence[float] | None = None,
    ignore_index: int | None = None,
    eps: float = 1e-6,
    pixel_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``CE + lam * Dice``: cross-entropy for stable early gradients, Dice for overlap.

    Shape:
        - ``logits``: ``(N, K, H, W)``; ``target``: ``(N, H, W)``

    Returns:
        ``(total, {"ce": float, "dice": float})``; only ``total`` carries gradients.
    """
    ce = pixel_cross_entropy(logits, target, weight, ignore_index, pixel_weights)
    dice = dice_loss(logits, target, eps, ignore_index)
    return ce + lam * dice, {"ce": float(ce.detach()), "dice": float(dice.detach())}


def _binary_target(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    require_tensor(logits, "logits")
    require_tensor(target, "target")
    if logits.ndim != 4 or logits.shape[1] != 1:
        raise ValueError(
            f"binary logits must have shape (N, 1, H, W); got {tuple(logits.shape)}. "
            "Hint: for K >= 2 output channels use combined_loss (softmax) instead"
        )
    if target.ndim == 4 and target.shape[1] == 1:
        target = target[:, 0]  # (N, H, W)
    require_same_spatial(logits, target)
    if target.dtype != torch.bool and not target.is_floating_point():
        require_class_ids(target, 2)
    elif target.is_floating_point() and not bool(((target == 0) | (target == 1)).all()):
        raise ValueError(
            f"binary target must hold only 0 and 1; got values in [{float(target.min())}, {float(target.max())}]. "
            "Hint: masks saved as 0/255 need (mask > 0)"
        )
    return target.to(logits.dtype if logits.is_floating_point() else torch.float32)


def bce_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    lam: float = 1.0,
    eps: float = 1e-6,
    pos_weight: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Binary cross-entropy + ``lam`` * soft Dice of the foreground, for one-channel logits.

    The Dice term uses ``sigmoid(logits)`` summed over the whole batch. A batch without any
    foreground pixel has no foreground Dice (0/0); the term is then 0 and BCE alone penalises
    false positives.

    Args:
        logits: foreground scores.
        target: 0 = background, 1 = foreground (int, bool or float).
        lam: weight of the Dice term.
        eps: smoothing of the Dice ratio.
        pos_weight: optional BCE weight of foreground pixels (e.g. background/foreground ratio).

    Shape:
        - ``logits``: ``(N, 1, H, W)``; ``target``: ``(N, H, W)`` or ``(N, 1, H, W)``

    Returns:
        ``(total, {"bce": float, "dice": float})``.
    """
    target = _binary_target(logits, target)  # (N, H, W) float
    scores = logits[:, 0]  # (N, H, W)
    pw = None if pos_weight is None else torch.tensor(pos_weight, dtype=scores.dtype, device=scores.device)
    bce = F.binary_cross_entropy_with_logits(scores, target, pos_weight=pw)
    if bool(target.any()):
        probs = torch.sigmoid(scores.float())
        dice = 1 - (2 * (probs * target).sum() + eps) / (probs.sum() + target.sum() + eps)
    else:
        dice = scores.sum() * 0.0
    return bce + lam * dice, {"bce": float(bce.detach()), "dice": float(dice.detach())}


class PixelCrossEntropy(nn.Module):
    """Module form of ``pixel_cross_entropy``; ``forward(logits, target) -> scalar``."""

    def __init__(self, weight: Sequence[float] | None = None, ignore_index: int | None = None) -> None:
        super().__init__()
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return pixel_cross_entropy(logits, target, self.weight, self.ignore_index)


class DiceLoss(nn.Module):
    """Module form of ``dice_loss``; ``forward(logits, target) -> scalar``."""

    def __init__(self, eps: float = 1e-6, ignore_index: int | None = None, skip_absent: bool = True) -> None:
        super().__init__()
        self.eps, self.ignore_index, self.skip_absent = eps, ignore_index, skip_absent

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return dice_loss(logits, target, self.eps, self.ignore_index, self.skip_absent)


class CombinedLoss(nn.Module):
    """Module form of ``combined_loss``; ``forward(logits, target) -> (total, parts)``."""

    def __init__(
        self,
        lam: float = 1.0,
        weight: Sequence[float] | None = None,
        ignore_index: int | None = None,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))
        self.lam, self.ignore_index, self.eps = lam, ignore_index, eps

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, pixel_weights: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        return combined_loss(logits, target, self.lam, self.weight, self.ignore_index, self.eps, pixel_weights)


class BCEDiceLoss(nn.Module):
    """Module form of ``bce_dice_loss``; ``forward(logits, target) -> (total, parts)``."""

    def __init__(self, lam: float = 1.0, eps: float = 1e-6, pos_weight: float | None = None) -> None:
        super().__init__()
        self.lam, self.eps, self.pos_weight = lam, eps, pos_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        return bce_dice_loss(logits, target, self.lam, self.eps, self.pos_weight)
