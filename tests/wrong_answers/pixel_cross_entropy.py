"""Wrong answers to exercise 05, ``my_pixel_cross_entropy(logits, target, weight=None, ignore_index=None)``."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from unet_helpers.losses import pixel_cross_entropy


def _valid(target, ignore_index):
    return torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index


def _nll(log_probs, target, valid):
    return -log_probs.gather(1, target.where(valid, 0).unsqueeze(1)).squeeze(1)  # (N, H, W)


def log_of_softmax(logits, target, weight=None, ignore_index=None):
    """log(softmax(x)): -inf (and NaN gradients) for confident logits."""
    valid = _valid(target, ignore_index)
    nll = _nll(logits.softmax(dim=1).log(), target, valid)
    w = valid.to(logits.dtype) if weight is None else valid * torch.as_tensor(weight, dtype=logits.dtype)[target.where(valid, 0)]
    return (w * nll).sum() / w.sum() if w.sum() > 0 else logits.sum() * 0.0


def weighted_mean_over_pixels(logits, target, weight=None, ignore_index=None):
    """Weights in the numerator, but divided by the number of pixels instead of the sum of weights."""
    valid = _valid(target, ignore_index)
    nll = _nll(logits.log_softmax(dim=1), target, valid)
    w = valid.to(logits.dtype) if weight is None else valid * torch.as_tensor(weight, dtype=logits.dtype)[target.where(valid, 0)]
    return (w * nll).sum() / valid.sum() if valid.any() else logits.sum() * 0.0


def ignored_count_in_mean(logits, target, weight=None, ignore_index=None):
    """Ignored pixels get a loss of 0 but still count in the denominator."""
    valid = _valid(target, ignore_index)
    nll = _nll(logits.log_softmax(dim=1), target, valid) * valid
    w = torch.ones_like(nll) if weight is None else torch.as_tensor(weight, dtype=logits.dtype)[target.where(valid, 0)]
    return (w * nll).sum() / w.sum()


def ignore_outside_only(logits, target, weight=None, ignore_index=None):
    """Drops ignored pixels by `target < K`: fine for 255, wrong when ignore_index is a class id in [0, K)."""
    valid = target < logits.shape[1]
    nll = _nll(logits.log_softmax(dim=1), target, valid)
    w = valid.to(logits.dtype) if weight is None else valid * torch.as_tensor(weight, dtype=logits.dtype)[target.where(valid, 0)]
    return (w * nll).sum() / w.sum() if w.sum() > 0 else logits.sum() * 0.0


def weights_ignored(logits, target, weight=None, ignore_index=None):
    """Forgets the class weights."""
    valid = _valid(target, ignore_index)
    nll = _nll(logits.log_softmax(dim=1), target, valid)
    return nll[valid].mean() if valid.any() else logits.sum() * 0.0


def nan_when_all_ignored(logits, target, weight=None, ignore_index=None):
    """0 / 0 when every pixel is ignored."""
    valid = _valid(target, ignore_index)
    nll = _nll(logits.log_softmax(dim=1), target, valid)
    w = valid.to(logits.dtype) if weight is None else valid * torch.as_tensor(weight, dtype=logits.dtype)[target.where(valid, 0)]
    return (w * nll).sum() / w.sum()


def softmax_over_width(logits, target, weight=None, ignore_index=None):
    """log_softmax over the last axis (width) instead of the class axis."""
    valid = _valid(target, ignore_index)
    nll = _nll(logits.log_softmax(dim=-1), target, valid)
    w = valid.to(logits.dtype) if weight is None else valid * torch.as_tensor(weight, dtype=logits.dtype)[target.where(valid, 0)]
    return (w * nll).sum() / w.sum() if w.sum() > 0 else logits.sum() * 0.0


def delegates_to_torch(logits, target, weight=None, ignore_index=None):
    """Calls torch's cross_entropy: right values, but not written by hand."""
    return F.cross_entropy(logits, target, weight=weight, ignore_index=-100 if ignore_index is None else ignore_index)


def delegates_to_package(logits, target, weight=None, ignore_index=None):
    return pixel_cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)


def overwrites_ignored_target(logits, target, weight=None, ignore_index=None):
    """Right values, but sets the caller's ignored pixels to 0 in place."""
    valid = _valid(target, ignore_index)
    target[~valid] = 0
    nll = -logits.log_softmax(dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    w = valid.to(logits.dtype) if weight is None else valid * torch.as_tensor(weight, dtype=logits.dtype)[target]
    return (w * nll).sum() / w.sum() if w.sum() > 0 else logits.sum() * 0.0


def switches_grad_off(logits, target, weight=None, ignore_index=None):
    """Turns gradients off globally (and never back on): the loss has no graph, and the caller's state leaks."""
    torch.set_grad_enabled(False)
    valid = _valid(target, ignore_index)
    nll = _nll(logits.log_softmax(dim=1), target, valid)
    w = valid.to(logits.dtype) if weight is None else valid * torch.as_tensor(weight, dtype=logits.dtype)[target.where(valid, 0)]
    return (w * nll).sum() / w.sum() if w.sum() > 0 else logits.sum() * 0.0
