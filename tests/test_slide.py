"""Streaming whole-slide inference (unet_helpers.slide) against the in-memory predict_tiled."""
import itertools
import json
import tracemalloc

import numpy as np
import pytest
import tifffile
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from unet_helpers import UNet
from unet_helpers.inference import predict_tiled, tile_boxes
from unet_helpers.slides.stream import partial_folder, predict_slide, should_stream, stream_probabilities, tile_grid
from unet_helpers.slides.read import ArraySlide


@pytest.fixture(scope="module")
def model():
    """A small random U-Net with BatchNorm statistics moved off their defaults, in eval mode."""
    torch.manual_seed(0)
    net = UNet(1, 3, base=4, depth=2)
    net.train()
    with torch.no_grad():
        net(torch.rand(4, 1, 32, 32))
    return net.eval()


def image(height, width, seed=0, dtype=np.uint8):
    return np.random.default_rng(seed).integers(0, np.iinfo(dtype).max, (height, width), dtype=dtype)


def as_tensor(array):
    """The image as predict_tiled sees it after scale_image(normalize="unit"): (1, H, W) float32."""
    return torch.from_numpy(array.astype(np.float32) / np.iinfo(array.dtype).max)[None]


def streamed(model, array, **kwargs):
    """Bands of stream_probabilities, checked to be consecutive, joined into (K, H, W)."""
    bands = list(stream_probabilities(model, ArraySlide(array), 1, **kwargs))
    start = kwargs.get("start_row", 0)
    tops = [top for top, _ in bands]
    assert tops[0] == start and all(b == a + p.shape[1] for (a, p), b in zip(bands, tops[1:]))
    assert tops[-1] + bands[-1][1].shape[1] == array.shape[0]
    return torch.cat([p for _, p in bands], dim=1)  # (K, H - start, W)


@pytest.mark.parametrize("height, width, tile, overlap", [(300, 200, 128, 0.25), (37, 53, 16, 0.5), (1, 9, 4, 0.0), (64, 64, (48, 16), 0.9)])
def test_tile_grid_is_tile_boxes_by_axis(height, width, tile, overlap):
    tops, lefts, tile_h, tile_w = tile_grid(height, width, tile, overlap)
    assert [(y, x, tile_h, tile_w) for y in tops for x in lefts] == tile_boxes(height, width, tile, overlap)


SIZES, TILES = [(37, 53), (257, 131), (130, 301)], [32, (48, 40)]
CASES = [  # every blend with every overlap/batch pair; sizes (odd ones) and tiles (square, not) in turn
    (SIZES[i % 3], TILES[i % 2], overlap, blend, batch)
    for i, (blend, (overlap, batch)) in enumerate(itertools.product(["gaussian", "uniform", "none"], [(0.0, 3), (0.25, 1), (0.25, 8), (0.5, 3)]))
]


@pytest.mark.parametrize("size, tile, overlap, blend, batch", CASES)
def test_streaming_equals_predict_tiled(model, size, tile, overlap, blend, batch):
    array = image(*size, seed=size[0])
    ids, probs = predict_tiled(model, as_tensor(array), tile=tile, overlap=overlap, blend=blend, batch_size=batch, return_probs=True)
    stream = streamed(model, array, tile=tile, overlap=overlap, blend=blend, batch_size=batch)
    assert torch.equal(stream.max(dim=0).indices, ids)
    torch.testing.assert_close(stream, probs, rtol=0, atol=1e-6)


