"""ONNX Runtime against PyTorch: inference of one exported U-Net, side by side.

The model is ``UNet(3, 3, base=16, depth=4)`` with bilinear up-sampling (the default), random
weights and BatchNorm statistics moved off their defaults, exported by ``export.export_onnx`` (the
export's seconds are reported). Candidates, all in eval mode on the same batch:

- "PyTorch channels-last": what ``predict`` / ``predict_tiled`` run (``inference_mode``, batch and
  weights in channels-last memory layout);
- "PyTorch NCHW": the same in the default layout;
- "PyTorch channels-last, BatchNorm folded": ``inference.fuse_batchnorm`` first (ONNX Runtime folds
  BatchNorm into the convolutions too, so this is the like-for-like PyTorch side);
- "ONNX Runtime": ``onnx_runtime.OnnxPredictor`` (CPU provider, its default session: all graph
  optimisations, intra-op threads = the thread count), timed through its ``OnnxModule``, so the
  tensor <-> NumPy hand-over is included.

Inputs: 256x256 batch 8 and 1024x1024 batch 1, each at 1 and 2 threads (``torch.set_num_threads``
and the session's ``intra_op_num_threads``). Per input and thread count the candidates are timed
interleaved after a warm-up (``_common.interleaved``). Before timing, ONNX Runtime's logits are
compared with PyTorch's (max abs difference, class ids), so the speeds are of the same computation.

    python benchmarks/bench_onnx.py                 # both inputs, 1 and 2 threads (a few minutes)
    python benchmarks/bench_onnx.py --quick
"""
from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from _common import calls_for, interleaved, machine_line, markdown_table, paired_ratio, rate_cell

from unet_helpers.deploy.export import export_onnx
from unet_helpers.inference import fuse_batchnorm
from unet_helpers.deploy.onnx_runtime import OnnxPredictor
from unet_helpers.unet import UNet

IN_CHANNELS, CLASSES, BASE = 3, 3, 16
INPUTS = ((256, 8), (1024, 1))  # (size, batch)
THREADS = (1, 2)
REFERENCE = "PyTorch channels-last"
ORT = "ONNX Runtime"
LOGIT_RTOL = 1e-4  # as tests/test_export.py, which explains it


def benchmark_model(seed: int = 0) -> UNet:
    """The U-Net of this benchmark, in eval mode, with BatchNorm statistics that are not the defaults."""
    torch.manual_seed(seed)
    model = UNet(IN_CHANNELS, CLASSES, base=BASE)
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    return model.eval()


def forward_step(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One forward pass under ``torch.inference_mode()``, as a function to time."""

    def step() -> None:
        with torch.inference_mode():
            model(x)

    return step


def agreement(model: nn.Module, onnx_module: nn.Module, x: torch.Tensor) -> dict:
    """Max abs logit difference, the tolerance, and class ids that differ off near-ties."""
    with torch.inference_mode():
        ours, theirs = model(x), onnx_module(x)
    tolerance = LOGIT_RTOL * float(ours.abs().max())
    top2 = ours.topk(2, dim=1).values  # (N, 2, H, W)
    clear = (top2[:, 0] - top2[:, 1]) > 2 * tolerance  # (N, H, W): pixels whose class cannot flip
    return {
        "max_abs_diff": float((theirs - ours).abs().max()), "tolerance": tolerance,
        "ids_differing_off_ties": int((theirs.argmax(1) != ours.argmax(1))[clear].sum()),
        "near_tie_pixels": int((~clear).sum()),
    }


def pytorch_sides(model: nn.Module) -> dict[str, tuple[nn.Module, torch.memory_format]]:
    """The three PyTorch sides: copies of ``model`` in the layout each runs in."""
    channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    folded = fuse_batchnorm(model).to(memory_format=torch.channels_last)
    return {
        REFERENCE: (channels_last, torch.channels_last),
        "PyTorch NCHW": (model, torch.contiguous_format),
        "PyTorch channels-last, BatchNorm folded": (folded, torch.channels_last),
    }


def run_part(repeats: int, inputs=INPUTS, threads=THREADS) -> dict:
    """Export once, then time every side at every input and thread count."""
    model = benchmark_model()
    sides = pytorch_sides(model)
    threads_before = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        path = export_onnx(model, Path(tmp) / "unet.onnx")
        export_seconds = time.perf_counter() - began
        size_mb = path.stat().st_size / 2**20
        predictors = {t: OnnxPredictor(path, threads=t) for t in threads}
        rows, raw, checks = [], {}, {}
        for size, batch in inputs:
            x = torch.randn(batch, IN_CHANNELS, size, size, generator=torch.Generator().manual_seed(size))
            checks[f"{size}x{size}, batch {batch}"] = agreement(model, predictors[threads[0]].module, x)
            for t in threads:
                torch.set_num_threads(t)
                steps = {name: forward_step(m, x.contiguous(memory_format=layout)) for name, (m, layout) in sides.items()}
                steps[ORT] = forward_step(predictors[t].module, x)
                probe = interleaved(steps, repeats=1, warmup=1)
                seconds = interleaved(steps, repeats=repeats, warmup=0, calls=calls_for(min(min(s) for s in probe.values())))
                raw[f"{size}|{batch}|{t}"] = seconds
                for name, values in seconds.items():
                    ratio = paired_ratio(seconds[REFERENCE], values)
                    rows.append([f"{size}x{size}, batch {batch}", t, name, rate_cell(values, batch, 2),
                                 "1.00" if name == REFERENCE else (f"**{ratio:.2f}**" if ratio >= 1 else f"{ratio:.2f}")])
    torch.set_num_threads(threads_before)
    check_text = "; ".join(
        f"{key}: max |ONNX - PyTorch| {c['max_abs_diff']:.1e} (tolerance {c['tolerance']:.1e}), "
        f"{c['ids_differing_off_ties']} class ids differ off near-ties ({c['near_tie_pixels']} near-tie pixels)"
        for key, c in checks.items()
    )
    text = (
        f"`UNet(3, 3, base={BASE}, depth=4)`, bilinear, eval mode, exported with `export_onnx` in {export_seconds:.1f} s "
        f"({size_mb:.1f} MiB file). Images per second, median over {repeats} interleaved rounds (slowest-fastest); "
        f"speed ratio: median of per-round {REFERENCE} time / this side's time (> 1, bold: faster than what `predict` runs). "
        f"Agreement, checked before timing: {check_text}.\n\n"
        + markdown_table(["input", "threads", "side", "images/s", f"speed vs {REFERENCE}"], rows)
    )
    return {"markdown": text, "seconds": raw, "agreement": checks, "export_seconds": export_seconds, "file_mb": size_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 round at 128x128 batch 2, 1 thread (a smoke run)")
    args = parser.parse_args()
    print(machine_line())
    if args.quick:
        print(run_part(1, inputs=((128, 2),), threads=(1,))["markdown"])
    else:
        print(run_part(args.repeats)["markdown"])


if __name__ == "__main__":
    main()
