"""Wrong answers to the two parts of exercise 8: tiled evaluation and per-class gains."""
import math

import torch

from unet_helpers import ConfusionMatrix, predict, predict_tiled

# -- my_tiled_iou(model, dataset, num_classes, tile=256, overlap=0.25) -------------------------


def per_image_mean(model, dataset, num_classes, tile=256, overlap=0.25):
    """Averages per-image IoUs instead of summing counts."""
    ious = []
    for image, mask in dataset:
        cm = ConfusionMatrix(num_classes)
        cm.update(predict_tiled(model, image, tile=tile, overlap=overlap)[None], mask[None])
        ious.append(cm.iou())
    return torch.stack(ious).nanmean(0)


def per_image_mean_nan_as_zero(model, dataset, num_classes, tile=256, overlap=0.25):
    ious = []
    for image, mask in dataset:
        cm = ConfusionMatrix(num_classes)
        cm.update(predict_tiled(model, image, tile=tile, overlap=overlap)[None], mask[None])
        ious.append(cm.iou().nan_to_num(0.0))
    return torch.stack(ious).mean(0)


def matrix_reset_in_loop(model, dataset, num_classes, tile=256, overlap=0.25):
    for image, mask in dataset:
        cm = ConfusionMatrix(num_classes)
        cm.update(predict_tiled(model, image, tile=tile, overlap=overlap)[None], mask[None])
    return cm.iou()


def whole_images(model, dataset, num_classes, tile=256, overlap=0.25):
    """Runs the model on each whole image: a 1024x1024 slice may not fit in memory."""
    cm = ConfusionMatrix(num_classes)
    for image, mask in dataset:
        cm.update(predict(model, image)[None], mask[None])
    return cm.iou()


def absent_as_zero(model, dataset, num_classes, tile=256, overlap=0.25):
    cm = ConfusionMatrix(num_classes)
    for image, mask in dataset:
        cm.update(predict_tiled(model, image, tile=tile, overlap=overlap)[None], mask[None])
    return cm.iou().nan_to_num(0.0)


def overlap_ignored(model, dataset, num_classes, tile=256, overlap=0.25):
    cm = ConfusionMatrix(num_classes)
    for image, mask in dataset:
        cm.update(predict_tiled(model, image, tile=tile)[None], mask[None])
    return cm.iou()


def returns_miou(model, dataset, num_classes, tile=256, overlap=0.25):
    cm = ConfusionMatrix(num_classes)
    for image, mask in dataset:
        cm.update(predict_tiled(model, image, tile=tile, overlap=overlap)[None], mask[None])
    return torch.tensor(cm.miou())


# -- my_dice_gains(iou_without, iou_with, class_names) ------------------------------------------


def _rank(names, gains):
    pairs = list(zip(names, [float(g) for g in gains]))
    return sorted(pairs, key=lambda p: (math.isnan(p[1]), -p[1] if not math.isnan(p[1]) else 0.0))


def _diff(iou_without, iou_with):
    return (iou_with - iou_without).reshape(-1, iou_with.shape[-1])  # (S, K)


def sign_flipped(iou_without, iou_with, class_names):
    return _rank(class_names, _diff(iou_with, iou_without).nanmean(0))


def in_points(iou_without, iou_with, class_names):
    return _rank(class_names, 100 * _diff(iou_without, iou_with).nanmean(0))


def ascending(iou_without, iou_with, class_names):
    return list(reversed(_rank(class_names, _diff(iou_without, iou_with).nanmean(0))))


def nan_as_zero(iou_without, iou_with, class_names):
    return _rank(class_names, _diff(iou_without.nan_to_num(0.0), iou_with.nan_to_num(0.0)).mean(0))


def naive_sort(iou_without, iou_with, class_names):
    """sorted() with NaN among the keys: every comparison with NaN is False."""
    gains = _diff(iou_without, iou_with).nanmean(0).tolist()
    return sorted(zip(class_names, gains), key=lambda p: p[1], reverse=True)


def torch_sort(iou_without, iou_with, class_names):
    """torch.sort(descending=True) puts NaN first."""
    gains = _diff(iou_without, iou_with).nanmean(0)
    order = torch.argsort(gains, descending=True)
    return [(class_names[i], float(gains[i])) for i in order]


def unpaired_means(iou_without, iou_with, class_names):
    """Difference of the mean IoUs over seeds, not the mean of the per-seed differences."""
    rows = lambda t: t.reshape(-1, t.shape[-1])  # noqa: E731
    return _rank(class_names, rows(iou_with).nanmean(0) - rows(iou_without).nanmean(0))


def plain_mean_over_seeds(iou_without, iou_with, class_names):
    return _rank(class_names, _diff(iou_without, iou_with).mean(0))


def mean_over_classes(iou_without, iou_with, class_names):
    """Averages over the wrong axis: one number per seed."""
    return _rank(class_names, _diff(iou_without, iou_with).nanmean(1))


def subtracts_in_place(iou_without, iou_with, class_names):
    """Right gains, but iou_with.sub_() overwrites the caller's tensor."""
    diff = iou_with.sub_(iou_without).reshape(-1, iou_with.shape[-1])
    return _rank(class_names, diff.nanmean(0))
