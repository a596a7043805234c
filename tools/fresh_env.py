"""Shared steps of the fresh-environment checks (``tools/test_package.py``, ``tools/test_latest.py``,
``tests/test_colab_setup.py``): build the wheel and sdist, make a clean virtual environment, run a
command in it with its output shown and its time measured.

A clean environment is made with ``python -m venv`` (no system site packages, nothing of the course
environment) and gets its packages from the same indexes as ``pip`` does everywhere here; torch is
always pinned to the course's version through ``constraints.txt`` (a CPU wheel; an unpinned torch
would pull the newest multi-GB CUDA build).
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"


class CheckFailed(RuntimeError):
    """A step of a fresh-environment check failed; the message says which and why."""


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path


def run(command: list[str | Path], cwd: Path | None = None, env: dict[str, str] | None = None,
        capture: bool = False) -> str:
    """Run ``command`` (printed first); raise ``CheckFailed`` when it exits non-zero."""
    words = [str(c) for c in command]
    print(f"$ {shlex.join(words)}", flush=True)
    result = subprocess.run(words, cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None)
    if result.returncode != 0:
        tail = f":\n{result.stdout[-3000:]}" if capture else " (output above)"
        raise CheckFailed(f"`{shlex.join(words)}` exited with {result.returncode}{tail}")
    return result.stdout if capture else ""


class Timer:
    """Wall time of named steps, printed as a table at the end."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []
        self._began = time.perf_counter()

    def step(self, name: str) -> "_Step":
        return _Step(self, name)

    def report(self) -> str:
        total = time.perf_counter() - self._began
        lines = [f"{seconds:7.1f} s  {name}" for name, seconds in self.steps]
        return "\n".join([*lines, f"{total:7.1f} s  total"])


class _Step:
    def __init__(self, timer: Timer, name: str) -> None:
        self.timer, self.name = timer, name

    def __enter__(self) -> None:
        print(f"--- {self.name}", flush=True)
        self.began = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timer.steps.append((self.name, time.perf_counter() - self.began))


def build_dist(outdir: Path, root: Path = ROOT) -> Dist:
    """``python -m build`` (isolated: the build backend from pyproject's build-system) into ``outdir``."""
    run([sys.executable, "-m", "build", "--outdir", outdir, root])
    wheels, sdists = sorted(outdir.glob("*.whl")), sorted(outdir.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise CheckFailed(f"expected one wheel and one sdist in {outdir}, got {[p.name for p in outdir.iterdir()]}")
    return Dist(wheels[0], sdists[0])


def package_data_in_source(root: Path = ROOT) -> dict[str, bytes]:
    """The checksum manifests of the source tree, by path relative to the root."""
    found = {p.relative_to(root).as_posix(): p.read_bytes() for p in (root / "unet_helpers").rglob("*.sha256")}
    if not found:
        raise CheckFailed(f"no checksum manifests (*.sha256) under {root / 'unet_helpers'}")
    return found


def check_archives_hold(dist: Dist, expected: dict[str, bytes]) -> None:
    """Every manifest is in the wheel (at its package path) and in the sdist, byte for byte."""
    with zipfile.ZipFile(dist.wheel) as wheel:
        in_wheel = {name: wheel.read(name) for name in wheel.namelist() if name.endswith(".sha256")}
    with tarfile.open(dist.sdist) as sdist:
        prefix = sdist.getnames()[0].split("/")[0]
        in_sdist = {m.name.removeprefix(prefix + "/"): sdist.extractfile(m).read()
                    for m in sdist.getmembers() if m.isfile() and m.name.endswith(".sha256")}
    for label, archive in (("wheel", in_wheel), ("sdist", in_sdist)):
        missing = sorted(set(expected) - set(archive))
        changed = sorted(p for p in set(expected) & set(archive) if archive[p] != expected[p])
        if missing or changed:
            raise CheckFailed(f"the {label} lacks manifests {missing} or holds other bytes for {changed}; "
                              "declare them in pyproject.toml [tool.setuptools.package-data]")
        print(f"{label}: {len(expected)} manifests present and identical ({', '.join(sorted(expected))})")


def make_venv(path: Path) -> Path:
    """A clean virtual environment at ``path``; returns its python."""
    run([sys.executable, "-m", "venv", path])
    python = path / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade", "pip"])
    return python


def safe_env(**extra: str) -> dict[str, str]:
    """The environment for commands in a clean venv: no ``PYTHONPATH`` (nothing of ours on the path)
    and no other venv. Run such commands outside the repository, or (pytest) check where the
    package came from: ``python -m``/``-c`` put the working directory first on ``sys.path``."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    return {**env, **extra}


# A pytest plugin (``-p installed_package``) that stops the session unless ``unet_helpers`` is
# imported from the environment's site-packages rather than from the source tree.
INSTALLED_PACKAGE_PLUGIN = """\
import sys
from pathlib import Path

import pytest


def pytest_sessionstart(session):
    import unet_helpers
    where = Path(unet_helpers.__file__).resolve()
    if Path(sys.prefix).resolve() not in where.parents:
        pytest.exit(f"unet_helpers was imported from {where}, not from the installed package in {sys.prefix}", 3)
    print(f"unet_helpers imported from {where.parent}")
"""
