"""A folder of training pairs: ``SegmentationFolder`` pairs ``images/NAME.ext`` with ``masks/NAME.png``.

Built in ``notebooks/09_real_data.ipynb``. Files are paired by stem (``files_by_stem``, which refuses
two files with one stem); each image is read and scaled by ``image_file.py`` and each mask by
``mask_file.py``, the same functions the command line uses, so training and prediction read a file
the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch.utils.data import Dataset

from .image_file import IMAGE_EXTENSIONS, NORMALIZE_MODES, load_image, read_header
from .mask_file import MASK_EXTENSIONS, mask_lookup, read_mask
from .transforms import PairTransform


def files_by_stem(folder: str | Path, extensions: Sequence[str]) -> dict[str, Path]:
    """``{stem: path}`` of the files in ``folder`` with one of ``extensions`` (hidden files skipped).

    Raises:
        ValueError: two files share a stem (``a.png`` and ``a.tif``): which one is meant is
            ambiguous, so both are named instead of silently picking one.
    """
    files: dict[str, Path] = {}
    for path in sorted(Path(folder).iterdir()):
        if not (path.is_file() and path.suffix.lower() in extensions and not path.name.startswith(".")):
            continue
        if path.stem in files:
            raise ValueError(
                f"{files[path.stem]} and {path} have the same name {path.stem!r}; images and masks are paired "
                "by name, so keep one of them (rename or move the other)"
            )
        files[path.stem] = path
    return files


class SegmentationFolder(Dataset):
    """Images and masks from ``root/images`` and ``root/masks``, paired by file stem.

    Every image needs a mask with the same stem and size, and (with ``channels=None``) every
    image the same number of channels; all of it is checked when the dataset is built, from the
    file headers, so a bad pair fails at once with the file named, not in the middle of an epoch.
    ``verify()`` also decodes every pair and checks its values (what the command line's ``train``
    does before the first step).

    Args:
        root: folder holding the two sub-folders.
        image_dir, mask_dir: names of the sub-folders.
        mask_values: maps raw mask values to class ids, e.g. ``{0: 0, 255: 1}`` for 0/255 masks;
            a value left out is an error. ``None`` uses the raw values as class ids.
        channels: force 1 (grayscale) or 3 (RGB) channels; ``None`` keeps the file's, which must
            then be the same for all images.
        normalize: ``"unit"`` scales to ``[0, 1]`` by the bit depth; ``"per_image"`` subtracts each
            image's mean and divides by its std (dim microscopy); ``None`` keeps raw values. See
            ``scale_image`` and the module docstring for every pixel mode.
        transform: optional ``f(image, mask) -> (image, mask)`` on tensors (see ``transforms.py``).
        names: optional list of stems to use (a split); default all pairs.
        cache: keep decoded pairs in memory after the first read.

    Attributes:
        names, image_paths, mask_paths: the pairs, in order.
        sizes: ``(H, W)`` of each pair, from the headers.
        channels: the channels every item has (``channels``, or the files' common count).

    Shape:
        - Item: image ``(C, H, W)`` float32, mask ``(H, W)`` int64

    Raises:
        FileNotFoundError: ``root`` or a sub-folder does not exist.
        ValueError: no images; an image without a mask (named); sizes differ (named); gray and
            colour images mixed with ``channels=None`` (named); unreadable file (named).
    """

    def __init__(
        self,
        root: str | Path,
        image_dir: str = "images",
        mask_dir: str = "masks",
        mask_values: Mapping[int, int] | None = None,
        channels: int | None = None,
        normalize: str | None = "unit",
        transform: PairTransform | None = None,
        names: Sequence[str] | None = None,
        cache: bool = False,
    ) -> None:
        self.root = Path(root)
        if normalize not in NORMALIZE_MODES:
            raise ValueError(f"normalize must be one of {NORMALIZE_MODES}; got {normalize!r}")
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be None, 1 or 3; got {channels!r}")
        image_folder, mask_folder = self.root / image_dir, self.root / mask_dir
        for folder in (image_folder, mask_folder):
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"folder {folder} does not exist; expected {self.root}/{image_dir}/NAME.png with "
                    f"{self.root}/{mask_dir}/NAME.png beside it"
                )
        images = files_by_stem(image_folder, IMAGE_EXTENSIONS)
        masks = files_by_stem(mask_folder, MASK_EXTENSIONS + (".jpg", ".jpeg"))
        if names is not None:
            missing = [n for n in names if n not in images]
            if missing:
                raise ValueError(f"names not found in {image_folder}: {missing[:5]}")
            images = {n: images[n] for n in names}
        if not images:
            raise ValueError(
                f"no images in {image_folder} (looked for {', '.join(IMAGE_EXTENSIONS)}); "
                "check the path, or put the images in an 'images' sub-folder"
            )
        self.lookup = mask_lookup(mask_values)
        self.names, self.image_paths, self.mask_paths, self.sizes = [], [], [], []
        by_channels: dict[int, Path] = {}  # one example file per channel count
        for stem, image_path in images.items():
            mask_path = masks.get(stem)
            if mask_path is None:
                raise ValueError(
                    f"image {image_path} has no mask: expected {mask_folder / stem}.png (same stem, "
                    f"one of {', '.join(MASK_EXTENSIONS)})"
                )
            if mask_path.suffix.lower() in (".jpg", ".jpeg"):
                raise ValueError(f"mask {mask_path} is a JPEG; JPEG is lossy and corrupts class ids, save masks as PNG")
            image, mask = read_header(image_path, "image"), read_header(mask_path, "mask")
            if (image.height, image.width) != (mask.height, mask.width):
                raise ValueError(
                    f"image {image_path} is {image.height}x{image.width} (HxW) but its mask "
                    f"{mask_path} is {mask.height}x{mask.width}; a mask must have its image's size"
                )
            by_channels.setdefault(image.channels, image_path)
            self.names.append(stem)
            self.image_paths.append(image_path)
            self.mask_paths.append(mask_path)
            self.sizes.append((image.height, image.width))
        if channels is None and len(by_channels) > 1:
            raise ValueError(
                f"the images mix gray and colour: {by_channels[1]} is gray but {by_channels[3]} is colour, and a "
                "batch needs one channel count; pass channels=1 or channels=3 (--channels 1 or 3) to read them all alike"
            )
        self.channels = channels or next(iter(by_channels))
        self.normalize, self.transform = normalize, transform
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The pair at ``index`` before ``transform``: ``(C, H, W)`` float32 and ``(H, W)`` int64."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        image = load_image(self.image_paths[index], self.channels, self.normalize)  # (C, H, W)
        mask = torch.from_numpy(read_mask(self.mask_paths[index], self.lookup))  # (H, W)
        if self._cache is not None:
            self._cache[index] = (image, mask)
        return image, mask

    def verify(self, num_classes: int | None = None, ignore_index: int | None = None) -> None:
        """Decode every pair once and check it: readable, scalable, class ids below ``num_classes``.

        Costs one pass over the files (what a first epoch reads anyway); run it before training so a
        bad file stops the run before the first step, with the file named.

        Raises:
            ValueError: the first file that cannot be read or scaled, or a mask with a class id
                ``>= num_classes`` that is not ``ignore_index``.
        """
        for index, mask_path in enumerate(self.mask_paths):
            _, mask = self.load(index)
            if num_classes is None:
                continue
            labelled = mask[mask != ignore_index] if ignore_index is not None else mask
            if labelled.numel() and int(labelled.max()) >= num_classes:
                found = sorted({int(v) for v in labelled.unique() if v >= num_classes})
                raise ValueError(
                    f"mask {mask_path} has class id(s) {found[:5]} but there are {num_classes} classes (ids 0.."
                    f"{num_classes - 1}); map raw values with mask_values (--mask-values), or pass the right "
                    "number of classes (--classes) or ignore_index (--ignore-index)"
                )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.load(index)
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask
