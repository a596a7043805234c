"""Data loaders whose order depends only on a seed and the epoch: ``EpochShuffle``, ``make_loader``.

Used by ``train.fit`` (which calls ``set_epoch`` before every epoch, so a resumed run sees the
orders an uninterrupted run would have seen) and from ``notebooks/06_training.ipynb`` on.
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Sampler


class EpochShuffle(Sampler[int]):
    """A shuffle that is a function of ``(seed, epoch)`` only.

    ``fit`` calls ``set_epoch(epoch)`` before every epoch, so a run resumed from a checkpoint at
    epoch 5 sees exactly the orders an uninterrupted run would have seen. Iterated without
    ``set_epoch`` (a hand-written loop), each pass moves on to the next epoch's order.
    """

    def __init__(self, length: int, seed: int = 0) -> None:
        self.length, self.seed, self.epoch = length, seed, 0
        self._pinned = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._pinned = epoch, True

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.length, generator=generator).tolist()
        if not self._pinned:
            self.epoch += 1
        self._pinned = False
        return iter(order)


def make_loader(dataset, batch_size: int = 8, shuffle: bool = True, seed: int = 0, num_workers: int = 0, **kwargs) -> DataLoader:
    """A ``DataLoader`` whose shuffle depends only on ``seed`` and the epoch (``EpochShuffle``).

    Training loaders (``shuffle=True``) drop a last batch of one, which would give BatchNorm
    statistics from a single image. Extra keyword arguments go to ``DataLoader`` (e.g. ``sampler``).
    """
    sampler = kwargs.pop("sampler", None)
    if shuffle and sampler is None:
        sampler = EpochShuffle(len(dataset), seed)
    size = len(sampler) if sampler is not None else len(dataset)
    drop_last = kwargs.pop("drop_last", shuffle and size % batch_size == 1)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed), drop_last=drop_last, **kwargs,
    )


class RepeatedShuffle(Sampler[int]):
    """``samples`` indices per process from seeded shuffles of ``range(length)`` laid end to end.

    An epoch longer than one pass over a small set: the first ``length`` draws are one shuffle, the
    next ``length`` another, and so on, so every index appears equally often (give or take one) and
    the order is a function of ``(seed, epoch)`` only (``fit`` calls ``set_epoch``; a resumed run sees
    the same orders). Under ``torchrun`` the ``samples * world_size`` draws are dealt out in turn,
    so the processes see disjoint draws.

    Args:
        length: the size of the dataset.
        samples: indices this process yields per epoch (steps x batch size).
        seed: the shuffle seed.
        rank, world_size: this process and the number of processes.
    """

    def __init__(self, length: int, samples: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.length, self.samples, self.seed, self.rank, self.world_size = length, samples, seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.samples

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        wanted = self.samples * self.world_size
        passes = [torch.randperm(self.length, generator=generator) for _ in range(-(-wanted // self.length))]
        order = torch.cat(passes)[:wanted]  # (samples * world_size,)
        return iter(order[self.rank::self.world_size].tolist())
