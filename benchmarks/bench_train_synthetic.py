"""Epochs and seconds until the ``train`` command reaches validation mIoU 0.9 (and 0.95) on the
default synthetic shapes, for three learning-rate schedules.

Each run is ``python -m unet_helpers train`` with its defaults (UNet base 16, 400 train / 100 val
images of 64x64, batch 8, Adam peaking at 3e-3, cross-entropy + Dice, flips and rotations) and
only ``--schedule``, ``--epochs`` and ``--seed`` changed, so the table describes exactly what a
user gets. Seconds are training plus validation time summed over epochs (``seconds`` in
``metrics.jsonl``), on as many threads as ``--threads`` (2 by default).

    python benchmarks/bench_train_synthetic.py                      # 3 schedules x 2 seeds, 12 epochs
    python benchmarks/bench_train_synthetic.py --schedules onecycle --seeds 0 1 2 --epochs 10
"""
from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import torch

from _common import machine_line, markdown_table

from unet_helpers.cli import main as cli_main
from unet_helpers.data import SHAPE_CLASSES
from unet_helpers.records import EpochRecord


def first_epoch_reaching(lines: list[EpochRecord], target: float) -> int | None:
    return next((line.epoch for line in lines if line.miou >= target), None)


def run(schedule: str, seed: int, epochs: int, workdir: Path) -> list[EpochRecord]:
    out = workdir / f"{schedule}-{seed}"
    code = cli_main(["train", "--out", str(out), "--epochs", str(epochs), "--schedule", schedule, "--seed", str(seed), "--quiet"])
    if code != 0:
        raise SystemExit(f"train failed for schedule={schedule} seed={seed}")
    return [EpochRecord.from_json(json.loads(line)) for line in (out / "metrics.jsonl").read_text().splitlines()]


def summarise(schedule: str, seed: int, lines: list[EpochRecord]) -> list[object]:
    elapsed, cumulative = 0.0, []
    for line in lines:
        elapsed += line.seconds
        cumulative.append(elapsed)
    row: list[object] = [schedule, seed]
    for target in (0.9, 0.95):
        epoch = first_epoch_reaching(lines, target)
        row.append("not reached" if epoch is None else f"{epoch} ({cumulative[epoch - 1]:.0f} s)")
    reached = first_epoch_reaching(lines, 0.9)
    after = [line.miou for line in lines[reached - 1 :]] if reached else []
    row.append(f"{min(after):.3f}" if after else "-")
    best = max(lines, key=lambda line: line.miou)
    final = lines[-1]
    row += [f"{final.miou:.3f}", " / ".join(f"{v:.3f}" for v in final.val.iou), f"{best.miou:.3f} (epoch {best.epoch})"]
    row.append(f"{cumulative[-1] / len(lines):.1f}")
    return row


def time_to_accuracy(seeds: list[int], epochs: int = 12, quick: bool = False) -> dict:
    """Seconds until the ``train`` defaults (one-cycle) first reach validation mIoU 0.9 and 0.95.

    Seconds are the ``seconds`` of ``metrics.jsonl`` (training and validation) summed up to and
    including that epoch; ``wall`` is the whole command, start-up and checkpoints included.
    ``quick`` trains 1 epoch on 32 images instead (a smoke run of the plumbing).
    """
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            out = Path(tmp) / f"seed-{seed}"
            extra = ["--epochs", "1", "--synthetic-train", "32", "--synthetic-val", "8"] if quick else ["--epochs", str(epochs)]
            began = time.perf_counter()
            if cli_main(["train", "--out", str(out), "--seed", str(seed), "--quiet", *extra]) != 0:
                raise SystemExit(f"train failed for seed={seed}")
            wall = time.perf_counter() - began
            lines = [EpochRecord.from_json(json.loads(line)) for line in (out / "metrics.jsonl").read_text().splitlines()]
            cumulative = list(itertools.accumulate(line.seconds for line in lines))
            run = {"seed": seed, "wall": wall, "epochs": len(lines), "final_miou": lines[-1].miou}
            for target in (0.9, 0.95):
                epoch = first_epoch_reaching(lines, target)
                run[str(target)] = None if epoch is None else {"epoch": epoch, "seconds": cumulative[epoch - 1]}
            runs.append(run)
    return {"runs": runs, "epochs": 1 if quick else epochs}


def accuracy_markdown(result: dict, threads: int) -> str:
    """The table of ``time_to_accuracy``."""
    rows = []
    for run in result["runs"]:
        cells = [run["seed"]]
        for target in ("0.9", "0.95"):
            hit = run[target]
            cells.append("not reached" if hit is None else f"{hit['seconds']:.0f} s (epoch {hit['epoch']})")
        cells += [f"{run['final_miou']:.3f}", f"{run['wall']:.0f} s"]
        rows.append(cells)
    return (
        f"`python -m unet_helpers train` with its defaults (UNet base 16, 400/100 synthetic 64x64 images, batch 8, "
        f"one-cycle peak 3e-3, {result['epochs']} epochs), {threads} threads. Seconds to a target = training plus "
        "validation time of the epochs up to the first one that reaches it.\n\n"
        + markdown_table(["seed", "to mIoU 0.9", "to mIoU 0.95", "final mIoU", "whole command"], rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", nargs="+", default=["constant", "cosine", "onecycle"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_line())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for schedule in args.schedules:
            for seed in args.seeds:
                rows.append(summarise(schedule, seed, run(schedule, seed, args.epochs, Path(tmp))))
                print(markdown_table(HEADER, rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(f"`train` defaults, {args.epochs} epochs; per-class IoU order: {' / '.join(SHAPE_CLASSES)}")
    print()
    print(markdown_table(HEADER, rows))


HEADER = [
    "schedule", "seed", "epoch (time) to mIoU 0.9", "to 0.95", "lowest mIoU after 0.9", "final mIoU",
    "final IoU per class", "best mIoU", "s / epoch",
]

if __name__ == "__main__":
    main()
