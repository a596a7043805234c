"""The ``train`` command of ``python -m unet_helpers`` (the parser and other commands: ``cli.py``).

Introduced in ``notebooks/09_real_data.ipynb``. Builds the data, model, loss, optimizer and
learning-rate schedule from the arguments, then calls ``train.fit``. A callback on the main
process appends one JSON line per epoch to ``metrics.jsonl`` and saves ``last.pt`` (every epoch)
and ``best.pt`` (best validation mIoU) with ``checkpoint.save_checkpoint``; class names and the
mask mapping travel in the checkpoint's ``extra``. Under ``torchrun`` the same code trains with
``DistributedDataParallel`` (``distributed.py``).

Defaults reach validation mIoU >= 0.9 on the synthetic shapes in about 10 epochs on 2 CPU cores
(``benchmarks/bench_train_synthetic.py`` measures it): UNet base 16, Adam with a one-cycle
schedule peaking at 3e-3, cross-entropy + Dice, batch 8, flips and rotations.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from torch.utils.data import DistributedSampler

from .checkpoint import load_checkpoint, save_checkpoint
from .cli import CliError, check_output_folder, parse_list, parse_mask_values, require_dir
from .data import SHAPE_CLASSES, ArrayDataset, SegmentationFolder, split_indices, synthetic_segmentation
from .distributed import EpochLoader, ShardSampler, cleanup_distributed, replicas_identical, setup_distributed, sync_buffers, wrap_model
from .losses import CombinedLoss
from .train import fit, make_loader
from .transforms import Compose, RandomCrop, RandomFlipRotate
from .unet import UNet
from .utils import seed_everything

RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl")
SCHEDULES = ("onecycle", "cosine", "constant")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` options to ``parser``."""
    data = parser.add_argument_group("data (default: the built-in synthetic shapes)")
    data.add_argument("--data", help="folder with images/ and masks/ (paired by file name); omit for synthetic shapes")
    data.add_argument("--mask-values", help="raw mask value -> class id, e.g. 0:0,255:1 for 0/255 masks")
    data.add_argument("--classes", type=int, help="number of classes K (default: from --class-names or --mask-values)")
    data.add_argument("--class-names", help="comma-separated class names, e.g. background,nucleus")
    data.add_argument("--names", help="comma-separated file stems to use (default: all)")
    data.add_argument("--val-names", help="comma-separated stems for validation (default: a seeded --val-fraction)")
    data.add_argument("--val-fraction", type=float, default=0.2, help="validation share for a random split (default 0.2)")
    data.add_argument("--crop", type=int, help="train on random crops of this size (large images)")
    data.add_argument("--val-crop", type=int, help="validate on centre crops of this size (default: whole images)")
    data.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True, help="random flips and 90-degree rotations")
    data.add_argument("--normalize", choices=("unit", "per_image"), default="per_image", help="image scaling for --data (default per_image)")
    data.add_argument("--channels", type=int, choices=(1, 3), help="force grayscale (1) or RGB (3)")
    data.add_argument("--ignore-index", type=int, help="class id of unlabelled pixels (left out of loss and metrics)")
    data.add_argument("--synthetic-train", type=int, default=400, help="synthetic training images (default 400)")
    data.add_argument("--synthetic-val", type=int, default=100, help="synthetic validation images (default 100)")
    data.add_argument("--size", type=int, default=64, help="synthetic image size (default 64)")
    run = parser.add_argument_group("model and optimisation")
    run.add_argument("--base", type=int, default=16, help="channels of the first U-Net stage (default 16)")
    run.add_argument("--depth", type=int, default=4, help="down-sampling stages (default 4)")
    run.add_argument("--epochs", type=int, default=12, help="total epochs, counting those of a resumed run (default 12)")
    run.add_argument("--batch-size", type=int, default=8, help="images per batch and process (default 8)")
    run.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of Adam (default 3e-3)")
    run.add_argument("--schedule", choices=SCHEDULES, default="onecycle", help="learning-rate schedule, stepped per batch (default onecycle)")
    run.add_argument("--weight-decay", type=float, default=0.0, help="Adam weight decay (default 0)")
    run.add_argument("--steps-per-epoch", type=int, help="cut every epoch after this many batches (quick tests)")
    run.add_argument("--seed", type=int, default=0, help="seed of data split, initial weights and augmentation")
    run.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=False,
                     help="train in channels-last memory layout on the CPU (1.2-1.6x faster here; see BENCHMARKS.md)")
    out = parser.add_argument_group("output")
    out.add_argument("--out", default="runs/train", help="run folder for last.pt, best.pt, metrics.jsonl (default runs/train)")
    out.add_argument("--resume", help="checkpoint to continue from (metrics are appended when it lies in --out)")
    out.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    out.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run in --out")
    out.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")


