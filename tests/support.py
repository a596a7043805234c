"""Helpers shared by test modules (a plain module: ``conftest`` is a name every test folder may use).

Tests that need the real datasets or a browser skip on a learner's machine when those are absent,
but on CI (``CI`` set, as ``.ci/run`` does) the same absence is a failure: a green CI run must mean
every test ran.
"""
from __future__ import annotations

import os

import pytest

ON_CI = bool(os.environ.get("CI"))


def skip_or_fail(reason: str) -> None:
    """Skip locally, fail on CI."""
    if ON_CI:
        pytest.fail(f"required on CI but unavailable: {reason}")
    pytest.skip(reason)
