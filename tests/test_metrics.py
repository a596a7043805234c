"""Metrics against a NumPy brute force, torchmetrics and MONAI, plus property tests."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from monai.metrics import DiceMetric
from torchmetrics.classification import MulticlassJaccardIndex

from unet_helpers.metrics import ConfusionMatrix, confusion_matrix, iou_per_class, to_class_ids


def random_preds(seed, n=6, k=5, h=12, w=10, absent=(), ignore_index=None):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, h, w, generator=g)
    present = torch.tensor([c for c in range(k) if c not in absent])
    target = present[torch.randint(0, len(present), (n, h, w), generator=g)]
    # make predictions agree with the target on ~60 % of pixels, so IoUs are not all tiny
    agree = torch.rand(n, h, w, generator=g) < 0.6
    logits += 5 * F.one_hot(target, k).permute(0, 3, 1, 2) * agree.unsqueeze(1)
    for c in absent:  # absent from the prediction too
        logits[:, c] = -1e3
    if ignore_index is not None:
        target[torch.rand(n, h, w, generator=g) < 0.15] = ignore_index
    return logits, target


def np_metrics(preds, target, k, ignore_index=None):
    """Loops over classes and pixels; 0/0 -> NaN."""
    p, t = preds.numpy().ravel(), target.numpy().ravel()
    if ignore_index is not None:
        keep = t != ignore_index
        p, t = p[keep], t[keep]
    out = {m: [] for m in ("iou", "dice", "precision", "recall")}
    for c in range(k):
        tp = np.sum((p == c) & (t == c))
        fp = np.sum((p == c) & (t != c))
        fn = np.sum((p != c) & (t == c))
        div = lambda a, b: a / b if b else math.nan  # noqa: E731
        out["iou"].append(div(tp, tp + fp + fn))
        out["dice"].append(div(2 * tp, 2 * tp + fp + fn))
        out["precision"].append(div(tp, tp + fp))
        out["recall"].append(div(tp, tp + fn))
    out["pixel_accuracy"] = float(np.mean(p == t))
    out["miou"] = float(np.nanmean(out["iou"]))
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ignore_index", [None, 255])
def test_confusion_matrix_matches_brute_force(seed, ignore_index):
    logits, target = random_preds(seed, absent=(3,), ignore_index=ignore_index)
    cm = ConfusionMatrix(5, ignore_index)
    cm.update(logits, target)
    ref = np_metrics(logits.argmax(1), target, 5, ignore_index)
    for name in ("iou", "dice", "precision", "recall"):
        assert np.allclose(getattr(cm, name)().numpy(), ref[name], equal_nan=True), name
    assert cm.pixel_accuracy() == pytest.approx(ref["pixel_accuracy"])
    assert cm.miou() == pytest.approx(ref["miou"])
    assert math.isnan(cm.iou()[3]) and math.isnan(cm.dice()[3])  # absent class: NaN, not 0


@pytest.mark.parametrize("seed", range(3))
def test_iou_matches_torchmetrics(seed):
    logits, target = random_preds(seed, absent=(1,), ignore_index=255)
    ref = MulticlassJaccardIndex(num_classes=5, average="none", ignore_index=255, zero_division=math.nan)
    ours = ConfusionMatrix(5, ignore_index=255)
    for lo in range(0, 6, 2):  # three batches of two
        ref.update(logits[lo : lo + 2].argmax(1), target[lo : lo + 2])
        ours.update(logits[lo : lo + 2], target[lo : lo + 2])
    assert np.allclose(ours.iou().numpy(), ref.compute().double().numpy(), equal_nan=True)


def test_ignore_index_that_is_a_class_is_undefined_like_torchmetrics():
    logits, target = random_preds(5, k=3)
    ours = ConfusionMatrix(3, ignore_index=0)
    ours.update(logits, target)
    assert math.isnan(ours.iou()[0]) and math.isnan(ours.dice()[0]) and math.isnan(ours.recall()[0])
    macro = MulticlassJaccardIndex(num_classes=3, average="macro", ignore_index=0)
    assert ours.miou() == pytest.approx(macro(logits.argmax(1), target).item(), abs=1e-6)
    per_class = MulticlassJaccardIndex(num_classes=3, average="none", ignore_index=0)(logits.argmax(1), target)
    assert np.allclose(ours.iou()[1:].numpy(), per_class[1:].double().numpy())


@pytest.mark.parametrize("seed", range(3))
def test_dice_matches_monai_where_target_present(seed):
    logits, target = random_preds(seed, absent=(2,))
    cm = ConfusionMatrix(5)
    cm.update(logits, target)
    # MONAI scores each sample separately; stacking the batch into one tall image makes it score
    # the whole set at once, which is what the confusion matrix does.
    pred_1h = F.one_hot(logits.argmax(1), 5).permute(0, 3, 1, 2).float()  # (N, K, H, W)
    true_1h = F.one_hot(target, 5).permute(0, 3, 1, 2).float()
    tall = lambda x: x.permute(1, 0, 2, 3).reshape(1, 5, -1, x.shape[-1])  # noqa: E731  (1, K, N*H, W)
    monai = DiceMetric(include_background=True, reduction="none", ignore_empty=True)
    ref = monai(tall(pred_1h), tall(true_1h))[0].double()
    # Both NaN for the class absent everywhere; equal elsewhere.
    assert np.allclose(cm.dice().numpy(), ref.numpy(), equal_nan=True)


def test_dice_iou_relation_and_perfect_prediction():
    logits, target = random_preds(11, absent=(4,))
    cm = ConfusionMatrix(5)
    cm.update(logits, target)
    iou, dice = cm.iou(), cm.dice()
    defined = ~iou.isnan()
    assert torch.allclose(dice[defined], 2 * iou[defined] / (1 + iou[defined]))
    perfect = ConfusionMatrix(5)
    perfect.update(target, target)
    assert perfect.iou()[:4].tolist() == [1.0] * 4 and math.isnan(perfect.iou()[4])
    assert perfect.miou() == 1.0 and perfect.pixel_accuracy() == 1.0


def test_batch_size_does_not_change_results():
    logits, target = random_preds(21, n=9)
    results = []
    for batch in (1, 3, 9):
        cm = ConfusionMatrix(5)
        for lo in range(0, 9, batch):
            cm.update(logits[lo : lo + batch], target[lo : lo + batch])
        results.append(cm.matrix.clone())
    assert torch.equal(results[0], results[1]) and torch.equal(results[1], results[2])


def test_per_batch_averaging_differs_from_accumulation():
    """The lesson's per-batch mean is not the dataset IoU; the accumulator is."""
    target = torch.zeros(2, 10, 10, dtype=torch.long)
    target[0, :1, :1] = 1  # 1 pixel of class 1 in image 0
    target[1, :5, :10] = 1  # 50 pixels in image 1
    preds = torch.zeros_like(target)
    preds[1] = target[1]  # image 0 misses its pixel, image 1 is perfect
    per_batch = np.nanmean([iou_per_class(preds[i : i + 1], target[i : i + 1], 2)[1] for i in range(2)])
    cm = ConfusionMatrix(2)
    cm.update(preds, target)
    assert per_batch == pytest.approx(0.5)
    assert cm.iou()[1].item() == pytest.approx(50 / 51)


