"""Where a learner's progress is kept: one small JSON file outside the repository.

Every ``ex.check(...)``, ``ex.hint()`` and ``ex.solution()`` adds to it; ``python -m
unet_helpers progress`` reads the hints from it. The file is

- ``$UNET_PROGRESS_FILE`` when that is set (``off`` turns recording off), otherwise
- ``<user cache dir>/unet_course/progress.json`` (``~/.cache`` on Linux, ``~/Library/Caches`` on
  macOS, ``%LOCALAPPDATA%`` on Windows), so it is never committed with the course;
- nothing while pytest runs (nbval over ``solutions/`` must not mark a learner's exercises done),
  unless ``UNET_PROGRESS_FILE`` says otherwise.

Recording never fails a check: a read-only file is skipped silently, a broken one is replaced.

Layout::

    {"version": 1, "exercises": {"dice_loss": {"status": "correct", "passed_ever": true,
     "attempts": 3, "hints": [1, 2], "solution_viewed": false, "updated": "2025-01-01T12:00:00"}}}
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

ENV_VAR = "UNET_PROGRESS_FILE"
_OFF = {"", "0", "off", "none", "false"}


def user_cache_dir() -> Path:
    """The per-user cache folder of this platform (no third-party package needed)."""
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def progress_path() -> Path | None:
    """The progress file in use, or ``None`` when recording is off (see the module docstring)."""
    value = os.environ.get(ENV_VAR)
    if value is not None:
        return None if value.strip().lower() in _OFF else Path(value).expanduser()
    if "PYTEST_VERSION" in os.environ:
        return None
    return user_cache_dir() / "unet_course" / "progress.json"


def _clean_entry(entry: Any) -> dict[str, Any] | None:
    """A progress record with the expected field types, or ``None`` when nothing usable is left."""
    if not isinstance(entry, dict):
        return None
    hints = entry.get("hints", [])
    hints = sorted({int(h) for h in hints if isinstance(h, int) and not isinstance(h, bool)}) if isinstance(hints, list) else []
    attempts = entry.get("attempts", 0)
    return {
        "status": entry["status"] if isinstance(entry.get("status"), str) else "not attempted",
        "passed_ever": entry.get("passed_ever") is True,
        "attempts": attempts if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts >= 0 else 0,
        "hints": hints,
        "solution_viewed": entry.get("solution_viewed") is True,
        **({"updated": entry["updated"]} if isinstance(entry.get("updated"), str) else {}),
    }


def load_progress(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Per-exercise records from ``path`` (default: ``progress_path()``); ``{}`` if none or unreadable.

    A file someone edited by hand is read as far as it makes sense: records that are not objects
    are dropped, fields of the wrong type get their defaults.
    """
    path = progress_path() if path is None else path
    try:
        if path is None or not path.is_file():
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    exercises = data.get("exercises") if isinstance(data, dict) else None
    if not isinstance(exercises, dict):
        return {}
    cleaned = {str(name): _clean_entry(entry) for name, entry in exercises.items()}
    return {name: entry for name, entry in cleaned.items() if entry is not None}


def _save(path: Path, exercises: dict[str, dict[str, Any]]) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as fh:
            json.dump({"version": 1, "exercises": exercises}, fh, indent=1, sort_keys=True)
        os.replace(fh.name, path)  # atomic: a crash never leaves half a file
        return True
    except (OSError, TypeError, ValueError):
        return False


def _update(name: str, change: dict[str, Any]) -> bool:
    path = progress_path()
    if path is None:
        return False
    exercises = load_progress(path)
    entry = exercises.setdefault(name, _clean_entry({}))
    hint = change.pop("hint", None)
    if hint is not None:
        entry["hints"] = sorted(set(entry["hints"]) | {int(hint)})
    if change.pop("attempt", False):
        entry["attempts"] += 1
    entry.update(change)
    entry["updated"] = datetime.now().isoformat(timespec="seconds")
    return _save(path, exercises)


def record_check(name: str, status: str) -> bool:
    """Remember the latest status of exercise ``name``; returns whether anything was written."""
    change: dict[str, Any] = {"status": status}
    if status != "not attempted":
        change["attempt"] = True
    if status == "correct":
        change["passed_ever"] = True
    return _update(name, change)


def record_hint(name: str, level: int) -> bool:
    """Remember that hint ``level`` of ``name`` was shown."""
    return _update(name, {"hint": level})


def record_solution(name: str) -> bool:
    """Remember that the solution of ``name`` was shown."""
    return _update(name, {"solution_viewed": True})
