"""``python -m unet_helpers progress [NOTEBOOKS]``: the exercise progress table (``course/progress.py``).

Every argument after ``progress``, ``--help`` included, belongs to the progress runner.
"""
from __future__ import annotations

import argparse

from ..course import progress


def run_progress(args: argparse.Namespace) -> int:
    """Hand every argument to ``course.progress.main``."""
    return int(progress.main(list(args.rest)) or 0)
