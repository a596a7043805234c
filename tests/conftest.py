"""Shared fixtures.

Tests that need the real datasets (``UNET_DATA_DIR``) or a browser skip on a learner's machine
when those are absent, but on CI (``CI`` set, as ``.ci/run`` does) the same absence is a failure:
a green CI run must mean every test ran.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))

from support import skip_or_fail



@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding the real datasets (``UNET_DATA_DIR``)."""
    value = os.environ.get("UNET_DATA_DIR")
    if not value or not Path(value).is_dir():
        skip_or_fail(f"UNET_DATA_DIR is not set to the datasets folder (got {value!r})")
    return Path(value)


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)
