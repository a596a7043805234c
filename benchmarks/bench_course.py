"""The course itself: wall time of every notebook under nbval, and of the whole ``make test``.

``make test`` runs once, with pytest writing a JUnit XML report (``PYTEST_ADDOPTS=--junitxml=...``).
From that one session come the total and, per notebook, the sum of its cells' times (each cell is
one nbval test item; the kernel's start-up of a second or two is not in it). A report from a run
you already did (for example ``.ci/run`` in a fresh clone) can be read instead with ``--junit``.

    python benchmarks/bench_course.py                        # runs make test (tens of minutes)
    python benchmarks/bench_course.py --junit report.xml     # reads the report of an earlier run
"""
from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from _common import ROOT, markdown_table

FOLDERS = ("notebooks", "solutions", "exercises")


def read_junit(path: Path) -> dict:
    """Seconds and outcomes per notebook, and totals, from a pytest JUnit XML report."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    per_file: dict[str, dict] = defaultdict(lambda: {"seconds": 0.0, "items": 0, "failed": 0, "skipped": 0})
    for case in root.iter("testcase"):
        classname = case.get("classname", "")  # "solutions.ex01_double_conv.ipynb" or "tests.test_metrics"
        if classname.endswith(".ipynb"):
            name = classname[: -len(".ipynb")].replace(".", "/") + ".ipynb"
        else:
            name = "tests and doctests"
        entry = per_file[name]
        entry["seconds"] += float(case.get("time", 0))
        entry["items"] += 1
        entry["failed"] += sum(1 for child in case if child.tag in ("failure", "error"))
        entry["skipped"] += sum(1 for child in case if child.tag == "skipped")
    total = {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}
    total["seconds"] = sum(float(s.get("time", 0)) for s in suites)
    return {"files": dict(per_file), "total": total}


def run_make_test() -> tuple[dict, int, float]:
    """Run ``make test`` once with a JUnit report; returns the report, the exit code and the wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "course.xml"
        env = {**os.environ, "PYTEST_ADDOPTS": f"{os.environ.get('PYTEST_ADDOPTS', '')} --junitxml={report}".strip()}
        began = time.perf_counter()
        code = subprocess.run(["make", "test"], cwd=ROOT, env=env).returncode
        seconds = time.perf_counter() - began
        return read_junit(report), code, seconds


def run_part(junit: Path | None = None) -> dict:
    """Per-notebook seconds and the whole session; Markdown and raw results."""
    if junit is None:
        report, code, wall = run_make_test()
        source = "one `make test` run by this script"
    else:
        report, code, wall = read_junit(junit), None, None
        source = f"the JUnit report of one earlier `make test` session (`{junit.name}`)"
    rows = []
    notebooks = sorted((name, entry) for name, entry in report["files"].items() if name.endswith(".ipynb"))
    for name, entry in notebooks:
        state = "passed" if not entry["failed"] else f"**{entry['failed']} failed**"
        rows.append([f"`{name}`", f"{entry['seconds']:.0f}", entry["items"], state])
    for folder in FOLDERS:
        in_folder = [e["seconds"] for n, e in notebooks if n.startswith(folder + "/")]
        rows.append([f"all of `{folder}/`", f"{sum(in_folder):.0f}", f"{len(in_folder)} notebooks", ""])
    other = report["files"].get("tests and doctests")
    if other:
        rows.append(["`tests/` and the package's doctests", f"{other['seconds']:.0f}", other["items"],
                     f"{other['failed']} failed, {other['skipped']} skipped"])
    total = report["total"]
    outcome = f"{total['tests']} items, {total['failures'] + total['errors']} failed, {total['skipped']} skipped"
    rows.append(["**the whole test session**", f"**{total['seconds']:.0f}**", total["tests"], outcome])
    if wall is not None:
        rows.append(["`make test` wall time (with set-up)", f"{wall:.0f}", "", "exit code 0" if code == 0 else f"**exit code {code}**"])
    text = (f"From {source}. Notebook rows are the sum of the notebook's cells (one nbval item each); "
            "`--nbval-lax`, so only cells marked `# NBVAL_CHECK_OUTPUT` compare their output.\n\n"
            + markdown_table(["what", "seconds", "items", "result"], rows))
    return {"markdown": text, "results": {"report": report, "exit_code": code, "wall_seconds": wall}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--junit", type=Path, help="read this pytest JUnit XML report instead of running make test")
    args = parser.parse_args()
    print(run_part(args.junit)["markdown"])


if __name__ == "__main__":
    main()
