"""Data-parallel training over several processes (``torchrun``) for the ``train`` command.

Used by ``cli/train.py`` and shown in ``notebooks/06_training.ipynb``::

    torchrun --nproc_per_node=2 -m unet_helpers train --epochs 5 --out runs/ddp

``torchrun`` starts one process per replica and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``. Each process trains a copy of the model on its own share of
every epoch (``DistributedSampler``); ``DistributedDataParallel`` averages the gradients, so every
copy takes the same optimizer step and the weights stay identical.

Three details that are easy to get wrong, and what this module does about them:

- **Validation must count each image once.** ``DistributedSampler`` pads the dataset with
  duplicates so that every process gets the same number of items; ``evaluate`` sums the
  confusion matrices of all processes, so a padded duplicate would be counted twice (5 images on 2
  processes become 6). ``ShardSampler`` splits without padding: process ``r`` takes items
  ``r, r + world, r + 2 world, ...``.
- **No collective call may depend on the shard size.** With unequal shards one process runs one
  more validation batch than another; by default DDP broadcasts BatchNorm buffers at *every*
  forward, a collective that would then wait forever. ``wrap_model`` turns that off and
  ``sync_buffers`` copies process 0's buffers once at the end of each training epoch
  (``EpochLoader(on_epoch_end=...)``), so every process validates the same model.
- **BatchNorm statistics** are per process (``SyncBatchNorm`` needs GPUs); process 0's running
  averages are the ones saved and broadcast.
"""
from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import Sampler

from ..runtime import is_distributed, unwrap_model


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits: ``rank`` of ``world_size`` processes, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None  # "gloo" or "nccl" when distributed, else None

    @property
    def enabled(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process (rank 0) prints and writes files."""
        return self.rank == 0


def setup_distributed(device: str | torch.device | None = None) -> DistributedContext:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Args:
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA when available, else CPU). With CUDA each
            process takes GPU ``LOCAL_RANK`` and the ``nccl`` backend; on CPU ``gloo``.

    Returns:
        A ``DistributedContext``; a single process (``world_size`` 1) when ``WORLD_SIZE`` is unset or 1.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    kind = torch.device(device).type if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    if world_size <= 1:
        return DistributedContext(device=torch.device(device) if device is not None else torch.device(kind))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if kind == "cuda" else "gloo"
    if kind == "cuda":
        torch.cuda.set_device(local_rank)
    if not is_distributed():
        dist.init_process_group(backend=backend)
    chosen = torch.device("cuda", local_rank) if kind == "cuda" else torch.device(kind)
    return DistributedContext(rank, world_size, local_rank, chosen, backend)


def cleanup_distributed() -> None:
    """Leave the process group (a no-op in a single process)."""
    if is_distributed():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, context: DistributedContext) -> nn.Module:
    """``DistributedDataParallel(model)`` when distributed, else ``model`` unchanged.

    Buffers are not broadcast at every forward (see the module docstring); call ``sync_buffers``
    after each training epoch instead.
    """
    if not context.enabled:
        return model
    device_ids = [context.local_rank] if context.device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel
    # torch >= 2.13 names the option forward_sync_buffers (init still syncs); older torch broadcast_buffers
    option = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(ddp.__init__).parameters else "broadcast_buffers"
    return ddp(model, device_ids=device_ids, **{option: False})


def sync_buffers(model: nn.Module, src: int = 0) -> None:
    """Copy every buffer (BatchNorm running mean/var, counters) from process ``src`` to all others."""
    if not is_distributed():
        return
    with torch.no_grad():
        for buffer in unwrap_model(model).buffers():
            dist.broadcast(buffer, src)


def replicas_identical(model: nn.Module) -> bool:
    """True when every process holds exactly the same parameters and buffers as process 0.

    A collective call: every process must call it. Always True in a single process.
    """
    if not is_distributed():
        return True
    plain = unwrap_model(model)
    differing = torch.zeros(1)
    with torch.no_grad():
        for tensor in list(plain.parameters()) + list(plain.buffers()):
            reference = tensor.detach().clone()
            dist.broadcast(reference, 0)
            differing += float(not torch.equal(reference, tensor.detach()))
    differing = differing.to(next(plain.parameters()).device)
    dist.all_reduce(differing)
    return int(differing.item()) == 0


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world_size, ...`` of ``range(length)``: every index on exactly one
    process, no padding, no shuffling (for validation; training uses ``DistributedSampler``).

    >>> [list(ShardSampler(5, rank, 2)) for rank in (0, 1)]
    [[0, 2, 4], [1, 3]]
    """

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size; got rank={rank}, world_size={world_size}")
        if length < world_size:
            raise ValueError(
                f"{length} validation item(s) cannot be shared by {world_size} processes (each needs at least one); "
                "use more validation images or fewer processes"
            )
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return math.ceil((self.length - self.rank) / self.world_size)


class EpochLoader:
    """A loader seen by ``fit``: at most ``max_batches`` batches, then ``on_epoch_end()``.

    ``on_epoch_end`` runs when the training loop asks for the batch after the last one, that is
    after the last optimizer step and before validation (the place to call ``sync_buffers``).
    ``sampler`` is passed through, so ``fit`` still calls ``DistributedSampler.set_epoch``.

    Args:
        loader: any iterable of batches with ``len`` (a ``DataLoader``).
        max_batches: cut every epoch after this many batches (``None``: the whole loader).
        on_epoch_end: called with no arguments at the end of every complete epoch.
    """

    def __init__(self, loader: Iterable, max_batches: int | None = None, on_epoch_end: Callable[[], None] | None = None) -> None:
        self.loader, self.max_batches, self.on_epoch_end = loader, max_batches, on_epoch_end
        self.sampler = getattr(loader, "sampler", None)

    def __len__(self) -> int:
        return len(self.loader) if self.max_batches is None else min(len(self.loader), self.max_batches)

    def __iter__(self) -> Iterator:
        for step, batch in enumerate(self.loader):
            if self.max_batches is not None and step >= self.max_batches:
                break
            yield batch
        if self.on_epoch_end is not None:
            self.on_epoch_end()
