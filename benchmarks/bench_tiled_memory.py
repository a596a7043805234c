"""Tiled inference: our ``predict_tiled`` against MONAI's ``sliding_window_inference``, and both
against whole-image inference; time, peak memory and agreement, on 1024x1024 and 2048x2048.

Settings map one to one: our ``tile=T, overlap=O, blend="gaussian", batch_size=B`` is MONAI's
``roi_size=(T, T), overlap=O, mode="gaussian", sigma_scale=0.125, sw_batch_size=B`` (our Gaussian
also has sigma = 0.125 * tile). Both put the last tile flush with the border and blend class
probabilities: MONAI's predictor returns ``model(x).softmax(1)``, and MONAI runs under
``torch.inference_mode()`` with the model in eval mode, as ours does. All sides use the same model.

Sides: "whole" is ``predict`` on the whole image; "ours" is ``predict_tiled`` as it ships (tiles in
channels-last layout); "ours, NCHW" is ``predict_tiled(channels_last=False)``; "MONAI" is
``sliding_window_inference`` with the plain predictor; "MONAI, channels-last" converts each batch
of tiles to channels-last in the predictor. The like-for-like pairs are ours NCHW / MONAI and
ours / MONAI channels-last.

Each side runs in its own fresh Python process (so no side inherits another's peak), rounds are
interleaved, and every process first warms up on a 512x512 crop. A process reports its resident
set size after warm-up (baseline), its peak resident set size at the end (``VmHWM``), and the
time of the measured call; it saves the class probabilities so the parent can compare them.

    python benchmarks/bench_tiled_memory.py                          # 1024 and 2048, a model trained for 3 epochs
    python benchmarks/bench_tiled_memory.py --checkpoint runs/train/best.pt --sizes 2048 --tile 512
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import machine_line, markdown_table, ratio_cell, seconds_cell

from unet_helpers.checkpoint import load_checkpoint
from unet_helpers.cli import main as cli_main
from unet_helpers.data import synthetic_segmentation
from unet_helpers.inference import predict, predict_tiled
from unet_helpers.metrics import ConfusionMatrix

SIDES = ("whole", "ours", "ours, NCHW", "MONAI", "MONAI, channels-last")


def memory_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MiB."""
    status = Path("/proc/self/status")
    if status.exists():
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return float("nan"), peak


def monai_tiled(model: torch.nn.Module, image: torch.Tensor, tile: int, overlap: float, batch_size: int, channels_last: bool) -> torch.Tensor:
    """MONAI's sliding window with our settings; returns probabilities ``(K, H, W)``."""
    from monai.inferers import sliding_window_inference

    def predictor(tiles: torch.Tensor) -> torch.Tensor:
        if channels_last:
            tiles = tiles.contiguous(memory_format=torch.channels_last)
        return model(tiles).softmax(dim=1)  # (B, K, h, w)

    model.eval()
    with torch.inference_mode():
        out = sliding_window_inference(
            image[None], roi_size=(tile, tile), sw_batch_size=batch_size, predictor=predictor,
            overlap=overlap, mode="gaussian", sigma_scale=0.125,
        )
    return torch.as_tensor(out)[0].clone()  # (K, H, W), a plain tensor


def run_side(side: str, model: torch.nn.Module, image: torch.Tensor, args: argparse.Namespace) -> torch.Tensor:
    """Probabilities ``(K, H, W)`` of ``image`` by one side."""
    tiled = {"tile": args.tile, "overlap": args.overlap, "batch_size": args.batch_size}
    if side == "whole":
        return predict(model, image, return_probs=True)[1]
    if side.startswith("ours"):
        return predict_tiled(model, image, blend="gaussian", return_probs=True, channels_last=side == "ours", **tiled)[1]
    return monai_tiled(model, image, channels_last=side.endswith("channels-last"), **tiled)


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    model = load_checkpoint(args.checkpoint)["model"].eval()
    image = torch.from_numpy(np.load(args.image)).permute(2, 0, 1).contiguous()  # (3, H, W)
    run_side(args.worker, model, image[:, :512, :512], args)  # warm-up
    baseline, _ = memory_mb()
    began = time.perf_counter()
    probs = run_side(args.worker, model, image, args)
    seconds = time.perf_counter() - began
    _, peak = memory_mb()
    np.save(args.out, probs.numpy())
    print(json.dumps({"baseline_mb": baseline, "peak_mb": peak, "seconds": seconds}))


