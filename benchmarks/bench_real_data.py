"""Real data: our U-Net against MONAI's on one budget, and what Dice in the loss does per class.

Two measurements in one run, on the course's two real datasets (found through ``UNET_DATA_DIR``):

1. **Ours vs MONAI.** ``UNet`` (bilinear up-sampling, the course default) against MONAI's
   ``BasicUNet`` as set up by ``reference.monai_basic_unet`` (same widths, BatchNorm, ReLU;
   transposed convolutions and conv biases). Nuclei: IoU of the nucleus class over the 67 whole
   256x256 validation images. ssTEM: IoU per class and mIoU over the whole validation slices 16-19,
   each predicted by ``predict_tiled`` (256x256 tiles, overlap 0.25, Gaussian blending).
2. **CE vs CE + Dice on ssTEM.** Our U-Net trained with cross-entropy alone (``lam=0``) and with
   cross-entropy + Dice (``lam=1``, the run of part 1), same seeds; per class the IoU gain of
   every seed and the mean gain (``checks.dice_gains.reference_dice_gains``).

Every run uses the protocol of ``notebooks/09_real_data.ipynb``: ``seed_everything(seed)``, build
the model, re-seed so that every model draws the same random crops and augmentations, a loader
with the same seeded shuffle; Adam with a one-cycle schedule (peak ``--lr``), batches of
``--batch`` random ``--crop`` crops with flips and quarter turns (ssTEM: ``--repeats`` crops per
slice per epoch; ``--elastic`` adds elastic deformation), ``CombinedLoss(lam)``. Validation
happens once, after training. Seconds are training time only, wall clock and CPU time of the
process (CPU time counts every thread; on one thread it hardly depends on what else runs). The
default budget is 4,432 training steps at base 16; ``--threads 1`` is faster on a busy machine.

    python benchmarks/bench_real_data.py                 # default budget, writes benchmarks/results/real_data.md
    python benchmarks/bench_real_data.py --quick         # a smoke run of a minute or two (writes nothing unless --out)
    python benchmarks/bench_real_data.py --parts dice --seeds 0 1 2   # only the Dice question, 3 seeds
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset

from _common import ROOT, cpu_model, machine_line, markdown_table

from unet_helpers import (NUCLEI_CLASSES, SSTEM_CLASSES, CombinedLoss, ConfusionMatrix, ElasticDeform, UNet,
                          nuclei_dataset, predict, predict_tiled,
                          sstem_dataset)
from unet_helpers.checks.dice_gains import reference_dice_gains
from unet_helpers.realdata.references import monai_basic_unet, train_on_budget

MODELS = {"ours": lambda c, k, base: UNet(c, k, base=base), "monai": lambda c, k, base: monai_basic_unet(c, k, base=base)}
LABELS = {"ours": "our UNet", "monai": "MONAI BasicUNet"}


def run_model(model_name: str, train_set, num_classes: int, epochs: int, lam: float, seed: int, args) -> dict:
    """Train one model with the lesson's protocol (``reference.train_on_budget``)."""
    return train_on_budget(lambda: MODELS[model_name](1, num_classes, args.base), train_set, num_classes, epochs,
                           loss_fn=CombinedLoss(lam=lam), lr=args.lr, batch_size=args.batch, seed=seed)


def nuclei_iou(model, val) -> list[float]:
    """Per-class IoU over the whole validation images (accumulated counts)."""
    matrix = ConfusionMatrix(2)
    for lo in range(0, len(val), 16):
        items = [val[i] for i in range(lo, min(lo + 16, len(val)))]
        images, masks = torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])
        matrix.update(predict(model, images), masks)
    return matrix.iou().tolist()


def sstem_iou(model, val) -> list[float]:
    """Per-class IoU over the whole validation slices, each predicted by tiles (accumulated counts)."""
    matrix = ConfusionMatrix(5)
    for image, mask in val:
        matrix.update(predict_tiled(model, image, tile=256, overlap=0.25)[None], mask[None])
    return matrix.iou().tolist()


def fmt(value: float) -> str:
    return "n/a" if value != value else f"{value:.3f}"


