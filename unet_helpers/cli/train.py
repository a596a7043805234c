"""``python -m unet_helpers train``: build data, model, loss, optimizer and schedule, then ``fit``.

Introduced in ``notebooks/09_real_data.ipynb``. A ``RunFiles`` callback on the main process appends
one JSON line per epoch (``EpochRecord.to_json``) to ``metrics.jsonl`` and saves ``last.pt`` (every
epoch) and ``best.pt`` (best validation mIoU) with ``checkpoint.save_checkpoint``; class names and
the mask mapping travel in the checkpoint's ``extra``. Under ``torchrun`` the same code trains with
``DistributedDataParallel`` (``distributed.py``).

Defaults: UNet base 16, Adam with a one-cycle schedule peaking at 3e-3, cross-entropy + Dice,
batch 8, flips and rotations (``benchmarks/bench_train_synthetic.py`` measures how fast they get
to a given validation mIoU; ``BENCHMARKS.md`` has the figures).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from torch.utils.data import DistributedSampler

from ..checkpoint import load_checkpoint, save_checkpoint
from ..data import SHAPE_CLASSES, ArrayDataset, split_indices, synthetic_segmentation
from ..folder import SegmentationFolder
from ..loaders import make_loader
from ..losses import CombinedLoss
from ..records import History
from ..runtime import seed_everything
from ..train import fit
from ..transforms import CentreCrop, training_transform
from ..unet import UNet
from .common import CliError, check_output_folder, parse_list, parse_mask_values, require_dir
from .distributed import EpochLoader, ShardSampler, cleanup_distributed, replicas_identical, setup_distributed, sync_buffers, wrap_model

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
                     help="train in channels-last memory layout on the CPU (faster with oneDNN; measured in BENCHMARKS.md)")
    out = parser.add_argument_group("output")
    out.add_argument("--out", default="runs/train", help="run folder for last.pt, best.pt, metrics.jsonl (default runs/train)")
    out.add_argument("--resume", help="checkpoint to continue from (metrics are appended when it lies in --out)")
    out.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    out.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run in --out")
    out.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")


def build_datasets(args: argparse.Namespace) -> tuple[object, object, dict]:
    """Training and validation datasets plus ``info`` (class names, channels, mask mapping, normalize)."""
    if args.data is None:
        images, masks = synthetic_segmentation(args.synthetic_train, args.size, seed=args.seed)
        val_images, val_masks = synthetic_segmentation(args.synthetic_val, args.size, seed=args.seed + 1)
        info = {"class_names": list(SHAPE_CLASSES), "channels": 3, "mask_values": None, "normalize": "unit", "data": "synthetic"}
        return ArrayDataset(images, masks, training_transform(args.crop, args.augment)), ArrayDataset(val_images, val_masks), info
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
    train = SegmentationFolder(root, names=train_names, transform=training_transform(args.crop, args.augment), **common)
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


def _fmt(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.4f}"


class RunFiles:
    """The ``fit`` callback of the ``train`` command: ``metrics.jsonl``, ``last.pt`` and ``best.pt``.

    Args:
        out: the run folder.
        model, optimizer, scheduler: what the checkpoints hold.
        extra: plain values stored with every checkpoint (class names, mask mapping, ...); its
            ``best_miou`` is kept up to date.
        best: the best validation mIoU so far (from a resumed checkpoint, else ``-inf``).
        class_names: names printed in the epoch lines.
        total_epochs: the planned total, for ``epoch 3/12``.
        quiet: do not print one line per epoch.
    """

    def __init__(self, out: Path, model, optimizer, scheduler, extra: dict, best: float, class_names: list[str],
                 total_epochs: int, quiet: bool) -> None:
        self.out, self.model, self.optimizer, self.scheduler = out, model, optimizer, scheduler
        self.extra, self.best, self.class_names = extra, best, class_names
        self.total_epochs, self.quiet = total_epochs, quiet

    def __call__(self, history: History, _model) -> None:
        record = history[-1]
        miou = record.miou if math.isfinite(record.miou) else -math.inf
        improved = miou > self.best
        self.best = max(self.best, miou)
        self.extra["best_miou"] = self.best if math.isfinite(self.best) else None
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps({**record.to_json(), "class_names": self.class_names}) + "\n")
        state = (self.model, self.optimizer, record.epoch, history, self.scheduler, self.extra)
        save_checkpoint(self.out / "last.pt", *state)
        if improved:
            save_checkpoint(self.out / "best.pt", *state)
        if not self.quiet:
            iou = record.val.iou if record.val is not None else ()
            ious = ", ".join(f"{n} {v:.3f}" for n, v in zip(self.class_names, iou) if math.isfinite(v))
            print(f"epoch {record.epoch}/{self.total_epochs}  loss {record.train.loss:.4f}  val mIoU {_fmt(record.miou)}"
                  f"{' (best)' if improved else ''}  [{ious}]  {record.seconds:.1f}s", flush=True)


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

    run_files = RunFiles(out, model, optimizer, scheduler, extra, best, info["class_names"], args.epochs, args.quiet)
    history = fit(
        ddp_model, loader, val_loader, CombinedLoss(ignore_index=args.ignore_index), optimizer, remaining,
        num_classes=k, ignore_index=args.ignore_index, scheduler=scheduler, scheduler_per_batch=True,
        callbacks=[run_files], history=history, progress=not args.quiet and context.is_main, channels_last=channels_last,
    )
    identical = replicas_identical(model)
    if context.enabled and not identical:
        raise RuntimeError("the model copies of the processes differ after training; this is a bug, please report it")
    if context.is_main:
        if context.enabled:
            print(f"parameters and buffers identical on all {context.world_size} processes")
        print(f"done: {len(history)} epochs, best val mIoU {_fmt(run_files.best)}; wrote {', '.join(RUN_FILES)} to {out}")
    return 0
