"""Whole slides: peak memory and time of streaming inference against in-memory tiling and MONAI.

Three ways to predict one grayscale slide stored as an uncompressed BigTIFF, each end to end
(read the file, predict, write the class ids as a tiled, zlib-compressed TIFF):

- "streaming": ``unet_helpers.slide.predict_slide`` (reads bands of the memory-mapped file,
  writes a resumable partial result, then a pyramidal OME-TIFF);
- "in-memory": ``tifffile.imread`` of the whole image, ``predict_tiled``, ``tifffile.imwrite``;
- "MONAI": the same reading and writing around ``monai.inferers.sliding_window_inference``.

Settings are the same for all: tiles 256 x 256, overlap 0.25, Gaussian blending with
sigma = 0.125 * tile (MONAI: ``mode="gaussian", sigma_scale=0.125``), 4 tiles per batch, tiles in
channels-last layout (MONAI's predictor converts them, like ours), probabilities by softmax.
The model is a random-weight ``UNet(1, 2, base=8, depth=4)`` (seed 0; speed and memory do not
depend on the weights) so that 32768 x 32768 (29,241 tiles) finishes in about an hour.

Every measurement is one fresh Python process: peak RSS is the child's ``VmHWM`` (the whole
process: Python, PyTorch, model, image, buffers; not ``ru_maxrss``, see ``spawn``), "before" is its
resident set after loading the model and a warm-up on a 512 x 512 image; seconds are of the measured call
only, as wall time and as the process's CPU time (``time.process_time``; on a shared machine the
wall time also holds the time other jobs had the cores, the CPU time does not). Before a run, the peak is estimated from the side's largest run so far (its bytes per pixel
above the baseline, times the new size) or from a first guess; a run whose estimate exceeds
``--limit-gb`` (20 of this machine's 24 GiB, which has no swap) is skipped and the estimate
recorded, instead of letting the machine run out of memory; a watchdog polls every run's resident
set and stops it above the limit, should an estimate be wrong.

Slides are generated band by band into ``--slides-dir`` (default ``/tmp/unet_slides``; the
32768 x 32768 one is 1 GiB; never inside the repository) and reused by later runs.

    python benchmarks/bench_slides.py --threads 1       # 2048 (5 rounds), 32768, 8192, 16384: hours on 2 cores
    python benchmarks/bench_slides.py --quick           # smoke run: 512 and 1024, results to a temporary folder
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

from _common import ROOT, load_average, machine_info, markdown_table

from unet_helpers.inference import predict_tiled
from unet_helpers.slides.stream import predict_slide
from unet_helpers.unet import UNet

SIDES = ("streaming", "in-memory", "MONAI")
FIRST_GUESS_BYTES_PER_PIXEL = {"streaming": 4.0, "in-memory": 40.0, "MONAI": 40.0}  # before any run of a side
TILE, OVERLAP, BATCH = 256, 0.25, 4


def build_model() -> torch.nn.Module:
    """The benchmark's model: random weights, seed 0."""
    torch.manual_seed(0)
    return UNet(1, 2, base=8, depth=4).eval()


def synthetic_slide(path: Path, size: int) -> Path:
    """A ``size`` x ``size`` uint8 grayscale BigTIFF (uncompressed, contiguous), made band by band."""
    if path.exists():
        return path
    tmp = path.with_name(path.name + ".tmp")
    image = tifffile.memmap(tmp, shape=(size, size), dtype=np.uint8, bigtiff=True)
    rng = np.random.default_rng(size)
    x = np.arange(size, dtype=np.float32)[None, :]
    for top in range(0, size, 1024):
        y = np.arange(top, min(top + 1024, size), dtype=np.float32)[:, None]
        pattern = 128 + 60 * np.sin(x * 0.05 + 3 * np.sin(y * 0.01)) * np.cos(y * 0.04 + np.cos(x * 0.003))
        noise = rng.integers(0, 40, pattern.shape)
        image[top : top + y.shape[0]] = np.clip(pattern + noise - 20, 0, 255).astype(np.uint8)
    image.flush()
    del image
    os.replace(tmp, path)
    return path


