"""Shared bits of the benchmark scripts: the machine, interleaved timing, medians and ratios, tables.

How a comparison is timed (``interleaved``): every candidate runs once or more to warm up (oneDNN
builds its kernels, the allocator grows), then the candidates take turns, A B C, C B A, A B C, ...,
so a slow spell of the shared machine hits every side alike instead of one. A ratio is the median
over rounds of the two sides' times in the same round (paired), so drift cancels within each pair.
"""
from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Mapping

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python benchmarks/NAME.py` from a checkout
    sys.path.insert(0, str(ROOT))


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A Markdown table with one row per list in ``rows``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def load_average() -> float:
    """The 1-minute load average (NaN where the OS has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    """Python, torch, threads, cores and the load average when the run started (others share the CPU)."""
    return (
        f"Python {platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} torch threads, "
        f"{os.cpu_count()} cores, load average {load_average():.1f} at start"
    )


def machine_info() -> dict[str, object]:
    """The machine and library versions, for the header of a results file."""
    import monai
    import torchmetrics

    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "torchmetrics": torchmetrics.__version__,
        "mkldnn": torch.backends.mkldnn.is_available(),
    }


def interleaved(
    candidates: Mapping[str, Callable[[], object]], repeats: int, warmup: int = 1, calls: int = 1
) -> dict[str, list[float]]:
    """Seconds per call of each candidate, measured in alternating order.

    Args:
        candidates: name -> a function to time (it must do the whole job, e.g. one training step).
        repeats: rounds; each round times every candidate once (``calls`` calls in a row).
        warmup: untimed calls of each candidate before the first round.
        calls: calls per timing, so that a sample lasts long enough to measure (seconds are per call).

    Returns:
        ``{name: [seconds per call in round 0, round 1, ...]}``
    """
    names = list(candidates)
    for name in names:
        for _ in range(warmup):
            candidates[name]()
    seconds: dict[str, list[float]] = {name: [0.0] * repeats for name in names}
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else reversed(names):  # A B C, C B A, ...
            began = time.perf_counter()
            for _ in range(calls):
                candidates[name]()
            seconds[name][round_] = (time.perf_counter() - began) / calls
    return seconds


def calls_for(seconds_per_call: float, target: float = 0.5) -> int:
    """How many calls make a sample of about ``target`` seconds (at least one)."""
    return max(1, round(target / max(seconds_per_call, 1e-9)))


def rate_cell(seconds: list[float], units: float = 1.0, digits: int = 1) -> str:
    """``units / seconds`` as "median (slowest-fastest)", e.g. "54.3 (50.1-56.0)"."""
    rates = sorted(units / s for s in seconds)
    return f"{statistics.median(rates):.{digits}f} ({rates[0]:.{digits}f}-{rates[-1]:.{digits}f})"


def seconds_cell(seconds: list[float], digits: int = 2) -> str:
    """Seconds as "median (fastest-slowest)"."""
    ordered = sorted(seconds)
    if len(ordered) == 1:
        return f"{ordered[0]:.{digits}f}"
    return f"{statistics.median(ordered):.{digits}f} ({ordered[0]:.{digits}f}-{ordered[-1]:.{digits}f})"


def paired_ratio(theirs: list[float], ours: list[float]) -> float:
    """Median over rounds of ``theirs[i] / ours[i]`` (times, so > 1 means ours is faster)."""
    return statistics.median(t / o for t, o in zip(theirs, ours))


def ratio_cell(value: float) -> str:
    """A ratio, bold when ours is at least as good (>= 1)."""
    return f"**{value:.2f}**" if value >= 1 else f"{value:.2f}"
