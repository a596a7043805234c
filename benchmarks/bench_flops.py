"""Training FLOP/s as a share of this machine's sgemm rate, and where channels-last training is faster.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one forward + backward of a
training step (the convolutions and their gradients; pooling, BatchNorm, ReLU, up-sampling and Adam
add no counted FLOPs). Time is the whole training step of ``bench_throughput.training_step``
(forward, cross-entropy, backward, Adam), so FLOP/s = counted FLOPs / seconds per step: the
non-convolution work is paid in the time but not counted, as it should be for "how much of the
machine does training use". The sgemm rate is ``torch.mm`` of two ``N x N`` float32 matrices
(``2 N**3`` FLOPs), timed as one more candidate in the same interleaved rounds, so that a busy
spell of the shared machine lowers both; each share is the median over rounds of the paired
per-round ratio. ``torch.mm`` runs MKL's sgemm, the convolutions run oneDNN's kernels; so the same
product is also timed as a 1x1 convolution (oneDNN), and the shares are given against both.

Part ``share``: base 16, depth 4, 3 -> 3 classes, 128x128, batch 8: our ``UNet`` with bilinear
up-sampling (its default) and with ``up_mode="transpose"``, and MONAI's ``BasicUNet`` (deconv, the
like-for-like peer of ours transpose; ``reference.monai_basic_unet``), each in the default (NCHW)
layout and in channels-last (weights and batch converted, as ``fit(channels_last=True)`` does).

Part ``layouts``: the channels-last / default ratio of step times (> 1: channels-last faster) for
our U-Net at batch 1, 2, 8 and 64, 128, 256 pixels, both up-sampling modes: the evidence for making
channels-last the training default everywhere, or only where it wins.

    python benchmarks/bench_flops.py                      # both parts, 2 threads (about 10 min)
    python benchmarks/bench_flops.py --parts share --quick
"""
from __future__ import annotations

import argparse
import statistics
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from _common import calls_for, interleaved, machine_line, markdown_table, paired_ratio, rate_cell
from bench_throughput import LAYOUTS, training_step

from unet_helpers.realdata.references import monai_basic_unet
from unet_helpers.unet import UNet

IN_CHANNELS, CLASSES, BASE = 3, 3, 16
MODELS: dict[str, Callable[[], nn.Module]] = {
    "ours bilinear (default)": lambda: UNet(IN_CHANNELS, CLASSES, base=BASE),
    "ours transpose": lambda: UNet(IN_CHANNELS, CLASSES, base=BASE, up_mode="transpose"),
    "MONAI BasicUNet deconv": lambda: monai_basic_unet(IN_CHANNELS, CLASSES, base=BASE, up_mode="transpose"),
}
UP_MODES = ("bilinear", "transpose")
SGEMM, ONEDNN = "sgemm", "oneDNN 1x1 convolution GEMM"


