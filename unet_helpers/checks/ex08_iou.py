"""Checks of exercise 08: IoU from a confusion matrix, then IoU over a whole dataset.

Reference: ``unet_helpers.metrics.ConfusionMatrix`` (rows: true class, columns: predicted class;
IoU = TP / (TP + FP + FN), NaN when a class is absent from both prediction and target).
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..metrics import ConfusionMatrix, nan_divide
from .compare import Variant, expect_same
from .core import Property
from .isolation import call_learner
from .spec import ExerciseSpec
from .tools import generator, require_tensor

_SIZES = (2, 3, 5)  # K of the random confusion matrices


def _reference(matrix: torch.Tensor) -> torch.Tensor:
    cm = ConfusionMatrix(matrix.shape[0])
    cm.matrix = matrix.clone()
    return cm.iou()  # (K,) float64


def _random_matrix(k: int, seed: int) -> torch.Tensor:
    matrix = torch.randint(0, 40, (k, k), generator=generator(300 + seed))
    return matrix + torch.diag(torch.randint(20, 80, (k,), generator=generator(400 + seed)))  # (K, K) int64


def _iou_variants(matrix: torch.Tensor) -> list[Variant]:
    tp, rows, cols = matrix.diagonal(), matrix.sum(1), matrix.sum(0)
    union = rows + cols - tp
    iou = nan_divide(tp, union)
    formula, absent = "IoU = TP / (TP + FP + FN)", "absent classes are NaN"
    return [
        Variant(formula, nan_divide(tp, cols), "You divide by TP + FP (the column sum): that is precision."),
        Variant(formula, nan_divide(tp, rows), "You divide by TP + FN (the row sum): that is recall."),
        Variant(formula, nan_divide(tp, rows + cols), "Your union counts TP twice: subtract TP once."),
        Variant(formula, nan_divide(2 * tp, rows + cols), "That is Dice, 2 TP / (2 TP + FP + FN), not IoU."),
        Variant(absent, iou.nan_to_num(0.0), "A class absent from prediction and target gets 0 instead of NaN."),
        Variant(absent, iou.nan_to_num(1.0), "A class absent from prediction and target gets 1 instead of NaN."),
        Variant("predicted but never true gives 0, not NaN", torch.where(rows > 0, iou, torch.nan),
                "You give NaN to a class that was predicted but never true; its IoU is 0 / FP = 0."),
    ]


def _compare(fn: Callable[..., Any], matrix: torch.Tensor, what: str) -> None:
    k = matrix.shape[0]
    got = require_tensor(call_learner(fn, matrix), "The result", shape=(k,))
    expect_same(got, _reference(matrix), what, _iou_variants(matrix))


def _shape(fn: Callable[..., Any]) -> None:
    require_tensor(call_learner(fn, _random_matrix(3, 0)), "The result", shape=(3,))


def _perfect(fn: Callable[..., Any]) -> None:
    _compare(fn, torch.diag(torch.tensor([5, 3, 7])), "a diagonal matrix (every pixel right): IoU 1 for each class")


def _random(fn: Callable[..., Any]) -> None:
    for seed, k in enumerate(_SIZES):
        _compare(fn, _random_matrix(k, seed), f"a random {k}x{k} matrix of counts")


def _absent(fn: Callable[..., Any]) -> None:
    matrix = _random_matrix(4, 7)
    matrix[2, :], matrix[:, 2] = 0, 0  # class 2 neither true nor predicted anywhere
    _compare(fn, matrix, "a 4x4 matrix whose row 2 and column 2 are all zero")


def _predicted_only(fn: Callable[..., Any]) -> None:
    matrix = _random_matrix(3, 8)
    matrix[1, :] = 0  # class 1 never true, but column 1 still has false positives
    _compare(fn, matrix, "a 3x3 matrix whose row 1 is zero but column 1 is not")


def _iou_properties() -> list[Property]:
    return [
        Property("returns one IoU per class", "a 3x3 matrix -> shape (3,), float", _shape),
        Property("perfect prediction gives IoU 1", "diag(5, 3, 7)", _perfect),
        Property("IoU = TP / (TP + FP + FN)", f"random count matrices, K = {', '.join(map(str, _SIZES))}", _random,
                 "TP is the diagonal; row sums are TP + FN, column sums TP + FP, so `union = rows + cols - TP`."),
        Property("absent classes are NaN", "4x4 matrix, class 2 in no row and no column", _absent,
                 "0 / 0 is undefined: return NaN there, e.g. `torch.where(union > 0, tp / union, torch.nan)`."),
        Property("predicted but never true gives 0, not NaN", "3x3 matrix, class 1 only predicted", _predicted_only,
                 "Only union == 0 is undefined; a class with false positives and no true pixel has IoU 0."),
    ]


IOU_FROM_CONFUSION = ExerciseSpec(
    name="iou_from_confusion",
    title="Per-class IoU from a confusion matrix, NaN for absent classes",
    notebook="ex08_iou",
    task="Write `my_iou_from_confusion(matrix)`: `matrix (K, K)` int64 counts (rows: true class, columns: predicted "
         "class) -> `(K,)` float IoU per class, NaN where a class is neither true nor predicted.",
    properties=_iou_properties,
    hints=(
        "True positives are on the diagonal. What do the sum of row k and the sum of column k count?",
        "`tp = matrix.diagonal()`, `union = matrix.sum(0) + matrix.sum(1) - tp` (TP + FP + FN).",
        "`torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(..., float('nan')))`: convert to float first.",
    ),
    defines=("my_iou_from_confusion",),
    reference="unet_helpers/metrics.py: ConfusionMatrix.iou",
    forbidden=("unet_helpers.metrics.ConfusionMatrix", "unet_helpers.metrics.iou_per_class",
               "unet_helpers.metrics.confusion_matrix", "unet_helpers.metrics.nan_divide"),
    next_steps="mIoU is the mean over classes where IoU is defined: `torch.nanmean`. Then do the dataset version below.",
)

# ---------------------------------------------------------------------------------------------
# dataset_iou: accumulate the counts over every batch, then divide once
# ---------------------------------------------------------------------------------------------


def _batch(shape: tuple[int, int, int], k: int, seed: int, right: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions right on about a fraction ``right`` of the pixels: ``(preds, target)`` ``(N, H, W)``."""
    gen = generator(500 + seed)
    target = torch.randint(0, k, shape, generator=gen)
    noise = torch.randint(0, k, shape, generator=gen)
    keep = torch.rand(shape, generator=gen) < right
    return torch.where(keep, target, noise), target


