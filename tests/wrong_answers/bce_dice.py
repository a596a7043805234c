"""Wrong binary BCE + Dice losses (exercise 6), each with one plausible mistake."""
import torch
import torch.nn.functional as F


def _prepare(logits, target):
    if target.ndim == 4:
        target = target[:, 0]
    return logits[:, 0], target.float()  # (N, H, W) each


def _dice_term(p, y, eps):
    if not bool(y.any()):
        return p.sum() * 0.0
    return 1 - (2 * (p * y).sum() + eps) / (p.sum() + y.sum() + eps)


def bce_on_probabilities(logits, target, lam=1.0, eps=1e-6):
    """sigmoid, then binary_cross_entropy: breaks once sigmoid rounds to 0 or 1."""
    scores, y = _prepare(logits, target)
    p = torch.sigmoid(scores)
    return F.binary_cross_entropy(p, y) + lam * _dice_term(p, y, eps)


def dice_on_logits(logits, target, lam=1.0, eps=1e-6):
    scores, y = _prepare(logits, target)
    return F.binary_cross_entropy_with_logits(scores, y) + lam * _dice_term(scores, y, eps)


def dice_per_image(logits, target, lam=1.0, eps=1e-6):
    scores, y = _prepare(logits, target)
    p = torch.sigmoid(scores)
    dice = (2 * (p * y).sum((1, 2)) + eps) / (p.sum((1, 2)) + y.sum((1, 2)) + eps)  # (N,)
    term = 1 - dice.mean() if bool(y.any()) else p.sum() * 0.0
    return F.binary_cross_entropy_with_logits(scores, y) + lam * term


def dice_per_pixel(logits, target, lam=1.0, eps=1e-6):
    scores, y = _prepare(logits, target)
    p = torch.sigmoid(scores)
    term = 1 - ((2 * p * y + eps) / (p + y + eps)).mean() if bool(y.any()) else p.sum() * 0.0
    return F.binary_cross_entropy_with_logits(scores, y) + lam * term


def empty_foreground_forgotten(logits, target, lam=1.0, eps=1e-6):
    scores, y = _prepare(logits, target)
    p = torch.sigmoid(scores)
    dice = (2 * (p * y).sum() + eps) / (p.sum() + y.sum() + eps)
    return F.binary_cross_entropy_with_logits(scores, y) + lam * (1 - dice)


def lam_ignored(logits, target, lam=1.0, eps=1e-6):
    scores, y = _prepare(logits, target)
    return F.binary_cross_entropy_with_logits(scores, y) + _dice_term(torch.sigmoid(scores), y, eps)


def channel_axis_mishandled(logits, target, lam=1.0, eps=1e-6):
    """Always adds a channel axis to the target, so a (N, 1, H, W) target becomes (N, 1, 1, H, W)."""
    y = target.unsqueeze(1).float()
    p = torch.sigmoid(logits)
    return F.binary_cross_entropy_with_logits(logits, y) + lam * _dice_term(p, y, eps)


def broadcast_in_dice(logits, target, lam=1.0, eps=1e-6):
    """Dice on (N, 1, H, W) probabilities times a (N, H, W) target: broadcasts to (N, N, H, W)."""
    scores, y = _prepare(logits, target)
    p = torch.sigmoid(logits)
    return F.binary_cross_entropy_with_logits(scores, y) + lam * _dice_term(p, y, eps)


def bce_summed(logits, target, lam=1.0, eps=1e-6):
    scores, y = _prepare(logits, target)
    bce = F.binary_cross_entropy_with_logits(scores, y, reduction="sum")
    return bce + lam * _dice_term(torch.sigmoid(scores), y, eps)


def dice_of_both_classes(logits, target, lam=1.0, eps=1e-6):
    scores, y = _prepare(logits, target)
    p = torch.sigmoid(scores)
    fg = (2 * (p * y).sum() + eps) / (p.sum() + y.sum() + eps)
    bg = (2 * ((1 - p) * (1 - y)).sum() + eps) / ((1 - p).sum() + (1 - y).sum() + eps)
    return F.binary_cross_entropy_with_logits(scores, y) + lam * (1 - (fg + bg) / 2)


def dice_coefficient_added(logits, target, lam=1.0, eps=1e-6):
    scores, y = _prepare(logits, target)
    p = torch.sigmoid(scores)
    return F.binary_cross_entropy_with_logits(scores, y) + lam * (1 - _dice_term(p, y, eps))


def hard_dice(logits, target, lam=1.0, eps=1e-6):
    """Thresholded predictions: Dice has no gradient."""
    scores, y = _prepare(logits, target)
    hard = (scores > 0).float()
    return F.binary_cross_entropy_with_logits(scores, y).detach() + lam * _dice_term(hard, y, eps)


def target_not_float(logits, target, lam=1.0, eps=1e-6):
    """BCE with an int64 target raises."""
    scores = logits[:, 0]
    return F.binary_cross_entropy_with_logits(scores, target) + lam * _dice_term(torch.sigmoid(scores), target, eps)


def returns_tuple(logits, target, lam=1.0, eps=1e-6):
    """Returns (total, parts) like the package function, not the total."""
    scores, y = _prepare(logits, target)
    bce = F.binary_cross_entropy_with_logits(scores, y)
    dice = _dice_term(torch.sigmoid(scores), y, eps)
    return bce + lam * dice, {"bce": float(bce), "dice": float(dice)}


def squeezes_target_in_place(logits, target, lam=1.0, eps=1e-6):
    """The right value, but `target.squeeze_(1)` turns the caller's (N, 1, H, W) mask into (N, H, W)."""
    if target.ndim == 4:
        target.squeeze_(1)  # in place: the caller's tensor changes shape
    scores, y = logits[:, 0], target.float()
    return F.binary_cross_entropy_with_logits(scores, y) + lam * _dice_term(torch.sigmoid(scores), y, eps)
