"""Wrong soft Dice losses (exercise 3), each with one plausible mistake."""
import torch
import torch.nn.functional as F


def _terms(probs, target, ignore_index=None):
    k = probs.shape[1]
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    one_hot = F.one_hot(target.where(valid, 0), k).permute(0, 3, 1, 2).float() * valid.unsqueeze(1)
    probs = probs * valid.unsqueeze(1)
    return (probs * one_hot).sum((0, 2, 3)), probs.sum((0, 2, 3)), one_hot.sum((0, 2, 3))


def _present_mean(dice, target_sum, logits):
    present = target_sum > 0
    return 1 - dice[present].mean() if present.any() else logits.sum() * 0.0


def no_softmax(logits, target, eps=1e-6, ignore_index=None):
    inter, pred, true = _terms(logits, target, ignore_index)
    return _present_mean((2 * inter + eps) / (pred + true + eps), true, logits)


def pixel_average(logits, target, eps=1e-6, ignore_index=None):
    """One Dice over all classes pooled together (a mean over pixels)."""
    inter, pred, true = _terms(logits.softmax(1), target, ignore_index)
    return 1 - (2 * inter.sum() + eps) / (pred.sum() + true.sum() + eps)


def ignore_forgotten(logits, target, eps=1e-6, ignore_index=None):
    inter, pred, true = _terms(logits.softmax(1), target)
    return _present_mean((2 * inter + eps) / (pred + true + eps), true, logits)


def ignored_in_prediction_sum(logits, target, eps=1e-6, ignore_index=None):
    """Masks the one-hot target but not the probabilities."""
    probs = logits.softmax(1)
    k = probs.shape[1]
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    one_hot = F.one_hot(target.where(valid, 0), k).permute(0, 3, 1, 2).float() * valid.unsqueeze(1)
    inter, pred, true = (probs * one_hot).sum((0, 2, 3)), probs.sum((0, 2, 3)), one_hot.sum((0, 2, 3))
    return _present_mean((2 * inter + eps) / (pred + true + eps), true, logits)


def absent_counted(logits, target, eps=1e-6, ignore_index=None):
    inter, pred, true = _terms(logits.softmax(1), target, ignore_index)
    return 1 - ((2 * inter + eps) / (pred + true + eps)).mean()


def argmax_probs(logits, target, eps=1e-6, ignore_index=None):
    hard = F.one_hot(logits.argmax(1), logits.shape[1]).permute(0, 3, 1, 2).float()
    inter, pred, true = _terms(hard, target, ignore_index)
    return _present_mean((2 * inter + eps) / (pred + true + eps), true, logits)


def eps_only_denominator(logits, target, eps=1e-6, ignore_index=None):
    inter, pred, true = _terms(logits.softmax(1), target, ignore_index)
    return _present_mean(2 * inter / (pred + true + eps), true, logits)


def per_image(logits, target, eps=1e-6, ignore_index=None):
    probs = logits.softmax(1)
    one_hot = F.one_hot(target, probs.shape[1]).permute(0, 3, 1, 2).float()
    dice = (2 * (probs * one_hot).sum((2, 3)) + eps) / (probs.sum((2, 3)) + one_hot.sum((2, 3)) + eps)
    return 1 - dice.mean()


def nan_when_all_ignored(logits, target, eps=1e-6, ignore_index=None):
    inter, pred, true = _terms(logits.softmax(1), target, ignore_index)
    dice = (2 * inter + eps) / (pred + true + eps)
    return 1 - dice[true > 0].mean()


def returns_per_class(logits, target, eps=1e-6, ignore_index=None):
    inter, pred, true = _terms(logits.softmax(1), target, ignore_index)
    return 1 - (2 * inter + eps) / (pred + true + eps)


def mutates_target(logits, target, eps=1e-6, ignore_index=None):
    """The right value, but the caller's target loses its ignore labels (written over in place)."""
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    target[~valid] = 0  # in place
    probs = logits.softmax(1) * valid.unsqueeze(1)
    one_hot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).float() * valid.unsqueeze(1)
    inter, pred, true = (probs * one_hot).sum((0, 2, 3)), probs.sum((0, 2, 3)), one_hot.sum((0, 2, 3))
    return _present_mean((2 * inter + eps) / (pred + true + eps), true, logits)


def float64_by_default(logits, target, eps=1e-6, ignore_index=None):
    """The right value, but torch.set_default_dtype(torch.float64) "for precision": every later
    torch.zeros/randn of the caller is float64 (and no longer matches a float32 model)."""
    torch.set_default_dtype(torch.float64)
    inter, pred, true = _terms(logits.softmax(1), target, ignore_index)
    return _present_mean((2 * inter + eps) / (pred + true + eps), true, logits)
