"""Re-execute lesson notebooks in place, so they read well on a repository page.

    python tools/execute_notebooks.py notebooks/03_unet.ipynb ...   (default: every notebooks/*.ipynb)

Each notebook runs in a fresh kernel with the notebook's folder as working directory. Widget
state is not stored (``store_widget_state=False``): every live view also carries a PNG of its
figure, which is what a page without a widget manager shows. Prints the wall time of each.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]


def execute(path: Path, timeout: int = 900) -> float:
    """Execute ``path`` in place; return the wall time in seconds."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", store_widget_state=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    began = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - began
    nbformat.write(notebook, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    total, failed = 0.0, []
    for path in paths:
        try:
            seconds = execute(path, args.timeout)
        except CellExecutionError as error:
            print(f"FAILED {path}: {str(error).splitlines()[0]}", file=sys.stderr)
            failed.append(path)
            continue
        total += seconds
        print(f"{seconds:7.1f} s  {path}")
    print(f"{total:7.1f} s  total")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
