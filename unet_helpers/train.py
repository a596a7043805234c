"""The training loop: ``train_one_epoch``, ``evaluate`` and ``fit``.

Built step by step in ``notebooks/06_training.ipynb`` (a loop written by hand first, then this).

The loop knows nothing about plotting or files: ``fit`` calls ``callbacks`` at the end of every
epoch with ``(history, model)``; that is how ``views.widgets.TrainingDashboard`` draws live and how
the ``train`` command writes its checkpoints. A callback with an int attribute ``preview_images``
asks ``evaluate`` to keep that many validation images with their predictions
(``history[-1].val.preview``), so no callback has to run the model again. Every epoch is one typed
``records.EpochRecord``.

Batches are ``(images, targets)`` or ``(images, targets, pixel_weights)``; with weights the loss is
called as ``loss_fn(logits, targets, pixel_weights=weights)`` (``CombinedLoss`` and
``pixel_cross_entropy`` take that keyword). A loss may return a scalar or
``(scalar, {"part": float, ...})`` like ``combined_loss``.

Shapes: images ``(N, C, H, W)``, targets ``(N, H, W)``, logits ``(N, K, H, W)``.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from typing import Callable, Iterable, Sequence

import torch
import torch.distributed as dist
import torch.nn as nn

from .metrics import ConfusionMatrix, to_class_ids
from .progress import progress_bar
from .records import EpochRecord, Evaluation, History, Preview, TrainSummary
from .runtime import in_layout, is_distributed, is_main_process, model_device, unwrap_model

Callback = Callable[[History, nn.Module], None]


def infer_num_classes(model: nn.Module) -> int:
    """``K`` from ``model.config.num_classes`` (a one-channel binary model counts as 2 classes)."""
    config = getattr(unwrap_model(model), "config", None)
    k = getattr(config, "num_classes", None)
    if k is None:
        raise ValueError("cannot tell the number of classes of this model; pass num_classes=K")
    return 2 if k == 1 else k


def _split_batch(batch: Sequence[torch.Tensor], device: torch.device):
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise ValueError(
            "each batch must be (images, targets) or (images, targets, pixel_weights); "
            f"got {type(batch).__name__} of length {len(batch) if hasattr(batch, '__len__') else '?'}"
        )
    images, targets = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
    weights = batch[2].to(device, non_blocking=True) if len(batch) == 3 else None
    return images, targets, weights


def compute_loss(loss_fn: Callable, logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None):
    """Call ``loss_fn`` and return ``(loss, parts)`` whatever form the loss returns."""
    out = loss_fn(logits, targets) if weights is None else loss_fn(logits, targets, pixel_weights=weights)
    if isinstance(out, tuple):
        return out[0], dict(out[1])
    return out, {}


class _Mean:
    """Running mean of a loss and its parts, weighted by batch size."""

    def __init__(self) -> None:
        self.count, self.sums = 0, {}

    def add(self, n: int, loss: float, parts: dict[str, float]) -> None:
        self.count += n
        for key, value in {"loss": loss, **parts}.items():
            self.sums[key] = self.sums.get(key, 0.0) + n * float(value)

    def reduce_across_processes(self, device: torch.device) -> None:
        if is_distributed():
            # Every process must send a tensor of the same length: agree on the keys first (a
            # process with no batch, or a loss with other parts, has seen other keys).
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, sorted(self.sums))
            keys = sorted(set().union(*gathered))
            packed = torch.tensor([self.count] + [self.sums.get(k, 0.0) for k in keys], dtype=torch.float64, device=device)
            dist.all_reduce(packed)
            self.count = int(packed[0])
            self.sums = dict(zip(keys, packed[1:].tolist()))

    def means(self) -> dict[str, float]:
        return {k: v / self.count for k, v in self.sums.items()} if self.count else {}


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    loss_fn: Callable,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None = None,
    grad_clip: float | None = None,
    scheduler: object | None = None,
    progress: bool = False,
    description: str = "train",
    channels_last: bool = False,
) -> TrainSummary:
    """One pass over ``loader`` in training mode; returns the mean loss and its parts.

    ``scheduler`` (if given) is stepped after every batch (for per-step schedules like OneCycleLR).
    ``channels_last`` hands the model each batch in channels-last memory layout (see ``fit``).
    """
    device = model_device(model)
    model.train()  # BatchNorm uses batch statistics and updates its running averages
    mean = _Mean()
    autocast = torch.autocast(device.type, dtype=torch.float16) if scaler is not None else nullcontext()
    for batch in progress_bar(loader, description, leave=False, disable=not progress):
        images, targets, weights = _split_batch(batch, device)
        images = in_layout(images, channels_last)
        with autocast:
            logits = model(images)  # (N, K, H, W)
            loss, parts = compute_loss(loss_fn, logits, targets, weights)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss became {loss.item()} (parts {parts}); lower the learning rate or check the inputs for NaN"
            )
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        mean.add(images.shape[0], loss.item(), parts)
    mean.reduce_across_processes(device)
    means = mean.means()
    return TrainSummary(means.pop("loss", math.nan), means)


def evaluate(
    model: nn.Module,
    loader: Iterable,
    num_classes: int | None = None,
    loss_fn: Callable | None = None,
    ignore_index: int | None = None,
    progress: bool = False,
    channels_last: bool = False,
    preview: int = 0,
) -> Evaluation:
    """One pass in eval mode under ``torch.inference_mode()``; metrics from accumulated counts.

    Args:
        model: the network; put in eval mode here, its mode is restored afterwards.
        loader: batches of the validation set.
        num_classes: ``K`` (default: ``model.config.num_classes``).
        loss_fn: also average this loss over the set (optional).
        ignore_index: target value left out of the metrics.
        progress: show a progress bar.
        channels_last: hand the model each batch in channels-last memory layout (see ``fit``).
        preview: keep the first ``preview`` images with their true and predicted masks.

    Returns:
        An ``Evaluation``: per-class IoU, Dice, precision and recall (NaN where undefined), their
        means, the ``ConfusionMatrix``, the mean loss and its parts (NaN without ``loss_fn``).

    Under ``torch.distributed`` the counts of all processes are summed, so each process must see a
    disjoint share of the set: ``DistributedSampler`` pads with duplicates (counted twice); use
    ``cli.distributed.ShardSampler``. A DDP model that broadcasts buffers at every forward makes
    each forward a collective call, which hangs when shards differ in length
    (``cli.distributed.wrap_model`` turns that off).
    """
    device = model_device(model)
    num_classes = num_classes or infer_num_classes(model)
    was_training = model.training
    model.eval()  # BatchNorm uses its running averages; nothing is updated
    matrix = ConfusionMatrix(num_classes, ignore_index)
    mean = _Mean()
    kept: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (images, targets, preds) to preview
    try:
        with torch.inference_mode():
            for batch in progress_bar(loader, "validate", leave=False, disable=not progress):
                images, targets, weights = _split_batch(batch, device)
                logits = model(in_layout(images, channels_last))  # (N, K, H, W)
                preds = to_class_ids(logits, num_classes)  # (N, H, W)
                matrix.update(preds, targets)
                if loss_fn is not None:
                    loss, parts = compute_loss(loss_fn, logits, targets, weights)
                    mean.add(images.shape[0], loss.item(), parts)
                missing = preview - sum(len(chunk[0]) for chunk in kept)
                if missing > 0:
                    kept.append((images[:missing].cpu(), targets[:missing].cpu(), preds[:missing].cpu()))
    finally:
        model.train(was_training)
    if is_distributed():
        counts = matrix.matrix.to(device)
        dist.all_reduce(counts)
        matrix.matrix = counts.cpu()
    mean.reduce_across_processes(device)
    losses = mean.means()
    shown = Preview(*(torch.cat(column).contiguous() for column in zip(*kept))) if kept else None
    return Evaluation.from_counts(matrix, losses.pop("loss", math.nan), losses, shown)


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None,
    loss_fn: Callable,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    *,
    num_classes: int | None = None,
    ignore_index: int | None = None,
    scheduler: object | None = None,
    scheduler_per_batch: bool = False,
    callbacks: Sequence[Callback] = (),
    history: History | None = None,
    progress: bool = True,
    amp: bool | None = None,
    grad_clip: float | None = None,
    channels_last: bool = False,
) -> History:
    """Train for ``epochs`` more epochs, validating after each; returns the history.

    Args:
        model: the network, already on its device (``model.to(device)``).
        train_loader, val_loader: iterables of batches (``val_loader`` may be ``None``).
        loss_fn: ``f(logits, targets[, pixel_weights=...])`` -> scalar or ``(scalar, parts)``.
        optimizer: any ``torch.optim`` optimizer over ``model.parameters()``.
        epochs: number of epochs to run in this call.
        num_classes: ``K`` for the metrics (default: ``model.config.num_classes``).
        ignore_index: target value left out of the metrics.
        scheduler: optional LR scheduler, stepped once per epoch (``ReduceLROnPlateau`` gets the
            validation loss) or per batch with ``scheduler_per_batch=True``.
        callbacks: functions called as ``f(history, model)`` after every epoch (only on the main
            process). One with an int attribute ``preview_images`` finds that many validation
            images with their predictions in ``history[-1].val.preview``.
        history: a previous history to continue (e.g. from ``load_checkpoint``); epochs go on numbering.
        progress: show progress bars (widgets in JupyterLab, stored finished in the notebook; text in a
            terminal; see ``progress.py``).
        amp: mixed precision; default on for CUDA, off elsewhere.
        grad_clip: optional max gradient norm.
        channels_last: on the CPU, convert the model's weights and every batch to channels-last
            memory layout (``model.to(memory_format=torch.channels_last)``, done in place). Same
            values in another order in memory, which oneDNN's convolutions run faster in (see
            ``BENCHMARKS.md``); results agree with the default layout up to float rounding.

    Returns:
        The history: the previous records followed by one ``EpochRecord`` per epoch run here.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be an int >= 0; got {epochs!r}")
    device = model_device(model)
    num_classes = num_classes or infer_num_classes(model)
    amp = device.type == "cuda" if amp is None else amp
    scaler = torch.amp.GradScaler(device.type) if amp and device.type == "cuda" else None
    history = list(history or [])
    channels_last = channels_last and device.type == "cpu"
    if channels_last:
        model.to(memory_format=torch.channels_last)  # the same Parameter objects: the optimizer keeps them
    main = is_main_process()
    preview = max((int(getattr(callback, "preview_images", 0) or 0) for callback in callbacks), default=0)
    start = len(history)
    bar = progress_bar(range(start + 1, start + epochs + 1), "epochs", disable=not (progress and main))
    for epoch in bar:
        began = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]  # the rate this epoch trains with (before the scheduler steps)
        sampler = getattr(train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)  # DistributedSampler, EpochShuffle: a new shuffle every epoch
        train = train_one_epoch(
            model, train_loader, loss_fn, optimizer, scaler, grad_clip,
            scheduler if scheduler_per_batch else None, progress and main, f"epoch {epoch}", channels_last,
        )
        val = None if val_loader is None else evaluate(
            model, val_loader, num_classes, loss_fn, ignore_index, channels_last=channels_last, preview=preview,
        )
        if scheduler is not None and not scheduler_per_batch:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(val.loss if val is not None and math.isfinite(val.loss) else train.loss)
            else:
                scheduler.step()
        history.append(EpochRecord(epoch, train, val, lr, time.perf_counter() - began))
        if main:
            miou = history[-1].miou
            bar.set_postfix(loss=f"{train.loss:.3f}", miou=f"{miou:.3f}" if math.isfinite(miou) else "-")
            for callback in callbacks:
                callback(history, unwrap_model(model))
    return history
