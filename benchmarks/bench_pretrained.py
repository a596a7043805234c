"""Pretrained encoders and the libraries the lesson names, on the real data and one CPU budget.

Runs in the smp environment (``make setup-smp``; ``make bench-pretrained``), because smp needs
torchvision. Every model below is trained by ``reference.train_on_budget`` (the protocol of
``notebooks/09_real_data.ipynb`` and ``bench_real_data.py``: seeded build, then the same random
crops, flips and quarter turns for every model; Adam with a one-cycle schedule; CE + Dice) on the
same data for the same number of steps, then validated once:

- ``unet``: our ``UNet`` (base 16), from scratch;
- ``enc-imagenet`` / ``enc-scratch``: our ``EncoderUNet`` (EfficientNet-Lite0 encoder, U-Net decoder
  of ``Up`` blocks), from the ImageNet weights or from scratch;
- ``smp-lite0-imagenet`` / ``smp-lite0-scratch``: smp's ``Unet`` over timm's EfficientNet-Lite0
  (``tu-tf_efficientnet_lite0``) with the same ImageNet weights (``reference.smp_efficientnet_lite0_unet``),
  or from scratch;
- ``smp-resnet34``, ``smp-deeplabv3plus``, ``smp-segformer``: smp's ``Unet`` (ResNet-34),
  ``DeepLabV3Plus`` (ResNet-34) and ``Segformer`` (MiT-B0), from scratch (their ImageNet weights
  would need a download).

Pretrained encoders get a tenth of the learning rate (``encoders.encoder_parameter_groups``), as
one fine-tunes them; every other model one rate. All models see the images as the datasets give
them (one channel; nuclei standardised per image, ssTEM scaled to [0, 1]); smp adapts its first
convolution to one channel itself, ours sums the RGB filters (``encoders.weights.adapt_stem``).

Per-class IoU comes from confusion counts accumulated over the whole validation images (nuclei:
the 67 images of 256x256; ssTEM: slices 16-19, 1024x1024, predicted by 256x256 tiles); a class
absent from validation is NaN. "When pretraining helps": the same budget again with few training
images (nuclei: 16 images; ssTEM: slices 0 and 8), repeated so that an epoch has as many crops as
with all images. The ssTEM data is CC BY-NC-SA 3.0: Gerhard, Funke, Martel, Cardona, Fetter,
*Segmented anisotropic ssTEM dataset of neural tissue*, figshare 2013, doi:10.6084/m9.figshare.856713.

    python benchmarks/bench_pretrained.py --threads 1       # the full run, writes results/pretrained.md and .json
    python benchmarks/bench_pretrained.py --quick           # smoke run of a few minutes (writes nothing unless --out)
    python benchmarks/bench_pretrained.py --tables-only benchmarks/results/pretrained.json   # re-render the tables
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, Subset

from _common import ROOT, cpu_model, machine_line, markdown_table
from bench_real_data import fmt, mean, nuclei_iou, sstem_iou

from unet_helpers import NUCLEI_CLASSES, SSTEM_CLASSES, CombinedLoss, UNet, nuclei_dataset, sstem_dataset
from unet_helpers.encoders import EncoderUNet, encoder_parameter_groups
from unet_helpers.realdata.references import smp_efficientnet_lite0_unet, smp_model, train_on_budget

# name -> (label, builder(in_channels, num_classes), pretrained encoder?)
MODELS = {
    "unet": ("our UNet (base 16), scratch", lambda c, k: UNet(c, k, base=16), False),
    "enc-imagenet": ("our EncoderUNet, ImageNet", lambda c, k: EncoderUNet(pretrained=True, in_channels=c, num_classes=k), True),
    "enc-scratch": ("our EncoderUNet, scratch", lambda c, k: EncoderUNet(pretrained=False, in_channels=c, num_classes=k), False),
    "smp-lite0-imagenet": ("smp Unet, EfficientNet-Lite0, ImageNet", lambda c, k: smp_efficientnet_lite0_unet(c, k, True), True),
    "smp-lite0-scratch": ("smp Unet, EfficientNet-Lite0, scratch", lambda c, k: smp_efficientnet_lite0_unet(c, k, False), False),
    "smp-resnet34": ("smp Unet, ResNet-34, scratch", lambda c, k: smp_model("Unet", c, k, "resnet34"), False),
    "smp-deeplabv3plus": ("smp DeepLabV3Plus, ResNet-34, scratch", lambda c, k: smp_model("DeepLabV3Plus", c, k, "resnet34"), False),
    "smp-segformer": ("smp Segformer, MiT-B0, scratch", lambda c, k: smp_model("Segformer", c, k, "mit_b0"), False),
}
FEW_MODELS = ("unet", "enc-imagenet", "enc-scratch")  # the "when pretraining helps" runs
CLASSES = {"nuclei": NUCLEI_CLASSES, "sstem": SSTEM_CLASSES}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 64x64 crops, a few steps, seed 0, 4 models")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--datasets", nargs="+", choices=["nuclei", "sstem"], default=["nuclei", "sstem"])
    parser.add_argument("--crop", type=int, default=64, help="training crops (a multiple of 32: smp needs it)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak of the one-cycle schedule")
    parser.add_argument("--encoder-lr-scale", type=float, default=0.1, help="pretrained encoders train at lr times this")
    parser.add_argument("--epochs-nuclei", type=int, default=3, help="epochs over the 267 training images")
    parser.add_argument("--epochs-sstem", type=int, default=4, help="epochs of --repeats crops per training slice")
    parser.add_argument("--repeats", type=int, default=16)
    parser.add_argument("--few-nuclei", type=int, default=16, help="training images of the few-images runs (0: none)")
    parser.add_argument("--few-sstem", nargs="*", type=int, default=[0, 8], help="training slices of the few-images runs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="Markdown file (default benchmarks/results/pretrained.md; --quick writes "
                        "nothing unless given); the raw numbers go beside it as .json, rewritten after every run")
    parser.add_argument("--tables-only", type=Path, help="render the tables of an earlier run's .json and exit")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.crop, args.epochs_nuclei, args.epochs_sstem, args.repeats = [0], 64, 1, 1, 1
        args.models = [m for m in args.models if m in ("unet", "enc-imagenet", "enc-scratch", "smp-lite0-imagenet")]
    elif args.out is None and args.tables_only is None:
        args.out = ROOT / "benchmarks" / "results" / "pretrained.md"
    return args


def training_sets(dataset: str, args: argparse.Namespace) -> dict[str, torch.utils.data.Dataset]:
    """``{"all": ..., "few": ...}``: every training image, and a few repeated to the same epoch length."""
    if dataset == "nuclei":
        full = nuclei_dataset("train", crop=args.crop, augment=True, cache=True)
        sets = {"all": full}
        if args.few_nuclei:
            chosen = torch.randperm(len(full), generator=torch.Generator().manual_seed(0))[: args.few_nuclei].tolist()
            sets["few"] = ConcatDataset([Subset(full, sorted(chosen))] * math.ceil(len(full) / args.few_nuclei))
        return sets
    full = sstem_dataset("train", crop=args.crop, augment=True)
    sets = {"all": ConcatDataset([full] * args.repeats)}
    if args.few_sstem:
        few = sstem_dataset("train", train_slices=args.few_sstem, crop=args.crop, augment=True)
        sets["few"] = ConcatDataset([few] * (args.repeats * len(full) // len(args.few_sstem)))
    return sets


def run_one(name: str, dataset: str, train_set, val_set, seed: int, args: argparse.Namespace) -> dict:
    """Train one model on the budget, validate it on whole images, return the record."""
    _, build, pretrained = MODELS[name]
    num_classes = len(CLASSES[dataset])
    epochs = args.epochs_nuclei if dataset == "nuclei" else args.epochs_sstem
    groups = (lambda model, lr: encoder_parameter_groups(model, lr, args.encoder_lr_scale)) if pretrained else None
    run = train_on_budget(lambda: build(1, num_classes), train_set, num_classes, epochs, loss_fn=CombinedLoss(),
                          lr=args.lr, batch_size=args.batch, seed=seed, parameter_groups=groups)
    began = time.perf_counter()
    iou = (nuclei_iou if dataset == "nuclei" else sstem_iou)(run.pop("model"), val_set)
    run.pop("history")
    return {**run, "iou": iou, "miou": mean(iou), "epochs": epochs, "seconds_per_epoch": run["seconds"] / epochs,
            "validation_seconds": time.perf_counter() - began}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.tables_only:
        saved = json.loads(args.tables_only.read_text())
        print("\n".join(report(saved)))
        return
    torch.set_num_threads(args.threads)
    header = f"{cpu_model()}; {machine_line()}"
    command = "python benchmarks/bench_pretrained.py " + " ".join(sys.argv[1:] if argv is None else argv)
    settings = (f"{args.crop}x{args.crop} crops, batch {args.batch}, Adam one-cycle peak {args.lr:g} (pretrained encoders "
                f"x{args.encoder_lr_scale:g}), CE + Dice; nuclei {args.epochs_nuclei} epochs of 267 images, ssTEM "
                f"{args.epochs_sstem} epochs of {args.repeats} crops per slice; few images: nuclei {args.few_nuclei}, "
                f"ssTEM slices {args.few_sstem}; seeds {' '.join(map(str, args.seeds))}")
    print(header, "\n" + settings, flush=True)
    record = {"machine": header, "command": command.strip(), "settings": settings,
              "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "runs": []}
    data = {d: (training_sets(d, args), nuclei_dataset("val", cache=True) if d == "nuclei" else sstem_dataset("val"))
            for d in args.datasets}
    plan = [(seed, d, "all", m) for seed in args.seeds for d in args.datasets for m in args.models]
    plan += [(seed, d, "few", m) for seed in args.seeds for d in args.datasets for m in args.models
             if m in FEW_MODELS and "few" in data[d][0]]
    began = time.perf_counter()
    for i, (seed, dataset, images, name) in enumerate(plan):
        train_sets, val_set = data[dataset]
        run = run_one(name, dataset, train_sets[images], val_set, seed, args)
        record["runs"].append({"dataset": dataset, "images": images, "model": name, "seed": seed, **run})
        print(f"[{i + 1}/{len(plan)}, {time.perf_counter() - began:.0f} s] {dataset} {images} {name} seed {seed}: "
              f"mIoU {run['miou']:.3f}, IoU {[round(v, 3) for v in run['iou']]}, {run['steps']} steps in "
              f"{run['seconds']:.0f} s ({run['cpu_seconds']:.0f} s CPU), validation {run['validation_seconds']:.0f} s",
              flush=True)
        if args.out is not None:  # keep what is done if a later run fails
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    record["total_seconds"] = time.perf_counter() - began
    text = "\n".join(report(record))
    print("\n" + text)
    if args.out is not None:
        args.out.write_text(text + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"\nwrote {args.out} and {args.out.with_suffix('.json')}")


def spread(values: list[float]) -> str:
    """Mean over seeds with the range: "0.774 (0.770-0.778)"; one value alone."""
    defined = [v for v in values if v == v]
    if not defined:
        return "n/a"
    if len(defined) == 1:
        return fmt(defined[0])
    return f"{fmt(mean(defined))} ({fmt(min(defined))}-{fmt(max(defined))})"


def select(runs: list[dict], **where) -> list[dict]:
    return [r for r in runs if all(r[key] == value for key, value in where.items())]


def report(record: dict) -> list[str]:
    runs = record["runs"]
    seeds = sorted({r["seed"] for r in runs})
    lines = [f"Machine: {record['machine']}", "", f"Command: `{record['command']}`", "",
             f"Settings: {record['settings']}.", ""]
    if "total_seconds" in record:
        lines += [f"Total time: {record['total_seconds'] / 60:.0f} min for {len(runs)} trained models.", ""]
    lines += ["Cells: mean over seeds " + ", ".join(map(str, seeds)) + " (lowest-highest). IoU from confusion counts over "
              "the whole validation images. s/epoch: training CPU seconds per epoch on one thread (hardly affected by other jobs "
              "on the machine), wall-clock seconds in brackets.", ""]
    for dataset in ("nuclei", "sstem"):
        chosen = select(runs, dataset=dataset, images="all")
        if not chosen:
            continue
        title = {"nuclei": "Nuclei (DSB2018): 67 validation images of 256x256",
                 "sstem": "ssTEM (Gerhard et al. 2013, CC BY-NC-SA 3.0): slices 16-19 by 256x256 tiles"}[dataset]
        header = ["model", "parameters", "s/epoch", *CLASSES[dataset], "mIoU"]
        rows = []
        for name in MODELS:
            mine = select(chosen, model=name)
            if not mine:
                continue
            k = len(CLASSES[dataset])
            secs = f"{mean([r['cpu_seconds'] / r['epochs'] for r in mine]):.1f} ({mean([r['seconds_per_epoch'] for r in mine]):.1f})"
            rows.append([MODELS[name][0], f"{mine[0]['parameters']:,}", secs,
                         *(spread([r["iou"][c] for r in mine]) for c in range(k)), f"**{spread([r['miou'] for r in mine])}**"])
        lines += [f"### {title}", "", f"{chosen[0]['steps']} training steps per model.", "", markdown_table(header, rows), ""]
    few = select(runs, images="few")
    if few:
        lines += ["### When pretraining helps: all training images against a few, same steps", "",
                  "Gain: ImageNet-pretrained EncoderUNet minus the same network from scratch, mIoU points, mean over seeds "
                  "(per seed in brackets).", ""]
        header = ["dataset", "training images", *(MODELS[m][0] for m in FEW_MODELS), "gain from ImageNet"]
        rows = []
        for dataset in ("nuclei", "sstem"):
            for images in ("all", "few"):
                mine = select(runs, dataset=dataset, images=images)
                if not all(select(mine, model=m) for m in FEW_MODELS):
                    continue
                cells = [spread([r["miou"] for r in select(mine, model=m)]) for m in FEW_MODELS]
                gains = [100 * (select(mine, model="enc-imagenet", seed=s)[0]["miou"]
                                - select(mine, model="enc-scratch", seed=s)[0]["miou"])
                         for s in seeds if select(mine, model="enc-imagenet", seed=s) and select(mine, model="enc-scratch", seed=s)]
                count = {("nuclei", "all"): "267", ("nuclei", "few"): str(record["options"]["few_nuclei"]),
                         ("sstem", "all"): "16 slices",
                         ("sstem", "few"): f"{len(record['options']['few_sstem'])} slices"}[dataset, images]
                rows.append([dataset, count, *cells, f"{sum(gains) / len(gains):+.1f} ({', '.join(f'{g:+.1f}' for g in gains)})"])
        lines += [markdown_table(header, rows), ""]
    return lines


if __name__ == "__main__":
    main()