def test_streaming_a_binary_one_logit_model_and_an_image_smaller_than_a_tile():
    torch.manual_seed(1)
    binary = UNet(1, 1, base=4, depth=2).eval()
    for size in [(20, 30), (100, 70)]:
        array = image(*size, seed=3)
        ids, probs = predict_tiled(binary, as_tensor(array), tile=64, return_probs=True)
        stream = streamed(binary, array, tile=64)
        assert stream.shape == probs.shape == (2, *size)
        assert torch.equal(stream.max(dim=0).indices, ids)
        torch.testing.assert_close(stream, probs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("start_row", [0, 1, 40, 41, 150, 299])
def test_bands_from_start_row_equal_the_full_run_below_it(model, start_row):
    array = image(300, 90, seed=7)
    full = streamed(model, array, tile=64, overlap=0.25, batch_size=3)
    assert torch.equal(streamed(model, array, tile=64, overlap=0.25, batch_size=3, start_row=start_row), full[:, start_row:])


def test_model_mode_is_restored_and_batch_size_is_checked(model):
    model.train()
    try:
        list(stream_probabilities(model, ArraySlide(image(40, 40)), 1, tile=32))
        assert model.training
    finally:
        model.eval()
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        list(stream_probabilities(model, ArraySlide(image(40, 40)), 1, batch_size=0))


class LargestTensor(TorchDispatchMode):
    """Records the largest tensor storage any torch operation produces."""

    def __init__(self):
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.bytes = max(self.bytes, t.untyped_storage().nbytes())
        return out


def largest_allocations(run):
    """(largest torch tensor in bytes, peak of NumPy and Python allocations in bytes) during ``run()``."""
    mode = LargestTensor()
    tracemalloc.start()
    try:
        with mode:
            run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return mode.bytes, peak


def test_memory_grows_with_the_width_not_the_height(model):
    """A 4x taller image: predict_tiled's largest array grows 4x (so the measure sees growth), streaming's not at all."""
    short, tall = image(256, 128, seed=1), image(1024, 128, seed=1)
    def run(array):
        return lambda: [band for band in stream_probabilities(model, ArraySlide(array), 1, tile=64, batch_size=8)]

    largest_allocations(run(short))  # warm-up: first-call allocations of the libraries
    stream_short, stream_tall = largest_allocations(run(short)), largest_allocations(run(tall))
    tiled_short = largest_allocations(lambda: predict_tiled(model, as_tensor(short), tile=64, batch_size=2))
    tiled_tall = largest_allocations(lambda: predict_tiled(model, as_tensor(tall), tile=64, batch_size=2))
    assert tiled_tall[0] >= 3.9 * tiled_short[0]
    assert stream_tall[0] == stream_short[0]  # every tensor's shape depends on the width and the batch only
    assert stream_tall[1] <= 1.25 * stream_short[1] + 65536  # NumPy bands: the same sizes; a little Python bookkeeping


# -- predict_slide: files on disk, the OME-TIFF, resuming ----------------------------------------------


def write_tiff(path, array, **kwargs):
    tifffile.imwrite(path, array, **kwargs)
    return path


def test_predict_slide_from_a_tiled_tiff_matches_predict_tiled(model, tmp_path):
    array = image(333, 277, seed=11, dtype=np.uint16)
    source = write_tiff(tmp_path / "slide.tif", array, tile=(64, 64), compression="zlib")
    ids, probs = predict_tiled(model, as_tensor(array), tile=64, overlap=0.25, batch_size=3, return_probs=True)
    out = tmp_path / "mask.ome.tif"
    summary = predict_slide(model, source, out, tile=64, batch_size=3, probabilities=True, class_values=[0, 100, 255],
                            class_names=["background", "cell", "edge"], progress=False)
    expected = np.array([0, 100, 255], np.uint8)[ids.numpy()]
    with tifffile.TiffFile(out) as tif:
        assert tif.is_ome and tif.is_bigtiff and tif.pages[0].is_tiled
        classes, probabilities = tif.series
        assert (classes.name, classes.axes, probabilities.name, probabilities.axes) == ("classes", "YX", "probabilities", "CYX")
        np.testing.assert_array_equal(classes.asarray(), expected)
        np.testing.assert_array_equal(classes.levels[1].asarray(), expected[::2, ::2])
        quantized = probabilities.asarray().astype(int)
        assert 'Name="cell"' in tif.ome_metadata
    reference = (probs * 255).round().numpy().astype(int)
    assert np.abs(quantized - reference).max() <= 1 and (quantized == reference).mean() > 0.999
    assert (summary.height, summary.width, summary.num_classes, summary.resumed_from_row) == (333, 277, 3, 0)
    assert summary.tiles == summary.tiles_run == len(tile_boxes(333, 277, 64, 0.25))
    assert summary.class_counts == np.bincount(ids.numpy().ravel(), minlength=3).tolist()
    assert not partial_folder(out).exists()


def test_predict_slide_rgb_file_for_a_gray_model_and_per_image_normalization(model, tmp_path):
    from unet_helpers.image_file import read_image, scale_image

    rgb = np.random.default_rng(2).integers(0, 256, (90, 110, 3), dtype=np.uint8)
    source = write_tiff(tmp_path / "rgb.tif", rgb, photometric="rgb")
    gray = scale_image(read_image(source, channels=1), "per_image")  # what the in-memory command line feeds the model
    ids = predict_tiled(model, torch.from_numpy(gray).permute(2, 0, 1), tile=64, batch_size=2)
    predict_slide(model, source, tmp_path / "out.ome.tif", tile=64, batch_size=2, normalize="per_image", progress=False)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.ome.tif"), ids.numpy())


class Interrupt(Exception):
    pass


def interrupt_after(model, calls):
    """A forward hook that raises after ``calls`` forward passes (the state dict stays the model's)."""
    seen = []

    def hook(module, inputs, output):
        seen.append(1)
        if len(seen) >= calls:
            raise KeyboardInterrupt

    return model.register_forward_hook(hook)


def test_an_interrupted_slide_resumes_from_its_last_band_with_identical_output(model, tmp_path):
    array = image(420, 150, seed=5)
    source = write_tiff(tmp_path / "slide.tif", array)
    settings = {"tile": 64, "overlap": 0.25, "batch_size": 3, "probabilities": True, "progress": False}
    predict_slide(model, source, tmp_path / "whole.ome.tif", **settings)
    out = tmp_path / "resumed.ome.tif"
    handle = interrupt_after(model, 5)  # of 9 batches
    try:
        with pytest.raises(KeyboardInterrupt):
            predict_slide(model, source, out, **settings)
    finally:
        handle.remove()
    state = json.loads((partial_folder(out) / "state.json").read_text())
    assert 0 < state["rows_done"] < 420 and not out.exists()
    summary = predict_slide(model, source, out, resume=True, **settings)
    assert summary.resumed_from_row == state["rows_done"] and summary.tiles_run < summary.tiles
    with tifffile.TiffFile(tmp_path / "whole.ome.tif") as whole, tifffile.TiffFile(out) as resumed:
        for a, b in zip(whole.series, resumed.series):
            np.testing.assert_array_equal(a.asarray(), b.asarray())
    assert not partial_folder(out).exists()


def interrupted(model, source, out, calls=3, **settings):  # of 4 batches
    handle = interrupt_after(model, calls)
    try:
        with pytest.raises(KeyboardInterrupt):
            predict_slide(model, source, out, tile=64, batch_size=3, progress=False, **settings)
    finally:
        handle.remove()


def test_resume_refuses_a_partial_result_of_other_settings_input_or_contents(model, tmp_path):
    source = write_tiff(tmp_path / "slide.tif", image(300, 100, seed=6))
    out = tmp_path / "mask.ome.tif"
    interrupted(model, source, out)
    with pytest.raises(ValueError, match=r"another model, input or settings \(settings.overlap: 0.25 then, 0.5 now"):
        predict_slide(model, source, out, tile=64, batch_size=3, overlap=0.5, progress=False, resume=True)
    torch.manual_seed(9)
    with pytest.raises(ValueError, match="model: "):
        predict_slide(UNet(1, 3, base=4, depth=2).eval(), source, out, tile=64, batch_size=3, progress=False, resume=True)
    ids = partial_folder(out) / "classes.raw"
    data = bytearray(ids.read_bytes())
    data[0] ^= 1
    ids.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="do not match their checksum"):
        predict_slide(model, source, out, tile=64, batch_size=3, progress=False, resume=True)
    write_tiff(source, image(300, 101, seed=7))  # the input changed since
    with pytest.raises(ValueError, match="input.bytes"):
        predict_slide(model, source, out, tile=64, batch_size=3, progress=False, resume=True)
    summary = predict_slide(model, source, out, tile=64, batch_size=3, progress=False)  # no resume: start again
    assert summary.resumed_from_row == 0 and out.exists()


