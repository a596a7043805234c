"""Image and mask files: ``SegmentationFolder`` pairs ``images/NAME.ext`` with ``masks/NAME.png``.

Built in ``notebooks/09_real_data.ipynb``; the command line reads files with the same functions,
so training and prediction scale an image the same way. Reads PNG, TIFF, BMP and JPEG with Pillow;
the file's format must match its extension (a JPEG named ``.png`` is refused, since a mask saved as
JPEG has lost its class ids). Masks must be lossless (PNG, TIFF, BMP, GIF).

**One reading path for every pixel mode** (``read_image``, then ``scale_image``). What each Pillow
mode becomes, as ``(H, W, C)``, and how ``normalize="unit"`` brings it to ``[0, 1]``:

=========================  ============================  ========================================
mode                       read as                       ``"unit"`` scaling
=========================  ============================  ========================================
``1`` (1-bit)              uint8 0 / 255                 / 255
``L``, ``LA``              uint8 gray (alpha dropped)    / 255
``P``, ``RGB``, ``RGBA``,  uint8 RGB (palette applied,   / 255
``CMYK``, ``YCbCr``, ...   alpha dropped, CMYK converted)
``I;16`` (16-bit)          uint16 gray                   / 65535, never clipped to 8 bits
``I`` (32-bit integer)     uint16 when every value lies  / 65535 as 16-bit data; beyond 16 bits
                           in 0..65535, else int32       refused (no natural maximum): use
                                                         ``"per_image"``
``F`` (32-bit float)       float32 gray                  kept; values must lie in [0, 1]
=========================  ============================  ========================================

``channels=3`` repeats a gray image (of any depth, so 16-bit and float images keep their values);
``channels=1`` turns colour into gray with Pillow's ``L`` weights (8-bit colour only: Pillow has no
deeper colour mode). ``"per_image"`` subtracts each channel's mean and divides by its standard
deviation, whatever the depth. A float image with a NaN or infinite pixel, a file with more than
one frame (a stack or an animation), an empty image and a mode outside the table are refused with
the file named. Masks (``read_mask``) must hold integer class ids: 1-bit, 8-bit, palette (the
index), 16-bit or 32-bit integers >= 0; float masks, negative values and colours that differ
between channels are refused.

**Pixel limit.** Pillow refuses to decode images above ``PIL.Image.MAX_IMAGE_PIXELS`` (about 89
million pixels) as a guard against decompression bombs (a tiny file that decodes to gigabytes).
Every image read here is checked against that limit from its header, before decoding, and refused
with its size; for genuine large images raise it (``PIL.Image.MAX_IMAGE_PIXELS = N``, or
``--max-pixels N`` on the command line).
"""
from __future__ import annotations

import contextlib
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from .transforms import PairTransform

IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
MASK_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp", ".gif")
NORMALIZE_MODES = ("unit", "per_image", None)
# The Pillow formats a file of each extension must be in (a JPEG renamed to .png is refused). Only
# registered openers: Pillow's JPEG opener also opens MPO files; "MPO" itself has no opener (a
# KeyError from Image.open for any non-JPEG file named .jpg, found by tests/fuzz).
FORMATS = {".png": ("PNG",), ".tif": ("TIFF",), ".tiff": ("TIFF",), ".jpg": ("JPEG",),
           ".jpeg": ("JPEG",), ".bmp": ("BMP",), ".gif": ("GIF",)}
GRAY_MODES = ("1", "L", "LA", "I;16", "I;16B", "I;16L", "I;16N", "I", "F")
COLOUR_MODES = ("P", "PA", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "HSV")  # 8-bit, Pillow converts them
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
MASK_MODES = ("1", "L", "P", "LA", "PA", "RGB", "RGBA", *SIXTEEN_BIT_MODES, "I")
# What Pillow raises on a damaged or hostile file (a truncated stream, a bad chunk, a wrong length;
# IndexError: a truncated GIF asked for its frame count, found by tests/fuzz).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