def mean(values: list[float]) -> float:
    defined = [v for v in values if v == v]
    return sum(defined) / len(defined) if defined else float("nan")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run: base 4, 64x64 crops, 1 epoch, seed 0")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--base", type=int, default=16, help="width of the first level (both models)")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak of the one-cycle schedule")
    parser.add_argument("--epochs-nuclei", type=int, default=10, help="epochs over the 267 training images")
    parser.add_argument("--epochs-sstem", type=int, default=16, help="epochs of --repeats crops per training slice")
    parser.add_argument("--repeats", type=int, default=16)
    parser.add_argument("--elastic", action="store_true", help="elastic deformation of the ssTEM crops")
    parser.add_argument("--parts", nargs="+", choices=["compare", "dice"], default=["compare", "dice"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="Markdown file for the tables (default: benchmarks/results/real_data.md; "
                        "--quick writes nothing unless given); the raw numbers go beside it as .json")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.base, args.crop, args.epochs_nuclei, args.epochs_sstem, args.repeats = [0], 4, 64, 1, 1, 1
    elif args.out is None:
        args.out = ROOT / "benchmarks" / "results" / "real_data.md"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    header = f"{cpu_model()}; {machine_line()}"
    print(header, flush=True)
    command = "python benchmarks/bench_real_data.py " + " ".join(sys.argv[1:] if argv is None else argv)
    settings = (f"base {args.base}, {args.crop}x{args.crop} crops, batch {args.batch}, Adam one-cycle peak {args.lr:g}, "
                f"nuclei {args.epochs_nuclei} epochs, ssTEM {args.epochs_sstem} epochs x {args.repeats} crops per slice"
                f"{' (elastic)' if args.elastic else ''}, "
                f"seeds {' '.join(map(str, args.seeds))}")
    print(settings, flush=True)
    nuclei_train = nuclei_dataset("train", crop=args.crop, augment=True, cache=True)
    nuclei_val = nuclei_dataset("val", cache=True)
    elastic = ElasticDeform() if args.elastic else None
    sstem_train = ConcatDataset([sstem_dataset("train", crop=args.crop, augment=True, transform=elastic)] * args.repeats)
    sstem_val = sstem_dataset("val")

    runs = []  # one dict per trained model
    plan = []
    if "compare" in args.parts:
        plan += [("nuclei", name, 1.0) for name in MODELS] + [("sstem", name, 1.0) for name in MODELS]
    if "dice" in args.parts:
        plan += [("sstem", "ours", 0.0)] + ([] if "compare" in args.parts else [("sstem", "ours", 1.0)])
    for seed in args.seeds:
        for dataset, name, lam in plan:
            if dataset == "nuclei":
                run = run_model(name, nuclei_train, 2, args.epochs_nuclei, lam, seed, args)
                iou = nuclei_iou(run.pop("model"), nuclei_val)
            else:
                run = run_model(name, sstem_train, 5, args.epochs_sstem, lam, seed, args)
                iou = sstem_iou(run.pop("model"), sstem_val)
            run.pop("history")
            runs.append({"dataset": dataset, "model": name, "lam": lam, "seed": seed, "iou": iou, **run})
            print(f"  {dataset:6s} {name:5s} lam={lam:g} seed={seed}: IoU {[round(v, 3) for v in iou]}, "
                  f"{run['steps']} steps, {run['seconds']:.0f} s ({run['cpu_seconds']:.0f} s CPU)", flush=True)

    sections = [f"Machine: {header}", "", f"Command: `{command.strip()}`", "", f"Settings: {settings}.", ""]
    if "compare" in args.parts:
        sections += compare_tables(runs, args.seeds)
    if "dice" in args.parts:
        sections += dice_table(runs, args.seeds)
    text = "\n".join(sections)
    print()
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        args.out.with_suffix(".json").write_text(json.dumps({"machine": header, "command": command.strip(),
                                                             "settings": vars(args) | {"out": str(args.out)},
                                                             "runs": runs}, indent=1) + "\n")
        print(f"\nwrote {args.out} and {args.out.with_suffix('.json')}")


def select(runs: list[dict], **where) -> list[dict]:
    return [r for r in runs if all(r[key] == value for key, value in where.items())]


def compare_tables(runs: list[dict], seeds: list[int]) -> list[str]:
    """Ours vs MONAI: one row per model and seed, then the mean over seeds and the difference."""
    lines = ["### Our U-Net vs MONAI's BasicUNet, same budget (CE + Dice)", ""]
    for dataset, classes in (("nuclei", NUCLEI_CLASSES[1:]), ("sstem", SSTEM_CLASSES)):
        first = 1 if dataset == "nuclei" else 0  # nuclei: the nucleus class only
        header = ["model", "parameters", "seed", *classes] + (["mIoU"] if dataset == "sstem" else []) + ["train s (wall / CPU)"]
        rows, means = [], {}
        for name in MODELS:
            chosen = select(runs, dataset=dataset, model=name, lam=1.0)
            for r in chosen:
                values = r["iou"][first:]
                rows.append([LABELS[name], f"{r['parameters']:,}", r["seed"], *map(fmt, values)]
                            + ([fmt(mean(r["iou"]))] if dataset == "sstem" else []) + [f"{r['seconds']:.0f} / {r['cpu_seconds']:.0f}"])
            per_class = [mean([r["iou"][k] for r in chosen]) for k in range(first, len(chosen[0]["iou"]))]
            miou = mean([mean(r["iou"]) for r in chosen])
            means[name] = per_class + ([miou] if dataset == "sstem" else [])
            rows.append([f"**{LABELS[name]}, mean**", f"{chosen[0]['parameters']:,}", "all", *map(fmt, means[name]), ""])
        diff = [100 * (a - b) for a, b in zip(means["ours"], means["monai"])]
        rows.append(["ours - MONAI (IoU points)", "", "", *(f"{d:+.1f}" for d in diff), ""])
        title = "Nuclei: IoU of the nucleus class" if dataset == "nuclei" else "ssTEM: IoU per class, slices 16-19 by tiles"
        lines += [f"{title}", "", markdown_table(header, rows), ""]
    return lines


def dice_table(runs: list[dict], seeds: list[int]) -> list[str]:
    """CE alone vs CE + Dice on ssTEM: per class the IoU of each setting (mean over seeds) and the gains."""
    without = [select(runs, dataset="sstem", model="ours", lam=0.0, seed=s)[0]["iou"] for s in seeds]
    with_dice = [select(runs, dataset="sstem", model="ours", lam=1.0, seed=s)[0]["iou"] for s in seeds]
    gains = dict(reference_dice_gains(torch.tensor(without), torch.tensor(with_dice), SSTEM_CLASSES))
    header = ["class", "IoU, CE", "IoU, CE + Dice", *(f"gain, seed {s}" for s in seeds), "mean gain (IoU points)"]
    rows = []
    for name in sorted(SSTEM_CLASSES, key=lambda n: -gains[n] if gains[n] == gains[n] else 1e9):
        k = SSTEM_CLASSES.index(name)
        per_seed = [100 * (w[k] - c[k]) for c, w in zip(without, with_dice)]
        rows.append([name, fmt(mean([c[k] for c in without])), fmt(mean([w[k] for w in with_dice])),
                     *(f"{g:+.1f}" for g in per_seed), f"**{100 * gains[name]:+.1f}**"])
    rows.append(["mIoU", fmt(mean([mean(c) for c in without])), fmt(mean([mean(w) for w in with_dice])),
                 *(f"{100 * (mean(w) - mean(c)):+.1f}" for c, w in zip(without, with_dice)),
                 f"{100 * (mean([mean(w) for w in with_dice]) - mean([mean(c) for c in without])):+.1f}"])
    return ["### ssTEM, our U-Net: cross-entropy alone vs cross-entropy + Dice (lam = 1)", "",
            "Classes ordered by mean gain; IoU columns are means over the seeds.", "", markdown_table(header, rows), ""]


if __name__ == "__main__":
    main()
