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


def _spread(diff):
    """(S, K) per-seed differences -> lowest and highest defined one per class (NaN when none is)."""
    defined = ~diff.isnan()
    none = ~defined.any(0)
    lowest = diff.masked_fill(~defined, math.inf).amin(0).masked_fill(none, math.nan)
    highest = diff.masked_fill(~defined, -math.inf).amax(0).masked_fill(none, math.nan)
    return lowest, highest


def _rank(names, gains, lowest=None, highest=None):
    gains = [float(g) for g in gains]
    lowest = gains if lowest is None else [float(v) for v in lowest]
    highest = gains if highest is None else [float(v) for v in highest]
    rows = list(zip(names, gains, lowest, highest))
    return sorted(rows, key=lambda r: (math.isnan(r[1]), -r[1] if not math.isnan(r[1]) else 0.0))


def _diff(iou_without, iou_with):
    return (iou_with - iou_without).reshape(-1, iou_with.shape[-1])  # (S, K)


def _ranked(names, diff, mean=None):
    return _rank(names, diff.nanmean(0) if mean is None else mean, *_spread(diff))


def sign_flipped(iou_without, iou_with, class_names):
    return _ranked(class_names, _diff(iou_with, iou_without))


def in_points(iou_without, iou_with, class_names):
    return _ranked(class_names, 100 * _diff(iou_without, iou_with))


def ascending(iou_without, iou_with, class_names):
    return list(reversed(_ranked(class_names, _diff(iou_without, iou_with))))


def nan_as_zero(iou_without, iou_with, class_names):
    return _ranked(class_names, _diff(iou_without.nan_to_num(0.0), iou_with.nan_to_num(0.0)))


def naive_sort(iou_without, iou_with, class_names):
    """sorted() with NaN among the keys: every comparison with NaN is False."""
    diff = _diff(iou_without, iou_with)
    lowest, highest = _spread(diff)
    rows = zip(class_names, diff.nanmean(0).tolist(), lowest.tolist(), highest.tolist())
    return sorted(rows, key=lambda r: r[1], reverse=True)


def torch_sort(iou_without, iou_with, class_names):
    """torch.sort(descending=True) puts NaN first."""
    diff = _diff(iou_without, iou_with)
    gains, (lowest, highest) = diff.nanmean(0), _spread(diff)
    order = torch.argsort(gains, descending=True)
    return [(class_names[i], float(gains[i]), float(lowest[i]), float(highest[i])) for i in order]


def unpaired_means(iou_without, iou_with, class_names):
    """Difference of the mean IoUs over seeds, not the mean of the per-seed differences."""
    rows = lambda t: t.reshape(-1, t.shape[-1])  # noqa: E731
    return _ranked(class_names, _diff(iou_without, iou_with), rows(iou_with).nanmean(0) - rows(iou_without).nanmean(0))


def plain_mean_over_seeds(iou_without, iou_with, class_names):
    diff = _diff(iou_without, iou_with)
    return _ranked(class_names, diff, diff.mean(0))


def mean_over_classes(iou_without, iou_with, class_names):
    """Averages over the wrong axis: one number per seed."""
    return _rank(class_names, _diff(iou_without, iou_with).nanmean(1))


def spread_with_nan_as_zero(iou_without, iou_with, class_names):
    """Right means, but the lowest/highest count an undefined seed as a gain of 0."""
    diff = _diff(iou_without, iou_with)
    return _rank(class_names, diff.nanmean(0), diff.nan_to_num(0.0).amin(0), diff.nan_to_num(0.0).amax(0))


def spread_is_std(iou_without, iou_with, class_names):
    """Mean minus and plus one standard deviation instead of the lowest and highest per-seed gain."""
    diff = _diff(iou_without, iou_with)
    mean = diff.nanmean(0)
    std = ((diff - mean) ** 2).nanmean(0).sqrt()
    return _rank(class_names, mean, mean - std, mean + std)


def pairs_only(iou_without, iou_with, class_names):
    """The old two-field answer: (name, gain) without the spread."""
    return [row[:2] for row in _ranked(class_names, _diff(iou_without, iou_with))]


def subtracts_in_place(iou_without, iou_with, class_names):
    """Right gains, but iou_with.sub_() overwrites the caller's tensor."""
    diff = iou_with.sub_(iou_without).reshape(-1, iou_with.shape[-1])
    return _ranked(class_names, diff)
