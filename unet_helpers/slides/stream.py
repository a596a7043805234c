"""Streaming tiled inference for whole slides: memory bounded by one band of tiles, not the image.

The large-image part of ``notebooks/08_large_images.ipynb``. ``predict_tiled`` (``inference.py``)
keeps the whole image and a ``(K, H, W)`` sum of probabilities in memory: for a 32768 x 32768
slide with 3 classes the sum alone is 3 x 32768**2 x 4 bytes = 12.9 GB. ``stream_probabilities`` runs the very same tiles (``tile_boxes``),
with the same window (``blend_window``), in the same batches and the same order, but keeps only the
rows that tiles still to come can touch:

1. tiles go in row-major order, ``batch_size`` at a time, as in ``predict_tiled``;
2. the accumulator covers the rows from the top of the first unfinished tile row to the bottom of
   the last tile in the batch; each tile adds ``p * window`` to it (and ``window`` to the weights);
3. after a batch, every row above the next tile's top is final: it is divided by its weight and
   handed on as a band, and the accumulator moves up.

Every pixel therefore receives the same terms in the same order as in ``predict_tiled``: on an image
that fits in memory the class ids are identical and the probabilities equal (tested). Memory is the
accumulator, ``(K + 1) x R x W`` float32 with ``R = tile + stride * ceil((batch_size - 1) / tiles
per row)``, plus the input rows of the tile rows in the batch and the model's activations for one
batch: it grows with the width, never with the height.

``predict_slide`` puts it together for a file: reads the input lazily (``read.py``), writes
each finished band to a resumable result on disk and finally a tiled, pyramidal OME-TIFF
(``write.py``), with a progress bar over tiles. An interrupted slide resumes from the last
finished band (``resume=True``): the tiles that overlap the first unfinished row are run again in
their original batches, so the output is identical to an uninterrupted run (tested).

Shapes: the model takes ``(N, C, h, w)`` tiles and returns ``(N, K, h, w)`` scores; bands of
probabilities are ``(K, rows, W)``.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from ..validate import require_positive_int
from ..inference import blend_window, scores_to_probs, tile_boxes
from ..runtime import in_layout, model_device
from .read import DEFAULT_MAX_PIXELS, ArraySlide, TiffSlide, channel_statistics, model_rows, open_slide, slide_size
from .write import PartialResult, write_ome_tiff

Slide = ArraySlide | TiffSlide
STREAM_ABOVE_PIXELS = 4096 * 4096  # above this the predict command streams (predict_tiled's buffers grow with the area)


def tile_grid(height: int, width: int, tile: int | tuple[int, int], overlap: float) -> tuple[list[int], list[int], int, int]:
    """Tops of the tile rows, lefts of the tile columns, and the tile size of ``tile_boxes``.

    ``tile_boxes(height, width, ...)`` is every ``(top, left)`` pair of these in row-major order;
    asking it for a one-pixel-wide and a one-pixel-high image gives the two axes alone, without
    a list that grows with the image's area.

    >>> tile_grid(300, 200, 128, 0.25)
    ([0, 96, 172], [0, 72], 128, 128)
    """
    rows = tile_boxes(height, 1, tile, overlap)  # one (top, 0, tile_h, 1) per tile row
    columns = tile_boxes(1, width, tile, overlap)  # one (0, left, 1, tile_w) per tile column
    return [box[0] for box in rows], [box[1] for box in columns], rows[0][2], columns[0][3]


def first_batch(tops: Sequence[int], columns: int, tile_h: int, start_row: int, batch_size: int) -> int:
    """Index of the first tile of the batch holding the first tile that reaches ``start_row`` or below.

    Rows from ``start_row`` down receive their terms from that tile on; running from the start of
    its batch keeps every batch as it was in a full run (so the model sees the same batches).

    >>> first_batch([0, 96, 172], 2, 128, 100, 4)  # tile row 0 ends at 128 > 100: from the start
    0
    >>> first_batch([0, 96, 172], 2, 128, 130, 4), first_batch([0, 96, 172], 2, 128, 130, 3)
    (0, 0)
    >>> first_batch([0, 96, 172, 250], 2, 128, 240, 3)
    3
    """
    row = next((r for r, top in enumerate(tops) if top + tile_h > start_row), len(tops))
    return min(len(tops) * columns, row * columns // batch_size * batch_size)


def stream_probabilities(
    model: nn.Module,
    slide: Slide,
    channels: int | None = None,
    normalize: str | None = "unit",
    tile: int | tuple[int, int] = 256,
    overlap: float = 0.25,
    blend: str = "gaussian",
    batch_size: int = 4,
    channels_last: bool = True,
    start_row: int = 0,
    statistics: tuple[np.ndarray, np.ndarray] | None = None,
    on_tiles: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Blended class probabilities of a slide, one band of finished rows at a time, top to bottom.

    Args:
        model: the network (in eval mode while running; its mode is restored afterwards).
        slide: the input (``open_slide``).
        channels: the model's input channels (``None``: as stored in the slide).
        normalize: how the pixels are scaled (``read.model_rows``).
        tile, overlap, blend, batch_size, channels_last: as in ``predict_tiled``.
        start_row: skip the bands above this row (a resumed run); the tiles that overlap it are run
            again in their original batches.
        statistics: ``(mean, std)`` per channel, needed for ``normalize="per_image"``.
        on_tiles: called with the number of tiles after every batch (a progress bar).

    Yields:
        ``(top, probs)``: probabilities of rows ``top .. top + rows - 1``, consecutive bands from
        ``start_row`` to the bottom.

    Shape:
        - ``probs``: ``(K, rows, W)`` float32 (``K >= 2``, as ``scores_to_probs``)
    """
    require_positive_int(batch_size, "batch_size")
    height, width = slide.height, slide.width
    tops, lefts, tile_h, tile_w = tile_grid(height, width, tile, overlap)
    window = blend_window(tile_h, tile_w, blend)  # (h, w)
    columns, count = len(lefts), len(tops) * len(lefts)
    first = first_batch(tops, columns, tile_h, start_row, batch_size)
    batches = range(first, count, batch_size)
    capacity = max(  # rows one batch can touch, from the top of its first tile row
        (tops[(min(lo + batch_size, count) - 1) // columns] + tile_h - tops[lo // columns] for lo in batches), default=0
    )
    base = tops[first // columns] if first < count else height  # the accumulator's first row
    device = model_device(model)
    inputs: dict[int, torch.Tensor] = {}  # tile row -> its input rows (C, tile_h, W)

    def tile_row(r: int) -> torch.Tensor:
        if r not in inputs:
            inputs[r] = model_rows(slide.read_rows(tops[r], tops[r] + tile_h), channels, normalize, statistics)
        return inputs[r]

    total = weight = None
    was_training = model.training
    model.eval()
    try:
        for lo in batches:
            hi = min(lo + batch_size, count)
            with torch.inference_mode():
                tiles = torch.stack([tile_row(i // columns)[:, :, lefts[i % columns] : lefts[i % columns] + tile_w] for i in range(lo, hi)])  # (B, C, h, w)
                probs = scores_to_probs(model(in_layout(tiles.to(device), channels_last))).cpu().contiguous()  # (B, K, h, w)
            if total is None:
                total = torch.zeros(probs.shape[1], capacity, width)  # (K, R, W)
                weight = torch.zeros(capacity, width)  # (R, W)
            for i, p in zip(range(lo, hi), probs):
                y, x = tops[i // columns] - base, lefts[i % columns]
                region = (slice(None), slice(y, y + tile_h), slice(x, x + tile_w))
                if blend == "none":
                    total[region] = p  # the last tile wins, as in predict_tiled
                else:
                    total[region].addcmul_(p, window)  # += p * window
                    weight[region[1:]] += window
            if on_tiles is not None:
                on_tiles(hi - lo)
            for r in [r for r in inputs if r < hi // columns]:  # tile rows with no tile left to run
                del inputs[r]
            done = tops[hi // columns] if hi < count else height  # rows above it are final
            slide.release(done)
            if done <= base:
                continue
            rows = done - base
            band = total[:, :rows].clone() if blend == "none" else total[:, :rows] / weight[:rows]  # (K, rows, W)
            skip = max(0, start_row - base)
            if skip < rows:
                yield base + skip, band[:, skip:]
            moved = torch.zeros_like(total)  # (K, R, W): the unfinished rows move to the top
            moved[:, : capacity - rows] = total[:, rows:]
            total = moved
            moved = torch.zeros_like(weight)  # (R, W)
            moved[: capacity - rows] = weight[rows:]
            weight, base = moved, done
    finally:
        model.train(was_training)


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 of the model's class name and every parameter and buffer (names, shapes, values)."""
    digest = hashlib.sha256(type(model).__name__.encode())
    for name, value in model.state_dict().items():
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype}".encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass
class SlideSummary:
    """What ``predict_slide`` did.

    Attributes:
        output: the OME-TIFF written.
        height, width: the slide's size.
        num_classes: ``K``, the number of probability channels.
        tiles: tiles of the whole slide; ``tiles_run``: those run by this call (fewer when resumed).
        resumed_from_row: the first row this call computed (0 for a fresh start).
        seconds: wall time of the call.
        class_counts: pixels per class, ``[n_0, n_1, ...]`` (classes written with the same value share a count).
    """

    output: Path
    height: int
    width: int
    num_classes: int
    tiles: int
    tiles_run: int
    resumed_from_row: int
    seconds: float
    class_counts: list[int]


def _new_partial(
    folder: Path, slide: Slide, k: int, probabilities: bool, class_values: Sequence[int] | None, fingerprint: dict
) -> PartialResult:
    """A fresh ``PartialResult`` once the first band tells the number of classes ``k``."""
    values = list(range(k)) if class_values is None else [int(v) for v in class_values]
    if len(values) != k or min(values) < 0 or max(values) > 65535:
        raise ValueError(f"class_values must hold {k} values in [0, 65535], one per class the model predicts; got {class_values!r}")
    dtype = np.uint8 if max(values) <= 255 else np.uint16
    return PartialResult.create(folder, slide.height, slide.width, dtype, k if probabilities else 0, fingerprint, values)


def _stored_values(partial: PartialResult) -> np.ndarray:
    """Class id -> the value written for it, ``(K,)`` in the result's dtype."""
    return np.asarray(partial.state["class_values"], partial.ids_dtype)


def should_stream(path: str | Path, threshold: int = STREAM_ABOVE_PIXELS) -> bool:
    """Whether an image file is large enough for ``predict_slide`` (more than ``threshold`` pixels).

    Reads only the file's header (``read.slide_size``), so it works on images Pillow would
    refuse to open.
    """
    height, width = slide_size(path)
    return height * width > threshold


def partial_folder(output: str | Path) -> Path:
    """Where ``predict_slide`` keeps the finished rows of ``output`` until it is written."""
    output = Path(output)
    return output.with_name(output.name + ".partial")


def predict_slide(
    model: nn.Module,
    source: str | Path | np.ndarray,
    output: str | Path,
    tile: int | tuple[int, int] = 256,
    overlap: float = 0.25,
    blend: str = "gaussian",
    batch_size: int = 4,
    channels: int | None = None,
    normalize: str | None = "unit",
    probabilities: bool = False,
    class_values: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    progress: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    channels_last: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> SlideSummary:
    """Predict a slide of any size into a tiled OME-TIFF, with memory bounded by the image width.

    Args:
        model: the network.
        source: a TIFF (read lazily), a PNG/JPEG (decoded whole by Pillow), or an ``(H, W[, C])`` array.
        output: the OME-TIFF to write (``NAME.ome.tif``); never the input.
        tile, overlap, blend, batch_size, channels_last: as in ``predict_tiled``.
        channels: the model's input channels (default: ``model.config.in_channels`` if it has one).
        normalize: the scaling used in training (``"unit"``, ``"per_image"``, ``None``).
        probabilities: also write the probabilities, as uint8 ``round(255 * p)``, as series 1.
        class_values: write ``class_values[k]`` instead of class id ``k`` (e.g. ``[0, 255]``).
        class_names: names of the probability channels in the OME metadata.
        progress: show a ``tqdm.auto`` bar over tiles.
        resume: continue an interrupted run of the same model, input and settings from its last
            finished band; without it an old partial result is discarded.
        overwrite: replace an existing ``output``.
        max_pixels: the largest PNG/JPEG to decode (see ``read.read_pillow``).

    Returns:
        A ``SlideSummary``.

    Raises:
        ValueError: ``output`` exists (without ``overwrite``) or is the input; an unreadable input;
            ``resume`` with a partial result from another model, input or settings.

    Examples::

        >>> import tempfile
        >>> from unet_helpers import UNet
        >>> out = Path(tempfile.mkdtemp()) / "mask.ome.tif"
        >>> summary = predict_slide(UNet(1, 2, base=4), np.zeros((300, 200), np.uint8), out, tile=128, progress=False)
        >>> summary.height, summary.width, summary.tiles
        (300, 200, 6)
    """
    began = time.perf_counter()
    output = Path(output)
    if isinstance(source, (str, Path)) and Path(source).resolve() == output.resolve():
        raise ValueError(f"output {output} is the input file; choose another output path")
    if output.exists() and not overwrite:
        raise ValueError(f"output {output} already exists; pass overwrite=True (--overwrite) or choose another path")
    if channels is None:
        channels = getattr(getattr(model, "config", None), "in_channels", None)
    partial_dir = partial_folder(output)
    with open_slide(source, max_pixels) as slide:
        settings = {
            "tile": list(tile) if isinstance(tile, tuple) else tile, "overlap": overlap, "blend": blend,
            "batch_size": batch_size, "channels": channels, "normalize": normalize, "channels_last": channels_last,
            "probabilities": probabilities, "class_values": None if class_values is None else [int(v) for v in class_values],
        }
        fingerprint = {"model": model_fingerprint(model), "input": slide.identity(), "settings": settings, "torch": torch.__version__}
        partial = None
        if resume and (partial_dir / "state.json").exists():
            partial = PartialResult.resume(partial_dir, fingerprint)
        start_row = partial.rows_done if partial is not None else 0
        tops, lefts, tile_h, _ = tile_grid(slide.height, slide.width, tile, overlap)
        count = len(tops) * len(lefts)
        skipped = first_batch(tops, len(lefts), tile_h, start_row, batch_size)
        statistics = channel_statistics(slide, channels) if normalize == "per_image" and start_row < slide.height else None
        bar = tqdm(total=count, initial=skipped, unit="tile", desc=output.name, disable=not progress, leave=False)
        try:
            bands = stream_probabilities(
                model, slide, channels, normalize, tile, overlap, blend, batch_size, channels_last, start_row, statistics, bar.update
            )
            for top, probs in bands:
                if partial is None:
                    partial = _new_partial(partial_dir, slide, probs.shape[0], probabilities, class_values, fingerprint)
                ids = probs.max(dim=0).indices.numpy()  # (rows, W); = argmax(dim=0)
                quantized = None
                if probabilities:
                    quantized = probs.mul(255).round_().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()  # (rows, W, K)
                partial.write_band(top, _stored_values(partial)[ids], quantized)
        except BaseException:  # interrupted or failed: the finished bands stay on disk to resume from
            if partial is not None:
                partial.close()
            raise
        finally:
            bar.close()
    lookup = _stored_values(partial)
    counts = np.zeros(int(lookup.max()) + 1, np.int64)  # pixels per stored value, 1024 rows at a time
    for top in range(0, partial.height, 1024):
        counts += np.bincount(partial.read_ids(top, min(top + 1024, partial.height)).ravel(), minlength=counts.size)
    write_ome_tiff(output, partial, class_names=class_names)
    summary = SlideSummary(
        output=output, height=partial.height, width=partial.width, num_classes=len(lookup), tiles=count,
        tiles_run=count - skipped, resumed_from_row=start_row, seconds=time.perf_counter() - began,
        class_counts=counts[lookup].tolist(),
    )
    partial.remove()
    return summary
