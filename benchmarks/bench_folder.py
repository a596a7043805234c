"""Folder throughput: ``predict_files`` (DataLoader reader processes) against the plain loop.

The job of ``python -m unet_helpers predict`` on a folder: read every PNG, scale it, predict it
(whole, or tiled when larger than the 256 tile), write its mask as a PNG. "plain loop" does that
one file after the other, as the command did before; "workers=N" reads and decodes with
``predict_files(num_workers=N)`` while the main process runs the model and writes the masks
(``workers=0`` is the same function reading in the main process: its overhead alone).

Two folders of synthetic RGB PNGs (``synthetic_segmentation``): many small images predicted whole
(256 x 256), and fewer large ones predicted tiled (1024 x 1024). Random-weight ``UNet(3, 3,
base=16)`` (the train command's default width). Each side makes whole passes over the folder
(worker start-up included), interleaved over ``--repeats`` rounds after one warm-up pass; images
per second are the median (slowest-fastest). The model runs with ``--threads`` torch threads
(default 1, so that one of the 2 cores is left for reading; the machine is shared).

    python benchmarks/bench_folder.py                 # writes benchmarks/results/folder.md and .json
    python benchmarks/bench_folder.py --quick         # smoke run, prints only
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from _common import ROOT, interleaved, load_average, machine_info, markdown_table, rate_cell

from unet_helpers.data import synthetic_segmentation
from unet_helpers.image_file import read_image, scale_image
from unet_helpers.slides.folder_stream import predict_files, predict_image, stored_values
from unet_helpers.unet import UNet


def make_folder(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` synthetic RGB PNGs of ``size`` x ``size`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    images, _ = synthetic_segmentation(count, size=size, seed=size, num_shapes=(3, 3 + size // 64))
    paths = []
    for i, image in enumerate(images):
        paths.append(folder / f"img_{i:03d}.png")
        Image.fromarray((image * 255).round().astype(np.uint8)).save(paths[-1])
    return paths


def plain_loop(model: torch.nn.Module, paths: list[Path], out: Path) -> None:
    for path in paths:
        image = torch.from_numpy(scale_image(read_image(path, 3), "unit")).permute(2, 0, 1).contiguous()  # (3, H, W)
        Image.fromarray(stored_values(predict_image(model, image))).save(out / path.name)


def with_workers(model: torch.nn.Module, paths: list[Path], out: Path, workers: int) -> None:
    for path, ids in predict_files(model, paths, channels=3, num_workers=workers):
        Image.fromarray(stored_values(ids)).save(out / path.name)


def measure(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    model = UNet(3, 3, base=16).eval()
    folders = {"256x256 (whole)": (args.small_count, 256), "1024x1024 (tiled)": (args.large_count, 1024)}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, (count, size) in folders.items():
            paths = make_folder(tmp / f"in_{size}", count, size)
            out = tmp / f"out_{size}"
            out.mkdir()
            sides = {"plain loop": lambda: plain_loop(model, paths, out)}
            for workers in args.workers:
                sides[f"workers={workers}"] = lambda w=workers: with_workers(model, paths, out, w)
            load_start = load_average()
            seconds = interleaved(sides, repeats=args.repeats, warmup=1)
            results[name] = {"images": count, "seconds": seconds, "load_start": load_start, "load_end": load_average()}
            print(f"[folder] {name}: {json.dumps(results[name])}", file=sys.stderr, flush=True)
    return results


def markdown(args: argparse.Namespace, meta: dict, results: dict) -> str:
    rows = []
    for name, r in results.items():
        plain = r["seconds"]["plain loop"]
        for side, seconds in r["seconds"].items():
            speedup = "-" if side == "plain loop" else f"{statistics.median(p / s for p, s in zip(plain, seconds)):.2f}"
            rows.append([name, r["images"], side, rate_cell(seconds, r["images"], 2), speedup, f"{r['load_start']:.1f} / {r['load_end']:.1f}"])
    header = ["images", "count", "reading", "images / s", "vs plain loop (paired median)", "load start / end"]
    return (
        f"## Folder throughput: predict_files (DataLoader workers) vs the plain loop\n\nMeasured {meta['date']} with "
        f"`{meta['command']}`: {meta['cpu']}, {meta['cores']} cores, {args.threads} torch thread(s) for the model, torch "
        f"{meta['torch']}; load average {meta['load_start']:.1f} at start (above 2, other jobs shared the cores).\n\n"
        "Read PNG, scale, predict (whole at 256, tiled above), write the mask PNG; random-weight UNet(3, 3, base=16); "
        f"{args.repeats} interleaved rounds of whole passes after a warm-up pass, worker start-up included.\n\n"
        + markdown_table(header, rows) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small-count", type=int, default=48)
    parser.add_argument("--large-count", type=int, default=6)
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 small and 2 large images, one round; writes nothing")
    args = parser.parse_args()
    argv = sys.argv[1:]
    if args.quick:
        args.small_count, args.large_count, args.repeats = 8, 2, 1
    torch.set_num_threads(args.threads)
    meta = {**machine_info(), "load_start": load_average(), "command": "python benchmarks/bench_folder.py " + shlex.join(argv)}
    results = measure(args)
    meta["load_end"] = load_average()
    text = markdown(args, meta, results)
    print(text)
    if not args.quick:
        out = ROOT / "benchmarks" / "results"
        (out / "folder.md").write_text(text)
        (out / "folder.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))


if __name__ == "__main__":
    main()
