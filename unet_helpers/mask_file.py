"""One mask file, read as class ids: ``read_mask`` and the raw-value mapping ``mask_lookup``.

A mask holds integer class ids (or raw values such as 0/255 that ``mask_values`` maps to ids):
1-bit, 8-bit, palette (the index), 16-bit or 32-bit integers >= 0, gray or colour with equal
channels, alpha only when constant. Float masks, negative values, colours that differ between
channels and values the mapping does not name are refused with the file named. Files are opened
as ``image_file.py`` opens images (format pinned to the extension, pixel limit from the header).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from .image_file import SIXTEEN_BIT_MODES, decode_pixels, read_header

MASK_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp", ".gif")
MASK_MODES = ("1", "L", "P", "LA", "PA", "RGB", "RGBA", *SIXTEEN_BIT_MODES, "I")


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
    _, raw = decode_pixels(path, "mask", None)
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
