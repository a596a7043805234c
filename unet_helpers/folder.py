"""Image and mask files: ``SegmentationFolder`` pairs ``images/NAME.ext`` with ``masks/NAME.png``.

Built in ``notebooks/09_real_data.ipynb``; the command line reads files with the same functions,
so training and prediction scale an image the same way. Reads PNG, TIFF, BMP and JPEG with Pillow.
Masks must be lossless (PNG, TIFF, BMP, GIF): JPEG smears the edges of a mask into values that
are no class at all.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from .transforms import PairTransform

IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
MASK_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp", ".gif")
NORMALIZE_MODES = ("unit", "per_image", None)


def read_image(path: Path, channels: int | None = None) -> np.ndarray:
    """Read an image file into ``(H, W, C)`` (``C`` = 1, 3, or ``channels``), keeping its dtype.

    Raises ``ValueError`` naming the file when Pillow cannot read it.
    """
    try:
        with Image.open(path) as img:
            if channels == 1 and img.mode not in ("L", "I;16", "I", "F"):
                img = img.convert("L")
            elif channels == 3 or (channels is None and img.mode in ("RGBA", "P", "CMYK", "LA", "YCbCr")):
                img = img.convert("RGB")
            array = np.array(img)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot read image file {path}: {error}. Hint: is it a valid PNG/TIFF/JPEG?") from error
    return array[..., None] if array.ndim == 2 else array


def read_mask(path: Path, lookup: np.ndarray | None) -> np.ndarray:
    """Read a mask file into ``(H, W)`` int64 class ids, mapping raw values through ``lookup``."""
    try:
        with Image.open(path) as img:
            raw = np.array(img)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot read mask file {path}: {error}") from error
    if raw.dtype == bool:  # 1-bit masks (Pillow mode "1")
        raw = raw.astype(np.uint8)
    if raw.ndim == 3 and raw.shape[-1] in (2, 4):  # gray+alpha or RGBA: alpha says nothing about classes
        if (raw[..., -1] != raw[..., -1].flat[0]).any():
            raise ValueError(
                f"mask {path} has a transparency channel that varies; expected a mask of class ids. "
                "Hint: flatten the transparency into the mask before training"
            )
        raw = raw[..., :-1]
    if raw.ndim == 3:
        if not (raw[..., :3] == raw[..., :1]).all():
            raise ValueError(
                f"mask {path} has colour channels that differ ({raw.shape}); expected a single-channel "
                "mask of class ids. Hint: convert colour-coded masks to class ids first"
            )
        raw = raw[..., 0]
    if lookup is None:
        return raw.astype(np.int64)
    values = np.unique(raw)
    unmapped = values[(values >= len(lookup)) | (lookup[np.minimum(values, len(lookup) - 1)] < 0)]
    if unmapped.size:
        raise ValueError(
            f"mask {path} has values {unmapped[:10].tolist()} that mask_values does not map; "
            f"mapped values are {np.flatnonzero(lookup >= 0).tolist()[:20]}. Hint: add them to mask_values "
            "(map unlabelled pixels to your ignore_index)"
        )
    return lookup[raw].astype(np.int64)


def scale_image(array: np.ndarray, normalize: str | None) -> np.ndarray:
    """Scale an image array as ``SegmentationFolder`` does (so prediction sees training's scaling).

    Args:
        array: ``(H, W, C)`` image as read from the file (integer or float).
        normalize: ``"unit"`` divides integers by their dtype's maximum; ``"per_image"`` subtracts
            each channel's mean and divides by its std; ``None`` keeps the values.

    Returns:
        ``(H, W, C)`` float32.
    """
    if normalize not in NORMALIZE_MODES:
        raise ValueError(f"normalize must be one of {NORMALIZE_MODES}; got {normalize!r}")
    image = array.astype(np.float32)
    if normalize == "unit" and np.issubdtype(array.dtype, np.integer):
        image /= np.iinfo(array.dtype).max
    elif normalize == "per_image":
        mean = image.mean(axis=(0, 1), keepdims=True)
        std = image.std(axis=(0, 1), keepdims=True)
        image = (image - mean) / np.maximum(std, 1e-6)
    return image


def load_image(path: Path, channels: int | None, normalize: str | None) -> torch.Tensor:
    """Read and scale one image file as ``SegmentationFolder`` does: ``(C, H, W)`` float32."""
    array = read_image(path, channels)  # (H, W, C)
    return torch.from_numpy(scale_image(array, normalize)).permute(2, 0, 1).contiguous()  # (C, H, W)


def mask_lookup(mask_values: Mapping[int, int] | None) -> np.ndarray | None:
    """A lookup table ``raw pixel value -> class id`` (``-1``: not mapped) from ``{raw: class}``."""
    if mask_values is None:
        return None
    if not isinstance(mask_values, Mapping) or not mask_values:
        raise TypeError(f"mask_values must be a non-empty dict like {{0: 0, 255: 1}}; got {mask_values!r}")
    keys = [int(k) for k in mask_values]
    if min(keys) < 0 or max(keys) > 65535:
        raise ValueError(f"mask_values keys must be pixel values in [0, 65535]; got {sorted(keys)}")
    lookup = np.full(max(keys) + 1, -1, dtype=np.int64)
    for raw, cls in mask_values.items():
        if int(cls) < 0:
            raise ValueError(f"mask_values maps {raw} to {cls}; class ids (and ignore_index) must be >= 0")
        lookup[int(raw)] = int(cls)
    return lookup


def files_by_stem(folder: Path, extensions: Sequence[str]) -> dict[str, Path]:
    """``{stem: path}`` of the files in ``folder`` with one of ``extensions`` (hidden files skipped).

    Raises:
        ValueError: two files share a stem (``a.png`` and ``a.tif``): which one is meant is
            ambiguous, so both are named instead of silently picking one.
    """
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not (path.is_file() and path.suffix.lower() in extensions and not path.name.startswith(".")):
            continue
        if path.stem in files:
            raise ValueError(
                f"{files[path.stem]} and {path} have the same name {path.stem!r}; images and masks are paired "
                "by name, so keep one of them (rename or move the other)"
            )
        files[path.stem] = path
    return files


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as img:
            return img.size[1], img.size[0]  # (H, W)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot read image file {path}: {error}. Hint: is it a valid PNG/TIFF/JPEG?") from error


class SegmentationFolder(Dataset):
    """Images and masks from ``root/images`` and ``root/masks``, paired by file stem.

    Every image needs a mask with the same stem and size; both are checked when the dataset is
    built (from the file headers), so a bad pair fails at once with the file named, not in the
    middle of an epoch.

    Args:
        root: folder holding the two sub-folders.
        image_dir, mask_dir: names of the sub-folders.
        mask_values: maps raw mask values to class ids, e.g. ``{0: 0, 255: 1}`` for 0/255 masks;
            a value left out is an error. ``None`` uses the raw values as class ids.
        channels: force 1 (grayscale) or 3 (RGB) channels; ``None`` keeps the file's.
        normalize: ``"unit"`` scales to ``[0, 1]`` by the dtype's maximum; ``"per_image"``
            subtracts each image's mean and divides by its std (dim microscopy); ``None`` keeps raw values.
        transform: optional ``f(image, mask) -> (image, mask)`` on tensors (see ``transforms.py``).
        names: optional list of stems to use (a split); default all pairs.
        cache: keep decoded pairs in memory after the first read.

    Shape:
        - Item: image ``(C, H, W)`` float32, mask ``(H, W)`` int64

    Raises:
        FileNotFoundError: ``root`` or a sub-folder does not exist.
        ValueError: no images; an image without a mask (named); sizes differ (named); unreadable file (named).
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
        self.names, self.image_paths, self.mask_paths = [], [], []
        for stem, image_path in images.items():
            mask_path = masks.get(stem)
            if mask_path is None:
                raise ValueError(
                    f"image {image_path} has no mask: expected {mask_folder / stem}.png (same stem, "
                    f"one of {', '.join(MASK_EXTENSIONS)})"
                )
            if mask_path.suffix.lower() in (".jpg", ".jpeg"):
                raise ValueError(f"mask {mask_path} is a JPEG; JPEG is lossy and corrupts class ids, save masks as PNG")
            image_size, mask_size = _image_size(image_path), _image_size(mask_path)
            if image_size != mask_size:
                raise ValueError(
                    f"image {image_path} is {image_size[0]}x{image_size[1]} (HxW) but its mask "
                    f"{mask_path} is {mask_size[0]}x{mask_size[1]}; a mask must have its image's size"
                )
            self.names.append(stem)
            self.image_paths.append(image_path)
            self.mask_paths.append(mask_path)
        self.lookup = mask_lookup(mask_values)
        self.channels, self.normalize, self.transform = channels, normalize, transform
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

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.load(index)
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask
