"""Reading slides a band at a time (slides/read.py) and writing the result (slides/write.py)."""
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from unet_helpers.image_file import read_image, scale_image
from unet_helpers.slides.read import (
    ArraySlide,
    TiffSlide,
    channel_statistics,
    convert_channels,
    model_rows,
    open_slide,
    read_pillow,
    slide_size,
)
from unet_helpers.slides.write import PartialResult, pyramid_shapes, write_ome_tiff

GRAY = np.random.default_rng(0).integers(0, 65535, (203, 141), dtype=np.uint16)
RGB = np.random.default_rng(1).integers(0, 255, (97, 83, 3), dtype=np.uint8)
BANDS = [(0, 1), (5, 70), (64, 129), (150, 203)]

LAYOUTS = {
    "contiguous": (GRAY, {}),
    "big-endian contiguous BigTIFF": (GRAY, {"bigtiff": True, "byteorder": ">"}),
    "tiled zlib": (GRAY, {"tile": (64, 48), "compression": "zlib"}),
    "strips zlib": (GRAY, {"rowsperstrip": 7, "compression": "zlib"}),
    "lzma tiles": (GRAY, {"tile": (32, 32), "compression": "lzma"}),
    "RGB contiguous": (RGB, {"photometric": "rgb"}),
    "RGB separate planes, strips": (RGB.transpose(2, 0, 1), {"photometric": "rgb", "planarconfig": "separate", "rowsperstrip": 9, "compression": "zlib"}),
    "RGB separate planes, contiguous": (RGB.transpose(2, 0, 1), {"photometric": "rgb", "planarconfig": "separate"}),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_tiff_bands_equal_the_whole_image(tmp_path, layout):
    data, options = LAYOUTS[layout]
    tifffile.imwrite(tmp_path / "x.tif", data, **options)
    expected = data.transpose(1, 2, 0) if options.get("planarconfig") == "separate" else data
    expected = expected[..., None] if expected.ndim == 2 else expected
    with open_slide(tmp_path / "x.tif") as slide:
        assert isinstance(slide, TiffSlide) and (slide.height, slide.width, slide.channels) == expected.shape
        assert slide.memory_mapped == ("contiguous" in layout)  # memory-mapped exactly when it can be
        for top, bottom in [(t, min(b, slide.height)) for t, b in BANDS if t < slide.height]:
            band = slide.read_rows(top, bottom)
            assert band.dtype.isnative
            np.testing.assert_array_equal(band, expected[top:bottom])
            slide.release(bottom)  # handing pages back must not change what is read next
        np.testing.assert_array_equal(slide.read_rows(0, slide.height), expected)
        with pytest.raises(ValueError, match="are not inside"):
            slide.read_rows(5, slide.height + 1)


def test_tiff_refusals_name_the_fix(tmp_path):
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((3, 20, 20), np.uint8), photometric="minisblack", metadata={"axes": "ZYX"})
    with pytest.raises(ValueError, match="stack of 3 planes.*save the plane you want"):
        open_slide(tmp_path / "stack.tif")
    (tmp_path / "broken.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(ValueError, match="cannot read TIFF file .*broken.tif"):
        open_slide(tmp_path / "broken.tif")
    with pytest.raises(ValueError, match="does not exist"):
        open_slide(tmp_path / "missing.tif")
    with pytest.raises(TypeError, match="file path or a NumPy array"):
        open_slide(torch.zeros(3, 3))
    tifffile.imwrite(tmp_path / "lzw.tif", GRAY, tile=(64, 64), compression="zlib")
    with tifffile.TiffFile(tmp_path / "lzw.tif", mode="r+b") as tif:
        tif.pages[0].tags["Compression"].overwrite(5)  # claim LZW, which needs imagecodecs
    with pytest.raises(ValueError, match="compression LZW.*pip install imagecodecs"):
        open_slide(tmp_path / "lzw.tif")


def test_pillow_reads_above_its_bomb_limit_but_not_above_ours(tmp_path, monkeypatch):
    Image.fromarray(RGB).save(tmp_path / "x.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow alone now refuses this 97x83 image
    with pytest.raises(Image.DecompressionBombError):
        Image.open(tmp_path / "x.png")
    np.testing.assert_array_equal(read_pillow(tmp_path / "x.png"), RGB)
    assert slide_size(tmp_path / "x.png") == (97, 83)
    assert Image.MAX_IMAGE_PIXELS == 1000  # the limit is back for everyone else
    with pytest.raises(ValueError, match=r"97x83 = 8,051 pixels, more than max_pixels=8,000.*tiled TIFF"):
        open_slide(tmp_path / "x.png", max_pixels=8000)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match="cannot read image file .*bad.png"):
        read_pillow(tmp_path / "bad.png")


def test_png_slide_identity_is_the_file(tmp_path):
    Image.fromarray(RGB[..., 0]).save(tmp_path / "x.png")
    slide = open_slide(tmp_path / "x.png")
    assert slide.read_rows(3, 9).shape == (6, 83, 1)
    assert slide.identity()["path"].endswith("x.png") and slide.identity()["bytes"] > 0


def test_array_slide_checks_its_input_and_hashes_it():
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, C\); got shape \(2, 3, 4, 5\)"):
        ArraySlide(np.zeros((2, 3, 4, 5)))
    with pytest.raises(TypeError, match="NumPy array"):
        ArraySlide([[1, 2]])
    a, b = np.zeros((4, 5), np.uint8), np.zeros((4, 5), np.uint8)
    b[3, 4] = 1
    assert ArraySlide(a).identity() != ArraySlide(b).identity()


