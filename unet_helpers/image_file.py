"""One image file, read correctly: ``read_header``, ``read_image``, ``scale_image``, ``load_image``.

Used by ``SegmentationFolder`` (``folder.py``, lesson 09), the command line and whole-slide
reading, so training and prediction scale an image the same way; masks are read by ``mask_file.py``
with the same opener (``open_checked``; masks must be lossless: PNG, TIFF, BMP, GIF). Reads PNG,
TIFF, BMP and JPEG with Pillow; the file's format must match its extension (a JPEG named ``.png``
is refused, since a mask saved as JPEG has lost its class ids).

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
the file named. What a mask may hold is ``mask_file.py``'s concern.

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
from typing import Iterator

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
NORMALIZE_MODES = ("unit", "per_image", None)
# The Pillow formats a file of each extension must be in (a JPEG renamed to .png is refused). Only
# registered openers: Pillow's JPEG opener also opens MPO files; "MPO" itself has no opener (a
# KeyError from Image.open for any non-JPEG file named .jpg, found by tests/fuzz).
FORMATS = {".png": ("PNG",), ".tif": ("TIFF",), ".tiff": ("TIFF",), ".jpg": ("JPEG",),
           ".jpeg": ("JPEG",), ".bmp": ("BMP",), ".gif": ("GIF",)}
GRAY_MODES = ("1", "L", "LA", "I;16", "I;16B", "I;16L", "I;16N", "I", "F")
COLOUR_MODES = ("P", "PA", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "HSV")  # 8-bit, Pillow converts them
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
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
def open_checked(path: Path, what: str) -> Iterator[Image.Image]:
    """Open ``path`` with Pillow, pinned to the format of its extension, within the pixel limit.

    Refuses (``ValueError``, the file named): another format than the extension, above
    ``PIL.Image.MAX_IMAGE_PIXELS``, no pixels, more than one frame, a damaged file.
    """
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
    with open_checked(path, what) as img:
        return ImageHeader(img.height, img.width, img.mode, img.format or "")


def decode_pixels(path: Path, what: str, convert: str | None) -> tuple[str, np.ndarray]:
    """``(mode, pixels)``: the decoded file, converted to the Pillow mode ``convert`` when given."""
    with open_checked(path, what) as img:
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
    mode, array = decode_pixels(path, "image", _image_conversion(header.mode, channels))
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
