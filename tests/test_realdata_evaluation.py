"""Tiled scoring of a set (``realdata.evaluation``) against per-pixel counting with NumPy."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from unet_helpers.inference import predict_tiled
from unet_helpers.realdata.evaluation import tiled_confusion


def tiny_model(num_classes=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, num_classes, 3, padding=1)).eval()


def brute_iou(preds, masks, num_classes, ignore_index=None):
    pred = np.concatenate([p.numpy().ravel() for p in preds])
    true = np.concatenate([m.numpy().ravel() for m in masks])
    keep = true != ignore_index if ignore_index is not None else np.ones_like(true, bool)
    pred, true = pred[keep], true[keep]
    ious = []
    for k in range(num_classes):
        tp = np.sum((pred == k) & (true == k))
        union = np.sum((pred == k) | (true == k))
        ious.append(tp / union if union else np.nan)
    return np.array(ious)


@pytest.mark.parametrize("ignore_index", [None, 255])
def test_counts_of_every_image_add_up(ignore_index):
    gen = torch.Generator().manual_seed(1)
    data = [(torch.rand(1, h, w, generator=gen), torch.randint(0, 3, (h, w), generator=gen))
            for h, w in ((40, 52), (33, 47), (48, 40))]
    if ignore_index is not None:
        for _, mask in data:
            mask[: mask.shape[0] // 3] = ignore_index  # the top third is unlabelled
    model = tiny_model()
    preds, matrix = tiled_confusion(model, data, 3, tile=16, overlap=0.25, ignore_index=ignore_index)
    expected = [predict_tiled(model, image, tile=16, overlap=0.25) for image, _ in data]
    assert all(torch.equal(p, e) for p, e in zip(preds, expected))
    reference = brute_iou(preds, [m for _, m in data], 3, ignore_index)
    np.testing.assert_allclose(matrix.iou().numpy(), reference, equal_nan=True)
    per_image_mean = np.nanmean([brute_iou([p], [m], 3, ignore_index) for p, (_, m) in zip(preds, data)], axis=0)
    assert not np.allclose(per_image_mean, reference)  # pooled counts, not a mean of per-image IoUs


def test_an_absent_class_is_nan():
    data = [(torch.rand(1, 20, 20), torch.zeros(20, 20, dtype=torch.long))]
    model = nn.Conv2d(1, 4, 1).eval()
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([5.0, 0.0, 0.0, 0.0]))  # always class 0
    _, matrix = tiled_confusion(model, data, 4, tile=8)
    iou = matrix.iou()
    assert iou[0] == 1 and torch.isnan(iou[1:]).all()
