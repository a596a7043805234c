"""Run the benchmarks against the libraries people would pick instead, and write BENCHMARKS.md.

Parts (all but ``course`` run by default):

- ``train``, ``infer``: throughput of our ``UNet`` and MONAI's ``BasicUNet`` (``bench_throughput.py``)
- ``metrics``: ``ConfusionMatrix`` vs torchmetrics and a naive loop (``bench_metrics.py``)
- ``tiled``: ``predict_tiled`` vs MONAI's sliding window vs whole image (``bench_tiled_memory.py``)
- ``accuracy``: seconds for ``python -m unet_helpers train`` to reach mIoU 0.9 / 0.95 (``bench_train_synthetic.py``)
- ``flops``: training FLOP/s as a share of the sgemm rate; channels-last vs default by size and batch (``bench_flops.py``)
- ``onnx``: ONNX Runtime vs PyTorch inference of one exported U-Net, 1 and 2 threads (``bench_onnx.py``)
- ``course`` (only with ``--course``): every notebook under nbval, and ``make test`` (``bench_course.py``)

Each part writes ``benchmarks/results/PART.md`` and ``PART.json`` (with the machine, the date and
the load average before and after); BENCHMARKS.md is then rebuilt from every results file there,
so a part run alone (``--parts tiled``, ``--course``) updates its section and keeps the others.

    python benchmarks/run_all.py                    # everything but the course (about 10 min on 2 cores)
    python benchmarks/run_all.py --course --parts   # only the course part
    python benchmarks/run_all.py --quick            # a smoke run of every part; writes nothing unless --out
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import torch

from _common import ROOT, load_average, machine_info, paired_ratio

import bench_course
import bench_flops
import bench_metrics
import bench_onnx
import bench_throughput
import bench_tiled_memory
import bench_train_synthetic

PARTS = ("train", "infer", "metrics", "tiled", "accuracy", "flops", "onnx", "course")
TITLES = {
    "train": "Training throughput: our UNet vs MONAI BasicUNet",
    "infer": "Inference throughput: our UNet vs MONAI BasicUNet",
    "metrics": "Metric accumulation: ConfusionMatrix vs torchmetrics MulticlassJaccardIndex",
    "tiled": "Tiled inference: predict_tiled vs MONAI sliding_window_inference",
    "accuracy": "Time to accuracy: the train command on the synthetic shapes",
    "flops": "Training FLOP/s as a share of sgemm, and channels-last by size and batch",
    "onnx": "ONNX Runtime vs PyTorch inference of an exported U-Net",
    "course": "The course: every notebook under nbval, and make test",
}
SHARED_LOAD = 2.5  # above this load average (on 2 cores) other jobs were competing for the CPU


def goal(text: str, met: bool | None, detail: str) -> dict:
    return {"goal": text, "met": met, "detail": detail}


def part_throughput(mode: str, args: argparse.Namespace) -> dict:
    sizes = [64] if args.quick else [64, 128, 256]
    result = bench_throughput.run_part(mode, sizes, base=16, repeats=args.repeats or (1 if args.quick else 5))
    goals = []
    for layout in bench_throughput.LAYOUTS:
        worst_size = min(sizes, key=lambda s: result["ratios"][s][layout]["transpose"])
        worst = result["ratios"][worst_size][layout]["transpose"]
        goals.append(goal(
            f"{'training' if mode == 'train' else 'inference'} throughput >= MONAI at every size ({layout} layout, like-for-like)",
            worst >= 1, f"lowest ours / MONAI: {worst:.2f} at {worst_size}x{worst_size}",
        ))
    return {**result, "goals": goals}


def part_metrics(args: argparse.Namespace) -> dict:
    repeats = args.repeats or (1 if args.quick else 7)
    result = bench_metrics.run_part(1 if args.quick else 4, repeats, size=64 if args.quick else 256)
    details, met = [], True
    for kind, seconds in result["seconds"].items():
        default = paired_ratio(seconds["torchmetrics"], seconds["ours"])
        unchecked = paired_ratio(seconds["torchmetrics, validate_args=False"], seconds["ours"])
        met &= default >= 1
        details.append(f"{kind}: {default:.2f}x torchmetrics' rate ({unchecked:.2f}x with validate_args=False)")
    return {**result, "goals": [goal("metric accumulation at least as fast as torchmetrics (validate_args as shipped)", met, "; ".join(details))]}


def part_tiled(args: argparse.Namespace) -> dict:
    tiled_args = bench_tiled_memory.parse_args(["--threads", str(args.threads)] + (["--quick"] if args.quick else [])
                                               + (["--repeats", str(args.repeats)] if args.repeats else []))
    result = bench_tiled_memory.run_part(tiled_args)
    return {**result, "goals": tiled_goals(result["results"])}


def tiled_goals(results: dict) -> list[dict]:
    """The two goals of tiled inference, judged from the raw results of ``bench_tiled_memory``.

    Memory: the goal is judged on what inference adds to the process (peak RSS minus the RSS after
    loading the model and the image), since the 300-500 MiB of Python, PyTorch, model and image are
    paid by every method; the ratio of whole process peaks is reported beside it.
    """
    speed_details, speed_met = [], True
    for size, sides in results.items():
        shipped = paired_ratio(sides["MONAI"]["seconds"], sides["ours"]["seconds"])
        pairs = [sides["ours"]["speed_vs_monai"], sides["ours, NCHW"]["speed_vs_monai"]]
        speed_met &= min(pairs) >= 1 and shipped >= 1
        speed_details.append(
            f"{size}: as shipped {shipped:.2f}, like-for-like {pairs[1]:.2f} (NCHW) / {pairs[0]:.2f} (channels-last)"
        )
    largest = results[max(results, key=int)]
    whole, ours = largest["whole"], largest["ours"]
    total = ours["peak_mb"] / whole["peak_mb"]
    extra = (ours["peak_mb"] - ours["baseline_mb"]) / (whole["peak_mb"] - whole["baseline_mb"])
    return [
        goal("tiled inference no slower than MONAI's at equal settings (MONAI time / ours >= 1)", speed_met, "; ".join(speed_details)),
        goal(f"tiled inference at {max(results, key=int)}px needs at most 1/4 of the memory of whole-image inference "
             "(peak RSS above the loaded model and image)", extra <= 0.25,
             f"{extra:.2f} of whole-image inference ({ours['peak_mb'] - ours['baseline_mb']:.0f} vs "
             f"{whole['peak_mb'] - whole['baseline_mb']:.0f} MiB); whole-process peaks: {total:.2f} "
             f"({ours['peak_mb']:.0f} vs {whole['peak_mb']:.0f} MiB)"),
    ]


def part_accuracy(args: argparse.Namespace) -> dict:
    seeds = [0] if args.quick else args.seeds
    result = bench_train_synthetic.time_to_accuracy(seeds, quick=args.quick)
    hits = [run["0.9"]["seconds"] if run["0.9"] else float("inf") for run in result["runs"]]
    worst = max(hits)
    met = None if args.quick else worst < 60
    detail = "quick run: 1 epoch, not comparable" if args.quick else f"slowest seed: {worst:.0f} s ({args.threads} threads)"
    return {"markdown": bench_train_synthetic.accuracy_markdown(result, args.threads), "results": result,
            "goals": [goal("synthetic mIoU 0.9 in under a minute on 2 cores", met, detail)]}


def part_flops(args: argparse.Namespace) -> dict:
    repeats = args.repeats or (1 if args.quick else 5)
    sizes, batches, modes = ([64], [2], ["bilinear"]) if args.quick else ([64, 128, 256], [1, 2, 8], list(bench_flops.UP_MODES))
    result = bench_flops.run_part(["share", "layouts"], repeats, sizes=sizes, batch_sizes=batches, up_modes=modes)
    return {**result, "goals": flops_goals(result["layouts"]["ratios"])}


def flops_goals(ratios: dict[str, float]) -> list[dict]:
    """The layout goal of the flops part, from its ``{"up_mode|size|batch": default / channels-last}`` ratios."""
    losers = []
    for key, ratio in ratios.items():
        up_mode, size, batch = key.split("|")
        if ratio < 1:
            losers.append(f"{up_mode} {size}x{size} batch {batch} ({ratio:.3f})")
    return [goal(
        "channels-last training faster than the default layout at every measured size, batch and up_mode "
        "(needed to make it fit's default unconditionally)", not losers,
        f"slower at {len(losers)} of {len(ratios)}: {', '.join(losers)}" if losers else f"faster at all {len(ratios)} measured",
    )]


def part_onnx(args: argparse.Namespace) -> dict:
    if args.quick:
        result = bench_onnx.run_part(1, inputs=((128, 2),), threads=(1,))
    else:
        result = bench_onnx.run_part(args.repeats or 5)
    worst = max(c["max_abs_diff"] / c["tolerance"] for c in result["agreement"].values())
    flips = sum(c["ids_differing_off_ties"] for c in result["agreement"].values())
    return {**result, "goals": [goal(
        "exported ONNX model agrees with PyTorch (logits within tolerance, identical class ids off near-ties)",
        worst <= 1 and flips == 0, f"largest difference {worst:.3f} of the tolerance, {flips} class ids differ",
    )]}


def part_course(args: argparse.Namespace) -> dict:
    if args.quick:
        return {"markdown": "Quick run: the course part needs a full `make test` session (or `--course-junit`).",
                "results": {}, "goals": []}
    result = bench_course.run_part(args.course_junit)
    return {**result, "goals": []}


RUNNERS = {
    "train": lambda args: part_throughput("train", args),
    "infer": lambda args: part_throughput("infer", args),
    "metrics": part_metrics,
    "tiled": part_tiled,
    "accuracy": part_accuracy,
    "flops": part_flops,
    "onnx": part_onnx,
    "course": part_course,
}


def run(part: str, args: argparse.Namespace, results_dir: Path) -> None:
    """Run one part and write ``PART.md`` and ``PART.json`` into ``results_dir``."""
    meta = {**machine_info(), "load_start": load_average(), "quick": args.quick,
            "command": "python benchmarks/run_all.py " + shlex.join(args.argv)}
    print(f"[{part}] started, load average {meta['load_start']:.1f}", file=sys.stderr, flush=True)
    result = RUNNERS[part](args)
    meta["load_end"] = load_average()
    load = f"load average {meta['load_start']:.1f} at start, {meta['load_end']:.1f} at end"
    shared = max(meta["load_start"], meta["load_end"]) > SHARED_LOAD
    header = (
        f"## {TITLES[part]}\n\nMeasured {meta['date']} with `{meta['command']}`: {meta['cpu']}, {meta['cores']} cores, "
        f"{meta['threads']} torch threads, torch {meta['torch']}, MONAI {meta['monai']}, torchmetrics {meta['torchmetrics']}; {load}."
    )
    if shared:
        header += f" **Shared machine**: the load was above {SHARED_LOAD}, other jobs competed for the cores, so times are noisy upper bounds."
    if args.quick:
        header += " **Quick smoke run: not a measurement.**"
    (results_dir / f"{part}.md").write_text(header + "\n\n" + result["markdown"] + "\n")
    data = {"meta": meta, "goals": result["goals"], "shared": shared,
            "data": {k: v for k, v in result.items() if k not in ("markdown", "goals")}}
    (results_dir / f"{part}.json").write_text(json.dumps(data, indent=1, default=str))
    print(f"[{part}] done, load average {meta['load_end']:.1f}", file=sys.stderr, flush=True)


def assemble(results_dir: Path, out: Path) -> None:
    """Rebuild BENCHMARKS.md from the results files in ``results_dir``."""
    parts = [p for p in PARTS if (results_dir / f"{p}.json").exists()]
    goal_rows, sections, loads = [], [], []
    for part in parts:
        data = json.loads((results_dir / f"{part}.json").read_text())
        loads.append((part, data["meta"]["load_start"], data["meta"]["load_end"], data["meta"]["date"]))
        for g in data["goals"]:
            met = {True: "met", False: "**not met**", None: "not measured"}[g["met"]]
            goal_rows.append(f"| {g['goal']} | {met} | {g['detail']} |")
        sections.append((results_dir / f"{part}.md").read_text())
    missing = [p for p in PARTS if p not in parts]
    notes = ROOT / "benchmarks" / "notes.md"
    text = [
        "# Benchmarks",
        "",
        "Our package against the libraries people would pick instead (MONAI, torchmetrics), on the CPU. "
        "Generated by `python benchmarks/run_all.py` (`make bench`); the course part only with `--course`. "
        "How each number is taken is in the docstring of the script named in each section; tests never time anything.",
        "",
        "Method: both sides run in one process (tiled inference: in fresh processes, one per run), after a warm-up, "
        "repeated and interleaved (A B, B A, ...) so that a busy spell of the machine hits both; the tables give the "
        "median and the range. Ratios are oriented so that **> 1 means ours is better** (their time / our time).",
        "",
        "Load average per part (2 cores; above 2.5 other jobs were competing and times are upper bounds):",
        "",
        "| part | measured | load at start | load at end |",
        "|---|---|---|---|",
        *[f"| {p} | {date} | {a:.1f} | {b:.1f} |" for p, a, b, date in loads],
        "",
        "## Goals",
        "",
        "| goal | status | measured |",
        "|---|---|---|",
        *goal_rows,
        "",
    ]
    if missing:
        text += [f"Not measured yet: {', '.join(missing)}.", ""]
    if notes.exists():
        text += [notes.read_text().strip(), ""]
    text += [section.strip() + "\n" for section in sections]
    for name, title, text_ in (
        ("slides", "Whole slides", "Peak memory and time of streaming inference (`predict_slide`) against in-memory "
         "`predict_tiled` and MONAI's `sliding_window_inference`, 2048x2048 to 32768x32768"),
        ("folder", "Folder throughput", "Images per second of `predict_files` (DataLoader reader processes) against the plain loop"),
    ):
        if (ROOT / "benchmarks" / "results" / f"{name}.md").exists():
            text += [f"## {title}", "", f"{text_}: see [benchmarks/results/{name}.md](benchmarks/results/{name}.md) "
                     f"(`bench_{name}.py`, hours on 2 cores; not part of `make bench`).", ""]
    real = ROOT / "benchmarks" / "results" / "real_data.md"
    if real.exists():
        text += ["## Real data", "", "Our U-Net and MONAI's trained on one budget on the two real datasets: "
                 "see [benchmarks/results/real_data.md](benchmarks/results/real_data.md) (`bench_real_data.py`).", ""]
    pretrained = ROOT / "benchmarks" / "results" / "pretrained.md"
    if pretrained.exists():
        text += ["Our U-Net, `EncoderUNet` (EfficientNet-Lite0, ImageNet-pretrained and from scratch) and smp's `Unet`, "
                 "`DeepLabV3Plus` and `Segformer` on one budget, with all and with few training images: see "
                 "[benchmarks/results/pretrained.md](benchmarks/results/pretrained.md) (`bench_pretrained.py`, run in the "
                 "smp environment: `make bench-pretrained`).", ""]
    out.write_text("\n".join(text))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="*", choices=PARTS[:-1], default=None,
                        help="parts to run (default: all but course; an empty list with --course runs only the course)")
    parser.add_argument("--course", action="store_true", help="also time every notebook and make test (long)")
    parser.add_argument("--course-junit", type=Path, help="for --course: read the JUnit XML report of an earlier "
                        "make test session (PYTEST_ADDOPTS=--junitxml=FILE) instead of running it")
    parser.add_argument("--quick", action="store_true", help="tiny repetitions, a smoke run; writes nothing unless --out")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, help="rounds per comparison (default: per part)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="seeds of the accuracy part")
    parser.add_argument("--results-dir", type=Path, help="default benchmarks/results (--quick: a temporary folder)")
    parser.add_argument("--out", type=Path, help="default BENCHMARKS.md (--quick: none)")
    args = parser.parse_args(argv)
    args.argv = argv
    args.selected = list(PARTS[:-1]) if args.parts is None else list(args.parts)
    if args.course:
        args.selected.append("course")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        results_dir = args.results_dir or (Path(tmp) if args.quick else ROOT / "benchmarks" / "results")
        results_dir.mkdir(parents=True, exist_ok=True)
        for part in args.selected:
            run(part, args, results_dir)
        out = args.out or (None if args.quick else ROOT / "BENCHMARKS.md")
        if out is not None:
            assemble(results_dir, out)
            print(f"wrote {out}", file=sys.stderr)
        else:
            for part in args.selected:
                print((results_dir / f"{part}.md").read_text())


if __name__ == "__main__":
    main()
