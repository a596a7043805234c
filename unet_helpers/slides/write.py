"""Writing a slide's prediction: a resumable result on disk, then a tiled, pyramidal OME-TIFF.

Used by ``stream.py`` (streaming inference). While a slide is predicted, every finished band of
rows goes into a ``PartialResult``: a folder next to the output holding the class ids (and, if
asked for, the probabilities as uint8) as raw row-major files plus a small ``state.json`` with how
many rows are done, a CRC-32 of those rows, and a fingerprint of the model, the input and the
settings. An interrupted run resumes from it only if the fingerprint matches and the rows on disk
still have their checksum (``PartialResult.resume``); anything else is refused with the reason.

Rows are written with ``os.pwrite``, not through a memory map: pages written into a map stay in
the process's resident set, plain writes leave them to the kernel's page cache, so memory stays
bounded by one band.

When every row is done, ``write_ome_tiff`` copies the result into a BigTIFF with OME-XML
metadata, tiles of 256 x 256 (zlib-compressed) and, for the class ids, sub-resolution levels
(every 2nd, 4th, ... pixel: class ids are not averaged), the layout QuPath and napari open without
reading the whole image: series 0 ``classes`` ``(H, W)``, series 1 ``probabilities`` ``(K, H, W)``.

Shapes: class ids ``(rows, W)`` uint8 or uint16; probabilities ``(rows, W, K)`` uint8
(``round(255 * p)``).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import zlib
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import tifffile

STATE_FORMAT = 1
TIFF_TILE = 256


def _write_json_atomically(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(payload, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)  # a reader sees the old state or the new one, never half of one


def _differences(stored: dict, expected: dict, prefix: str = "") -> list[str]:
    found = []
    for key in sorted(set(stored) | set(expected)):
        a, b = stored.get(key), expected.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key}: {a!r} then, {b!r} now")
    return found


class PartialResult:
    """The finished rows of a slide being predicted, on disk in ``folder``.

    Make one with ``PartialResult.create`` (a fresh start) or ``PartialResult.resume`` (continue).

    Args:
        folder: the folder holding ``classes.raw``, ``probabilities.raw`` and ``state.json``.
        state: the contents of ``state.json``.
    """

    def __init__(self, folder: Path, state: dict) -> None:
        self.folder, self.state = Path(folder), state
        self.height, self.width = state["height"], state["width"]
        self.ids_dtype = np.dtype(state["ids_dtype"])
        self.probability_channels = state["probability_channels"]
        self._ids = os.open(self.folder / "classes.raw", os.O_RDWR)
        self._probs = os.open(self.folder / "probabilities.raw", os.O_RDWR) if self.probability_channels else None

    @property
    def rows_done(self) -> int:
        """Rows ``0 .. rows_done - 1`` are final."""
        return self.state["rows_done"]

    def _row_bytes(self, probabilities: bool) -> int:
        return self.width * (self.probability_channels if probabilities else self.ids_dtype.itemsize)

    @classmethod
    def create(
        cls,
        folder: str | Path,
        height: int,
        width: int,
        ids_dtype: np.dtype,
        probability_channels: int,
        fingerprint: dict,
        class_values: Sequence[int],
    ) -> "PartialResult":
        """An empty result in ``folder`` (a previous one there is removed), sized for the whole slide.

        ``class_values[k]`` is the value stored for class ``k`` (kept in the state for the reader).
        """
        folder = Path(folder)
        if folder.exists():
            if not (folder / "state.json").is_file():
                raise ValueError(f"{folder} exists and is not a partial result of predict_slide; move it away or choose another output")
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        state = {
            "format": STATE_FORMAT, "fingerprint": fingerprint, "height": height, "width": width,
            "ids_dtype": np.dtype(ids_dtype).name, "probability_channels": probability_channels,
            "class_values": [int(v) for v in class_values], "rows_done": 0, "crc32": {"classes": 0, "probabilities": 0},
        }
        for name, row_bytes in (("classes.raw", width * np.dtype(ids_dtype).itemsize), ("probabilities.raw", width * probability_channels)):
            if row_bytes:
                with open(folder / name, "wb") as handle:
                    handle.truncate(height * row_bytes)  # sparse: takes disk space as rows arrive
        _write_json_atomically(folder / "state.json", state)
        return cls(folder, state)

    @classmethod
    def resume(cls, folder: str | Path, fingerprint: dict) -> "PartialResult":
        """The result in ``folder``, after checking it is the one this run would have made.

        Raises:
            ValueError: no result there; its state cannot be read; the model, input or settings
                differ (each difference named); or its files are not the size or checksum the
                state records (changed or truncated since).
        """
        folder = Path(folder)
        hint = f"delete {folder} (or run without resume) to start the slide again"
        try:
            state = json.loads((folder / "state.json").read_text())
        except FileNotFoundError as error:
            raise ValueError(f"nothing to resume: {folder / 'state.json'} does not exist") from error
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot resume: {folder / 'state.json'} is unreadable ({error}); {hint}") from error
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"cannot resume: {folder} was written by another version (format {state.get('format')!r}); {hint}")
        changed = _differences(state["fingerprint"], fingerprint)
        if changed:
            raise ValueError(
                f"cannot resume {folder}: it was made with another model, input or settings ({'; '.join(changed[:6])}); {hint}"
            )
        result = cls(folder, state)
        try:
            result._verify()
        except ValueError as error:
            result.close()
            raise ValueError(f"cannot resume {folder}: {error}; {hint}") from error
        return result

    def _verify(self) -> None:
        for name, handle, probabilities in (("classes", self._ids, False), ("probabilities", self._probs, True)):
            if handle is None:
                continue
            row_bytes = self._row_bytes(probabilities)
            size = os.fstat(handle).st_size
            if size != self.height * row_bytes:
                raise ValueError(f"{name}.raw has {size} bytes, expected {self.height * row_bytes}")
            crc, step = 0, max(1, (64 << 20) // row_bytes)
            for top in range(0, self.rows_done, step):
                crc = zlib.crc32(os.pread(handle, min(step, self.rows_done - top) * row_bytes, top * row_bytes), crc)
            if crc != self.state["crc32"][name]:
                raise ValueError(f"the {self.rows_done} finished rows of {name}.raw do not match their checksum (changed since)")

    def write_band(self, top: int, ids: np.ndarray, probabilities: np.ndarray | None = None) -> None:
        """Store finished rows starting at ``top`` (which must be ``rows_done``), then record them as done.

        Shape:
            - ``ids``: ``(rows, W)`` of ``ids_dtype``; ``probabilities``: ``(rows, W, K)`` uint8
        """
        if top != self.rows_done:
            raise ValueError(f"bands must arrive in order: expected rows from {self.rows_done}, got {top}")
        for name, handle, data in (("classes", self._ids, ids), ("probabilities", self._probs, probabilities)):
            if handle is None:
                continue
            payload = np.ascontiguousarray(data).data.cast("B")
            os.pwrite(handle, payload, top * self._row_bytes(name == "probabilities"))
            os.fsync(handle)  # the rows are on disk before the state says they are
            self.state["crc32"][name] = zlib.crc32(payload, self.state["crc32"][name])
        self.state["rows_done"] = top + ids.shape[0]
        _write_json_atomically(self.folder / "state.json", self.state)

    def read_ids(self, top: int, bottom: int, step: int = 1) -> np.ndarray:
        """Class ids of rows ``top, top + step, ...`` below ``bottom``, ``(rows, W)``."""
        row_bytes = self._row_bytes(False)
        if step == 1:
            data = os.pread(self._ids, (bottom - top) * row_bytes, top * row_bytes)
            return np.frombuffer(data, self.ids_dtype).reshape(-1, self.width)  # (rows, W)
        rows = [np.frombuffer(os.pread(self._ids, row_bytes, y * row_bytes), self.ids_dtype) for y in range(top, bottom, step)]
        return np.stack(rows)  # (rows, W)

    def read_probabilities(self, top: int, bottom: int) -> np.ndarray:
        """Probabilities (uint8) of rows ``top .. bottom - 1``, ``(rows, W, K)``."""
        row_bytes = self._row_bytes(True)
        data = os.pread(self._probs, (bottom - top) * row_bytes, top * row_bytes)
        return np.frombuffer(data, np.uint8).reshape(-1, self.width, self.probability_channels)  # (rows, W, K)

    def close(self) -> None:
        """Close the files (the folder stays, to resume from)."""
        for handle in (self._ids, self._probs):
            if handle is not None:
                os.close(handle)
        self._ids = self._probs = None

    def remove(self) -> None:
        """Close and delete the folder (after the output is written)."""
        self.close()
        shutil.rmtree(self.folder)


def pyramid_shapes(height: int, width: int, tile: int = TIFF_TILE) -> list[tuple[int, int]]:
    """Shapes of the sub-resolution levels (each half the previous) down to one tile.

    >>> pyramid_shapes(1000, 600, 256)
    [(500, 300), (250, 150)]
    """
    shapes, factor = [], 2
    while max(math.ceil(height / (factor // 2)), math.ceil(width / (factor // 2))) > tile:
        shapes.append((math.ceil(height / factor), math.ceil(width / factor)))
        factor *= 2
    return shapes


def _id_tiles(result: PartialResult, factor: int, tile: int) -> Iterator[np.ndarray]:
    """Tiles of the class ids at 1 / ``factor`` resolution (every ``factor``-th pixel), row by row."""
    for top in range(0, result.height, tile * factor):
        band = result.read_ids(top, min(top + tile * factor, result.height), factor)[:, ::factor]  # (tile, W / factor)
        for left in range(0, band.shape[1], tile):
            yield band[:, left : left + tile]


def _probability_tiles(result: PartialResult, tile: int) -> Iterator[np.ndarray]:
    """Tiles of the probabilities, channel by channel (the order of a ``(K, H, W)`` image)."""
    for channel in range(result.probability_channels):
        for top in range(0, result.height, tile):
            band = result.read_probabilities(top, min(top + tile, result.height))[..., channel]  # (tile, W)
            for left in range(0, result.width, tile):
                yield band[:, left : left + tile]


def write_ome_tiff(
    path: str | Path,
    result: PartialResult,
    class_names: Sequence[str] | None = None,
    tile: int = TIFF_TILE,
    pyramid: bool = True,
    compression: str = "zlib",
) -> Path:
    """Write a finished ``PartialResult`` as a tiled BigTIFF with OME-XML metadata.

    Written to ``path + ".writing"`` first and renamed when complete, so ``path`` never holds half
    a file. Memory: one band of ``tile`` rows.

    Args:
        path: the output file (``.ome.tif``).
        result: every row done.
        class_names: names of the probability channels (default ``class 0``, ``class 1``, ...).
        tile: TIFF tile size (a multiple of 16).
        pyramid: also write sub-resolution levels of the class ids.
        compression: a tifffile compression that needs no extra package (``"zlib"``, ``"lzma"``, ``None``).

    Returns:
        ``path``.
    """
    path = Path(path)
    if result.rows_done != result.height:
        raise ValueError(f"the result has {result.rows_done} of {result.height} rows; finish (resume) the slide first")
    levels = pyramid_shapes(result.height, result.width, tile) if pyramid else []
    tmp = path.with_name(path.name + ".writing")
    options = {"tile": (tile, tile), "compression": compression}
    with tifffile.TiffWriter(tmp, bigtiff=True, ome=True) as tif:
        tif.write(
            _id_tiles(result, 1, tile), shape=(result.height, result.width), dtype=result.ids_dtype, subifds=len(levels),
            metadata={"axes": "YX", "Name": "classes"}, **options,
        )
        for level, shape in enumerate(levels, start=1):
            tif.write(_id_tiles(result, 2**level, tile), shape=shape, dtype=result.ids_dtype, subfiletype=1, **options)
        if result.probability_channels:
            k = result.probability_channels
            names = list(class_names) if class_names is not None else [f"class {i}" for i in range(k)]
            if len(names) != k:
                raise ValueError(f"class_names has {len(names)} names for {k} probability channels")
            tif.write(
                _probability_tiles(result, tile), shape=(k, result.height, result.width), dtype=np.uint8,
                metadata={"axes": "CYX", "Name": "probabilities", "Channel": {"Name": names}}, **options,
            )
    os.replace(tmp, path)
    return path