def test_binary_logits_and_class_ids_inputs():
    target = torch.tensor([[[0, 1], [1, 0]]])
    binary_logits = torch.tensor([[[[-1.0, 2.0], [-3.0, 0.5]]]])  # (1, 1, 2, 2)
    assert torch.equal(to_class_ids(binary_logits, 2), torch.tensor([[[0, 1], [0, 1]]]))
    m = confusion_matrix(binary_logits, target, 2)
    assert m.tolist() == [[1, 1], [1, 1]]


def test_compute_reports_nan_for_undefined_and_reset():
    cm = ConfusionMatrix(3)
    cm.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long))
    out = cm.compute()
    assert out["iou"][0] == 1.0 and all(math.isnan(v) for v in out["iou"][1:]) and out["miou"] == 1.0
    cm.reset()
    assert cm.matrix.sum() == 0 and math.isnan(cm.pixel_accuracy()) and math.isnan(cm.miou())


def test_merge_adds_counts():
    a, b = ConfusionMatrix(2), ConfusionMatrix(2)
    a.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.ones(1, 2, 2, dtype=torch.long))
    b.update(torch.ones(1, 2, 2, dtype=torch.long), torch.ones(1, 2, 2, dtype=torch.long))
    assert a.merge(b).matrix.tolist() == [[0, 0], [4, 4]]
    with pytest.raises(ValueError, match="cannot merge 3-class"):
        a.merge(ConfusionMatrix(3))


