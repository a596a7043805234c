"""Where and how a model runs: seeding, the device, distributed processes, memory layout.

Used from ``notebooks/06_training.ipynb`` on, by ``train.py``, ``inference.py`` and the command line.

Shapes: batches ``(N, C, H, W)``.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn


def seed_everything(seed: int = 0, deterministic: bool = False) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a seeded ``torch.Generator``.

    Pass the returned generator to ``DataLoader(generator=...)`` so the shuffling order does not
    depend on what ran before. ``deterministic=True`` also asks torch for deterministic kernels
    (slower on GPU; CPU training here is reproducible without it).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.Generator().manual_seed(seed)


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple MPS, then CPU (or ``prefer`` if given)."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def is_distributed() -> bool:
    """True inside an initialised ``torch.distributed`` process group (e.g. under ``torchrun``)."""
    return dist.is_available() and dist.is_initialized()


def is_main_process() -> bool:
    """True in a single process, and in process 0 of a group: the one that prints and writes."""
    return not is_distributed() or dist.get_rank() == 0


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain model inside ``DistributedDataParallel`` / ``DataParallel`` (``model`` itself otherwise)."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    return next(iter(model.parameters()), torch.empty(0)).device


def in_layout(batch: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``batch`` in channels-last memory layout if ``channels_last`` and it is on the CPU, else unchanged.

    Same shape and values (``torch.equal`` holds); oneDNN's convolutions on the CPU run faster in
    this layout (measured in ``BENCHMARKS.md``), and their outputs keep it.

    Shape:
        - Input and output: ``(N, C, H, W)``
    """
    if channels_last and batch.ndim == 4 and batch.device.type == "cpu":
        return batch.contiguous(memory_format=torch.channels_last)
    return batch