def batch(size: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded batch: images ``(N, 3, S, S)`` and class ids ``(N, S, S)``."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(batch_size, IN_CHANNELS, size, size, generator=g), torch.randint(0, CLASSES, (batch_size, size, size), generator=g)


def training_flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOPs of one forward + backward of ``model`` on ``(x, y)``, as ``FlopCounterMode`` counts them."""
    model.train()
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def sgemm(n: int) -> tuple[Callable[[], None], int]:
    """A ``torch.mm`` of two ``n x n`` float32 matrices as a function to time, and its FLOPs."""
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    out = torch.empty(n, n)
    return (lambda: torch.mm(a, b, out=out)), 2 * n**3


def onednn_gemm(n: int) -> tuple[Callable[[], None], int]:
    """The same ``n x n x n`` product as a 1x1 convolution (oneDNN's kernels, which the U-Nets' convolutions
    use; ``torch.mm`` goes to MKL), as a function to time, and its FLOPs."""
    g = torch.Generator().manual_seed(2)
    conv = nn.Conv2d(n, n, kernel_size=1, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(1, n, 32, n // 32, generator=g).contiguous(memory_format=torch.channels_last)  # n pixels

    def step() -> None:
        with torch.no_grad():
            conv(x)

    return step, 2 * n**3


def timed(steps: dict[str, Callable[[], None]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of every step, interleaved, after a warm-up round that also sizes the samples."""
    probe = interleaved(steps, repeats=1, warmup=1)
    calls = calls_for(min(min(s) for s in probe.values()))
    return interleaved(steps, repeats=repeats, warmup=0, calls=calls)


def run_share(size: int, batch_size: int, gemm_n: int, repeats: int) -> dict:
    """Training FLOP/s of every model and layout as a share of the sgemm rate measured beside them."""
    x, y = batch(size, batch_size)
    steps, flops = {}, {}
    for name, build in MODELS.items():
        torch.manual_seed(0)
        flops[name] = training_flops(build(), x, y)
        for layout, memory_format in LAYOUTS.items():
            torch.manual_seed(0)
            model = build().to(memory_format=memory_format)
            steps[f"{name}|{layout}"] = training_step(model, x.contiguous(memory_format=memory_format), y)
    steps[SGEMM], gemm_flops = sgemm(gemm_n)
    steps[ONEDNN], _ = onednn_gemm(gemm_n)
    seconds = timed(steps, repeats)
    gemm_rates = [gemm_flops / s for s in seconds[SGEMM]]
    onednn_rates = [gemm_flops / s for s in seconds[ONEDNN]]
    rows, shares, onednn_shares = [], {}, {}
    for name in MODELS:
        for layout in LAYOUTS:
            key = f"{name}|{layout}"
            per_round = [flops[name] / s / rate for s, rate in zip(seconds[key], gemm_rates)]  # paired, per round
            shares[key] = statistics.median(per_round)
            onednn_shares[key] = statistics.median(flops[name] / s / rate for s, rate in zip(seconds[key], onednn_rates))
            gain = paired_ratio(seconds[f"{name}|default"], seconds[key]) if layout == "channels_last" else None
            rows.append([
                name, layout, f"{flops[name] / 1e9:.1f}", rate_cell(seconds[key], batch_size),
                rate_cell(seconds[key], flops[name] / 1e9, 1), f"**{100 * shares[key]:.0f} %** ({100 * min(per_round):.0f}-{100 * max(per_round):.0f})",
                f"{100 * onednn_shares[key]:.0f} %", "-" if gain is None else f"{gain:.2f}",
            ])
    onednn_vs_mm = statistics.median(m / o for m, o in zip(seconds[SGEMM], seconds[ONEDNN]))
    rows.append([f"sgemm {gemm_n}x{gemm_n} (torch.mm, MKL)", "-", f"{gemm_flops / 1e9:.1f}", "-",
                 rate_cell(seconds[SGEMM], gemm_flops / 1e9, 1), "100 %", f"{100 / onednn_vs_mm:.0f} %", "-"])
    rows.append([f"the same product as a 1x1 convolution (oneDNN)", "-", f"{gemm_flops / 1e9:.1f}", "-",
                 rate_cell(seconds[ONEDNN], gemm_flops / 1e9, 1), f"{100 * onednn_vs_mm:.0f} %", "100 %", "-"])
    text = (
        f"Training step (forward, cross-entropy, backward, Adam) at {size}x{size}, batch {batch_size}, base {BASE}, depth 4, "
        f"{IN_CHANNELS} -> {CLASSES} classes, {torch.get_num_threads()} threads. GFLOP per step: `FlopCounterMode` on one "
        "forward + backward (convolutions and their gradients). GFLOP/s: counted FLOPs / step time, median over "
        f"{repeats} interleaved rounds (slowest-fastest); share of sgemm: median of the per-round ratio to the "
        "sgemm rate (`torch.mm`, which PyTorch hands to MKL) measured in the same round (range over rounds); the next "
        "column is the same against the same product run by oneDNN as a 1x1 convolution (the library the U-Nets' "
        "convolutions use). Last column: step time default / channels-last (> 1: channels-last faster).\n\n"
        + markdown_table(["model", "layout", "GFLOP per step", "images/s", "GFLOP/s", "share of sgemm",
                          "share of oneDNN GEMM", "channels-last / default"], rows)
    )
    return {"markdown": text, "seconds": seconds, "flops": flops, "sgemm_flops": gemm_flops, "shares": shares,
            "onednn_shares": onednn_shares}


def run_layouts(sizes: list[int], batch_sizes: list[int], up_modes: list[str], repeats: int) -> dict:
    """Channels-last / default step-time ratio of our U-Net at every size, batch and up-sampling mode."""
    ratios, raw, rows = {}, {}, []
    for up_mode in up_modes:
        for size in sizes:
            for batch_size in batch_sizes:
                x, y = batch(size, batch_size)
                steps = {}
                for layout, memory_format in LAYOUTS.items():
                    torch.manual_seed(0)
                    model = UNet(IN_CHANNELS, CLASSES, base=BASE, up_mode=up_mode).to(memory_format=memory_format)
                    steps[layout] = training_step(model, x.contiguous(memory_format=memory_format), y)
                seconds = timed(steps, repeats)
                key = f"{up_mode}|{size}|{batch_size}"
                raw[key] = seconds
                ratios[key] = paired_ratio(seconds["default"], seconds["channels_last"])
                per_round = sorted(d / c for d, c in zip(seconds["default"], seconds["channels_last"]))
                cell = f"{ratios[key]:.2f} ({per_round[0]:.2f}-{per_round[-1]:.2f})"
                rows.append([
                    up_mode, f"{size}x{size}", batch_size, rate_cell(seconds["default"], batch_size),
                    rate_cell(seconds["channels_last"], batch_size), f"**{cell}**" if ratios[key] >= 1 else cell,
                ])
    text = (
        f"Training step of our UNet (base {BASE}, depth 4, {IN_CHANNELS} -> {CLASSES} classes), {torch.get_num_threads()} threads, "
        f"in the default layout and in channels-last; images per second, median over {repeats} interleaved rounds "
        "(slowest-fastest); ratio: median of per-round default / channels-last step times (> 1, bold: channels-last "
        "faster; range over rounds).\n\n"
        + markdown_table(["up_mode", "size", "batch", "default (img/s)", "channels-last (img/s)", "channels-last speed-up"], rows)
    )
    return {"markdown": text, "seconds": raw, "ratios": ratios}


def run_part(parts: list[str], repeats: int, gemm_n: int = 2048, sizes: list[int] | None = None,
             batch_sizes: list[int] | None = None, up_modes: list[str] | None = None) -> dict:
    """Both parts as one results dict (``markdown`` holds both tables)."""
    out, text = {}, []
    if "share" in parts:
        out["share"] = run_share(128, 8, gemm_n, repeats)
        text.append("### Share of the sgemm rate\n\n" + out["share"]["markdown"])
    if "layouts" in parts:
        out["layouts"] = run_layouts(sizes or [64, 128, 256], batch_sizes or [1, 2, 8], up_modes or list(UP_MODES), repeats)
        text.append("### Channels-last against the default layout, by size and batch\n\n" + out["layouts"]["markdown"])
    return {"markdown": "\n\n".join(text), **out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=["share", "layouts"], default=["share", "layouts"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[64, 128, 256])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 2, 8])
    parser.add_argument("--up-modes", nargs="+", choices=UP_MODES, default=list(UP_MODES))
    parser.add_argument("--gemm", type=int, default=2048, help="N of the N x N sgemm (default 2048)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 round at 64x64, batch 2 (a smoke run)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_line())
    if args.quick:
        args.sizes, args.batch_sizes, args.up_modes, args.repeats = [64], [2], ["bilinear"], 1
    print(run_part(args.parts, args.repeats, args.gemm, args.sizes, args.batch_sizes, args.up_modes)["markdown"])


if __name__ == "__main__":
    main()
