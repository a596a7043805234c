"""The package as people install it: build the wheel and sdist, install the wheel into a clean
virtual environment, and run it there.

    python tools/test_package.py [--workdir DIR] [--keep]

``make test-package`` runs it. Steps (each timed; the table is printed at the end):

1. ``python -m build``: a wheel and an sdist in ``DIR/dist``; both must hold every checksum
   manifest of the source tree (``unet_helpers/**/*.sha256``), byte for byte.
2. A clean venv (``DIR/venv``); the wheel installed with the course's pins as constraints
   (``requirements.txt``, so a failure here is about packaging, not about a new release of a
   dependency: ``make test-latest`` covers that) and torch from ``constraints.txt``.
3. Run from outside the repository: the package imported is the installed one; its manifests load
   (and, when ``UNET_DATA_DIR`` holds the datasets, verify them); ``python -m unet_helpers --help``,
   the ``unet-helpers`` script; a two-step ``train`` on synthetic data, whose run folder must hold
   ``last.pt``, ``best.pt`` and one line of ``metrics.jsonl``.

``DIR`` defaults to a new temporary folder, removed at the end unless ``--keep``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from fresh_env import (ROOT, CONSTRAINTS, CheckFailed, Timer, build_dist, check_archives_hold, make_venv,
                       package_data_in_source, run, safe_env)  # tools/fresh_env.py, beside this script

# Runs inside the clean venv: where the package came from, and its manifests read back.
INSTALLED_CHECK = """
import os, sys
from pathlib import Path
import unet_helpers
package = Path(unet_helpers.__file__).resolve().parent
if Path(sys.prefix).resolve() not in package.parents:
    sys.exit(f"imported {package}, not the package installed in {sys.prefix}")
try:
    from unet_helpers.realdata.download import read_manifest, verify_dataset
except ImportError:  # LAYOUT: the old flat module, until issue 11's layout lands
    from unet_helpers.download import read_manifest, verify_dataset
counts = {name: len(read_manifest(name)) for name in ("dsb2018_nuclei_256", "drosophila_vnc_sstem")}
print("installed at", package, "manifests:", counts)
if counts != {"dsb2018_nuclei_256": 334, "drosophila_vnc_sstem": 20}:
    sys.exit(f"manifests hold {counts} samples, expected 334 and 20")
data = os.environ.get("UNET_DATA_DIR")
if data and Path(data, "dsb2018_nuclei_256").is_dir():
    for name in counts:
        verify_dataset(Path(data, name), name)
    print("the installed manifests verify the datasets in", data)
"""


def check_run_folder(out: Path) -> None:
    missing = [name for name in ("last.pt", "best.pt", "metrics.jsonl") if not (out / name).is_file()]
    if missing:
        raise CheckFailed(f"train wrote {sorted(p.name for p in out.iterdir())} into {out}; missing {missing}")
    lines = (out / "metrics.jsonl").read_text().splitlines()
    if len(lines) != 1 or "epoch" not in json.loads(lines[0]):
        raise CheckFailed(f"metrics.jsonl should hold one epoch record, got {lines[:3]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="default: a new temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (dist, venv, run)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="unet-package-"))
    if args.workdir and workdir.exists() and any(workdir.iterdir()):
        print(f"test-package: {workdir} is not empty; give a new or empty folder", file=sys.stderr)
        return 2
    timer = Timer()
    try:
        with timer.step("build wheel and sdist"):
            dist = build_dist(workdir / "dist")
            check_archives_hold(dist, package_data_in_source())
        with timer.step("clean venv, install the wheel"):
            python = make_venv(workdir / "venv")
            run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "-c", ROOT / "requirements.txt", "-c", CONSTRAINTS, dist.wheel])
        env, outside = safe_env(), workdir  # never the repository as working directory
        with timer.step("import, manifests, --help"):
            run([python, "-c", INSTALLED_CHECK], cwd=outside, env=env)
            run([python, "-m", "unet_helpers", "--help"], cwd=outside, env=env)
            run([workdir / "venv" / "bin" / "unet-helpers", "--help"], cwd=outside, env=env)
        with timer.step("train 1 epoch of 2 steps"):
            out = workdir / "run"
            run([python, "-m", "unet_helpers", "train", "--epochs", "1", "--steps-per-epoch", "2",
                 "--synthetic-train", "16", "--synthetic-val", "8", "--out", out], cwd=outside, env=env)
            check_run_folder(out)
    except CheckFailed as failure:
        print(f"test-package FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"test-package passed ({dist.wheel.name}, {dist.sdist.name})\n{timer.report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
