"""Metric accumulation: ``ConfusionMatrix`` against torchmetrics' ``MulticlassJaccardIndex`` and a
naive per-class loop, on batches of 8 images of 256x256 with 5 classes.

One timing accumulates ``--batches`` different batches (``update`` per batch) and then computes
the per-class IoU once, with a fresh metric each time; the rate is batches per second. Inputs are
either logits ``(8, 5, 256, 256)`` (what a validation loop has) or class ids ``(8, 256, 256)``.
torchmetrics is timed as it comes (``validate_args=True``, which checks the values of every batch,
as ours does) and with ``validate_args=False``.

Before timing, the script checks that all of them count the same: our confusion matrix equals
torchmetrics' ``confmat`` exactly, and the naive loop's intersections and unions equal ours exactly
(``tests/test_bench_helpers.py`` runs the same check).

    python benchmarks/bench_metrics.py
"""
from __future__ import annotations

import argparse
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassJaccardIndex

from _common import interleaved, machine_line, markdown_table, paired_ratio, rate_cell, ratio_cell

from unet_helpers.metrics import ConfusionMatrix

Batches = list[tuple[torch.Tensor, torch.Tensor]]


def make_batches(count: int, num_classes: int = 5, size: int = 256, batch: int = 8, seed: int = 0) -> Batches:
    """``count`` batches of (logits ``(N, K, H, W)``, target ``(N, H, W)``); the logits' argmax
    agrees with the target on about 60 % of the pixels, as a half-trained model's would."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        target = torch.randint(0, num_classes, (batch, size, size), generator=g)
        logits = torch.randn(batch, num_classes, size, size, generator=g)
        agree = torch.rand(batch, size, size, generator=g) < 0.6
        logits += 4 * F.one_hot(target, num_classes).permute(0, 3, 1, 2) * agree.unsqueeze(1)  # (N, K, H, W)
        out.append((logits, target))
    return out


def as_ids(batches: Batches) -> Batches:
    """The same batches with class ids ``(N, H, W)`` in place of logits."""
    return [(logits.argmax(dim=1), target) for logits, target in batches]


def ours(batches: Batches, num_classes: int) -> ConfusionMatrix:
    """Our accumulator over all batches (``compute`` is timed by the caller)."""
    cm = ConfusionMatrix(num_classes)
    for preds, target in batches:
        cm.update(preds, target)
    return cm


def torchmetrics_jaccard(batches: Batches, num_classes: int, validate_args: bool = True) -> MulticlassJaccardIndex:
    """torchmetrics' per-class IoU over all batches."""
    metric = MulticlassJaccardIndex(num_classes, average=None, validate_args=validate_args)
    for preds, target in batches:
        metric.update(preds, target)
    return metric


def naive(batches: Batches, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Intersection and union per class, one class at a time: ``(K,)`` int64 each."""
    intersection = torch.zeros(num_classes, dtype=torch.int64)
    union = torch.zeros(num_classes, dtype=torch.int64)
    for preds, target in batches:
        ids = preds.argmax(dim=1) if preds.is_floating_point() else preds
        for c in range(num_classes):
            p, t = ids == c, target == c
            intersection[c] += (p & t).sum()
            union[c] += (p | t).sum()
    return intersection, union


def naive_iou(intersection: torch.Tensor, union: torch.Tensor) -> torch.Tensor:
    """``(K,)`` float64 IoU from counts, NaN where the union is empty."""
    return torch.tensor([i / u if u else math.nan for i, u in zip(intersection.tolist(), union.tolist())], dtype=torch.float64)


def check_identical(batches: Batches, num_classes: int) -> dict[str, object]:
    """Raise ``RuntimeError`` unless all three count the same; returns the counts and IoUs."""
    cm = ours(batches, num_classes)
    metric = torchmetrics_jaccard(batches, num_classes)
    theirs_iou = metric.compute()
    intersection, union = naive(batches, num_classes)
    tp = cm.true_positives
    our_union = cm.support + cm.predicted - tp
    problems = []
    if not torch.equal(cm.matrix, metric.confmat.long()):
        problems.append(f"confusion matrices differ:\nours\n{cm.matrix}\ntorchmetrics\n{metric.confmat}")
    if not (torch.equal(tp, intersection) and torch.equal(our_union, union)):
        problems.append(f"naive counts differ: intersections {intersection} vs {tp}, unions {union} vs {our_union}")
    if not torch.allclose(cm.iou().float(), theirs_iou, rtol=1e-6, atol=0, equal_nan=True):
        problems.append(f"IoU differs: ours {cm.iou()} torchmetrics {theirs_iou}")
    if not torch.equal(cm.iou(), naive_iou(intersection, union)):
        problems.append(f"IoU differs: ours {cm.iou()} naive {naive_iou(intersection, union)}")
    if problems:
        raise RuntimeError("metric implementations disagree: " + "; ".join(problems))
    return {"matrix": cm.matrix.tolist(), "iou": cm.iou().tolist()}


def candidates(batches: Batches, num_classes: int) -> dict[str, Callable[[], object]]:
    return {
        "ours": lambda: ours(batches, num_classes).compute(),
        "torchmetrics": lambda: torchmetrics_jaccard(batches, num_classes).compute(),
        "torchmetrics, validate_args=False": lambda: torchmetrics_jaccard(batches, num_classes, False).compute(),
        "naive per-class loop": lambda: naive_iou(*naive(batches, num_classes)),
    }


def run_part(batches_per_timing: int, repeats: int, num_classes: int = 5, size: int = 256) -> dict:
    """Check agreement, then time every candidate on logits and on class ids."""
    logit_batches = make_batches(batches_per_timing, num_classes, size)
    rows, raw = [], {}
    for kind, batches in (("logits (8, 5, H, W)", logit_batches), ("class ids (8, H, W)", as_ids(logit_batches))):
        check_identical(batches, num_classes)
        seconds = interleaved(candidates(batches, num_classes), repeats=repeats, warmup=1)
        raw[kind] = seconds
        for name, values in seconds.items():
            ratio = "-" if name == "ours" else ratio_cell(paired_ratio(values, seconds["ours"]))
            rows.append([kind, name, rate_cell(values, batches_per_timing), ratio])
    text = (
        f"{batches_per_timing} batches of 8x{size}x{size}, {num_classes} classes, accumulated then computed once; "
        f"batches per second, median over {repeats} interleaved rounds (slowest-fastest). Ratio = their time / "
        "ours (> 1: ours faster). All four give the same counts (checked before timing: our confusion matrix "
        "equals torchmetrics' `confmat`, the loop's intersections and unions equal ours).\n\n"
        + markdown_table(["input", "implementation", "batches/s", "ours faster by"], rows)
    )
    return {"markdown": text, "seconds": raw}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_line())
    print(run_part(args.batches, args.repeats)["markdown"])


if __name__ == "__main__":
    main()
