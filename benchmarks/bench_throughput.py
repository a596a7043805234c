"""Training and inference throughput: our ``UNet`` against MONAI's ``BasicUNet`` built the same way.

MONAI's model comes from ``reference.monai_basic_unet``: depth 4, widths ``base * (1, 2, 4, 8, 16)``,
BatchNorm, ReLU. The like-for-like pair is our ``up_mode="transpose"`` against MONAI's ``deconv``
up-sampling (same layers; MONAI's convolutions also have a bias). Our default, bilinear
up-sampling, is reported beside them; it is not the same network as MONAI's ``nontrainable``
mode (which halves the channels with a 1x1 convolution before up-sampling), so its ratio to
MONAI's deconv model compares two different designs.

Each model runs in two memory layouts: the default (NCHW) and channels-last (the model's weights and
the input converted with ``memory_format=torch.channels_last``). A training step is forward,
cross-entropy, backward and an Adam step on a batch of 8 RGB images with 3 classes; inference is a
forward pass under ``torch.inference_mode()`` in eval mode; inference also times our transpose
model after ``inference.fuse_batchnorm`` (BatchNorm folded into the convolutions). All candidates of one size are timed
interleaved (``_common.interleaved``).

    python benchmarks/bench_throughput.py                     # 64, 128, 256; training and inference
    python benchmarks/bench_throughput.py --quick --sizes 64
"""
from __future__ import annotations

import argparse
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from _common import calls_for, interleaved, machine_line, markdown_table, paired_ratio, rate_cell, ratio_cell

from unet_helpers.inference import fuse_batchnorm
from unet_helpers.realdata.references import monai_basic_unet
from unet_helpers.unet import UNet

BATCH, IN_CHANNELS, CLASSES = 8, 3, 3
LAYOUTS = {"default": torch.contiguous_format, "channels_last": torch.channels_last}
MODELS: dict[str, Callable[[int], nn.Module]] = {
    "ours transpose": lambda base: UNet(IN_CHANNELS, CLASSES, base=base, up_mode="transpose"),
    "MONAI deconv": lambda base: monai_basic_unet(IN_CHANNELS, CLASSES, base=base, up_mode="transpose"),
    "ours bilinear": lambda base: UNet(IN_CHANNELS, CLASSES, base=base, up_mode="bilinear"),
}
FOLDED = "ours transpose, BatchNorm folded"  # inference only: fuse_batchnorm(UNet(up_mode="transpose"))


def training_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One forward + backward + Adam step of ``model`` on ``(x, y)``, as a function to time."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


def inference_step(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One eval-mode forward pass under ``torch.inference_mode()``, as a function to time."""
    model.eval()

    def step() -> None:
        with torch.inference_mode():
            model(x)

    return step


def candidates(mode: str, size: int, base: int) -> dict[str, Callable[[], None]]:
    """Every (model, layout) of one size; each model starts from the same seed."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, IN_CHANNELS, size, size, generator=g)
    y = torch.randint(0, CLASSES, (BATCH, size, size), generator=g)
    builders = dict(MODELS)
    if mode == "infer":
        builders[FOLDED] = lambda base: fuse_batchnorm(MODELS["ours transpose"](base))
    out = {}
    for layout, memory_format in LAYOUTS.items():
        for name, build in builders.items():
            torch.manual_seed(0)
            model = build(base).to(memory_format=memory_format)
            xl = x.contiguous(memory_format=memory_format)
            out[f"{name}|{layout}"] = training_step(model, xl, y) if mode == "train" else inference_step(model, xl)
    return out


def measure(mode: str, size: int, base: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per step of every candidate at one size, interleaved."""
    steps = candidates(mode, size, base)
    probe = interleaved(steps, repeats=1, warmup=1)  # warm-up, and how long one step takes
    calls = calls_for(min(min(s) for s in probe.values()))
    return interleaved(steps, repeats=repeats, warmup=0, calls=calls)


def rows_for(mode: str, size: int, seconds: dict[str, list[float]]) -> tuple[list[list[object]], dict]:
    rows, ratios = [], {}
    for layout in LAYOUTS:
        ours, monai, bilinear = (seconds[f"{name}|{layout}"] for name in MODELS)
        ratios[layout] = {"transpose": paired_ratio(monai, ours), "bilinear": paired_ratio(monai, bilinear)}
        gain = paired_ratio(seconds["ours transpose|default"], ours) if layout == "channels_last" else None
        row = [
            f"{size}x{size}", layout, rate_cell(ours, BATCH), rate_cell(monai, BATCH), ratio_cell(ratios[layout]["transpose"]),
            rate_cell(bilinear, BATCH), f"{ratios[layout]['bilinear']:.2f}",
        ]
        if mode == "infer":
            folded = seconds[f"{FOLDED}|{layout}"]
            ratios[layout]["folded"] = paired_ratio(monai, folded)
            row += [rate_cell(folded, BATCH), ratio_cell(ratios[layout]["folded"])]
        rows.append(row + ["-" if gain is None else f"{gain:.2f}"])
    return rows, ratios


def header(mode: str) -> list[str]:
    folded = ["ours transpose, BatchNorm folded (img/s)", "folded / MONAI"] if mode == "infer" else []
    return [
        "size", "layout", "ours transpose (img/s)", "MONAI deconv (img/s)", "ours / MONAI", "ours bilinear (img/s)",
        "bilinear / MONAI deconv", *folded, "ours: channels-last / default",
    ]


def run_part(mode: str, sizes: list[int], base: int, repeats: int) -> dict:
    """Measure ``mode`` ("train" or "infer") at every size; Markdown, raw seconds and ratios."""
    rows, raw, ratios = [], {}, {}
    for size in sizes:
        seconds = measure(mode, size, base, repeats)
        size_rows, ratios[size] = rows_for(mode, size, seconds)
        rows += size_rows
        raw[size] = seconds
    what = "training step (forward, cross-entropy, backward, Adam)" if mode == "train" else "inference (eval, inference_mode)"
    text = (
        f"Batch {BATCH}, {IN_CHANNELS} input channels, {CLASSES} classes, base {base} (widths {base}..{16 * base}), depth 4; "
        f"{what}. Images per second: median over {repeats} interleaved rounds (slowest-fastest). Ratios are "
        "medians of paired per-round time ratios, MONAI's time / ours: > 1 means ours is faster.\n\n"
        + markdown_table(header(mode), rows)
    )
    return {"markdown": text, "seconds": raw, "ratios": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", nargs="+", choices=["train", "infer"], default=["train", "infer"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[64, 128, 256])
    parser.add_argument("--base", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 round (a smoke run)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_line())
    for mode in args.modes:
        print(f"\n## {mode}\n")
        print(run_part(mode, args.sizes, args.base, 1 if args.quick else args.repeats)["markdown"])


if __name__ == "__main__":
    main()
