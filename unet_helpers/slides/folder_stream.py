"""Predicting a folder of images, with reading and decoding overlapped with the model.

Used by ``python -m unet_helpers predict`` (``notebooks/09_real_data.ipynb`` introduces the command).
A plain loop reads an image, predicts it, then reads the next: the model waits while Pillow
decodes a file, and the decoder waits while the model runs. ``predict_files`` hands the reading to
``DataLoader`` worker processes, which decode the next images while the main process runs the
model on this one (``benchmarks/bench_folder.py`` measures images per second against the loop).

Every image is read and scaled exactly as ``SegmentationFolder`` reads it in training
(``image_file.read_image`` then ``image_file.scale_image``), and predicted whole when it fits in one tile,
tiled (``predict_tiled``) otherwise, so the class ids equal the loop's (tested).

Shapes: an image ``(C, H, W)`` float32; its class ids ``(H, W)`` int64.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from ..image_file import read_image, scale_image
from ..inference import predict, predict_tiled


class ImageFiles(Dataset):
    """Image files read and scaled for a model, one per item.

    A file that cannot be read is returned as its error message instead of raising, so the main
    process can name the file in one clear ``ValueError`` (an exception raised inside a worker
    process arrives wrapped in the worker's traceback).

    Args:
        paths: the image files.
        channels: the model's input channels (1 or 3; ``None`` keeps the file's).
        normalize: the scaling used in training (``"unit"``, ``"per_image"``, ``None``).

    Shape:
        - Item: ``(index, image (C, H, W) float32 or an error message)``
    """

    def __init__(self, paths: Sequence[str | Path], channels: int | None, normalize: str | None) -> None:
        self.paths, self.channels, self.normalize = [Path(p) for p in paths], channels, normalize

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | str]:
        try:
            array = read_image(self.paths[index], self.channels)  # (H, W, C)
        except ValueError as error:
            return index, str(error)
        return index, torch.from_numpy(scale_image(array, self.normalize)).permute(2, 0, 1).contiguous()  # (C, H, W)


def predict_image(
    model: nn.Module, image: torch.Tensor, tile: int = 256, overlap: float = 0.25, blend: str = "gaussian",
    batch_size: int = 4, channels_last: bool = True,
) -> torch.Tensor:
    """Class ids of one image: whole if it fits in a ``tile``, else ``predict_tiled``.

    Shape:
        - ``image``: ``(C, H, W)``; Output: ``(H, W)`` int64
    """
    if max(image.shape[-2:]) > tile:
        return predict_tiled(model, image, tile=tile, overlap=overlap, blend=blend, batch_size=batch_size, channels_last=channels_last)
    return predict(model, image, channels_last=channels_last)


def predict_files(
    model: nn.Module,
    paths: Sequence[str | Path],
    channels: int | None = None,
    normalize: str | None = "unit",
    tile: int = 256,
    overlap: float = 0.25,
    blend: str = "gaussian",
    batch_size: int = 4,
    num_workers: int = 2,
    prefetch: int = 2,
    channels_last: bool = True,
) -> Iterator[tuple[Path, torch.Tensor]]:
    """Class ids for every file in ``paths``, in order, read by ``num_workers`` background processes.

    Args:
        model: the network (see ``predict``; each image goes through ``predict_image``).
        paths: image files of any sizes.
        channels, normalize: how to read and scale them (``ImageFiles``); ``channels`` defaults to
            ``model.config.in_channels`` when the model has one.
        tile, overlap, blend, batch_size, channels_last: as in ``predict_tiled``.
        num_workers: reader processes; 0 reads in this process (no overlap: the plain loop).
        prefetch: images each worker reads ahead (memory: ``num_workers * prefetch`` decoded images).

    Yields:
        ``(path, ids)`` with ids ``(H, W)`` int64, in the order of ``paths``.

    Raises:
        ValueError: a file cannot be read (named), or ``num_workers`` / ``prefetch`` are negative.
    """
    if num_workers < 0 or prefetch < 1:
        raise ValueError(f"num_workers must be >= 0 and prefetch >= 1; got num_workers={num_workers}, prefetch={prefetch}")
    if channels is None:
        channels = getattr(getattr(model, "config", None), "in_channels", None)
    files = ImageFiles(paths, channels, normalize)
    loader = DataLoader(files, batch_size=None, shuffle=False, num_workers=num_workers, prefetch_factor=prefetch if num_workers else None)
    for index, image in loader:
        if isinstance(image, str):
            raise ValueError(image)
        yield files.paths[index], predict_image(model, image, tile, overlap, blend, batch_size, channels_last)


def stored_values(ids: torch.Tensor, lookup: np.ndarray | None = None) -> np.ndarray:
    """Class ids as the array a mask file stores: mapped through ``lookup`` (class id -> raw value),
    in uint8 when every value fits, else uint16.

    Shape:
        - ``ids``: ``(H, W)``; Output: ``(H, W)``
    """
    values = ids.numpy() if lookup is None else lookup[ids.numpy()]
    return values.astype(np.uint8 if values.max(initial=0) <= 255 else np.uint16)