# --- properties --------------------------------------------------------------------------------
@st.composite
def label_batches(draw):
    k = draw(st.integers(2, 5))
    n, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    cells = n * h * w
    preds = draw(st.lists(st.integers(0, k - 1), min_size=cells, max_size=cells))
    target = draw(st.lists(st.integers(0, k - 1), min_size=cells, max_size=cells))
    split = draw(st.integers(0, n))
    shape = (n, h, w)
    return k, torch.tensor(preds).reshape(shape), torch.tensor(target).reshape(shape), split


@settings(max_examples=60, deadline=None)
@given(label_batches())
def test_metric_properties(case):
    k, preds, target, split = case
    whole = ConfusionMatrix(k)
    whole.update(preds, target)
    for values in (whole.iou(), whole.dice(), whole.precision(), whole.recall()):
        defined = values[~values.isnan()]
        assert ((defined >= 0) & (defined <= 1)).all()
    # NaN exactly for classes in neither prediction nor target
    absent = torch.tensor([not ((preds == c).any() or (target == c).any()) for c in range(k)])
    assert torch.equal(whole.iou().isnan(), absent)
    # splitting the batch anywhere gives the same counts
    parts = ConfusionMatrix(k)
    for chunk in (slice(0, split), slice(split, None)):
        if preds[chunk].numel():
            parts.update(preds[chunk], target[chunk])
    assert torch.equal(parts.matrix, whole.matrix)
    assert 0 <= whole.pixel_accuracy() <= 1


# --- bad input -----------------------------------------------------------------------------
def test_update_errors():
    cm = ConfusionMatrix(2)
    with pytest.raises(ValueError, match=r"preds \(1, 1, 4, 4\) and target \(1, 4, 5\) do not match"):
        cm.update(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 5, dtype=torch.long))
    with pytest.raises(TypeError, match=r"target must hold integer class ids.*torch.float32"):
        cm.update(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match=r"class id 255.*num_classes=2.*0/255"):
        cm.update(torch.zeros(1, 4, 4, dtype=torch.long), torch.full((1, 4, 4), 255))
    with pytest.raises(ValueError, match=r"preds has 3 class channels but num_classes=2"):
        cm.update(torch.randn(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"preds as class ids must have shape \(N, H, W\)"):
        cm.update(torch.zeros(4, 4, dtype=torch.long), torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(TypeError, match=r"num_classes must be an int"):
        ConfusionMatrix(2.0)


@given(st.integers(2, 6), st.integers(0, 2**31 - 1))
@settings(max_examples=40, deadline=None)
def test_class_ids_from_scores_equal_argmax_with_ties(k, seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 3, (2, k, 5, 4), generator=g).float()  # few values: many ties
    assert torch.equal(to_class_ids(scores, k), scores.argmax(dim=1))
    channels_last = scores.contiguous(memory_format=torch.channels_last)
    assert torch.equal(to_class_ids(channels_last, k), scores.argmax(dim=1))


def test_nan_scores_are_refused_instead_of_scored():
    """A model whose output is NaN must not get a finite mIoU (argmax would call NaN some class)."""
    logits = torch.zeros(1, 2, 3, 3)
    logits[0, 1] = 5.0
    logits[0, :, 1, 1] = float("nan")
    target = torch.ones(1, 3, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"preds holds 2 NaN scores, so they have no class: the model diverged"):
        ConfusionMatrix(2).update(logits, target)
    with pytest.raises(ValueError, match=r"NaN scores"):
        ConfusionMatrix(2).update(logits[:, 1:], target)  # one binary logit
