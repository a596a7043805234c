"""Losses against a NumPy brute force, PyTorch and MONAI."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss as MonaiDiceLoss
from monai.losses import MaskedDiceLoss as MonaiMaskedDiceLoss

from unet_helpers.losses import (
    BCEDiceLoss,
    CombinedLoss,
    DiceLoss,
    PixelCrossEntropy,
    bce_dice_loss,
    combined_loss,
    dice_loss,
    pixel_cross_entropy,
)


def random_case(seed, n=2, k=4, h=9, w=7, absent=(), ignore_index=None, ignore_frac=0.2):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, h, w, generator=g) * 3
    present = [c for c in range(k) if c not in absent]
    target = torch.tensor(present)[torch.randint(0, len(present), (n, h, w), generator=g)]
    if ignore_index is not None:
        target[torch.rand(n, h, w, generator=g) < ignore_frac] = ignore_index
    return logits, target


# --- NumPy brute force: loops over pixels, no vectorised tricks -------------------------------
def np_softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def np_cross_entropy(logits, target, weight=None, ignore_index=None, pixel_weights=None):
    logits, target = logits.double().numpy(), target.numpy()
    n, k, h, w = logits.shape
    num = den = 0.0
    for i in range(n):
        for y in range(h):
            for x in range(w):
                t = target[i, y, x]
                if ignore_index is not None and t == ignore_index:
                    continue
                cw = 1.0 if weight is None else float(weight[t])
                pw = 1.0 if pixel_weights is None else float(pixel_weights[i, y, x])
                num += pw * cw * -math.log(np_softmax(logits[i, :, y, x])[t])
                den += cw
    return num / den


def np_dice_loss(logits, target, eps=1e-6, ignore_index=None, skip_absent=True):
    logits, target = logits.double().numpy(), target.numpy()
    n, k, h, w = logits.shape
    inter, psum, tsum = np.zeros(k), np.zeros(k), np.zeros(k)
    for i in range(n):
        for y in range(h):
            for x in range(w):
                t = target[i, y, x]
                if ignore_index is not None and t == ignore_index:
                    continue
                p = np_softmax(logits[i, :, y, x])
                for c in range(k):
                    inter[c] += p[c] * (t == c)
                    psum[c] += p[c]
                    tsum[c] += t == c
    dice = (2 * inter + eps) / (psum + tsum + eps)
    if skip_absent:
        dice = dice[tsum > 0]
    return 1 - dice.mean()


@pytest.mark.parametrize("seed", range(3))
def test_cross_entropy_matches_brute_force(seed):
    logits, target = random_case(seed, ignore_index=255)
    weight = torch.tensor([0.5, 1.0, 2.0, 4.0])
    pixel_weights = torch.rand(target.shape, generator=torch.Generator().manual_seed(seed)) * 3
    for kwargs in ({}, {"weight": weight}, {"pixel_weights": pixel_weights}, {"weight": weight, "pixel_weights": pixel_weights}):
        ours = pixel_cross_entropy(logits, target, ignore_index=255, **kwargs)
        ref = np_cross_entropy(logits, target, ignore_index=255, **kwargs)
        assert ours.item() == pytest.approx(ref, rel=1e-5)


def test_cross_entropy_without_pixel_weights_equals_torch():
    logits, target = random_case(5)
    assert torch.allclose(pixel_cross_entropy(logits, target), F.cross_entropy(logits, target))
    ones = torch.ones(target.shape)
    assert torch.allclose(pixel_cross_entropy(logits, target, pixel_weights=ones), F.cross_entropy(logits, target))


def test_cross_entropy_all_ignored_is_zero_not_nan():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    target = torch.full((1, 4, 4), 255)
    loss = pixel_cross_entropy(logits, target, ignore_index=255)
    assert loss.item() == 0.0
    loss.backward()  # still differentiable


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("skip_absent", [True, False])
def test_dice_matches_brute_force(seed, skip_absent):
    logits, target = random_case(seed, absent=(2,), ignore_index=255)
    ours = dice_loss(logits, target, ignore_index=255, skip_absent=skip_absent)
    ref = np_dice_loss(logits, target, ignore_index=255, skip_absent=skip_absent)
    assert ours.item() == pytest.approx(ref, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("seed", range(3))
def test_dice_matches_monai_dice_loss(seed):
    logits, target = random_case(seed)
    eps = 1e-5
    monai = MonaiDiceLoss(softmax=True, to_onehot_y=True, batch=True, smooth_nr=eps, smooth_dr=eps)
    ref = monai(logits, target.unsqueeze(1))
    ours = dice_loss(logits, target, eps=eps, skip_absent=False)
    assert torch.allclose(ours, ref, atol=1e-6)
    # All classes present in this case: skipping absent classes changes nothing.
    assert torch.allclose(dice_loss(logits, target, eps=eps), ref, atol=1e-6)


def test_dice_ignore_index_matches_monai_masked_dice():
    logits, target = random_case(7, ignore_index=255, ignore_frac=0.4)
    valid = target != 255
    one_hot = F.one_hot(target.where(valid, 0), 4).permute(0, 3, 1, 2).float()
    monai = MonaiMaskedDiceLoss(softmax=True, batch=True, smooth_nr=1e-5, smooth_dr=1e-5)
    ref = monai(logits, one_hot, mask=valid.unsqueeze(1).float())
    ours = dice_loss(logits, target, eps=1e-5, ignore_index=255, skip_absent=False)
    assert torch.allclose(ours, ref, atol=1e-6)


def test_ignored_pixels_change_nothing_in_dice():
    logits, target = random_case(3, ignore_index=255, ignore_frac=0.5)
    base = dice_loss(logits, target, ignore_index=255)
    scrambled = logits.clone()
    scrambled[(target == 255).unsqueeze(1).expand_as(logits)] = 1000.0
    assert torch.allclose(dice_loss(scrambled, target, ignore_index=255), base)


def test_dice_perfect_is_zero_and_absent_class_does_not_floor_it():
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    target[:, 2:5, 2:5] = 1  # class 2 of 3 never appears
    perfect = 30.0 * F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert dice_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-6)
    # A confident, correct but not saturated prediction (logit margin 5): the absent class still
    # gets about 0.7 % probability per pixel, far above eps, so the usual formula scores its
    # Dice near 0 and keeps a floor of about 1/3 (one of three classes) - the bug skip_absent fixes.
    confident = 5.0 * F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert dice_loss(confident, target).item() < 0.02
    assert dice_loss(confident, target, skip_absent=False).item() > 1 / 3


def test_dice_gradient_flows_and_all_ignored_is_zero():
    logits, target = random_case(1)
    logits.requires_grad_(True)
    dice_loss(logits, target).backward()
    assert logits.grad.abs().sum() > 0
    assert dice_loss(torch.randn(1, 2, 3, 3), torch.full((1, 3, 3), 9), ignore_index=9).item() == 0.0


def test_combined_loss_is_ce_plus_lambda_dice():
    logits, target = random_case(2)
    total, parts = combined_loss(logits, target, lam=0.7)
    assert set(parts) == {"ce", "dice"}
    assert parts["ce"] == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-6)
    assert parts["dice"] == pytest.approx(dice_loss(logits, target).item(), rel=1e-6)
    assert total.item() == pytest.approx(parts["ce"] + 0.7 * parts["dice"], rel=1e-6)


def np_bce_dice(logits, target, lam, eps=1e-6):
    z, t = logits[:, 0].double().numpy(), target.double().numpy()
    p = 1 / (1 + np.exp(-z))
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    dice = 1 - (2 * (p * t).sum() + eps) / (p.sum() + t.sum() + eps) if t.sum() > 0 else 0.0
    return bce + lam * dice, bce, dice


@pytest.mark.parametrize("seed", range(3))
def test_bce_dice_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 1, 10, 11, generator=g) * 2
    target = (torch.rand(3, 10, 11, generator=g) < 0.1).long()
    total, parts = bce_dice_loss(logits, target, lam=0.5)
    ref_total, ref_bce, ref_dice = np_bce_dice(logits, target, 0.5)
    assert total.item() == pytest.approx(ref_total, rel=1e-5)
    assert parts["bce"] == pytest.approx(ref_bce, rel=1e-5)
    assert parts["dice"] == pytest.approx(ref_dice, rel=1e-5)
    # Target with a channel axis, as bool or float: same answer.
    for alt in (target.unsqueeze(1), target.bool(), target.float()):
        assert bce_dice_loss(logits, alt, lam=0.5)[0].item() == pytest.approx(total.item(), rel=1e-6)


def test_bce_dice_matches_monai_dice_term():
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 1, 8, 8, generator=g)
    target = (torch.rand(2, 8, 8, generator=g) < 0.3).long()
    monai = MonaiDiceLoss(sigmoid=True, batch=True, smooth_nr=1e-6, smooth_dr=1e-6)
    _, parts = bce_dice_loss(logits, target)
    assert parts["dice"] == pytest.approx(monai(logits, target.unsqueeze(1).float()).item(), rel=1e-5)


def test_bce_dice_empty_foreground_uses_bce_only():
    logits = torch.randn(2, 1, 6, 6)
    total, parts = bce_dice_loss(logits, torch.zeros(2, 6, 6, dtype=torch.long))
    assert parts["dice"] == 0.0 and total.item() == pytest.approx(parts["bce"])


def test_modules_equal_functions():
    logits, target = random_case(0, ignore_index=255)
    w = [1.0, 2.0, 1.0, 0.5]
    assert torch.allclose(PixelCrossEntropy(w, 255)(logits, target), pixel_cross_entropy(logits, target, w, 255))
    assert torch.allclose(DiceLoss(ignore_index=255)(logits, target), dice_loss(logits, target, ignore_index=255))
    assert torch.allclose(CombinedLoss(0.5, w, 255)(logits, target)[0], combined_loss(logits, target, 0.5, w, 255)[0])
    binary = torch.randn(2, 1, 5, 5)
    bt = (binary > 0.5).long()[:, 0]
    assert torch.allclose(BCEDiceLoss(0.3)(binary, bt)[0], bce_dice_loss(binary, bt, 0.3)[0])


# --- bad input -----------------------------------------------------------------------------
def test_shape_mismatch_message():
    with pytest.raises(ValueError, match=r"logits \(2, 3, 8, 8\) and target \(2, 8, 9\) do not match.*\(2, 8, 8\)"):
        dice_loss(torch.randn(2, 3, 8, 8), torch.zeros(2, 8, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"squeeze\(1\)"):
        pixel_cross_entropy(torch.randn(2, 3, 8, 8), torch.zeros(2, 1, 8, 8, dtype=torch.long))


def test_float_target_message():
    with pytest.raises(TypeError, match=r"target must hold integer class ids.*got dtype torch.float32.*\.long\(\)"):
        combined_loss(torch.randn(1, 2, 4, 4), torch.zeros(1, 4, 4))


def test_class_id_out_of_range_mentions_0_255():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 0, 0] = 255
    with pytest.raises(ValueError, match=r"class id 255.*num_classes=2.*0/255 need mapping to 0/1.*mask_values"):
        pixel_cross_entropy(torch.randn(1, 2, 4, 4), target)
    with pytest.raises(ValueError, match=r"class id 255.*num_classes=21.*pass ignore_index=255"):
        pixel_cross_entropy(torch.randn(1, 21, 4, 4), target)
    target[0, 0, 0] = 3
    with pytest.raises(ValueError, match=r"class id 3 and is not ignore_index=255"):
        dice_loss(torch.randn(1, 2, 4, 4), target, ignore_index=255)


def test_binary_loss_errors():
    with pytest.raises(ValueError, match=r"binary logits must have shape \(N, 1, H, W\).*combined_loss"):
        bce_dice_loss(torch.randn(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"only 0 and 1.*\(mask > 0\)"):
        bce_dice_loss(torch.randn(1, 1, 4, 4), torch.full((1, 4, 4), 255.0))
    with pytest.raises(ValueError, match=r"class id 255.*0/255"):
        bce_dice_loss(torch.randn(1, 1, 4, 4), torch.full((1, 4, 4), 255))


def test_weight_length_and_logit_rank_errors():
    with pytest.raises(ValueError, match=r"one entry per class, shape \(3,\); got \(2,\)"):
        pixel_cross_entropy(torch.randn(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long), weight=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"logits must have shape \(N, K, H, W\); got \(3, 4, 4\).*unsqueeze\(0\)"):
        dice_loss(torch.randn(3, 4, 4), torch.zeros(4, 4, dtype=torch.long))
