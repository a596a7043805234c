"""Tests of the segmentation_models_pytorch environment (``make test-smp``, ``.venv-smp``).

smp needs torchvision, which does not load beside the course's torch, so these tests run in a
second environment. Collected by the main ``make test`` they skip: that environment is not meant
to have smp. ``make test-smp`` sets ``UNET_SMP_REQUIRED=1``, and then a missing smp or timm is a
failure, so a green ``make test`` plus ``make test-smp`` means every test ran.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

SMP_REQUIRED = os.environ.get("UNET_SMP_REQUIRED") == "1"


def import_or_skip(name: str) -> ModuleType:
    """The module ``name``; skipped when it is missing, a failure under ``make test-smp``."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        reason = f"{name} is not installed in this environment ({error}); these tests run under `make test-smp`"
        if SMP_REQUIRED:
            pytest.fail(f"required by make test-smp but unavailable: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def smp() -> ModuleType:
    return import_or_skip("segmentation_models_pytorch")


@pytest.fixture(scope="session")
def timm() -> ModuleType:
    return import_or_skip("timm")