@dataclass(frozen=True)
class ImageHeader:
    """What a file's header says, read without decoding its pixels (``read_header``)."""

    height: int
    width: int
    mode: str  # Pillow's pixel mode, e.g. "L", "I;16", "RGB"
    format: str  # Pillow's format name, e.g. "PNG"

    @property
    def channels(self) -> int:
        """1 for the gray modes, 3 for everything else (as ``read_image(path)`` returns it)."""
        return 1 if self.mode in GRAY_MODES else 3


def _pixel_limit_hint(what: str, path: Path, pixels: str, limit: int | None) -> str:
    return (
        f"{what} file {path} has {pixels} pixels, more than the limit of {limit:,} (Pillow's guard against "
        "decompression bombs, small files that decode to gigabytes). If the file is genuine, raise the limit: "
        "--max-pixels N on the command line, or PIL.Image.MAX_IMAGE_PIXELS = N in Python"
    )


def _unreadable(what: str, path: Path, error: BaseException) -> ValueError:
    detail = " ".join(str(error).split()) or type(error).__name__
    return ValueError(f"cannot read {what} file {path}: {detail}. Hint: is it a valid, complete PNG/TIFF/JPEG/BMP file?")


def _wrong_format(what: str, path: Path) -> ValueError:
    """The error for a file Pillow cannot read as the format its extension names."""
    expected = "/".join(FORMATS[path.suffix.lower()])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                actual = img.format
    except Exception:  # only to name the real format: any failure means "no image at all"
        actual = None
    if actual is None:
        return ValueError(f"cannot read {what} file {path}: it is not a {expected} file (nor any image Pillow knows). "
                          "Hint: is it a valid, complete image?")
    return ValueError(f"{what} file {path} is a {actual} file, not the {expected} its name says; "
                      f"rename it to its real extension, or re-save it as {expected}")


@contextlib.contextmanager
def _opened(path: Path, what: str) -> Iterator[Image.Image]:
    """Open ``path`` with Pillow, pinned to the format of its extension, within the pixel limit."""
    formats = FORMATS.get(path.suffix.lower())
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():  # above the limit is refused below, with the file named
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path, formats=formats)
    except Image.DecompressionBombError as error:
        found = re.search(r"\((\d+) pixels\)", str(error))
        raise ValueError(_pixel_limit_hint(what, path, f"{int(found.group(1)):,}" if found else "too many", limit)) from None
    except UnidentifiedImageError:
        raise (_wrong_format(what, path) if formats else _unreadable(what, path, OSError("unknown format"))) from None
    except DECODE_ERRORS as error:
        raise _unreadable(what, path, error) from error
    with img:
        width, height = img.size
        if limit is not None and width * height > limit:
            raise ValueError(_pixel_limit_hint(what, path, f"{width}x{height} = {width * height:,}", limit))
        if width * height == 0:
            raise ValueError(f"{what} file {path} is {width}x{height}: it has no pixels")
        try:
            frames = getattr(img, "n_frames", 1)
        except DECODE_ERRORS as error:
            raise _unreadable(what, path, error) from error
        if frames != 1:
            raise ValueError(f"{what} file {path} holds {frames} frames (a stack or an animation); expected one "
                             "image per file: save each frame as its own file")
        yield img


def read_header(path: str | Path, what: str = "image") -> ImageHeader:
    """Size, mode and format of an image file from its header (pixels are not decoded).

    Raises:
        ValueError: unreadable, of another format than its extension, above the pixel limit,
            empty, or more than one frame (the file is named).
    """
    path = Path(path)
    with _opened(path, what) as img:
        return ImageHeader(img.height, img.width, img.mode, img.format or "")


def _decode(path: Path, what: str, convert: str | None) -> tuple[str, np.ndarray]:
    """``(mode, pixels)``: the decoded file, converted to the Pillow mode ``convert`` when given."""
    with _opened(path, what) as img:
        mode = img.mode
        try:
            img.load()
            if convert is not None and convert != mode:
                img = img.convert(convert)
            pixels = np.array(img)
        except DECODE_ERRORS as error:
            raise _unreadable(what, path, error) from error
    return mode, pixels


def _image_conversion(mode: str, channels: int | None) -> str | None:
    """The Pillow mode to convert an image of ``mode`` to before reading it (``None``: as it is)."""
    if mode in ("1", "LA"):
        return "L"  # 1-bit to 0/255; gray+alpha to gray
    if mode in GRAY_MODES:
        return None  # L, 16-bit, 32-bit integer and float stay as they are (channels in NumPy)
    return "L" if channels == 1 else "RGB"  # 8-bit colour (COLOUR_MODES): palette, alpha, CMYK, ...


