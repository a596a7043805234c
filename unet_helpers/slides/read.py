"""Reading a whole slide a band of rows at a time: a (Big)TIFF, a PNG/JPEG, or an array.

Used by the streaming inference of ``stream.py`` (the large-image part of
``notebooks/08_large_images.ipynb``). A slide is any object with ``height``, ``width``,
``channels``, ``dtype`` and ``read_rows(top, bottom)``; ``open_slide`` picks one:

- ``TiffSlide``: a TIFF or BigTIFF read with tifffile. Uncompressed contiguous image data is
  memory-mapped, and the pages above the rows already read are handed back to the kernel
  (``release``), so the resident set does not grow with the rows read; tiled or strip-compressed
  data is decoded one row of tiles (or strips) at a time. zlib/deflate and LZMA decode with the
  standard library; LZW, JPEG and the other codecs need the ``imagecodecs`` package.
- ``ArraySlide``: a NumPy array in memory (tests), or a PNG/JPEG decoded by Pillow
  (``read_pillow``): Pillow decodes such a file whole, so it costs ``H * W * C`` bytes; for images
  larger than memory, save them as a tiled TIFF.

Pillow refuses images above about 179 million pixels as possible "decompression bombs". A file
someone asks us to read is not an attack on us, so ``read_pillow`` lifts that limit for that one
file and checks its own, ``max_pixels``, with an error that says what to do.

Shapes: ``read_rows`` returns ``(rows, W, C)`` in the file's dtype; ``model_rows`` turns that into
the model's input ``(C, rows, W)`` float32, scaled as ``SegmentationFolder`` scales images.
"""
from __future__ import annotations

import hashlib
import math
import mmap
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import tifffile
import torch
from PIL import Image, UnidentifiedImageError

from ..image_file import NORMALIZE_MODES, scale_image

TIFF_EXTENSIONS = (".tif", ".tiff", ".btf", ".tf8")
DEFAULT_MAX_PIXELS = 1 << 32  # 65536 x 65536: Pillow's own formats stop near here (JPEG: 65500 a side)
_PILLOW_LIMIT_LOCK = threading.Lock()


