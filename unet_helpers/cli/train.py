"""``python -m unet_helpers train``: build data, model, loss, optimizer and schedule, then ``fit``.

Introduced in ``notebooks/09_real_data.ipynb``. A ``RunFiles`` callback on the main process rewrites
``metrics.jsonl`` (one JSON line per epoch, ``EpochRecord.to_json``) and saves ``last.pt`` (every
epoch) and ``best.pt`` (best validation mIoU) with ``checkpoint.save_checkpoint``; class names and
the mask mapping travel in the checkpoint's ``extra``. Every file is written atomically
(``atomic.atomic_path``). Under ``torchrun`` the same code trains with ``DistributedDataParallel``
(``distributed.py``).

Before the first step the data is checked as a whole (``check_data``): every pair is decoded once
(``SegmentationFolder.verify``: readable files, scalable values, class ids below ``K``), images of
different sizes need ``--crop`` (or ``--batch-size 1``), crops must fit every image and the model's
smallest size, so a bad file stops the run at once with the file named, never mid-epoch.

``--encoder efficientnet-lite0`` trains an ``encoders.EncoderUNet`` (ImageNet-pretrained unless
``--no-pretrained``; ``--freeze-encoder-epochs N`` keeps the encoder frozen for the first N epochs,
``--encoder-lr-scale F`` gives it F times the learning rate).

Defaults: UNet base 16, Adam, cross-entropy + Dice, batch 8, flips and rotations. On the synthetic
shapes an epoch is one pass and the schedule is one-cycle peaking at 3e-3
(``benchmarks/bench_train_synthetic.py`` measures how fast they get to a given validation mIoU;
``BENCHMARKS.md`` has the figures). On a folder (``--data``) the defaults are made for small real
sets, where one pass is a handful of batches:

- an epoch is ``max(one pass, FOLDER_STEPS)`` optimisation steps; longer than one pass, the sampler
  (``RepeatedShuffle``) walks through seeded shuffles of the set one after another, so every image
  is drawn equally often (give or take one) and each draw gets its own random crop and augmentation;
- the schedule is ``FOLDER_SCHEDULE`` at peak ``FOLDER_LR`` (``WarmupCosine``: a linear warm-up that
  always ends inside the first epoch, then a cosine decay to zero), chosen by the short runs on the
  ssTEM set recorded in the README ("Ten minutes of ``train`` on the real sets");
- validation runs on whole images; images with a side above ``--val-tile`` are predicted by
  overlapping tiles (``TiledValidation``), so every pixel is still counted.

``--time-budget MINUTES`` times the first epoch (training and validation) and plans the run from it:
``epochs = max(1, floor(budget / first epoch))``; the cosine decay is set to end with the last of
them (``WarmupCosine.total_steps`` is fixed after the first epoch; the one-cycle schedule needs the
length before the first step, so it cannot be combined with a budget).

``--elastic`` adds ``transforms.ElasticDeform`` (the U-Net paper's 3x3 grid, 10 px) to the training
pipeline after the crop, flips and rotations.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DistributedSampler

from ..atomic import atomic_path
from ..checkpoint import load_checkpoint, save_checkpoint
from ..data import SHAPE_CLASSES, ArrayDataset, split_indices, synthetic_segmentation
from ..encoders.unet import ENCODER_STRIDE, ENCODERS, EncoderUNet
from ..folder import SegmentationFolder
from ..inference import predict_tiled
from ..loaders import RepeatedShuffle, make_loader
from ..losses import CombinedLoss
from ..records import History
from ..schedules import WarmupCosine
from ..tensorboard_log import TensorBoardLog
from ..runtime import seed_everything, unwrap_model
from ..train import fit
from ..transforms import CentreCrop, training_transform
from ..unet import UNet
from .common import (CliError, add_pixel_limit_argument, check_output_folder, non_negative_float, non_negative_int,
                     open_fraction, parse_device, parse_list, parse_mask_values, positive_float, positive_int, require_dir)
from .distributed import EpochLoader, ShardSampler, cleanup_distributed, replicas_identical, setup_distributed, sync_buffers, wrap_model

RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl")
SCHEDULES = ("onecycle", "cosine", "constant")
MAX_DEPTH = 8  # a UNet halves the image this many times at most
SYNTHETIC_LR, SYNTHETIC_SCHEDULE = 3e-3, "onecycle"
FOLDER_LR, FOLDER_SCHEDULE = 1e-3, "cosine"  # measured on ssTEM: README "Ten minutes of `train` on the real sets"
FOLDER_STEPS = 50  # the shortest default epoch on folder data, in optimisation steps (why: --steps-per-epoch help)
WARMUP_STEPS = 50  # default linear warm-up of the cosine schedule (cut to one epoch when epochs are shorter)
VAL_TILE = 1024  # validation images with a side above this are predicted by tiles of this size


def tensorboard_log(folder: str, class_names: list[str]) -> TensorBoardLog:
    """The ``--tensorboard`` callback, or a ``CliError`` naming what is wrong with the folder or the package."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise CliError(f"--tensorboard {folder} is a file; give a folder for the event files")
    try:
        return TensorBoardLog(path, class_names=class_names, preview_images=4)
    except ImportError as error:
        raise CliError(str(error)) from None


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` options to ``parser``."""
    data = parser.add_argument_group("data (default: the built-in synthetic shapes)")
    data.add_argument("--data", help="folder with images/ and masks/ (paired by file name); omit for synthetic shapes")
    data.add_argument("--mask-values", help="raw mask value -> class id, e.g. 0:0,255:1 for 0/255 masks")
    data.add_argument("--classes", type=positive_int, help="number of classes K (default: from --class-names or --mask-values)")
    data.add_argument("--class-names", help="comma-separated class names, e.g. background,nucleus")
    data.add_argument("--names", help="comma-separated file stems to use (default: all)")
    data.add_argument("--val-names", help="comma-separated stems for validation (default: a seeded --val-fraction)")
    data.add_argument("--val-fraction", type=open_fraction, default=0.2, help="validation share for a random split (default 0.2)")
    data.add_argument("--crop", type=positive_int, help="train on random crops of this size (large images, or images of several sizes)")
    data.add_argument("--val-crop", type=positive_int,
                      help="validate on centre crops of this size (default: whole images; faster, but the borders are never scored)")
    data.add_argument("--val-tile", type=positive_int, default=VAL_TILE,
                      help=f"whole validation images with a side above this are predicted by overlapping tiles of this size "
                           f"(predict_tiled, 25%% overlap), so every pixel is scored in bounded memory (default {VAL_TILE})")
    data.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True, help="random flips and 90-degree rotations")
    data.add_argument("--elastic", action="store_true",
                      help="also deform every training crop elastically (the U-Net paper's augmentation: random "
                           "displacements on a 3x3 grid, 10 px standard deviation, interpolated smoothly)")
    data.add_argument("--normalize", choices=("unit", "per_image"), default="per_image", help="image scaling for --data (default per_image)")
    data.add_argument("--channels", type=int, choices=(1, 3), help="force grayscale (1) or RGB (3)")
    data.add_argument("--ignore-index", type=non_negative_int, help="class id of unlabelled pixels (left out of loss and metrics)")
    data.add_argument("--synthetic-train", type=positive_int, default=400, help="synthetic training images (default 400)")
    data.add_argument("--synthetic-val", type=positive_int, default=100, help="synthetic validation images (default 100)")
    data.add_argument("--size", type=positive_int, default=64, help="synthetic image size (default 64)")
    add_pixel_limit_argument(data)
    run = parser.add_argument_group("model and optimisation")
    run.add_argument("--base", type=positive_int, default=16, help="channels of the first U-Net stage (default 16)")
    run.add_argument("--depth", type=positive_int, default=4, help=f"down-sampling stages, 1..{MAX_DEPTH} (default 4)")
    run.add_argument("--encoder", choices=ENCODERS, help="a pretrained encoder under the U-Net decoder (EncoderUNet) instead of --base/--depth")
    run.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=True,
                     help="with --encoder: start from the ImageNet weights (needs the weights package; default on)")
    run.add_argument("--freeze-encoder-epochs", type=non_negative_int, default=0,
                     help="with --encoder: keep the encoder frozen for the first N epochs (default 0)")
    run.add_argument("--encoder-lr-scale", type=positive_float,
                     help="with --encoder: the encoder's learning rate is --lr times this (default 0.1 when pretrained, else 1)")
    run.add_argument("--epochs", type=positive_int, help="total epochs, counting those of a resumed run (default 12; not with --time-budget)")
    run.add_argument("--time-budget", type=positive_float, metavar="MINUTES",
                     help="plan the run from a timed first epoch: epochs = max(1, floor(MINUTES / first epoch's minutes)), the "
                          "first epoch's training and validation counted, data checks before it not; needs --schedule cosine or constant")
    run.add_argument("--batch-size", type=positive_int, default=8, help="images per batch and process (default 8)")
    run.add_argument("--lr", type=positive_float,
                     help=f"peak learning rate of Adam (default {SYNTHETIC_LR:g} on the synthetic shapes, {FOLDER_LR:g} with --data)")
    run.add_argument("--schedule", choices=SCHEDULES,
                     help=f"learning-rate schedule, stepped per batch: onecycle (torch's OneCycleLR), cosine (linear warm-up, "
                          f"then cosine decay to 0), constant (default {SYNTHETIC_SCHEDULE} on the synthetic shapes, "
                          f"{FOLDER_SCHEDULE} with --data, where one-cycle's high peak undid what a small set had learnt)")
    run.add_argument("--warmup-steps", type=non_negative_int, default=WARMUP_STEPS,
                     help=f"cosine schedule: linear warm-up over this many steps, cut to the first epoch (default {WARMUP_STEPS})")
    run.add_argument("--weight-decay", type=non_negative_float, default=0.0, help="Adam weight decay (default 0)")
    run.add_argument("--steps-per-epoch", type=positive_int,
                     help=f"optimisation steps per epoch; fewer than one pass cuts the pass, more walks through further "
                          f"seeded shuffles of the training set (default: one pass on the synthetic shapes; with --data "
                          f"max(one pass, {FOLDER_STEPS}): two dozen 512x512 slices at --crop 256 are 3 batches a pass, too few "
                          f"for an epoch to mean anything; {FOLDER_STEPS} steps keep a whole-image validation a small share of "
                          f"the epoch and still leave a ten-minute --time-budget several epochs to pick best.pt from)")
    run.add_argument("--seed", type=int, default=0, help="seed of data split, initial weights and augmentation")
    run.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=False,
                     help="train in channels-last memory layout on the CPU (faster with oneDNN; measured in BENCHMARKS.md)")
    out = parser.add_argument_group("output")
    out.add_argument("--out", default="runs/train", help="run folder for last.pt, best.pt, metrics.jsonl (default runs/train)")
    out.add_argument("--resume", help="checkpoint to continue from (metrics are appended when it lies in --out)")
    out.add_argument("--rewind", action="store_true",
                     help="with --resume of an older checkpoint in --out: continue from it, dropping the later epochs of the run")
    out.add_argument("--tensorboard", metavar="DIR",
                     help="also write every epoch (losses, per-class IoU, learning rate, 4 preview masks) to TensorBoard event files in DIR")
    out.add_argument("--device", help="cpu, cuda, cuda:N, mps (default: the best available)")
    out.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run in --out")
    out.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")


def _min_size(args: argparse.Namespace) -> int:
    """The smallest height and width the model accepts."""
    return ENCODER_STRIDE if args.encoder else 2 ** args.depth


def _sizes_text(dataset: SegmentationFolder, index: int) -> str:
    height, width = dataset.sizes[index]
    return f"{dataset.image_paths[index]} ({height}x{width})"


def check_data(args: argparse.Namespace, train: SegmentationFolder, val: SegmentationFolder, classes: int) -> None:
    """Everything about the data that would otherwise fail mid-epoch, checked before the first step."""
    need = _min_size(args)
    for dataset, crop, option in ((train, args.crop, "--crop"), (val, args.val_crop, "--val-crop")):
        smallest = min(range(len(dataset)), key=lambda i: min(dataset.sizes[i]))
        side = min(dataset.sizes[smallest])
        if crop is not None and crop > side:
            raise CliError(f"{option} {crop} is larger than the smallest {'training' if dataset is train else 'validation'} "
                           f"image side ({side} px, {_sizes_text(dataset, smallest)}); use {option} {side} or less")
        if (crop or side) < need:
            what = f"{option} {crop}" if crop else f"image {_sizes_text(dataset, smallest)}"
            raise CliError(f"{what} is smaller than the {need} px the model needs "
                           f"({'the encoder halves the image 5 times' if args.encoder else f'--depth {args.depth} halves it {args.depth} times'}); "
                           f"{'use larger crops' if crop else 'leave it out'}" + ("" if args.encoder else " or lower --depth"))
    if args.crop is None and args.batch_size > 1 and len(set(train.sizes)) > 1:
        first = train.sizes[0]
        other = next(i for i, size in enumerate(train.sizes) if size != first)
        raise CliError(f"training images differ in size ({_sizes_text(train, 0)}, {_sizes_text(train, other)}) and a batch "
                       f"needs one size: pass --crop N (N <= {min(min(s) for s in train.sizes)}) or --batch-size 1")
    for dataset in (train, val):
        dataset.verify(classes, args.ignore_index)  # every pair decoded once: values and class ids


def build_datasets(args: argparse.Namespace) -> tuple[object, object, dict]:
    """Training and validation datasets plus ``info`` (class names, channels, mask mapping, normalize)."""
    if args.data is None:
        if args.size < _min_size(args):
            raise CliError(f"--size {args.size} is smaller than the {_min_size(args)} px the model needs; use --size {_min_size(args)} or more")
        if args.crop is not None and args.crop > args.size:
            raise CliError(f"--crop {args.crop} is larger than the synthetic images (--size {args.size})")
        images, masks = synthetic_segmentation(args.synthetic_train, args.size, seed=args.seed)
        val_images, val_masks = synthetic_segmentation(args.synthetic_val, args.size, seed=args.seed + 1)
        info = {"class_names": list(SHAPE_CLASSES), "channels": 3, "mask_values": None, "normalize": "unit", "data": "synthetic"}
        return ArrayDataset(images, masks, training_transform(args.crop, args.augment, args.elastic)), ArrayDataset(val_images, val_masks), info
    root = require_dir(args.data, "data")
    mapping, names = parse_mask_values(args.mask_values), parse_list(args.class_names)
    classes = args.classes or (len(names) if names else None)
    if classes is None and mapping:
        classes = 1 + max((c for c in mapping.values() if c != args.ignore_index), default=0)
    if classes is None:
        raise CliError("cannot tell the number of classes: pass --classes K (or --class-names / --mask-values)")
    if names and len(names) != classes:
        raise CliError(f"--class-names lists {len(names)} names but there are {classes} classes")
    too_big = sorted({c for c in (mapping or {}).values() if c >= classes and c != args.ignore_index})
    if too_big:
        raise CliError(f"--mask-values maps to class {too_big[0]} but there are only {classes} classes (ids 0..{classes - 1})")
    common = dict(mask_values=mapping, channels=args.channels, normalize=args.normalize)
    everything = SegmentationFolder(root, names=parse_list(args.names), **common)  # checks every pair's header once
    if args.val_names:
        val_names = parse_list(args.val_names)
        missing = sorted(set(val_names) - set(everything.names))
        if missing:
            raise CliError(f"--val-names {missing[:3]} are not images in {root / 'images'}")
        train_names = [n for n in everything.names if n not in val_names]
    else:
        if len(everything) < 2:
            raise CliError(f"{root / 'images'} holds {len(everything)} image; a random split needs at least 2 (or pass --val-names)")
        train_idx, val_idx = split_indices(len(everything), args.val_fraction, args.seed)
        train_names, val_names = [everything.names[i] for i in train_idx], [everything.names[i] for i in val_idx]
    if not train_names:
        raise CliError(f"no training images left after taking {len(val_names)} for validation")
    if not val_names:
        raise CliError("no validation images: raise --val-fraction or pass --val-names")
    channels = everything.channels  # one count for all files, so train and val agree
    common["channels"] = channels
    train = SegmentationFolder(root, names=train_names, transform=training_transform(args.crop, args.augment, args.elastic), **common)
    val = SegmentationFolder(root, names=val_names, transform=CentreCrop(args.val_crop) if args.val_crop else None, **common)
    info = {
        "class_names": names or [f"class {k}" for k in range(classes)], "channels": channels,
        "mask_values": mapping, "normalize": args.normalize, "data": str(root),
        "val_batchable": bool(args.val_crop) or len(set(val.sizes)) == 1,  # whole images of different sizes cannot share a batch
    }
    return train, val, info


def _loaders(args, train, val, info, context):
    """Training loader (``DistributedSampler`` when distributed, ``RepeatedShuffle`` for epochs longer
    than one pass) and validation loader (``ShardSampler``); sets ``args.steps_per_epoch``."""
    train_loader, val_loader = _one_pass_loaders(args, train, val, info, context)
    one_pass = len(train_loader)
    if args.steps_per_epoch is None:
        args.steps_per_epoch = one_pass if args.data is None else max(one_pass, FOLDER_STEPS)
    if args.steps_per_epoch > one_pass:
        sampler = RepeatedShuffle(len(train), args.steps_per_epoch * args.batch_size, args.seed, context.rank, context.world_size)
        train_loader = make_loader(train, args.batch_size, shuffle=False, sampler=sampler, drop_last=False)
    return train_loader, val_loader


def _one_pass_loaders(args, train, val, info, context):
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
    if len(train_loader) == 0:
        raise CliError(f"{len(train)} training image(s) make no batch of --batch-size {args.batch_size} (a last batch of "
                       "one image is dropped: BatchNorm cannot train on it); use more images or a smaller --batch-size")
    return train_loader, val_loader


def _scheduler(args, optimizer, total_steps: int | None):
    """The ``--schedule``; ``total_steps`` is ``None`` under ``--time-budget`` (not known before the first epoch)."""
    if args.schedule == "onecycle":
        max_lr = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=max(total_steps, 1))
    if args.schedule == "cosine":
        warmup = min(args.warmup_steps, args.steps_per_epoch)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup, total_steps))
    return None


class TiledValidation(nn.Module):
    """``model`` for training; in eval mode, images with a side above ``tile`` go through ``predict_tiled``.

    Returns log-probabilities for tiled images (argmax and the losses' softmax agree with the
    blended probabilities), so ``train.evaluate`` scores whole large images in bounded memory.

    Shape:
        - Input: ``(N, C, H, W)``; output: ``(N, K, H, W)``
    """

    def __init__(self, model: nn.Module, tile: int) -> None:
        super().__init__()
        self.model, self.tile = model, tile

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.training or max(images.shape[-2:]) <= self.tile:
            return self.model(images)
        probs = [predict_tiled(self.model, image, self.tile, return_probs=True, channels_last=False)[1] for image in images]
        return torch.stack(probs).to(images.device).clamp_min(1e-12).log()  # (N, K, H, W)


def _resolve_defaults(args: argparse.Namespace) -> None:
    """The defaults that depend on the data (synthetic shapes or a folder) and the refused combinations."""
    folder = args.data is not None
    if args.lr is None:
        args.lr = FOLDER_LR if folder else SYNTHETIC_LR
    if args.schedule is None:
        args.schedule = FOLDER_SCHEDULE if folder else SYNTHETIC_SCHEDULE
    if args.time_budget is not None:
        if args.epochs is not None:
            raise CliError(f"--time-budget {args.time_budget:g} plans the number of epochs itself; drop --epochs {args.epochs} "
                           "(or drop --time-budget)")
        if args.resume:
            raise CliError("--time-budget cannot continue a run (a new timing would plan another schedule); resume with "
                           "--epochs E, the number of epochs the budget chose (printed, and in the checkpoint's extra 'epochs_planned')")
        if args.schedule == "onecycle":
            raise CliError("--time-budget needs --schedule cosine or constant: the one-cycle schedule must know the length of "
                           "the run before its first step, the budget knows it after the first epoch")
    elif args.epochs is None:
        args.epochs = 12


def _fmt(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.4f}"


class RunFiles:
    """The ``fit`` callback of the ``train`` command: ``metrics.jsonl``, ``last.pt`` and ``best.pt``.

    Every file is replaced atomically (``atomic.atomic_path``); ``metrics.jsonl`` is rewritten whole
    each epoch (the earlier lines are kept in memory), so a symlink in the run folder is replaced,
    never written through.

    Args:
        out: the run folder.
        model, optimizer, scheduler: what the checkpoints hold.
        extra: plain values stored with every checkpoint (class names, mask mapping, ...); its
            ``best_miou`` is kept up to date.
        best: the best validation mIoU so far (from a resumed checkpoint, else ``-inf``).
        class_names: names printed in the epoch lines.
        total_epochs: the planned total, for ``epoch 3/12`` (0: not known yet, ``epoch 1/?``).
        quiet: do not print one line per epoch.
        lines: the ``metrics.jsonl`` lines of the epochs before this run (when resuming).
    """

    def __init__(self, out: Path, model, optimizer, scheduler, extra: dict, best: float, class_names: list[str],
                 total_epochs: int, quiet: bool, lines: list[str] | None = None) -> None:
        self.out, self.model, self.optimizer, self.scheduler = out, model, optimizer, scheduler
        self.extra, self.best, self.class_names = extra, best, class_names
        self.total_epochs, self.quiet, self.lines = total_epochs, quiet, list(lines or [])

    def __call__(self, history: History, _model) -> None:
        record = history[-1]
        miou = record.miou if math.isfinite(record.miou) else -math.inf
        improved = miou > self.best
        self.best = max(self.best, miou)
        self.extra["best_miou"] = self.best if math.isfinite(self.best) else None
        self.lines.append(json.dumps({**record.to_json(), "class_names": self.class_names}))
        with atomic_path(self.out / "metrics.jsonl") as tmp:
            tmp.write_text("\n".join(self.lines) + "\n", encoding="utf-8")
        state = (self.model, self.optimizer, record.epoch, history, self.scheduler, self.extra)
        save_checkpoint(self.out / "last.pt", *state)
        if improved:
            save_checkpoint(self.out / "best.pt", *state)
        if not self.quiet:
            iou = record.val.iou if record.val is not None else ()
            ious = ", ".join(f"{n} {v:.3f}" for n, v in zip(self.class_names, iou) if math.isfinite(v))
            print(f"epoch {record.epoch}/{self.total_epochs or '?'}  loss {record.train.loss:.4f}  val mIoU {_fmt(record.miou)}"
                  f"{' (best)' if improved else ''}  [{ious}]  {record.seconds:.1f}s", flush=True)


class UnfreezeEncoder:
    """A ``fit`` callback: unfreeze ``model``'s encoder after epoch ``epoch``."""

    def __init__(self, model: EncoderUNet, epoch: int) -> None:
        self.model, self.epoch = model, epoch

    def __call__(self, history: History, _model) -> None:
        if history[-1].epoch >= self.epoch and self.model.encoder_frozen:
            self.model.unfreeze_encoder()


def _build_model(args: argparse.Namespace, info: dict, k: int) -> torch.nn.Module:
    if args.encoder is None:
        if args.depth > MAX_DEPTH:
            raise CliError(f"--depth {args.depth} is more than {MAX_DEPTH} down-sampling stages; the image would need "
                           f"{2 ** args.depth} px on each side")
        return UNet(info["channels"], k, base=args.base, depth=args.depth)
    try:
        return EncoderUNet(args.encoder, pretrained=args.pretrained, in_channels=info["channels"], num_classes=k)
    except ImportError as error:
        raise CliError(f"{error} (or pass --no-pretrained)") from None


class BudgetPlan:
    """A ``fit`` callback for ``--time-budget``: after the first epoch, plan the run from its seconds.

    ``epochs = max(1, floor(minutes * 60 / first epoch's seconds))`` (training and validation of the
    first epoch, as ``EpochRecord.seconds``); the cosine decay is set to end with the last step of
    the last epoch, and the checkpoints' ``extra`` and the epoch lines get the plan.

    Args:
        minutes: the budget.
        steps_per_epoch: optimisation steps of every epoch.
        scheduler: the ``LambdaLR`` of ``WarmupCosine`` (or ``None`` for a constant rate).
        extra: the checkpoints' ``extra`` (``total_steps``, ``epochs_planned`` are set).
        run_files: the ``RunFiles`` callback (its ``total_epochs`` is set).
    """

    def __init__(self, minutes: float, steps_per_epoch: int, scheduler, extra: dict, run_files: RunFiles) -> None:
        self.minutes, self.steps_per_epoch, self.scheduler = minutes, steps_per_epoch, scheduler
        self.extra, self.run_files = extra, run_files
        self.epochs: int | None = None

    def __call__(self, history: History, _model) -> None:
        if self.epochs is not None:
            return
        seconds = history[-1].seconds
        self.apply(max(1, math.floor(self.minutes * 60 / max(seconds, 1e-9))))
        if not self.run_files.quiet:
            print(f"time budget {self.minutes:g} min: the first epoch took {seconds:.1f} s, so {self.epochs} epoch(s) "
                  f"of {self.steps_per_epoch} steps", flush=True)

    def apply(self, epochs: int) -> None:
        self.epochs = epochs
        self.run_files.total_epochs = epochs
        self.extra.update(total_steps=epochs * self.steps_per_epoch, epochs_planned=epochs)
        if self.scheduler is not None:
            self.scheduler.lr_lambdas[0].total_steps = epochs * self.steps_per_epoch  # the decay ends with the run


def _agreed_epochs(epochs: int, context) -> int:
    """Process 0's planned epochs, on every process."""
    if not context.enabled:
        return epochs
    value = torch.tensor([epochs], dtype=torch.int64)
    dist.broadcast(value, 0)
    return int(value)


def _run_state(out: Path, resumed_epoch: int, rewind: bool) -> list[str]:
    """The ``metrics.jsonl`` lines up to ``resumed_epoch`` of the run in ``out`` (resuming there).

    Refuses to rewrite later epochs (from ``last.pt`` or ``metrics.jsonl``) unless ``rewind``.
    """
    lines = []
    path = out / "metrics.jsonl"
    if path.is_file():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                epoch = json.loads(line)["epoch"]
            except (ValueError, KeyError, TypeError):
                raise CliError(f"{path} line {number} is not an epoch record; repair or move the file") from None
            if not isinstance(epoch, int):
                raise CliError(f"{path} line {number} is not an epoch record; repair or move the file")
            if epoch <= resumed_epoch:
                lines.append(line)
            elif not rewind:
                raise CliError(
                    f"the run in {out} has reached epoch {epoch} (metrics.jsonl) but the checkpoint resumed is at epoch "
                    f"{resumed_epoch}; continuing would rewrite the later epochs. Resume from {out / 'last.pt'}, or pass "
                    "--rewind to continue from this checkpoint and drop them"
                )
    last = out / "last.pt"
    if last.is_file() and not rewind:
        latest = load_checkpoint(last)["epoch"] or 0
        if latest > resumed_epoch:
            raise CliError(
                f"{last} is at epoch {latest} but the checkpoint resumed is at epoch {resumed_epoch}; continuing would "
                "overwrite it. Resume from last.pt, or pass --rewind to continue from this checkpoint and drop the later epochs"
            )
    return lines


def run_train(args: argparse.Namespace) -> int:
    """Train a U-Net and write last.pt, best.pt and metrics.jsonl into --out.

    Without --data it trains on the built-in synthetic shapes (circles and squares), so it works on a
    fresh machine. --epochs counts the total, so `--resume RUN/last.pt` with the same command continues
    where the run stopped. Under `torchrun --nproc_per_node=N -m unet_helpers train ...` every process
    trains on its share of each epoch; only process 0 prints and writes files."""
    device = parse_device(args.device)
    context = setup_distributed(device)
    args.rank = context.rank
    try:
        return _train(args, context)
    except FloatingPointError as error:  # the loss became NaN or infinite
        raise CliError(f"training stopped: {error}") from None
    finally:
        cleanup_distributed()


def _optimizer(args: argparse.Namespace, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Adam over all parameters; an ``EncoderUNet``'s encoder in its own group at ``--encoder-lr-scale``."""
    if isinstance(model, EncoderUNet):
        scale = args.encoder_lr_scale or (0.1 if model.config.pretrained else 1.0)
        groups = model.parameter_groups(args.lr, scale)
    else:
        groups = [{"params": list(model.parameters()), "lr": args.lr}]
    return torch.optim.Adam(groups, lr=args.lr, weight_decay=args.weight_decay)


def _check_encoder_options(args: argparse.Namespace, context) -> None:
    given = [name for name, value in (("--freeze-encoder-epochs", args.freeze_encoder_epochs),
                                      ("--encoder-lr-scale", args.encoder_lr_scale)) if value]
    if args.encoder is None and given and not args.resume:
        raise CliError(f"{given[0]} needs --encoder (a UNet has no pretrained encoder)")
    if args.freeze_encoder_epochs and context.enabled:
        raise CliError("--freeze-encoder-epochs is not supported under torchrun (DistributedDataParallel fixes the "
                       "trained parameters when it starts); train the frozen epochs in one process")


def _train(args: argparse.Namespace, context) -> int:
    _resolve_defaults(args)
    _check_encoder_options(args, context)
    if args.rewind and not args.resume:
        raise CliError("--rewind needs --resume CHECKPOINT")
    out = Path(args.out)
    planned = [out / name for name in RUN_FILES]
    appending = args.resume is not None and Path(args.resume).resolve().parent == out.resolve()
    inputs = [Path(args.data)] if args.data else []
    check_output_folder(out, inputs, [] if appending else planned, args.overwrite)
    seed_everything(args.seed)
    resumed = load_checkpoint(args.resume) if args.resume else None
    if resumed is not None:  # the checkpoint decides the architecture (and the smallest size)
        config = resumed["model"].config
        if args.encoder is not None and getattr(config, "encoder", None) != args.encoder:
            raise CliError(f"--encoder {args.encoder} but {args.resume} holds a {type(resumed['model']).__name__}; drop --encoder to resume it")
        args.encoder = getattr(config, "encoder", None)
        args.depth = getattr(config, "depth", args.depth)
    train, val, info = build_datasets(args)
    k = len(info["class_names"])
    if resumed is not None:
        model, saved = resumed["model"], resumed["model"].config
        if saved.num_classes != k:
            raise CliError(f"checkpoint {args.resume} was trained for {saved.num_classes} classes but the data has {k}")
        if saved.in_channels != info["channels"]:
            raise CliError(f"checkpoint {args.resume} takes {saved.in_channels} image channels but the images have {info['channels']}")
    if isinstance(train, SegmentationFolder):
        check_data(args, train, val, k)  # before the model is built: every file decoded once
    if resumed is None:
        model = _build_model(args, info, k)
    seed_everything(args.seed + context.rank)  # different augmentations on each process
    model.to(context.device)
    channels_last = args.channels_last and torch.device(context.device).type == "cpu"
    if channels_last:
        model.to(memory_format=torch.channels_last)  # before DDP wraps it, so its gradient buckets match
    train_loader, val_loader = _loaders(args, train, val, info, context)
    loader = EpochLoader(train_loader, args.steps_per_epoch, (lambda: sync_buffers(model)) if context.enabled else None)
    budget = args.time_budget is not None
    total_steps = None if budget else args.epochs * len(loader)
    optimizer = _optimizer(args, model)
    scheduler = _scheduler(args, optimizer, total_steps)
    history, best, lines = [], -math.inf, []
    if resumed is not None:
        state = load_checkpoint(args.resume, model, optimizer, scheduler)
        history, saved_steps = state["history"], state["extra"].get("total_steps")
        best = state["extra"].get("best_miou")
        best = float(best) if isinstance(best, (int, float)) and not isinstance(best, bool) else -math.inf
        if scheduler is not None and saved_steps != total_steps:
            raise CliError(
                f"{args.resume} was planned for {saved_steps} steps but this command gives {total_steps}; "
                "resume with the same --epochs, --batch-size, --steps-per-epoch and data"
            )
        if appending:  # every process checks, so all of them stop together
            lines = _run_state(out, len(history), args.rewind)
    remaining = 1 if budget else args.epochs - len(history)  # a budget run plans the rest after its first epoch
    if remaining <= 0:
        if context.is_main:
            print(f"nothing to do: {args.resume} already has {len(history)} of {args.epochs} epochs")
        return 0
    frozen_until = args.freeze_encoder_epochs if isinstance(unwrap_model(model), EncoderUNet) else 0
    callbacks = []
    if frozen_until > len(history):
        model.freeze_encoder()
        callbacks.append(UnfreezeEncoder(model, frozen_until))
    ddp_model = wrap_model(model, context)
    if args.val_crop is None and max(max(size) for size in getattr(val, "sizes", [(0, 0)])) > args.val_tile:
        ddp_model = TiledValidation(ddp_model, args.val_tile)  # large whole images: scored by tiles
    if context.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if not appending:
            for path in planned:
                path.unlink(missing_ok=True)
    extra = {**{key: v for key, v in info.items() if key != "val_batchable"}, "total_steps": total_steps,
             "epochs_planned": args.epochs, "best_miou": None, "freeze_encoder_epochs": args.freeze_encoder_epochs}
    run_files = RunFiles(out, model, optimizer, scheduler, extra, best, info["class_names"], args.epochs or 0, args.quiet, lines)
    board = tensorboard_log(args.tensorboard, info["class_names"]) if args.tensorboard and context.is_main else None
    if board is not None:
        callbacks.append(board)

    def run(epochs: int, history: History) -> History:
        return fit(
            ddp_model, loader, val_loader, CombinedLoss(ignore_index=args.ignore_index), optimizer, epochs,
            num_classes=k, ignore_index=args.ignore_index, scheduler=scheduler, scheduler_per_batch=True,
            callbacks=[*callbacks, run_files], history=history, progress=not args.quiet and context.is_main, channels_last=channels_last,
        )

    plan = BudgetPlan(args.time_budget, len(loader), scheduler, extra, run_files) if budget else None
    if plan is not None:
        callbacks.append(plan)  # before run_files, so the first checkpoint already holds the plan
    history = run(remaining, history)
    if plan is not None:
        epochs = _agreed_epochs(plan.epochs or 0, context)
        plan.apply(epochs)  # the same plan on every process (callbacks run on process 0 only)
        args.epochs = epochs
        history = run(epochs - 1, history)
    if board is not None:
        board.close()
    identical = replicas_identical(model)
    if context.enabled and not identical:
        raise RuntimeError("the model copies of the processes differ after training; this is a bug, please report it")
    if context.is_main:
        if context.enabled:
            print(f"parameters and buffers identical on all {context.world_size} processes")
        print(f"done: {len(history)} epochs, best val mIoU {_fmt(run_files.best)}; wrote {', '.join(RUN_FILES)} to {out}")
    return 0