def read_image(path: str | Path, channels: int | None = None) -> np.ndarray:
    """Read an image file into ``(H, W, C)``; see the module docstring for what each mode becomes.

    Args:
        path: the file.
        channels: 1 (gray) or 3 (RGB); ``None`` keeps the file's (1 for gray modes, 3 for colour).

    Returns:
        ``(H, W, C)`` uint8, uint16, int32 (integers beyond 16 bits) or float32 (finite).

    Raises:
        ValueError: the file cannot be read, is of another format than its extension, is above
            the pixel limit, has several frames, a mode outside the table, or NaN/infinite values.
    """
    path = Path(path)
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be None, 1 or 3; got {channels!r}")
    header = read_header(path)
    if header.mode not in GRAY_MODES + COLOUR_MODES:
        raise ValueError(f"image file {path} has the pixel mode {header.mode}, which is read neither as gray nor as "
                         "RGB here; save it as 8- or 16-bit gray, 32-bit float gray or 8-bit RGB")
    mode, array = _decode(path, "image", _image_conversion(header.mode, channels))
    if array.dtype.kind == "u" and array.dtype.itemsize == 2:
        array = array.astype(np.uint16, copy=False)  # big-endian 16-bit to the machine's order
    elif mode == "I" and array.size and array.min() >= 0 and array.max() <= 65535:
        array = array.astype(np.uint16)  # 16-bit data in a 32-bit container
    elif array.dtype.kind == "f":
        bad = int((~np.isfinite(array)).sum())
        if bad:
            raise ValueError(f"image file {path} has {bad:,} NaN or infinite pixel(s); fill them (e.g. with 0) "
                             "before training or predicting")
        array = array.astype(np.float32, copy=False)
    if array.ndim == 2:
        array = array[..., None]  # (H, W, 1)
    if channels == 3 and array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)  # (H, W, 3): gray of any depth, values kept
    return array


def scale_image(array: np.ndarray, normalize: str | None, source: str = "image") -> np.ndarray:
    """Scale an image array as ``SegmentationFolder`` does (so prediction sees training's scaling).

    Args:
        array: ``(H, W, C)`` image as ``read_image`` returns it (uint8, uint16, int32 or float).
        normalize: ``"unit"`` divides uint8 by 255 and uint16 by 65535 and keeps floats (which must
            lie in [0, 1]); ``"per_image"`` subtracts each channel's mean and divides by its std;
            ``None`` keeps the values.
        source: what the array is, for error messages (the file name).

    Returns:
        ``(H, W, C)`` float32.

    Raises:
        ValueError: ``"unit"`` on integers beyond 16 bits or signed, or on floats outside [0, 1].
    """
    if normalize not in NORMALIZE_MODES:
        raise ValueError(f"normalize must be one of {NORMALIZE_MODES}; got {normalize!r}")
    array = np.asarray(array)
    image = array.astype(np.float32)
    if normalize == "unit":
        if array.dtype in (np.uint8, np.uint16, np.bool_):
            image /= 1 if array.dtype == np.bool_ else np.iinfo(array.dtype).max
        elif array.dtype.kind == "f":
            lo, hi = (float(image.min()), float(image.max())) if image.size else (0.0, 0.0)
            if lo < 0 or hi > 1:
                raise ValueError(
                    f"{source} holds floats from {lo:g} to {hi:g}, but 'unit' scaling takes floats as already in "
                    "[0, 1]; use normalize='per_image' (--normalize per_image), or rescale the file to [0, 1]"
                )
        else:
            lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
            raise ValueError(
                f"{source} holds {array.dtype} values from {lo} to {hi}, beyond the 8 and 16 bits 'unit' scaling "
                "divides by (255, 65535); use normalize='per_image' (--normalize per_image), or save it as 16-bit"
            )
    elif normalize == "per_image":
        mean = image.mean(axis=(0, 1), keepdims=True, dtype=np.float64)
        std = image.std(axis=(0, 1), keepdims=True, dtype=np.float64)
        image = ((image - mean) / np.maximum(std, 1e-6)).astype(np.float32)
    return image