def _dataset_reference(batches: list[tuple[torch.Tensor, torch.Tensor]], k: int) -> torch.Tensor:
    cm = ConfusionMatrix(k)
    for preds, target in batches:
        cm.update(preds, target)
    return cm.iou()


def _per_batch_mean(batches: list, k: int) -> torch.Tensor:
    return torch.stack([_dataset_reference([b], k) for b in batches]).nanmean(dim=0)


def _dataset_compare(fn: Callable[..., Any], batches: list, k: int, what: str) -> None:
    got = require_tensor(call_learner(fn, batches, k), "The result", shape=(k,))
    name = "counts accumulated over the dataset"
    expect_same(got, _dataset_reference(batches, k), what, [
        Variant(name, lambda: _per_batch_mean(batches, k),
                "You average per-batch IoUs; sum the counts over all batches, then divide once."),
        Variant(name, lambda: _dataset_reference(batches[-1:], k),
                "Only the last batch counts: create the matrix once, before the loop."),
        Variant(name, lambda: _dataset_reference(batches[:1], k), "Only the first batch counts."),
        Variant(name, lambda: torch.stack([_dataset_reference([b], k) for b in batches]).nan_to_num(0.0).mean(0),
                "You average per-batch IoUs, counting a class absent from a batch as 0."),
    ])


def _ds_shape(fn: Callable[..., Any]) -> None:
    require_tensor(call_learner(fn, [_batch((2, 8, 8), 3, 0, 0.7)], 3), "The result", shape=(3,))


def _ds_one_batch(fn: Callable[..., Any]) -> None:
    _dataset_compare(fn, [_batch((2, 9, 7), 3, 1, 0.6)], 3, "one batch (2, 9, 7), K=3")


def _ds_accumulated(fn: Callable[..., Any]) -> None:
    batches = [_batch((4, 16, 16), 3, 2, 0.9), _batch((1, 5, 3), 3, 3, 0.1), _batch((2, 7, 9), 3, 4, 0.5)]
    _dataset_compare(fn, batches, 3, "batches (4, 16, 16), (1, 5, 3), (2, 7, 9) of very different quality")


def _ds_absent(fn: Callable[..., Any]) -> None:
    batches = [_batch((2, 6, 6), 3, 5, 0.8), _batch((1, 6, 6), 3, 6, 0.8)]  # ids 0..2 only, K = 4
    _dataset_compare(fn, batches, 4, "K=4 where class 3 appears in no batch")


def _dataset_properties() -> list[Property]:
    return [
        Property("returns one IoU per class", "one batch (2, 8, 8), K=3 -> shape (3,)", _ds_shape),
        Property("one batch equals unet_helpers.iou_per_class", "preds and target (2, 9, 7), K=3", _ds_one_batch),
        Property("counts accumulated over the dataset", "3 batches of sizes 4, 1, 2 with odd image sizes", _ds_accumulated,
                 "Add every batch's counts into one (K, K) matrix, then compute IoU once at the end."),
        Property("a class in no batch is NaN", "K=4, class 3 never appears", _ds_absent),
    ]


DATASET_IOU = ExerciseSpec(
    name="dataset_iou",
    title="IoU over a whole dataset: accumulate counts, divide once",
    notebook="ex08_iou",
    task="Write `my_dataset_iou(batches, num_classes)`: `batches` is a list of `(preds, target)` pairs of class ids "
         "`(N, H, W)` -> `(K,)` IoU of the whole dataset, NaN for classes that never appear.",
    properties=_dataset_properties,
    hints=(
        "Averaging per-batch IoUs gives a tiny batch the same weight as a big one. Add up the counts instead.",
        "One pixel with true class t and prediction p lands in cell t * K + p of a flat matrix: "
        "`torch.bincount(target.reshape(-1) * K + preds.reshape(-1), minlength=K * K).reshape(K, K)`.",
        "Start `matrix = torch.zeros(K, K, dtype=torch.int64)` before the loop, add each batch, and call your "
        "`my_iou_from_confusion(matrix)` once after it.",
    ),
    defines=("my_dataset_iou",),
    reference="unet_helpers/metrics.py: ConfusionMatrix.update",
    forbidden=("unet_helpers.metrics.ConfusionMatrix", "unet_helpers.metrics.iou_per_class",
               "unet_helpers.metrics.confusion_matrix"),
    next_steps="split the same data into batches of 1 and of 8: your result does not change; the per-batch mean does.",
)
