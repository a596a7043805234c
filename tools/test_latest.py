"""The unit tests against the newest releases the package's dependency ranges allow (torch pinned).

    python tools/test_latest.py [--workdir DIR] [--keep] [-- PYTEST_ARGS...]

``make test-latest`` runs it. The course environment pins every package (``requirements.txt``);
a learner who runs ``pip install unet_helpers`` gets the newest releases instead. This check makes
that environment, so a new release of a dependency breaks a test here before it breaks a learner:

1. the wheel is built (``python -m build``) and installed into a clean venv with
   ``--upgrade-strategy eager``: the newest release of every dependency within the ranges of
   ``pyproject.toml``, the ``widgets`` extra, and the newest test tools (the names of
   ``requirements.txt`` and ``requirements-test.txt`` without their versions, less those only the
   notebook and browser tests need); torch alone stays pinned (``constraints.txt``);
2. the versions installed are printed (and written to ``DIR/freeze.txt``);
3. from the repository, with the installed package (never the source tree; a pytest plugin checks):
   ``pytest -m "not browser and not venv" tests`` and the package's doctests. Notebooks are not
   run, nor the tests that make a clean venv of their own (``tests/test_colab_setup.py``).

``DIR`` defaults to a new temporary folder, removed at the end unless ``--keep``.
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

from fresh_env import (ROOT, CONSTRAINTS, INSTALLED_PACKAGE_PLUGIN, CheckFailed, Timer, build_dist,  # tools/fresh_env.py
                       make_venv, run, safe_env)

# Course requirements that the unit tests do not need, and why.
NOT_FOR_UNIT_TESTS = {
    "torch": "pinned by constraints.txt, installed with the wheel",
    "jupyterlab": "the browser tests only",
    "playwright": "the browser tests only",
    "nbval": "the notebook runs only",
    "build": "builds the wheel, outside the venv",
}
SHOWN = ("torch", "numpy", "scipy", "pillow", "matplotlib", "tqdm", "ipywidgets", "monai", "torchmetrics",
         "hypothesis", "pytest", "nbformat", "nbclient", "ipykernel", "nbconvert")


def requirement_names(*files: Path) -> list[str]:
    """Package names of requirement files (``-r`` includes, comments and markers ignored)."""
    names = []
    for path in files:
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            name = re.match(r"[A-Za-z0-9._-]+", line).group(0).lower()
            if name not in NOT_FOR_UNIT_TESTS and name not in names:
                names.append(name)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="default: a new temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (dist, venv, freeze.txt)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --), e.g. -x")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="unet-latest-"))
    if args.workdir and workdir.exists() and any(workdir.iterdir()):
        print(f"test-latest: {workdir} is not empty; give a new or empty folder", file=sys.stderr)
        return 2
    timer = Timer()
    tools = requirement_names(ROOT / "requirements.txt", ROOT / "requirements-test.txt")
    try:
        with timer.step("build the wheel"):
            dist = build_dist(workdir / "dist")
        with timer.step("clean venv, newest releases (torch pinned)"):
            python = make_venv(workdir / "venv")
            run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade",
                 "--upgrade-strategy", "eager", "-c", CONSTRAINTS, f"{dist.wheel}[widgets]", *tools])
            freeze = run([python, "-m", "pip", "freeze", "--disable-pip-version-check"], capture=True)
            (workdir / "freeze.txt").write_text(freeze)
            versions = dict(line.split("==", 1) for line in freeze.splitlines() if "==" in line)
            lowered = {k.lower().replace("_", "-"): v for k, v in versions.items()}
            print("installed:", ", ".join(f"{n} {lowered.get(n, '?')}" for n in SHOWN))
        plugins = workdir / "plugins"
        plugins.mkdir()
        (plugins / "installed_package.py").write_text(INSTALLED_PACKAGE_PLUGIN)
        # The pytest script (not `python -m pytest`, which puts the repository first on sys.path):
        # the tests import the installed package; the plugin stops the run if they do not.
        pytest = [workdir / "venv" / "bin" / "pytest", "-q", "-p", "no:cacheprovider", "-p", "installed_package"]
        # An installed package finds no solutions/ beside it; the exercise checks are told where it is.
        env = safe_env(PYTHONPATH=str(plugins), UNET_SOLUTIONS_DIR=str(ROOT / "solutions"))
        with timer.step("unit tests (not browser, not venv)"):
            run([*pytest, "-m", "not browser and not venv", "tests", *args.pytest_args], cwd=ROOT, env=env)
        with timer.step("doctests of the installed package"):
            run([*pytest, "--doctest-modules", "--pyargs", "unet_helpers"], cwd=workdir, env=env)
    except CheckFailed as failure:
        print(f"test-latest FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"test-latest passed\n{timer.report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