def load_image(path: str | Path, channels: int | None, normalize: str | None) -> torch.Tensor:
    """Read and scale one image file as ``SegmentationFolder`` does: ``(C, H, W)`` float32."""
    array = read_image(path, channels)  # (H, W, C)
    scaled = scale_image(array, normalize, f"image file {path}")
    return torch.from_numpy(scaled).permute(2, 0, 1).contiguous()  # (C, H, W)


def read_mask(path: str | Path, lookup: np.ndarray | None) -> np.ndarray:
    """Read a mask file into ``(H, W)`` int64 class ids, mapping raw values through ``lookup``.

    Args:
        path: the file (1-bit, 8-bit, palette, 16-bit or 32-bit integer; gray, or colour with equal
            channels; alpha only when it is constant).
        lookup: ``mask_lookup(mask_values)``, or ``None`` to take the raw values as class ids.

    Raises:
        ValueError: unreadable file, a float or colour mask, negative values, a varying alpha
            channel, or values ``lookup`` does not map (the file and the values are named).
    """
    path = Path(path)
    header = read_header(path, "mask")
    if header.mode == "F":
        raise ValueError(
            f"mask file {path} holds floating-point values (mode F); a mask must hold integer class ids "
            "(floats would be truncated): save it as an 8- or 16-bit PNG of class ids"
        )
    if header.mode not in MASK_MODES:
        raise ValueError(f"mask file {path} has the pixel mode {header.mode}, which is no mask format; save the "
                         "mask as a gray 8- or 16-bit PNG of class ids")
    _, raw = _decode(path, "mask", None)
    if raw.dtype == bool:  # 1-bit masks
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
    raw = raw.astype(np.int64)
    low = int(raw.min())
    if low < 0:
        negative = np.unique(raw[raw < 0])[:5].tolist()
        raise ValueError(
            f"mask {path} has negative values {negative}; class ids and mask values must be >= 0. Hint: store "
            "unlabelled pixels as a positive value (e.g. 255) and pass it as ignore_index (--ignore-index)"
        )
    if lookup is None:
        return raw
    values = np.unique(raw)
    unmapped = values[(values >= len(lookup)) | (lookup[np.minimum(values, len(lookup) - 1)] < 0)]
    if unmapped.size:
        raise ValueError(
            f"mask {path} has values {unmapped[:10].tolist()} that mask_values does not map; "
            f"mapped values are {np.flatnonzero(lookup >= 0).tolist()[:20]}. Hint: add them to mask_values "
            "(map unlabelled pixels to your ignore_index)"
        )
    return lookup[raw]


MAX_MASK_VALUE = 65535  # the largest raw value mask_values may name (16-bit masks)


def mask_lookup(mask_values: Mapping[int, int] | None) -> np.ndarray | None:
    """A lookup table ``raw pixel value -> class id`` (``-1``: not mapped) from ``{raw: class}``.

    Raises:
        TypeError: not a non-empty dict of integers.
        ValueError: a raw value outside ``[0, 65535]`` or a negative class id.
    """
    if mask_values is None:
        return None
    if not isinstance(mask_values, Mapping) or not mask_values:
        raise TypeError(f"mask_values must be a non-empty dict like {{0: 0, 255: 1}}; got {mask_values!r}")
    for raw, cls in mask_values.items():
        for value in (raw, cls):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"mask_values must map integers to integers, like {{0: 0, 255: 1}}; got {raw!r}: {cls!r}")
    keys = [int(k) for k in mask_values]
    if min(keys) < 0 or max(keys) > MAX_MASK_VALUE:
        raise ValueError(f"mask_values keys must be pixel values in [0, {MAX_MASK_VALUE}]; got {sorted(keys)}")
    lookup = np.full(max(keys) + 1, -1, dtype=np.int64)
    for raw, cls in mask_values.items():
        if int(cls) < 0:
            raise ValueError(f"mask_values maps {raw} to {cls}; class ids (and ignore_index) must be >= 0")
        lookup[int(raw)] = int(cls)
    return lookup


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