class ArraySlide:
    """A slide held in memory: an ``(H, W)`` or ``(H, W, C)`` NumPy array.

    Args:
        array: the image, any numeric dtype.
        identity: what ``identity()`` reports (default: the array's shape, dtype and a SHA-256 of
            its bytes, so that a resumed run can tell two arrays apart).
    """

    def __init__(self, array: np.ndarray, identity: dict | None = None) -> None:
        if not isinstance(array, np.ndarray):
            raise TypeError(f"ArraySlide takes a NumPy array (H, W) or (H, W, C); got {type(array).__name__}")
        if array.ndim == 2:
            array = array[..., None]  # (H, W, 1)
        if array.ndim != 3 or min(array.shape) < 1:
            raise ValueError(f"a slide array must be (H, W) or (H, W, C); got shape {array.shape}")
        self.array = array
        self.height, self.width, self.channels = array.shape
        self.dtype = array.dtype
        self._identity = identity

    def read_rows(self, top: int, bottom: int) -> np.ndarray:
        """Rows ``top`` to ``bottom`` (exclusive), ``(bottom - top, W, C)``."""
        return self.array[top:bottom]

    def release(self, bottom: int) -> None:
        """Nothing to hand back: the array stays in memory."""

    def identity(self) -> dict:
        """What this slide is, for checking that a resumed run reads the same input."""
        if self._identity is None:
            digest = hashlib.sha256(np.ascontiguousarray(self.array).data).hexdigest()
            self._identity = {"array_sha256": digest}
        return {"shape": list(self.array.shape), "dtype": str(self.dtype), **self._identity}

    def close(self) -> None:
        """Nothing to close."""

    def __enter__(self) -> "ArraySlide":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TiffSlide:
    """The first image of a TIFF or BigTIFF file, read a band of rows at a time.

    Args:
        path: the file. Its first series' first page is read (for a pyramid, the full resolution);
            a stack of several planes (Z, time) is refused.

    Raises:
        ValueError: not a TIFF, a stack, a 3-D tile depth, or a compression this installation
            cannot decode (the message names the package that can).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._tif = tifffile.TiffFile(self.path)
        except (tifffile.TiffFileError, OSError) as error:
            raise ValueError(f"cannot read TIFF file {self.path}: {error}. Hint: is it a valid TIFF?") from error
        try:
            self._open_page()
        except BaseException:
            self._tif.close()
            raise

    def _open_page(self) -> None:
        series = self._tif.series[0]
        page = series.pages[0]
        if len(series.pages) > 1 or page.imagedepth > 1:
            raise ValueError(
                f"{self.path} holds a stack of {len(series.pages)} planes of shape {series.shape} (axes {series.axes}); "
                "streaming inference reads one 2-D image. Hint: save the plane you want on its own"
            )
        if page.dtype is None:
            raise ValueError(f"{self.path}: TIFF sample format {page.sampleformat} at {page.bitspersample} bits is not supported")
        self._page = page
        self.height, self.width = page.imagelength, page.imagewidth
        self.channels = page.samplesperpixel
        self.dtype = np.dtype(page.dtype).newbyteorder("=")
        self._planes = self.channels if page.planarconfig == 2 else 1  # separate sample planes
        self._map = None
        if page.is_memmappable:
            self._map = mmap.mmap(self._tif.filehandle.fileno(), 0, access=mmap.ACCESS_READ)
            self._offset = page.dataoffsets[0]
            self._row_bytes = self.width * page.dtype.itemsize * (self.channels // self._planes)
            shape = (self._planes, self.height, self.width, self.channels // self._planes)
            stored = self.dtype.newbyteorder(self._tif.byteorder)  # as in the file; read_rows converts
            self._mapped = np.frombuffer(self._map, stored, math.prod(shape), self._offset).reshape(shape)
            return
        self._segment_h = page.tilelength if page.is_tiled else page.rowsperstrip
        self._segment_w = page.tilewidth if page.is_tiled else self.width
        self._columns = math.ceil(self.width / self._segment_w)
        self._segment_rows = math.ceil(self.height / self._segment_h)
        self._decoded: dict[int, np.ndarray] = {}  # segment row -> (planes, segment_h, W, samples)
        self._decode_segment_row(0)  # fail now, not mid-slide, on a codec we lack

    def _decode_segment_row(self, row: int) -> np.ndarray:
        if row in self._decoded:
            return self._decoded[row]
        page, samples = self._page, self.channels // self._planes
        rows = min(self._segment_h, self.height - row * self._segment_h)
        out = np.zeros((self._planes, rows, self.width, samples), self.dtype)
        per_plane = self._segment_rows * self._columns
        indices = [plane * per_plane + row * self._columns + col for plane in range(self._planes) for col in range(self._columns)]
        offsets = [page.dataoffsets[i] for i in indices]
        counts = [page.databytecounts[i] for i in indices]
        for data, index in self._tif.filehandle.read_segments(offsets, counts, indices=indices, sort=True, flat=True):
            try:
                segment, (plane, _, y, x, _), _ = page.decode(data, index, jpegtables=page.jpegtables)
            except (ValueError, KeyError, NotImplementedError, RuntimeError) as error:
                raise ValueError(
                    f"cannot decode {self.path} (TIFF compression {page.compression.name}): {error}. "
                    "Hint: pip install imagecodecs, or save the image uncompressed or with zlib compression"
                ) from error
            if segment is None:  # an empty segment reads as zeros
                continue
            y -= row * self._segment_h
            h, w = min(segment.shape[1], rows - y), min(segment.shape[2], self.width - x)
            out[plane, y : y + h, x : x + w] = segment[0, :h, :w]
        self._decoded[row] = out
        return out

    @property
    def memory_mapped(self) -> bool:
        """Whether the pixels are read through a memory map (uncompressed, contiguous data)."""
        return self._map is not None

    def read_rows(self, top: int, bottom: int) -> np.ndarray:
        """Rows ``top`` to ``bottom`` (exclusive), ``(bottom - top, W, C)`` in the file's dtype."""
        if not 0 <= top < bottom <= self.height:
            raise ValueError(f"rows {top}..{bottom} are not inside {self.path} (height {self.height})")
        if self._map is not None:
            band = self._mapped[:, top:bottom]  # (planes, rows, W, samples), a view of the file
        else:
            first, last = top // self._segment_h, (bottom - 1) // self._segment_h
            for stale in [r for r in self._decoded if r < first]:
                del self._decoded[stale]
            parts = [self._decode_segment_row(r) for r in range(first, last + 1)]
            band = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]  # (planes, rows', W, samples)
            start = top - first * self._segment_h
            band = band[:, start : start + bottom - top]
        band = band.transpose(1, 2, 0, 3).reshape(bottom - top, self.width, self.channels)  # (rows, W, C)
        return band.astype(self.dtype, copy=True)  # a copy in native byte order, never a view of the file

    def release(self, bottom: int) -> None:
        """Hand the memory-mapped pages of rows above ``bottom`` back to the kernel.

        They stay in the page cache and are read again if asked for; the process's resident set
        no longer counts them. Decoded tiles above ``bottom`` are dropped.
        """
        if self._map is None:
            self._decoded = {r: v for r, v in self._decoded.items() if (r + 1) * self._segment_h > bottom}
            return
        if not hasattr(self._map, "madvise"):  # Windows: the kernel trims the mapping when it needs to
            return
        plane_bytes = self.height * self._row_bytes
        for plane in range(self._planes):
            start = self._offset + plane * plane_bytes
            end = start + bottom * self._row_bytes
            start = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE  # only whole pages inside the rows
            end = end // mmap.PAGESIZE * mmap.PAGESIZE
            if end > start:
                self._map.madvise(mmap.MADV_DONTNEED, start, end - start)

    def identity(self) -> dict:
        """The file's path, size, modification time and image shape (for checking a resumed run)."""
        stat = self.path.stat()
        return {
            "path": str(self.path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "shape": [self.height, self.width, self.channels], "dtype": str(self.dtype),
        }

    def close(self) -> None:
        """Close the file (and its memory map)."""
        if self._map is not None:
            self._mapped = None
            try:
                self._map.close()
            except BufferError:  # a caller still holds a view of the map; it closes with the last view
                pass
            self._map = None
        self._tif.close()

    def __enter__(self) -> "TiffSlide":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def _pillow_limit_lifted() -> Iterator[None]:
    """Pillow's decompression-bomb check off for one deliberate read (we check the size ourselves)."""
    with _PILLOW_LIMIT_LOCK:
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def _too_large(path: Path, height: int, width: int, max_pixels: int) -> ValueError:
    return ValueError(
        f"{path} is {height}x{width} = {height * width:,} pixels, more than max_pixels={max_pixels:,}; "
        "a PNG or JPEG is decoded whole. Hint: save it as a tiled TIFF (tifffile.imwrite(path, image, "
        "tile=(256, 256))), which is read a band at a time, or raise max_pixels if it fits in memory"
    )


def read_pillow(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a PNG, JPEG or BMP with Pillow into ``(H, W, C)``, even above Pillow's bomb limit.

    Args:
        path: the file.
        max_pixels: refuse (with a ``ValueError`` that suggests a tiled TIFF) images with more
            pixels, before decoding anything.

    Returns:
        The pixels in the file's dtype; palette and transparency images as RGB.
    """
    path = Path(path)
    try:
        with _pillow_limit_lifted(), Image.open(path) as img:
            if img.width * img.height > max_pixels:
                raise _too_large(path, img.height, img.width, max_pixels)
            if img.mode in ("RGBA", "P", "CMYK", "LA", "YCbCr", "PA", "1"):
                img = img.convert("L" if img.mode in ("LA", "1") else "RGB")
            array = np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot read image file {path}: {error}. Hint: is it a valid PNG/JPEG/TIFF?") from error
    return array[..., None] if array.ndim == 2 else array


def slide_size(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` of an image file from its header, without decoding it (any size, no bomb check)."""
    path = Path(path)
    if path.suffix.lower() in TIFF_EXTENSIONS:
        with TiffSlide(path) as slide:
            return slide.height, slide.width
    try:
        with _pillow_limit_lifted(), Image.open(path) as img:
            return img.height, img.width
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot read image file {path}: {error}. Hint: is it a valid PNG/JPEG/TIFF?") from error


def open_slide(source: str | Path | np.ndarray, max_pixels: int = DEFAULT_MAX_PIXELS) -> ArraySlide | TiffSlide:
    """A slide for ``source``: a TIFF file (read lazily), another image file (Pillow), or an array.

    Args:
        source: a path (``.tif``/``.tiff`` go to tifffile, anything else to Pillow) or an
            ``(H, W)`` / ``(H, W, C)`` NumPy array.
        max_pixels: the largest PNG/JPEG to decode (see ``read_pillow``); TIFFs have no limit.
    """
    if isinstance(source, np.ndarray):
        return ArraySlide(source)
    if not isinstance(source, (str, Path)):
        raise TypeError(f"source must be a file path or a NumPy array (H, W[, C]); got {type(source).__name__}")
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"image file {path} does not exist")
    if path.suffix.lower() in TIFF_EXTENSIONS:
        return TiffSlide(path)
    stat = path.stat()
    identity = {"path": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return ArraySlide(read_pillow(path, max_pixels), identity=identity)


def convert_channels(rows: np.ndarray, channels: int | None) -> np.ndarray:
    """``rows`` with ``channels`` channels, converted as ``image_file.read_image`` converts a file.

    8-bit RGB to gray uses Pillow's own conversion (ITU-R 601-2 luma), so a band gives the same
    values as the whole image read by Pillow; gray to RGB repeats the channel; an alpha channel is
    dropped.

    Shape:
        - ``rows``: ``(rows, W, C)``; Output: ``(rows, W, channels)`` (``channels=None``: unchanged)
    """
    have = rows.shape[-1]
    if channels is None or channels == have:
        return rows
    if channels not in (1, 3):
        raise ValueError(f"channels must be None, 1 or 3; got {channels!r}")
    if have == 1 and channels == 3:
        return np.repeat(rows, 3, axis=-1)  # (rows, W, 3)
    if have in (2, 4):  # gray + alpha, RGB + alpha: alpha is no part of the image
        rows, have = rows[..., : have - 1], have - 1
        if have == channels:
            return rows
    if have == 3 and channels == 1 and rows.dtype == np.uint8:
        return np.asarray(Image.fromarray(np.ascontiguousarray(rows), "RGB").convert("L"))[..., None]  # (rows, W, 1)
    raise ValueError(
        f"cannot convert a {have}-channel {rows.dtype} image to the model's {channels} channels. "
        "Hint: convert the image to 8-bit RGB or grayscale first"
    )


def channel_statistics(slide: ArraySlide | TiffSlide, channels: int | None, band: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over the whole slide, one band of rows at a time.

    What ``normalize="per_image"`` needs before the first tile; sums are kept in float64.

    Returns:
        ``(mean, std)``, each ``(C,)`` float64.
    """
    total = squares = 0.0
    for top in range(0, slide.height, band):
        rows = convert_channels(slide.read_rows(top, min(top + band, slide.height)), channels).astype(np.float64)
        total = total + rows.sum(axis=(0, 1))
        squares = squares + (rows**2).sum(axis=(0, 1))
        slide.release(top + band)
    count = slide.height * slide.width
    mean = total / count
    return mean, np.sqrt(np.maximum(squares / count - mean**2, 0.0))


def model_rows(
    rows: np.ndarray, channels: int | None, normalize: str | None, statistics: tuple[np.ndarray, np.ndarray] | None = None
) -> torch.Tensor:
    """A band of raw rows as the model's input, scaled as ``SegmentationFolder`` scales an image.

    Args:
        rows: raw pixels from ``read_rows``.
        channels: the model's input channels (``None``: as stored).
        normalize: ``"unit"`` / ``None`` work band by band (``scale_image``); ``"per_image"``
            needs the whole slide's ``statistics`` from ``channel_statistics``.
        statistics: ``(mean, std)`` per channel, for ``"per_image"``.

    Shape:
        - ``rows``: ``(rows, W, C)``; Output: ``(channels, rows, W)`` float32
    """
    if normalize not in NORMALIZE_MODES:
        raise ValueError(f"normalize must be one of {NORMALIZE_MODES}; got {normalize!r}")
    rows = convert_channels(rows, channels)
    if normalize == "per_image":
        if statistics is None:
            raise ValueError("normalize='per_image' needs the slide's statistics; pass channel_statistics(slide, channels)")
        mean, std = (np.asarray(s, np.float32) for s in statistics)
        scaled = (rows.astype(np.float32) - mean) / np.maximum(std, np.float32(1e-6))
    else:
        scaled = scale_image(rows, normalize)
    return torch.from_numpy(scaled).permute(2, 0, 1).contiguous()  # (C, rows, W)
