"""The training loop: ``train_one_epoch``, ``evaluate`` and ``fit``.

Built step by step in ``notebooks/06_training.ipynb`` (a loop written by hand first, then this).

The loop knows nothing about plotting: ``fit`` calls ``callbacks`` at the end of every epoch with
``(history, model, preview_batch)``, which is how ``widgets.TrainingDashboard`` draws live.

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
from tqdm.auto import tqdm

from .inference import in_layout
from .loaders import EpochShuffle, make_loader  # noqa: F401 - imported from here by the lessons
from .metrics import ConfusionMatrix

History = list[dict]
Callback = Callable[[History, nn.Module, tuple[torch.Tensor, torch.Tensor]], None]


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside ``DistributedDataParallel`` / ``DataParallel``."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    return next(iter(model.parameters()), torch.empty(0)).device


def infer_num_classes(model: nn.Module) -> int:
    """``K`` from ``model.config.num_classes`` (a one-channel binary model counts as 2 classes)."""
    config = getattr(_unwrap(model), "config", None)
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
        if dist.is_available() and dist.is_initialized():
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


def _is_main_process() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


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
) -> dict[str, float]:
    """One pass over ``loader`` in training mode; returns the mean loss and its parts.

    ``scheduler`` (if given) is stepped after every batch (for per-step schedules like OneCycleLR).
    ``channels_last`` hands the model each batch in channels-last memory layout (see ``fit``).
    """
    device = model_device(model)
    model.train()  # BatchNorm uses batch statistics and updates its running averages
    mean = _Mean()
    autocast = torch.autocast(device.type, dtype=torch.float16) if scaler is not None else nullcontext()
    for batch in tqdm(loader, desc=description, leave=False, disable=not progress):
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
    return mean.means()


def evaluate(
    model: nn.Module,
    loader: Iterable,
    num_classes: int | None = None,
    loss_fn: Callable | None = None,
    ignore_index: int | None = None,
    progress: bool = False,
    channels_last: bool = False,
) -> dict[str, object]:
    """One pass in eval mode under ``torch.inference_mode()``; metrics from accumulated counts.

    ``channels_last`` hands the model each batch in channels-last memory layout (see ``fit``).

    Returns:
        ``{"loss", "parts", "iou", "dice", "precision", "recall", "miou", "mean_dice",
        "pixel_accuracy", "confusion"}``; per-class lists hold ``None`` for undefined (NaN) classes;
        ``"confusion"`` is the ``ConfusionMatrix``. ``"loss"`` is ``None`` without ``loss_fn``.

    Under ``torch.distributed`` the counts of all processes are summed, so each process must see a
    disjoint share of the set: ``DistributedSampler`` pads with duplicates (counted twice); use
    ``distributed.ShardSampler``. A DDP model that broadcasts buffers at every forward makes each
    forward a collective call, which hangs when shards differ in length (``distributed.wrap_model``).
    """
    device = model_device(model)
    num_classes = num_classes or infer_num_classes(model)
    was_training = model.training
    model.eval()  # BatchNorm uses its running averages; nothing is updated
    matrix = ConfusionMatrix(num_classes, ignore_index)
    mean = _Mean()
    try:
        with torch.inference_mode():
            for batch in tqdm(loader, desc="validate", leave=False, disable=not progress):
                images, targets, weights = _split_batch(batch, device)
                logits = model(in_layout(images, channels_last))
                matrix.update(logits, targets)
                if loss_fn is not None:
                    loss, parts = compute_loss(loss_fn, logits, targets, weights)
                    mean.add(images.shape[0], loss.item(), parts)
    finally:
        model.train(was_training)
    if dist.is_available() and dist.is_initialized():
        counts = matrix.matrix.to(device)
        dist.all_reduce(counts)
        matrix.matrix = counts.cpu()
    mean.reduce_across_processes(device)
    losses = mean.means()
    return {
        "loss": losses.pop("loss", None),
        "parts": losses,
        **matrix.compute(),
        "confusion": matrix,
    }


def _first_batch(loader: Iterable | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    if loader is None:
        return None
    batch = next(iter(loader))
    return batch[0].cpu(), batch[1].cpu()


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
    preview_batch: tuple[torch.Tensor, torch.Tensor] | None = None,
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
        callbacks: functions called as ``f(history, model, preview_batch)`` after every epoch
            (only on the main process); ``preview_batch`` is a fixed ``(images, targets)`` pair.
        history: a previous history to continue (e.g. from ``load_checkpoint``); epochs go on numbering.
        progress: show ``tqdm.auto`` bars (widgets in JupyterLab, text in a terminal).
        amp: mixed precision; default on for CUDA, off elsewhere.
        grad_clip: optional max gradient norm.
        preview_batch: the batch handed to callbacks (default: the first validation batch).
        channels_last: on the CPU, convert the model's weights and every batch to channels-last
            memory layout (``model.to(memory_format=torch.channels_last)``, done in place). Same
            values, another order in memory, which oneDNN's convolutions run faster in
            (``benchmarks/bench_throughput.py``: 1.2-1.6 times the training throughput of a
            base-16 U-Net on 2 cores); results agree with the default layout up to float rounding.

    Returns:
        A list with one dict per epoch: ``epoch, train_loss, train_parts, val_loss, val_parts,
        val_iou, val_dice, miou, mean_dice, pixel_accuracy, lr, seconds``.
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
    main = _is_main_process()
    preview = preview_batch if preview_batch is not None else _first_batch(val_loader)
    start = len(history)
    bar = tqdm(range(start + 1, start + epochs + 1), desc="epochs", disable=not (progress and main))
    for epoch in bar:
        began = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]  # the rate this epoch trains with (before the scheduler steps)
        sampler = getattr(train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)  # DistributedSampler: a new shuffle every epoch
        train = train_one_epoch(
            model, train_loader, loss_fn, optimizer, scaler, grad_clip,
            scheduler if scheduler_per_batch else None, progress and main, f"epoch {epoch}", channels_last,
        )
        val = evaluate(model, val_loader, num_classes, loss_fn, ignore_index, channels_last=channels_last) if val_loader is not None else {}
        if scheduler is not None and not scheduler_per_batch:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(val.get("loss") if val.get("loss") is not None else train["loss"])
            else:
                scheduler.step()
        record = {
            "epoch": epoch,
            "train_loss": train.pop("loss", math.nan),
            "train_parts": train,
            "val_loss": val.get("loss"),
            "val_parts": val.get("parts", {}),
            "val_iou": val.get("iou"),
            "val_dice": val.get("dice"),
            "miou": val.get("miou"),
            "mean_dice": val.get("mean_dice"),
            "pixel_accuracy": val.get("pixel_accuracy"),
            "lr": lr,
            "seconds": time.perf_counter() - began,
        }
        history.append(record)
        if main:
            miou = record["miou"]
            bar.set_postfix(loss=f"{record['train_loss']:.3f}", miou="-" if miou is None else f"{miou:.3f}")
            for callback in callbacks:
                callback(history, _unwrap(model), preview)
    return history
