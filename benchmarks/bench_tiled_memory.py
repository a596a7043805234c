"""Tiled vs whole-image inference on one 2048x2048 image: time, peak memory, agreement.

Each side runs in its own fresh Python process, so one side never inherits the other's peak.
A process reports its resident set size after loading the model and the image (baseline), its
peak resident set size at the end (``VmHWM`` in ``/proc/self/status``; ``ru_maxrss`` elsewhere),
and the inference time. The parent compares the class maps: agreement between whole and tiled
prediction, and mIoU of each against the true mask of the synthetic image.

The model is a U-Net trained by ``python -m unet_helpers train`` on the synthetic shapes (a few
epochs, in a temporary folder) unless ``--checkpoint`` names one.

    python benchmarks/bench_tiled_memory.py
    python benchmarks/bench_tiled_memory.py --checkpoint runs/train/best.pt --tiles 256 512
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import machine_line, markdown_table

from unet_helpers.checkpoint import load_checkpoint
from unet_helpers.cli import main as cli_main
from unet_helpers.data import synthetic_segmentation
from unet_helpers.inference import predict, predict_tiled
from unet_helpers.metrics import ConfusionMatrix


def memory_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MiB."""
    status = Path("/proc/self/status")
    if status.exists():
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return float("nan"), peak


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    model = load_checkpoint(args.checkpoint)["model"].eval()
    image = torch.from_numpy(np.load(args.image)).permute(2, 0, 1).contiguous()  # (3, H, W)
    baseline, _ = memory_mb()
    began = time.perf_counter()
    if args.worker == "whole":
        ids = predict(model, image)
    else:
        ids = predict_tiled(model, image, tile=int(args.worker), overlap=args.overlap, batch_size=args.batch_size)
    seconds = time.perf_counter() - began
    _, peak = memory_mb()
    np.save(args.out, ids.numpy().astype(np.uint8))
    print(json.dumps({"baseline_mb": baseline, "peak_mb": peak, "seconds": seconds}))


def run_side(mode: str, args: argparse.Namespace, checkpoint: Path, image: Path, out: Path) -> dict:
    command = [
        sys.executable, __file__, "--worker", mode, "--checkpoint", str(checkpoint), "--image", str(image),
        "--out", str(out), "--overlap", str(args.overlap), "--batch-size", str(args.batch_size), "--threads", str(args.threads),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def miou(ids: np.ndarray, truth: np.ndarray, k: int) -> float:
    cm = ConfusionMatrix(k)
    cm.update(torch.from_numpy(ids.astype(np.int64))[None], torch.from_numpy(truth)[None])
    return cm.miou()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="a train checkpoint (default: train one for a few epochs)")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--tiles", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        checkpoint = Path(args.checkpoint) if args.checkpoint else tmp / "run" / "best.pt"
        if not args.checkpoint:
            torch.set_num_threads(args.threads)
            cli_main(["train", "--out", str(tmp / "run"), "--epochs", "6", "--quiet"])
        k = load_checkpoint(checkpoint)["model"].config.num_classes
        shapes = (args.size // 8) ** 2 // 64  # about as dense as the 64x64 training images
        images, masks = synthetic_segmentation(1, args.size, seed=123, num_shapes=(shapes, shapes))
        np.save(tmp / "image.npy", images[0])
        results = {}
        for mode in ["whole", *map(str, args.tiles)]:
            results[mode] = run_side(mode, args, checkpoint, tmp / "image.npy", tmp / f"ids-{mode}.npy")
            results[mode]["ids"] = np.load(tmp / f"ids-{mode}.npy")
    whole = results["whole"]["ids"]
    rows = []
    for mode, r in results.items():
        label = "whole image" if mode == "whole" else f"tiled {mode}x{mode}, overlap {args.overlap}, batch {args.batch_size}"
        agree = "-" if mode == "whole" else f"{100 * float((r['ids'] == whole).mean()):.3f} %"
        rows.append([
            label, f"{r['seconds']:.1f}", f"{r['baseline_mb']:.0f}", f"{r['peak_mb']:.0f}",
            f"{r['peak_mb'] - r['baseline_mb']:.0f}", agree, f"{miou(r['ids'], masks[0], k):.4f}",
        ])
    print(f"\n{args.size}x{args.size} RGB image, U-Net from {'--checkpoint' if args.checkpoint else 'train --epochs 6 (defaults)'}\n")
    print(markdown_table(
        ["inference", "seconds", "RSS before (MiB)", "peak RSS (MiB)", "peak - before (MiB)", "pixels equal to whole", "mIoU vs truth"],
        rows,
    ))


if __name__ == "__main__":
    main()
