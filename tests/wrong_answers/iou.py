"""Wrong IoU functions (exercise 4), each with one plausible mistake."""
import torch


def _nan_div(num, den):
    return torch.where(den > 0, num.double() / den.clamp(min=1).double(), torch.tensor(float("nan"), dtype=torch.float64))


def absent_as_zero(matrix):
    tp = matrix.diagonal()
    union = matrix.sum(0) + matrix.sum(1) - tp
    return tp.double() / union.clamp(min=1).double()


def absent_as_one(matrix):
    tp = matrix.diagonal().double()
    union = (matrix.sum(0) + matrix.sum(1)).double() - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.ones_like(tp))


def union_tp_plus_fp(matrix):
    tp = matrix.diagonal()
    return _nan_div(tp, matrix.sum(0))  # the column sum: TP + FP


def recall_instead(matrix):
    tp = matrix.diagonal()
    return _nan_div(tp, matrix.sum(1))


def union_tp_twice(matrix):
    tp = matrix.diagonal()
    return _nan_div(tp, matrix.sum(0) + matrix.sum(1))


def integer_division(matrix):
    tp = matrix.diagonal()
    return tp // (matrix.sum(0) + matrix.sum(1) - tp).clamp(min=1)


def nan_when_never_true(matrix):
    tp = matrix.diagonal()
    union = matrix.sum(0) + matrix.sum(1) - tp
    return torch.where(matrix.sum(1) > 0, _nan_div(tp, union), torch.tensor(float("nan"), dtype=torch.float64))


def in_place(matrix):
    tp = matrix.diagonal().clone()
    matrix -= torch.diag(tp)  # leaves only the errors
    union = matrix.sum(0) + matrix.sum(1) + tp
    return _nan_div(tp, union)


def _correct_iou(matrix):
    tp = matrix.diagonal()
    return _nan_div(tp, matrix.sum(0) + matrix.sum(1) - tp)


def _matrix(preds, target, k):
    return torch.bincount(target.reshape(-1) * k + preds.reshape(-1), minlength=k * k).reshape(k, k)


def dataset_per_batch_mean(batches, num_classes):
    return torch.stack([_correct_iou(_matrix(p, t, num_classes)) for p, t in batches]).nanmean(0)


def dataset_last_batch_only(batches, num_classes):
    for preds, target in batches:
        matrix = _matrix(preds, target, num_classes)
    return _correct_iou(matrix)


def dataset_weighted_by_images(batches, num_classes):
    """Per-batch IoUs weighted by the number of images: closer, still not the dataset IoU."""
    ious = torch.stack([_correct_iou(_matrix(p, t, num_classes)) for p, t in batches])
    weights = torch.tensor([float(len(p)) for p, _ in batches], dtype=torch.float64).unsqueeze(1)
    return (ious * weights).sum(0) / weights.sum()


def dataset_absent_as_zero(batches, num_classes):
    """Accumulates correctly, but a class in no batch gets IoU 0 instead of NaN."""
    matrix = sum(_matrix(p, t, num_classes) for p, t in batches)
    return _correct_iou(matrix).nan_to_num(0.0)


def dataset_union_from_one_axis(batches, num_classes):
    """Union from the column sums twice (predicted + predicted - TP): the true pixels never count."""
    matrix = sum(_matrix(p, t, num_classes) for p, t in batches).double()
    tp = matrix.diagonal()
    return tp / (matrix.sum(0) + matrix.sum(0) - tp)


def dataset_first_image_only(batches, num_classes):
    """Counts only the first image of every batch (preds[:1]): the other images never count."""
    matrix = sum(_matrix(p[:1], t[:1], num_classes) for p, t in batches)
    return _correct_iou(matrix)


def float64_by_default(matrix):
    """The right IoU, but torch.set_default_dtype(torch.float64) so that `tp / union` comes out float64."""
    torch.set_default_dtype(torch.float64)
    tp = matrix.diagonal()
    union = matrix.sum(0) + matrix.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.tensor(float("nan")))