def spawn(side: str, args: argparse.Namespace, checkpoint: Path, image: Path, out: Path) -> dict:
    command = [
        sys.executable, __file__, "--worker", side, "--checkpoint", str(checkpoint), "--image", str(image),
        "--out", str(out), "--tile", str(args.tile), "--overlap", str(args.overlap),
        "--batch-size", str(args.batch_size), "--threads", str(args.threads),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"worker {side!r} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def miou(ids: np.ndarray, truth: np.ndarray, k: int) -> float:
    cm = ConfusionMatrix(k)
    cm.update(torch.from_numpy(ids.astype(np.int64))[None], torch.from_numpy(truth)[None])
    return cm.miou()


def measure_size(size: int, args: argparse.Namespace, checkpoint: Path, tmp: Path) -> dict:
    """Every side ``args.repeats`` times (interleaved) on one synthetic ``size`` x ``size`` image."""
    shapes = (size // 8) ** 2 // 64  # about as dense as the 64x64 training images
    images, masks = synthetic_segmentation(1, size, seed=123, num_shapes=(shapes, shapes))
    np.save(tmp / "image.npy", images[0])
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    probs: dict[str, np.ndarray] = {}
    for round_ in range(args.repeats):
        for side in SIDES if round_ % 2 == 0 else reversed(SIDES):
            out = tmp / f"probs-{len(probs)}.npy"
            runs[side].append(spawn(side, args, checkpoint, tmp / "image.npy", out))
            probs.setdefault(side, np.load(out))
    k = probs["whole"].shape[0]
    ids = {side: p.argmax(axis=0) for side, p in probs.items()}
    result = {}
    for side in SIDES:
        seconds = [r["seconds"] for r in runs[side]]
        partner = {"ours": "MONAI, channels-last", "ours, NCHW": "MONAI"}.get(side)
        result[side] = {
            "seconds": seconds,
            "baseline_mb": statistics.median(r["baseline_mb"] for r in runs[side]),
            "peak_mb": statistics.median(r["peak_mb"] for r in runs[side]),
            "speed_vs_monai": None if partner is None else statistics.median(
                t / o for t, o in zip((r["seconds"] for r in runs[partner]), seconds)
            ),
            "equal_to_monai": float((ids[side] == ids["MONAI"]).mean()),
            "max_prob_diff_vs_monai": float(np.abs(probs[side] - probs["MONAI"]).max()),
            "equal_to_whole": float((ids[side] == ids["whole"]).mean()),
            "miou": miou(ids[side], masks[0], k),
        }
    return result


def rows_for(size: int, result: dict) -> list[list[object]]:
    rows = []
    for side, r in result.items():
        speed = "-" if r["speed_vs_monai"] is None else ratio_cell(r["speed_vs_monai"])
        rows.append([
            f"{size}x{size}", side, seconds_cell(r["seconds"], 1), speed, f"{r['baseline_mb']:.0f}", f"{r['peak_mb']:.0f}",
            f"{r['peak_mb'] - r['baseline_mb']:.0f}",
            "-" if side == "MONAI" else f"{100 * r['equal_to_monai']:.3f} % / {r['max_prob_diff_vs_monai']:.1e}",
            "-" if side == "whole" else f"{100 * r['equal_to_whole']:.3f} %", f"{r['miou']:.4f}",
        ])
    return rows


HEADER = [
    "image", "inference", "seconds", "speed vs MONAI (same layout)", "RSS before (MiB)", "peak RSS (MiB)",
    "peak - before (MiB)", "vs MONAI: ids equal / max prob diff", "ids equal to whole", "mIoU vs truth",
]


def train_model(tmp: Path, quick: bool) -> Path:
    """A U-Net trained by ``python -m unet_helpers train`` on the synthetic shapes; its best.pt."""
    extra = ["--epochs", "1", "--synthetic-train", "32", "--synthetic-val", "8"] if quick else ["--epochs", "3"]
    if cli_main(["train", "--out", str(tmp / "run"), "--quiet", *extra]) != 0:
        raise RuntimeError("training the model for the tiled benchmark failed")
    return tmp / "run" / "best.pt"


def run_part(args: argparse.Namespace) -> dict:
    """Train (unless ``args.checkpoint``), then measure every size; Markdown and raw results."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        checkpoint = Path(args.checkpoint) if args.checkpoint else train_model(tmp, args.quick)
        for size in args.sizes:
            results[size] = measure_size(size, args, checkpoint, tmp)
    rows = [row for size in args.sizes for row in rows_for(size, results[size])]
    source = "--checkpoint" if args.checkpoint else ("train --epochs 1 (quick)" if args.quick else "train --epochs 3 (defaults)")
    text = (
        f"U-Net from `{source}`; synthetic RGB images; tiles {args.tile}x{args.tile}, overlap {args.overlap}, "
        f"Gaussian blending, {args.batch_size} tiles per batch; {args.threads} threads; seconds: median "
        f"(fastest-slowest) of {args.repeats} interleaved rounds, each side in a fresh process. Speed = the "
        "like-for-like MONAI side's time / ours (> 1: ours faster). Memory is the process's resident set "
        "(before = after loading the model and the image and a warm-up).\n\n" + markdown_table(HEADER, rows)
    )
    return {"markdown": text, "results": results}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="a train checkpoint (default: train one for 3 epochs)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1024, 2048])
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1-epoch model, one 512x512 image, 1 round")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick and not args.worker:
        args.sizes, args.repeats, args.tile = [512], 1, 128
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        return worker(args)
    torch.set_num_threads(args.threads)
    print(machine_line())
    print(run_part(args)["markdown"])


if __name__ == "__main__":
    main()