def test_predict_slide_never_overwrites(model, tmp_path):
    source = write_tiff(tmp_path / "slide.tif", image(50, 60))
    with pytest.raises(ValueError, match="is the input file"):
        predict_slide(model, source, source, tile=32, progress=False, overwrite=True)
    (tmp_path / "taken.ome.tif").write_bytes(b"mine")
    with pytest.raises(ValueError, match="already exists; pass overwrite=True"):
        predict_slide(model, source, tmp_path / "taken.ome.tif", tile=32, progress=False)
    assert (tmp_path / "taken.ome.tif").read_bytes() == b"mine"
    with pytest.raises(ValueError, match="class_values must hold 3 values"):
        predict_slide(model, source, tmp_path / "out.ome.tif", tile=32, progress=False, class_values=[0, 255])


def test_should_stream_reads_only_the_header(tmp_path):
    write_tiff(tmp_path / "small.tif", image(64, 64))
    assert not should_stream(tmp_path / "small.tif") and should_stream(tmp_path / "small.tif", threshold=64 * 64 - 1)


def test_the_predict_command_call_on_a_checkpoint_and_a_bigtiff(model, tmp_path):
    """predict_slide called as the predict command calls it: a checkpoint, its extra, a BigTIFF, 0/255 values."""
    from unet_helpers.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(3)
    net = UNet(1, 2, base=4, depth=2).eval()
    save_checkpoint(tmp_path / "best.pt", net, extra={"normalize": "unit", "class_names": ["background", "nucleus"]})
    loaded = load_checkpoint(tmp_path / "best.pt")
    checkpoint_model, extra = loaded["model"], loaded["extra"]
    array = image(260, 190, seed=8)
    source = write_tiff(tmp_path / "slide.tif", array, bigtiff=True, tile=(32, 32), compression="zlib")
    out = tmp_path / "preds" / "slide.ome.tif"
    out.parent.mkdir()
    summary = predict_slide(
        checkpoint_model, source, out, tile=64, overlap=0.25, batch_size=4, channels=checkpoint_model.config.in_channels,
        normalize=extra["normalize"], class_values=[0, 255], class_names=extra["class_names"], progress=False,
    )
    ids = predict_tiled(net, as_tensor(array), tile=64, overlap=0.25, batch_size=4)
    np.testing.assert_array_equal(tifffile.imread(out), np.array([0, 255], np.uint8)[ids.numpy()])
    assert summary.class_counts == [int((ids == 0).sum()), int((ids == 1).sum())]