def test_channel_conversion_matches_reading_the_whole_file(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "x.png")
    whole = read_image(tmp_path / "x.png", channels=1)  # Pillow's L conversion of the whole image
    np.testing.assert_array_equal(np.concatenate([convert_channels(RGB[t : t + 10], 1) for t in range(0, 97, 10)]), whole)
    np.testing.assert_array_equal(convert_channels(RGB[..., :1], 3), np.repeat(RGB[..., :1], 3, axis=-1))
    rgba = np.concatenate([RGB, np.full(RGB.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    np.testing.assert_array_equal(convert_channels(rgba, 3), RGB)
    with pytest.raises(ValueError, match="cannot convert a 3-channel uint16 image"):
        convert_channels(RGB.astype(np.uint16), 1)


@pytest.mark.parametrize("normalize", ["unit", None, "per_image"])
def test_model_rows_scale_as_the_folder_dataset_does(normalize):
    slide = ArraySlide(GRAY)
    statistics = channel_statistics(slide, None, band=50) if normalize == "per_image" else None
    rows = torch.cat([model_rows(slide.read_rows(t, min(t + 64, 203)), None, normalize, statistics) for t in range(0, 203, 64)], dim=1)
    expected = torch.from_numpy(scale_image(GRAY[..., None], normalize)).permute(2, 0, 1)
    torch.testing.assert_close(rows, expected, rtol=1e-5, atol=1e-5)
    if normalize == "per_image":
        with pytest.raises(ValueError, match="needs the slide's statistics"):
            model_rows(GRAY[:4, :, None], None, "per_image")


def test_pyramid_shapes_halve_down_to_one_tile():
    assert pyramid_shapes(256, 100) == []
    assert pyramid_shapes(257, 100) == [(129, 50)]
    assert pyramid_shapes(32768, 32768)[-1] == (256, 256) and len(pyramid_shapes(32768, 32768)) == 7


def test_partial_result_round_trip_and_ome_tiff(tmp_path):
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 3, (300, 70), dtype=np.uint8)
    probs = rng.integers(0, 256, (300, 70, 3), dtype=np.uint8)
    result = PartialResult.create(tmp_path / "p", 300, 70, np.uint8, 3, {"model": "m"}, [0, 1, 2])
    with pytest.raises(ValueError, match="bands must arrive in order: expected rows from 0, got 10"):
        result.write_band(10, ids[10:20], probs[10:20])
    for top in range(0, 300, 64):
        result.write_band(top, ids[top : top + 64], probs[top : top + 64])
    with pytest.raises(ValueError, match="another model.*model: 'm' then, 'n' now"):
        PartialResult.resume(tmp_path / "p", {"model": "n"})
    again = PartialResult.resume(tmp_path / "p", {"model": "m"})
    assert again.rows_done == 300
    np.testing.assert_array_equal(again.read_ids(0, 300), ids)
    np.testing.assert_array_equal(again.read_ids(1, 300, 2), ids[1::2])
    out = write_ome_tiff(tmp_path / "out.ome.tif", again, tile=32)
    with tifffile.TiffFile(out) as tif:
        np.testing.assert_array_equal(tif.series[0].asarray(), ids)
        assert [level.shape for level in tif.series[0].levels] == [(300, 70), (150, 35), (75, 18), (38, 9), (19, 5)]
        np.testing.assert_array_equal(tif.series[0].levels[2].asarray(), ids[::4, ::4])
        np.testing.assert_array_equal(tif.series[1].asarray(), probs.transpose(2, 0, 1))
    assert not (tmp_path / "out.ome.tif.writing").exists()
    half = PartialResult.create(tmp_path / "q", 300, 70, np.uint8, 0, {}, [0, 1, 2])
    half.write_band(0, ids[:100])
    with pytest.raises(ValueError, match="has 100 of 300 rows"):
        write_ome_tiff(tmp_path / "half.ome.tif", half)
    (tmp_path / "q" / "state.json").write_text("{broken")
    with pytest.raises(ValueError, match="is unreadable"):
        PartialResult.resume(tmp_path / "q", {})
    with pytest.raises(ValueError, match="nothing to resume"):
        PartialResult.resume(tmp_path / "none", {})
    (tmp_path / "users").mkdir()
    (tmp_path / "users" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not a partial result"):
        PartialResult.create(tmp_path / "users", 3, 3, np.uint8, 0, {}, [0, 1])
    assert (tmp_path / "users" / "notes.txt").read_text() == "mine"
