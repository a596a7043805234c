"""``progress``: run a learner's exercise notebooks and print what is done.

Usage (from the repository root)::

    python -m unet_helpers.course.progress exercises/
    python -m unet_helpers.course.progress exercises/ex06_dice_loss.ipynb --timeout 120

Each notebook is executed in memory with nbclient, in its own folder, and is never written back:
the learner's files stay exactly as they were. The checks that run inside record their status in a
temporary progress file; hints and solutions seen come from the learner's own progress file (see
``checks/progress_file.py``), merged with any shown during the run. A cell that raises does not stop
the run; it is listed under the table. Nor does a notebook that cannot be read, whose kernel dies or
whose cell runs past ``--timeout``: its exercises are listed as "not run" with the reason, and the
other notebooks still run.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..checks import list_exercises
from ..checks.progress_file import ENV_VAR, load_progress


@dataclass
class NotebookRun:
    """What one execution of a notebook left behind."""

    path: Path
    records: dict[str, dict[str, Any]]  # exercise name -> record written by the checks during the run
    errors: list[str]  # "cell 5: NameError: name 'my_dice_loss' is not defined"


def find_notebooks(paths: Sequence[Path]) -> list[Path]:
    """Notebooks named by ``paths`` (files, or folders searched non-recursively), sorted, unique."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.glob("*.ipynb") if not p.name.startswith("."))
        elif path.suffix == ".ipynb" and path.is_file():
            found.append(path)
    unique: dict[Path, Path] = {p.resolve(): p for p in found}
    return list(unique.values())


def run_notebook(path: Path, timeout: int = 300) -> NotebookRun:
    """Execute ``path`` in memory (outputs are not saved) and collect the checks' records; never raises."""
    import nbformat
    from nbclient import NotebookClient

    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - a corrupt or hand-edited notebook is reported, not fatal
        return NotebookRun(path, {}, [f"the notebook could not be read ({type(exc).__name__}: {str(exc)[:200]})"])
    stopped = []
    with tempfile.TemporaryDirectory(prefix="unet_progress_") as tmp:
        record_file = Path(tmp) / "progress.json"
        previous = os.environ.get(ENV_VAR)
        os.environ[ENV_VAR] = str(record_file)  # the kernel inherits it: checks record here, not in the user's file
        try:
            client = NotebookClient(notebook, timeout=timeout, allow_errors=True,
                                    resources={"metadata": {"path": str(path.parent.resolve())}})
            client.execute(stderr=subprocess.DEVNULL)  # the kernel's own start-up chatter
        except Exception as exc:  # noqa: BLE001 - a dead kernel or a cell past the timeout stops this notebook only
            first_line = (str(exc).strip().splitlines() or [""])[0][:200]
            stopped.append(f"the run stopped ({type(exc).__name__}: {first_line})")
        finally:
            if previous is None:
                os.environ.pop(ENV_VAR, None)
            else:
                os.environ[ENV_VAR] = previous
        records = load_progress(record_file)
    errors = [f"cell {index}: {output.get('ename')}: {str(output.get('evalue', ''))[:200]}"
              for index, cell in enumerate(notebook.cells) for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    return NotebookRun(path, records, errors + stopped)


def progress_rows(runs: Sequence[NotebookRun], saved: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """One row per exercise: notebook, exercise, status, hints used, solution seen."""
    specs = list_exercises()
    rows = []
    for run in runs:
        names = [spec.name for spec in specs if spec.notebook == run.path.stem]
        names += [name for name in run.records if name not in names]
        hint_counts = {spec.name: len(spec.hints) for spec in specs}
        for name in names:
            record, mine = run.records.get(name, {}), saved.get(name, {})
            hints = set(record.get("hints", [])) | set(mine.get("hints", []))
            total = hint_counts.get(name)
            rows.append({
                "notebook": run.path.name,
                "exercise": name,
                "status": record.get("status", "not run"),
                "hints used": f"{len(hints)} of {total}" if total else str(len(hints)),
                "solution seen": "yes" if record.get("solution_viewed") or mine.get("solution_viewed") else "no",
            })
    return rows


def format_table(rows: Sequence[dict[str, str]]) -> str:
    """A plain-text table with a header row."""
    if not rows:
        return "(no exercises found)"
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    line = lambda values: "  ".join(v.ljust(widths[c]) for c, v in zip(columns, values)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * widths[c] for c in columns])] + [line(r.values()) for r in rows])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the notebooks and print the progress table; 0 when they ran, 1 when none was found."""
    parser = argparse.ArgumentParser(prog="python -m unet_helpers.course.progress",
                                     description="Run exercise notebooks (without changing them) and show progress.")
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("exercises")],
                        help="notebooks or folders of notebooks (default: exercises)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds allowed per cell (default: 300)")
    args = parser.parse_args(argv)
    notebooks = find_notebooks(args.paths)
    if not notebooks:
        print(f"no notebooks found in {', '.join(map(str, args.paths))}", file=sys.stderr)
        return 1
    runs = []
    for path in notebooks:
        print(f"running {path} ...", file=sys.stderr, flush=True)
        runs.append(run_notebook(path, args.timeout))
    rows = progress_rows(runs, load_progress())
    print(format_table(rows))
    done = sum(row["status"] == "correct" for row in rows)
    print(f"\n{done} of {len(rows)} exercises correct.")
    for run in runs:
        for error in run.errors:
            print(f"{run.path.name}, {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
