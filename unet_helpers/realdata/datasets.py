"""Ready-made loaders for the two real datasets, built in ``notebooks/09_real_data.ipynb``.

- ``nuclei_dataset``: DSB2018 nuclei (``dsb2018_nuclei_256``), 256x256 grayscale, 2 classes
  (``NUCLEI_CLASSES``), a seeded random split by image.
- ``sstem_dataset``: Drosophila ssTEM (``drosophila_vnc_sstem``), 1024x1024, 5 classes
  (``SSTEM_CLASSES``), split by blocks of consecutive slices, never at random: neighbouring
  slices look almost alike, so a random split would put near-copies of training slices into
  validation and report a score the model has not earned.

Both return a ``SegmentationFolder`` (items: image ``(1, H, W)`` float32, mask ``(H, W)`` int64).
Where the files are looked for, and how they are downloaded when missing, is in ``download.py``.
The ssTEM data is CC BY-NC-SA 3.0: non-commercial use, and publications must cite Gerhard,
Funke, Martel, Cardona, Fetter, *Segmented anisotropic ssTEM dataset of neural tissue*, figshare
2013, doi:10.6084/m9.figshare.856713. The nuclei data is CC0.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from ..data import split_indices
from ..mask_file import read_mask
from ..folder import SegmentationFolder
from ..transforms import PairTransform, training_transform
from .download import dataset_dir
from .prepare import SSTEM_LABEL_TO_CLASS, sstem_labels_to_classes
from .weightmap import WeightMapDataset, class_balance_weights

__all__ = [
    "NUCLEI_CLASSES",
    "SSTEM_CLASSES",
    "SSTEM_LABEL_TO_CLASS",
    "nuclei_dataset",
    "nuclei_instances",
    "sstem_dataset",
    "sstem_labels_to_classes",
]

NUCLEI = "dsb2018_nuclei_256"
SSTEM = "drosophila_vnc_sstem"
NUCLEI_CLASSES = ("background", "nucleus")
SSTEM_CLASSES = ("intracellular", "membrane", "glia/extracellular", "mitochondria", "synapse")
SPLITS = ("train", "val", "all")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


def nuclei_dataset(
    split: str = "train",
    root: str | Path | None = None,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    crop: int | tuple[int, int] | None = None,
    augment: bool = False,
    transform: PairTransform | None = None,
    border_weights: bool = False,
    cache: bool = False,
    download: bool = True,
    progress: bool = True,
) -> SegmentationFolder | WeightMapDataset:
    """DSB2018 nuclei: 0/255 masks mapped to class ids 0/1, each image normalised to mean 0, std 1.

    Args:
        split: ``"train"``, ``"val"`` or ``"all"``.
        root: a folder holding ``dsb2018_nuclei_256/`` (or that folder itself); default
            ``UNET_DATA_DIR``, then the user cache (see ``download.locate``).
        val_fraction, seed: the random split by image (``data.split_indices``); the same seed
            always gives the same split, and train and val never share an image.
        crop: train on random ``crop x crop`` windows (``RandomCrop``). augment: random flips and
            quarter turns (``RandomFlipRotate``). transform: a further paired transform, applied last.
        border_weights: return ``(image, mask, weights)`` triples with the U-Net border weight
            map (``weightmap.WeightMapDataset``, w0=10, sigma=5) for ``pixel_weights=``; its class
            balance ``w_c`` comes from the training split's masks, for every split.
        cache: keep decoded images in memory. download, progress: see ``download.dataset_dir``.

    Shape:
        - Item: image ``(1, H, W)`` float32, mask ``(H, W)`` int64 in {0, 1}
          (and weights ``(H, W)`` float32 with ``border_weights``); ``H = W = 256`` without ``crop``

    Returns:
        A ``SegmentationFolder`` (or a ``WeightMapDataset`` around one).
    """
    _check_split(split)
    folder = dataset_dir(NUCLEI, root, download=download, progress=progress)
    names = sorted(path.stem for path in (folder / "images").glob("*.png"))
    train, val = split_indices(len(names), val_fraction, seed)
    splits = {"all": names, "train": sorted(names[i] for i in train), "val": sorted(names[i] for i in val)}
    pipeline = training_transform(crop, augment, transform=transform)
    dataset = SegmentationFolder(
        folder, mask_values={0: 0, 255: 1}, channels=1, normalize="per_image", names=splits[split], cache=cache,
        transform=None if border_weights else pipeline,
    )
    if not border_weights:
        return dataset
    # w_c from the training images only, the same for every split (no peeking at validation labels)
    reference = splits["all" if split == "all" else "train"]
    masks = np.stack([read_mask(folder / "masks" / f"{name}.png", dataset.lookup) for name in reference])
    return WeightMapDataset(dataset, class_weights=class_balance_weights(masks, 2), transform=pipeline)


def nuclei_instances(dataset: SegmentationFolder, index: int) -> torch.Tensor:
    """The instance map of item ``index`` (``instances/NAME.png``): 0 background, k = k-th nucleus.

    Shape:
        - Output: ``(H, W)`` int64, untransformed (as ``dataset.load(index)``)
    """
    path = Path(dataset.root) / "instances" / f"{dataset.names[index]}.png"
    if not path.is_file():
        raise FileNotFoundError(f"instance map {path} does not exist; expected instances/NAME.png beside images/")
    return torch.from_numpy(read_mask(path, None))


def _slice_names(slices: Iterable[int], available: Sequence[str], which: str) -> list[str]:
    names = []
    for index in slices:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"{which} must hold slice numbers (int); got {index!r}")
        if f"{index:02d}" not in available:
            raise ValueError(f"{which} has slice {index}, but the slices on disk are {available[0]}..{available[-1]}")
        names.append(f"{index:02d}")
    return names


def sstem_dataset(
    split: str = "train",
    root: str | Path | None = None,
    *,
    train_slices: Iterable[int] = range(0, 16),
    val_slices: Iterable[int] = range(16, 20),
    crop: int | tuple[int, int] | None = None,
    augment: bool = False,
    transform: PairTransform | None = None,
    normalize: str | None = "unit",
    cache: bool = True,
    download: bool = True,
    progress: bool = True,
) -> SegmentationFolder:
    """Drosophila ssTEM: 5 classes (``SSTEM_CLASSES``), split by blocks of slices.

    Args:
        split: ``"train"`` (``train_slices``), ``"val"`` (``val_slices``) or ``"all"`` (every slice).
        root: a folder holding ``drosophila_vnc_sstem/`` (or that folder itself); default as in
            ``download.locate``.
        train_slices, val_slices: slice numbers 0..19; they must not overlap.
        crop: random ``crop x crop`` windows; a 1024x1024 slice is too large a batch for a CPU.
            For more crops per epoch, repeat the set: ``ConcatDataset([ds] * 8)``.
        augment, transform: as in ``nuclei_dataset``. normalize: see ``SegmentationFolder``.
        cache: keep the decoded slices in memory (about 12 MB each), so that crops of the same
            slice are not decoded again. download, progress: see ``download.dataset_dir``.

    Shape:
        - Item: image ``(1, H, W)`` float32, mask ``(H, W)`` int64 in 0..4; ``H = W = 1024`` without ``crop``
    """
    _check_split(split)
    train_slices, val_slices = list(train_slices), list(val_slices)
    shared = sorted(set(train_slices) & set(val_slices))
    if shared:
        raise ValueError(
            f"train_slices and val_slices share slices {shared}; neighbouring slices are nearly alike, "
            "so keep the two blocks apart (e.g. train 0-15, val 16-19)"
        )
    folder = dataset_dir(SSTEM, root, download=download, progress=progress)
    available = sorted(path.stem for path in (folder / "images").glob("*.tif"))
    if not available:
        raise ValueError(f"no slices NN.tif in {folder / 'images'}; expected images/00.tif .. images/19.tif")
    slices = {"train": train_slices, "val": val_slices, "all": [int(n) for n in available]}[split]
    names = _slice_names(slices, available, f"{split}_slices" if split != "all" else "slices")
    if not names:
        raise ValueError(f"{split}_slices is empty; give at least one slice number")
    return SegmentationFolder(
        folder, mask_values={c: c for c in range(len(SSTEM_CLASSES))}, channels=1, normalize=normalize,
        names=names, cache=cache, transform=training_transform(crop, augment, transform=transform),
    )