def memory_mib(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (resident at most) of this process in MiB, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def monai_ids(model: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    """Class ids ``(H, W)`` by MONAI's sliding window at the benchmark's settings."""
    from monai.inferers import sliding_window_inference

    def predictor(tiles: torch.Tensor) -> torch.Tensor:
        return model(tiles.contiguous(memory_format=torch.channels_last)).softmax(dim=1)  # (B, K, h, w)

    with torch.inference_mode():
        probs = sliding_window_inference(
            image[None], roi_size=(TILE, TILE), sw_batch_size=BATCH, predictor=predictor, overlap=OVERLAP,
            mode="gaussian", sigma_scale=0.125,
        )
        return torch.as_tensor(probs)[0].max(dim=0).indices  # (H, W)


def run_side(side: str, model: torch.nn.Module, source: Path | np.ndarray, out: Path) -> None:
    """Read ``source``, predict it by ``side``, write the class ids to ``out``."""
    if side == "streaming":
        predict_slide(model, source, out, tile=TILE, overlap=OVERLAP, blend="gaussian", batch_size=BATCH, channels=1,
                      progress=False, overwrite=True)
        return
    array = tifffile.imread(source) if isinstance(source, Path) else source  # (H, W) uint8
    image = torch.from_numpy(array).float().div_(255)[None]  # (1, H, W), as scale_image(normalize="unit")
    del array
    if side == "in-memory":
        ids = predict_tiled(model, image, tile=TILE, overlap=OVERLAP, blend="gaussian", batch_size=BATCH)
    else:
        ids = monai_ids(model, image)
    del image
    tifffile.imwrite(out, ids.to(torch.uint8).numpy(), bigtiff=True, tile=(256, 256), compression="zlib")


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    model = build_model()
    with tempfile.TemporaryDirectory() as tmp:
        warm = np.random.default_rng(0).integers(0, 256, (512, 512), dtype=np.uint8)
        run_side(args.worker, model, warm, Path(tmp) / "warm.ome.tif")
    baseline = memory_mib("VmRSS")
    began, cpu = time.perf_counter(), time.process_time()
    run_side(args.worker, model, Path(args.image), Path(args.out))
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
    print(json.dumps({"baseline_mib": baseline, "peak_mib": memory_mib("VmHWM"), "seconds": seconds, "cpu_seconds": cpu_seconds}))


def spawn(side: str, image: Path, out: Path, args: argparse.Namespace) -> dict:
    """One measurement in a fresh process: its own numbers (peak = its ``VmHWM``).

    ``ru_maxrss`` from ``os.wait4`` is kept as ``ru_maxrss_mib`` but not used: on Linux it keeps the
    high-water mark of the process image before ``exec``, a copy of this parent, so it can never
    be lower than the parent's resident set when the child was forked.
    """
    command = [sys.executable, __file__, "--worker", side, "--image", str(image), "--out", str(out), "--threads", str(args.threads)]
    load_start = load_average()
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True)
        watched = Path(f"/proc/{child.pid}/status")
        stopped = None
        while True:  # a watchdog: a run that outgrows --limit-gb is stopped before the machine runs out
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            try:
                rss = next(int(line.split()[1]) for line in watched.read_text().splitlines() if line.startswith("VmRSS:")) / 2**20
            except (OSError, StopIteration):
                rss = 0.0
            if rss > args.limit_gb and stopped is None:
                stopped = f"stopped by the watchdog at {rss:.2f} GiB resident (> {args.limit_gb} GiB)"
                child.kill()
            time.sleep(0.5)
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        printed, errors = stdout.read(), stderr.read()
    record = {"ru_maxrss_mib": usage.ru_maxrss / 1024, "load_start": load_start, "load_end": load_average()}
    if stopped is not None:
        return {**record, "failed": stopped}
    if child.returncode != 0:
        reason = f"killed by signal {-child.returncode}" if child.returncode < 0 else f"exit code {child.returncode}"
        return {**record, "failed": f"{reason}: {errors.strip().splitlines()[-1] if errors.strip() else ''}"}
    return {**record, **json.loads(printed.strip().splitlines()[-1])}


def estimate_gib(side: str, size: int, runs: dict) -> float:
    """Peak RSS a run of ``side`` at ``size`` is expected to need, from its largest run so far.

    What a side adds above its baseline is scaled by the area for in-memory and MONAI, and by the
    width for streaming (its design; if that were wrong, ``spawn``'s watchdog stops the run).
    """
    done = [(s, r) for (sd, s), rs in runs.items() for r in rs if sd == side and "failed" not in r and "skipped" not in r]
    if not done:
        return (400 + FIRST_GUESS_BYTES_PER_PIXEL[side] * size * size / 2**20) / 1024
    largest, run = max(done, key=lambda item: item[0])
    scale = size / largest if side == "streaming" else (size / largest) ** 2  # streaming: width; the others: area
    return (run["baseline_mib"] + max(0.0, run["peak_mib"] - run["baseline_mib"]) * scale) / 1024


def agreement(a: Path, b: Path) -> float:
    """Fraction of pixels with the same class id in two output TIFFs."""
    x, y = tifffile.imread(a), tifffile.imread(b)
    return float((x == y).mean())


def measure(args: argparse.Namespace, results_file: Path | None) -> dict:
    """Every side at every size (the first size ``--repeats`` times, interleaved); saved as it goes.

    Order: the first size (the speed goal), the largest (the memory goal), then the others from
    small to large. A run skipped on an early estimate is re-estimated from the largest size its
    side ran once all are done (``estimate_final_gib``).
    """
    model_dir = Path(tempfile.mkdtemp(prefix="bench_slides_"))
    args.slides_dir.mkdir(parents=True, exist_ok=True)
    runs: dict[tuple[str, int], list[dict]] = {}
    agree: dict[int, dict[str, float]] = {}
    if args.continue_run and results_file is not None and results_file.exists():
        earlier = json.loads(results_file.read_text())
        for key, records in earlier["runs"].items():
            side, size = key.split("@")
            if int(size) in args.sizes and any("seconds" in r for r in records):
                runs[(side, int(size))] = records
        agree.update({int(size): value for size, value in earlier["agreement"].items() if int(size) in args.sizes})
        args.meta["continued_from"] = f"{earlier['meta']['date']} (`{earlier['meta']['command']}`)"
        print(f"[slides] --continue: keeping {len(runs)} measured side/size pairs from {results_file}", file=sys.stderr)
    report = {"runs": runs, "agreement": agree}
    order = [args.sizes[0], max(args.sizes)] + sorted(set(args.sizes) - {args.sizes[0], max(args.sizes)})
    for position, size in enumerate(dict.fromkeys(order)):
        image = synthetic_slide(args.slides_dir / f"slide_{size}.tif", size)
        rounds = args.repeats if position == 0 else 1
        if all((side, size) in runs for side in SIDES if estimate_gib(side, size, runs) <= args.limit_gb):
            continue  # measured in an earlier run (--continue)
        for round_ in range(rounds):
            for side in SIDES if round_ % 2 == 0 else reversed(SIDES):
                if (side, size) in runs and round_ == 0 and any("seconds" in r for r in runs[(side, size)]):
                    continue
                out = model_dir / f"{side}_{size}.tif"
                need = estimate_gib(side, size, runs)
                if need > args.limit_gb:
                    record = {"skipped": f"estimated peak {need:.2f} GiB > {args.limit_gb} GiB limit", "estimate_gib": need}
                else:
                    print(f"[slides] {side} {size}x{size} round {round_ + 1}, estimated {need:.1f} GiB ...", file=sys.stderr, flush=True)
                    record = {**spawn(side, image, out, args), "estimate_gib": need}
                    print(f"[slides]   -> {json.dumps(record)}", file=sys.stderr, flush=True)
                runs.setdefault((side, size), []).append(record)
                if results_file is not None:
                    save(results_file, args, report)
        outputs = {side: model_dir / f"{side}_{size}.tif" for side in SIDES}
        if outputs["streaming"].exists():
            agree[size] = {side: agreement(outputs["streaming"], outputs[side]) for side in SIDES[1:] if outputs[side].exists()}
        for path in outputs.values():
            path.unlink(missing_ok=True)
    for (side, size), records in runs.items():
        for record in records:
            if "skipped" in record:
                record["estimate_final_gib"] = estimate_gib(side, size, runs)
    return report


def save(results_file: Path, args: argparse.Namespace, report: dict) -> None:
    """Write ``slides.json`` and ``slides.md`` (called after every measurement)."""
    runs = {f"{side}@{size}": records for (side, size), records in report["runs"].items()}
    data = {"meta": args.meta | {"load_now": load_average()}, "runs": runs, "agreement": report["agreement"], "goals": goals(args, report)}
    results_file.write_text(json.dumps(data, indent=1, default=str))
    results_file.with_suffix(".md").write_text(markdown(args, report, data["goals"]))


def goals(args: argparse.Namespace, report: dict) -> list[dict]:
    runs, found = report["runs"], []
    big = max(args.sizes)
    stream_big = [r for r in runs.get(("streaming", big), []) if "seconds" in r]
    if stream_big:
        peak = stream_big[0]["peak_mib"]
        found.append({"goal": f"streaming at {big}x{big} under 2 GB peak RSS", "met": peak * 2**20 < 2e9,
                      "detail": f"{peak:.0f} MiB = {peak * 2**20 / 1e9:.2f} GB"})
    small = args.sizes[0]
    pairs = [(s, m) for s, m in zip(runs.get(("streaming", small), []), runs.get(("in-memory", small), [])) if "seconds" in s and "seconds" in m]
    if pairs:
        cpu = statistics.median(s["cpu_seconds"] / m["cpu_seconds"] for s, m in pairs)
        wall = statistics.median(s["seconds"] / m["seconds"] for s, m in pairs)
        found.append({
            "goal": f"streaming time per megapixel within 10 % of in-memory at {small}x{small} (CPU time of the process)",
            "met": cpu <= 1.10,
            "detail": f"streaming / in-memory: CPU time {cpu:.3f}, wall time {wall:.3f} (medians of {len(pairs)} paired rounds)",
        })
    return found


def markdown(args: argparse.Namespace, report: dict, found: list[dict]) -> str:
    meta = args.meta
    rows = []
    for size in args.sizes:
        for side in SIDES:
            records = report["runs"].get((side, size))
            if not records:
                continue
            done = [r for r in records if "seconds" in r]
            if not done:
                reason = records[0].get("skipped") or records[0].get("failed")
                final = records[0].get("estimate_final_gib")
                if final is not None:
                    reason += f" (estimated from its largest run: {final:.2f} GiB)"
                rows.append([f"{size}x{size}", side, "-", "-", "-", "-", "-", f"not run: {reason}"])
                continue
            seconds = sorted(r["seconds"] for r in done)
            cell = f"{statistics.median(seconds):.1f}" + (f" ({seconds[0]:.1f}-{seconds[-1]:.1f})" if len(seconds) > 1 else "")
            cpu = statistics.median(r["cpu_seconds"] for r in done)
            megapixels = size * size / 1e6
            agree = report["agreement"].get(size, {}).get(side)
            note = "" if side == "streaming" or agree is None else f"ids equal to streaming: {100 * agree:.4f} %"
            loads = "/".join(f"{r['load_start']:.1f}" for r in done)
            rows.append([
                f"{size}x{size}", side, cell, f"{cpu:.1f}", f"{cpu / megapixels:.3f}",
                f"{statistics.median(r['baseline_mib'] for r in done):.0f}", f"{statistics.median(r['peak_mib'] for r in done):.0f}",
                f"{note}{'; ' if note else ''}load {loads}",
            ])
    header = ["image", "inference", "wall s", "CPU s", "CPU s / megapixel", "RSS before (MiB)", "peak RSS (MiB)", "notes"]
    goal_rows = [[g["goal"], "met" if g["met"] else "**not met**", g["detail"]] for g in found]
    return (
        f"## Whole slides: streaming vs in-memory vs MONAI\n\nMeasured {meta['date']} with `{meta['command']}`: "
        f"{meta['cpu']}, {meta['cores']} cores, {args.threads} torch thread(s) per run, torch {meta['torch']}, "
        f"MONAI {meta['monai']}, tifffile {tifffile.__version__}; load average {meta['load_start']:.1f} at start "
        f"(each row gives the load at the start of each run; above 2 other jobs shared the 2 cores: wall times are upper bounds, and CPU times are the fairer comparison).\n\n"
        f"Random-weight `UNet(1, 2, base=8, depth=4)`; synthetic uint8 grayscale slides in uncompressed BigTIFF; tiles {TILE}, "
        f"overlap {OVERLAP}, Gaussian blending, {BATCH} tiles per batch; each run end to end (read, predict, write the class "
        "ids as a tiled zlib TIFF; streaming also writes its pyramid) in a fresh process. Peak RSS is the whole process "
        "(its `VmHWM`); \"before\" is after loading the model and a 512x512 warm-up. A side is not run where its "
        f"estimated peak (what it added above its baseline at the largest size it ran, scaled by the area; for streaming "
        f"by the width) exceeds {args.limit_gb} GiB (the machine has 24 GiB and no swap); a watchdog stops any run above it.\n\n"
        + (f"Pairs measured before were kept from the run of {meta['continued_from']} (`--continue`).\n\n" if meta.get("continued_from") else "")
        + markdown_table(["goal", "status", "measured"], goal_rows) + "\n\n" + markdown_table(header, rows) + "\n"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[2048, 8192, 16384, 32768])
    parser.add_argument("--repeats", type=int, default=5, help="rounds at the first size (the speed goal); 1 at the others")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit-gb", type=float, default=20.0, help="skip a run whose estimated peak RSS exceeds this (GiB)")
    parser.add_argument("--slides-dir", type=Path, default=Path("/tmp/unet_slides"))
    parser.add_argument("--results-dir", type=Path, help="default benchmarks/results (--quick: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 512 and 1024, one round")
    parser.add_argument("--continue", dest="continue_run", action="store_true",
                        help="keep the side/size pairs already measured in the results file and run only the others")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.quick and not args.worker:
        args.sizes, args.repeats = [512, 1024], 1
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        return worker(args)
    torch.set_num_threads(args.threads)
    args.meta = {**machine_info(), "load_start": load_average(), "quick": args.quick,
                 "command": "python benchmarks/bench_slides.py " + shlex.join(args.argv)}
    results_dir = args.results_dir or (Path(tempfile.mkdtemp()) if args.quick else ROOT / "benchmarks" / "results")
    results_dir.mkdir(parents=True, exist_ok=True)
    results_file = results_dir / "slides.json"
    report = measure(args, results_file)
    save(results_file, args, report)
    print(results_file.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