class CentreCrop:
    """The central ``size x size`` window of an image/mask pair (deterministic, for validation)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = image.shape[-2:]
        if self.size > min(height, width):
            raise ValueError(f"--val-crop {self.size} is larger than a {height}x{width} validation image")
        top, left = (height - self.size) // 2, (width - self.size) // 2
        return image[..., top : top + self.size, left : left + self.size], mask[..., top : top + self.size, left : left + self.size]


def _train_transform(args: argparse.Namespace):
    parts = ([RandomCrop(args.crop)] if args.crop else []) + ([RandomFlipRotate()] if args.augment else [])
    return Compose(parts) if parts else None


def build_datasets(args: argparse.Namespace) -> tuple[object, object, dict]:
    """Training and validation datasets plus ``info`` (class names, channels, mask mapping, normalize)."""
    if args.data is None:
        images, masks = synthetic_segmentation(args.synthetic_train, args.size, seed=args.seed)
        val_images, val_masks = synthetic_segmentation(args.synthetic_val, args.size, seed=args.seed + 1)
        info = {"class_names": list(SHAPE_CLASSES), "channels": 3, "mask_values": None, "normalize": "unit", "data": "synthetic"}
        return ArrayDataset(images, masks, _train_transform(args)), ArrayDataset(val_images, val_masks), info
    root = require_dir(args.data, "data")
    mapping, names = parse_mask_values(args.mask_values), parse_list(args.class_names)
    classes = args.classes or (len(names) if names else None)
    if classes is None and mapping:
        classes = 1 + max(c for c in mapping.values() if c != args.ignore_index)
    if classes is None:
        raise CliError("cannot tell the number of classes: pass --classes K (or --class-names / --mask-values)")
    if names and len(names) != classes:
        raise CliError(f"--class-names lists {len(names)} names but there are {classes} classes")
    too_big = sorted({c for c in (mapping or {}).values() if c >= classes and c != args.ignore_index})
    if too_big:
        raise CliError(f"--mask-values maps to class {too_big[0]} but there are only {classes} classes (ids 0..{classes - 1})")
    common = dict(mask_values=mapping, channels=args.channels, normalize=args.normalize)
    everything = SegmentationFolder(root, names=parse_list(args.names), **common)  # checks every pair once
    if args.val_names:
        val_names = parse_list(args.val_names)
        missing = sorted(set(val_names) - set(everything.names))
        if missing:
            raise CliError(f"--val-names {missing[:3]} are not images in {root / 'images'}")
        train_names = [n for n in everything.names if n not in val_names]
    else:
        train_idx, val_idx = split_indices(len(everything), args.val_fraction, args.seed)
        train_names, val_names = [everything.names[i] for i in train_idx], [everything.names[i] for i in val_idx]
    if not train_names:
        raise CliError(f"no training images left after taking {len(val_names)} for validation")
    train = SegmentationFolder(root, names=train_names, transform=_train_transform(args), **common)
    val = SegmentationFolder(root, names=val_names, transform=CentreCrop(args.val_crop) if args.val_crop else None, **common)
    sizes = {tuple(val.load(i)[1].shape) for i in range(len(val))}  # (H, W) of the validation images
    smallest = min(min(size) for size in sizes)
    if args.val_crop and args.val_crop > smallest:
        raise CliError(f"--val-crop {args.val_crop} is larger than the smallest validation image side ({smallest} px)")
    info = {
        "class_names": names or [f"class {k}" for k in range(classes)], "channels": int(train.load(0)[0].shape[0]),
        "mask_values": mapping, "normalize": args.normalize, "data": str(root),
        "val_batchable": bool(args.val_crop) or len(sizes) == 1,  # whole images of different sizes cannot share a batch
    }
    return train, val, info


def _loaders(args, train, val, info, context):
    """Training loader (``DistributedSampler`` when distributed) and validation loader (``ShardSampler``)."""
    if context.enabled:
        sampler = DistributedSampler(train, context.world_size, context.rank, shuffle=True, seed=args.seed)
        per_rank = len(sampler)
        train_loader = make_loader(train, args.batch_size, shuffle=False, sampler=sampler, drop_last=per_rank % args.batch_size == 1)
        val_loader = make_loader(val, args.batch_size, shuffle=False, sampler=ShardSampler(len(val), context.rank, context.world_size))
    else:
        train_loader = make_loader(train, args.batch_size, shuffle=True, seed=args.seed)
        val_loader = make_loader(val, args.batch_size, shuffle=False)
    if not info.get("val_batchable", True):
        val_loader = make_loader(val, 1, shuffle=False, sampler=val_loader.sampler)
    return train_loader, val_loader


def _scheduler(args, optimizer, total_steps: int):
    if args.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=max(total_steps, 1))
    if args.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    return None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _plain_json(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_json(v) for v in value]
    return value


def run_train(args: argparse.Namespace) -> int:
    """Train a U-Net and write last.pt, best.pt and metrics.jsonl into --out.

    Without --data it trains on the built-in synthetic shapes (circles and squares), so it works on a
    fresh machine. --epochs counts the total, so `--resume RUN/last.pt` with the same command continues
    where the run stopped. Under `torchrun --nproc_per_node=N -m unet_helpers train ...` every process
    trains on its share of each epoch; only process 0 prints and writes files."""
    context = setup_distributed(args.device)
    args.rank = context.rank
    try:
        return _train(args, context)
    finally:
        cleanup_distributed()


def _train(args: argparse.Namespace, context) -> int:
    out = Path(args.out)
    planned = [out / name for name in RUN_FILES]
    appending = args.resume is not None and Path(args.resume).resolve().parent == out.resolve()
    inputs = [Path(args.data)] if args.data else []
    check_output_folder(out, inputs, [] if appending else planned, args.overwrite)
    seed_everything(args.seed)
    train, val, info = build_datasets(args)
    k = len(info["class_names"])
    if args.resume:
        model = load_checkpoint(args.resume)["model"]
        saved = model.config
        if saved.num_classes != k:
            raise CliError(f"checkpoint {args.resume} was trained for {saved.num_classes} classes but the data has {k}")
        if saved.in_channels != info["channels"]:
            raise CliError(f"checkpoint {args.resume} takes {saved.in_channels} image channels but the images have {info['channels']}")
    else:
        model = UNet(info["channels"], k, base=args.base, depth=args.depth)
    seed_everything(args.seed + context.rank)  # different augmentations on each process
    model.to(context.device)
    channels_last = args.channels_last and torch.device(context.device).type == "cpu"
    if channels_last:
        model.to(memory_format=torch.channels_last)  # before DDP wraps it, so its gradient buckets match
    ddp_model = wrap_model(model, context)
    train_loader, val_loader = _loaders(args, train, val, info, context)
    loader = EpochLoader(train_loader, args.steps_per_epoch, (lambda: sync_buffers(model)) if context.enabled else None)
    total_steps = args.epochs * len(loader)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = _scheduler(args, optimizer, total_steps)
    history, best = [], -math.inf
    if args.resume:
        state = load_checkpoint(args.resume, model, optimizer, scheduler)
        history, saved_steps = state["history"], state["extra"].get("total_steps")
        best = state["extra"].get("best_miou") or -math.inf
        if scheduler is not None and saved_steps != total_steps:
            raise CliError(
                f"{args.resume} was planned for {saved_steps} steps but this command gives {total_steps}; "
                "resume with the same --epochs, --batch-size, --steps-per-epoch and data"
            )
    remaining = args.epochs - len(history)
    if remaining <= 0:
        if context.is_main:
            print(f"nothing to do: {args.resume} already has {len(history)} of {args.epochs} epochs")
        return 0
    if context.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if not appending:
            for path in planned:
                path.unlink(missing_ok=True)
    extra = {**{k: v for k, v in info.items() if k != "val_batchable"}, "total_steps": total_steps, "epochs_planned": args.epochs, "best_miou": None}

    def save_epoch(history, _model, _preview) -> None:  # called by fit on the main process only
        nonlocal best
        record = history[-1]
        miou = record["miou"] if record["miou"] is not None and math.isfinite(record["miou"]) else -math.inf
        improved = miou > best
        best = max(best, miou)
        extra["best_miou"] = best if math.isfinite(best) else None
        with open(out / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(_plain_json({**record, "class_names": info["class_names"]})) + "\n")
        save_checkpoint(out / "last.pt", model, optimizer, record["epoch"], history, scheduler, extra)
        if improved:
            save_checkpoint(out / "best.pt", model, optimizer, record["epoch"], history, scheduler, extra)
        if not args.quiet:
            ious = ", ".join(f"{n} {v:.3f}" for n, v in zip(info["class_names"], record["val_iou"]) if v is not None)
            print(f"epoch {record['epoch']}/{args.epochs}  loss {record['train_loss']:.4f}  val mIoU {_fmt(record['miou'])}"
                  f"{' (best)' if improved else ''}  [{ious}]  {record['seconds']:.1f}s", flush=True)

    history = fit(
        ddp_model, loader, val_loader, CombinedLoss(ignore_index=args.ignore_index), optimizer, remaining,
        num_classes=k, ignore_index=args.ignore_index, scheduler=scheduler, scheduler_per_batch=True,
        callbacks=[save_epoch], history=history, progress=not args.quiet and context.is_main, channels_last=channels_last,
    )
    identical = replicas_identical(model)
    if context.enabled and not identical:
        raise RuntimeError("the model copies of the processes differ after training; this is a bug, please report it")
    if context.is_main:
        if context.enabled:
            print(f"parameters and buffers identical on all {context.world_size} processes")
        print(f"done: {len(history)} epochs, best val mIoU {_fmt(extra['best_miou'])}; wrote {', '.join(RUN_FILES)} to {out}")
    return 0
