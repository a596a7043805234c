"""SegmentationFolder on small folders written by the test."""
import numpy as np
import pytest
import torch
from PIL import Image

from unet_helpers.folder import SegmentationFolder


def write_pair(root, name, size=(12, 10), mask_ext=".png", image_ext=".png", mask_fill=255, mode="L"):
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    h, w = size
    rng = np.random.default_rng(len(name))
    pixels = rng.integers(0, 256, (h, w, 3) if mode == "RGB" else (h, w), dtype=np.uint8)
    Image.fromarray(pixels, mode=None).save(root / "images" / f"{name}{image_ext}")
    mask = np.zeros((h, w), np.uint8)
    mask[2:5, 3:7] = mask_fill
    Image.fromarray(mask).save(root / "masks" / f"{name}{mask_ext}")
    return pixels, mask


def test_reads_pairs_with_mapping(tmp_path):
    pixels, mask = write_pair(tmp_path, "b")
    write_pair(tmp_path, "a", image_ext=".tif", mask_ext=".tif")
    ds = SegmentationFolder(tmp_path, mask_values={0: 0, 255: 1})
    assert ds.names == ["a", "b"] and len(ds) == 2
    image, target = ds[1]
    assert image.shape == (1, 12, 10) and image.dtype == torch.float32
    assert torch.allclose(image[0], torch.from_numpy(pixels).float() / 255)
    assert target.dtype == torch.int64 and set(target.unique().tolist()) == {0, 1}
    assert torch.equal(target, torch.from_numpy(mask // 255).long())


def test_rgb_channels_and_per_image_normalisation(tmp_path):
    write_pair(tmp_path, "c", mode="RGB")
    image, _ = SegmentationFolder(tmp_path, mask_values={0: 0, 255: 1}, normalize="per_image")[0]
    assert image.shape == (3, 12, 10)
    assert torch.allclose(image.mean(dim=(1, 2)), torch.zeros(3), atol=1e-5)
    gray, _ = SegmentationFolder(tmp_path, mask_values={0: 0, 255: 1}, channels=1)[0]
    assert gray.shape == (1, 12, 10)


def test_names_subset_cache_and_transform(tmp_path):
    for n in "xyz":
        write_pair(tmp_path, n)
    flip = lambda img, m: (img.flip(-1), m.flip(-1))  # noqa: E731
    ds = SegmentationFolder(tmp_path, mask_values={0: 0, 255: 1}, names=["z", "x"], cache=True, transform=flip)
    assert ds.names == ["z", "x"]
    raw_image, raw_mask = ds.load(0)
    image, mask = ds[0]
    assert torch.equal(image, raw_image.flip(-1)) and torch.equal(mask, raw_mask.flip(-1))
    assert ds.load(0)[0] is raw_image  # cached


def test_missing_mask_names_the_file(tmp_path):
    write_pair(tmp_path, "ok")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "images" / "lonely.png")
    with pytest.raises(ValueError, match=r"image .*lonely.png has no mask: expected .*masks/lonely.png"):
        SegmentationFolder(tmp_path)


def test_size_mismatch_names_the_file(tmp_path):
    write_pair(tmp_path, "p")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "masks" / "p.png")
    with pytest.raises(ValueError, match=r"image .*p.png is 12x10 \(HxW\) but its mask .*p.png is 5x5"):
        SegmentationFolder(tmp_path)


def test_unreadable_image_names_the_file(tmp_path):
    write_pair(tmp_path, "good")
    (tmp_path / "images" / "broken.png").write_bytes(b"not a png at all")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "masks" / "broken.png")
    with pytest.raises(ValueError, match=r"cannot read image file .*broken.png"):
        SegmentationFolder(tmp_path)


def test_truncated_image_fails_on_load_with_the_file_named(tmp_path):
    write_pair(tmp_path, "t", size=(64, 64))
    path = tmp_path / "images" / "t.png"
    path.write_bytes(path.read_bytes()[:200])  # header intact, data cut
    ds = SegmentationFolder(tmp_path, mask_values={0: 0, 255: 1})
    with pytest.raises(ValueError, match=r"cannot read image file .*t.png"):
        ds[0]


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match=r"no images in .*images"):
        SegmentationFolder(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"folder .*nowhere/images does not exist"):
        SegmentationFolder(tmp_path / "nowhere")


def test_unmapped_mask_values_and_jpeg_masks(tmp_path):
    write_pair(tmp_path, "m", mask_fill=128)
    with pytest.raises(ValueError, match=r"mask .*m.png has values \[128\] that mask_values does not map"):
        SegmentationFolder(tmp_path, mask_values={0: 0, 255: 1})[0]
    write_pair(tmp_path / "j", "m", mask_ext=".jpg")
    with pytest.raises(ValueError, match=r"is a JPEG; JPEG is lossy"):
        SegmentationFolder(tmp_path / "j")


def test_bad_arguments(tmp_path):
    write_pair(tmp_path, "a")
    with pytest.raises(ValueError, match=r"normalize must be one of"):
        SegmentationFolder(tmp_path, normalize="zscore")
    with pytest.raises(TypeError, match=r"mask_values must be a non-empty dict"):
        SegmentationFolder(tmp_path, mask_values=[0, 255])
    with pytest.raises(ValueError, match=r"names not found"):
        SegmentationFolder(tmp_path, names=["nope"])


def test_one_bit_and_gray_alpha_masks(tmp_path):
    write_pair(tmp_path, "a")
    bits = np.zeros((12, 10), bool)
    bits[2:5, 3:7] = True
    Image.fromarray(bits).save(tmp_path / "masks" / "a.png")  # mode "1"
    assert Image.open(tmp_path / "masks" / "a.png").mode == "1"
    mask = SegmentationFolder(tmp_path, mask_values={0: 0, 1: 1})[0][1]
    assert torch.equal(mask, torch.from_numpy(bits).long())
    gray_alpha = np.stack([bits.astype(np.uint8) * 255, np.full((12, 10), 255, np.uint8)], axis=-1)
    Image.fromarray(gray_alpha, mode="LA").save(tmp_path / "masks" / "a.png")
    assert torch.equal(SegmentationFolder(tmp_path, mask_values={0: 0, 255: 1})[0][1], mask)
    gray_alpha[0, 0, 1] = 0
    Image.fromarray(gray_alpha, mode="LA").save(tmp_path / "masks" / "a.png")
    with pytest.raises(ValueError, match=r"transparency channel that varies"):
        SegmentationFolder(tmp_path, mask_values={0: 0, 255: 1})[0]


# -- one reading path for every pixel mode (issue 15) ----------------------------------------------

from unet_helpers.image_file import load_image, read_header, read_image, scale_image  # noqa: E402
from unet_helpers.mask_file import read_mask  # noqa: E402


def save(path, array, mode=None):
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    image.save(path)
    return path


def test_16_bit_gray_read_for_a_3_channel_model_is_not_clipped(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 65536, (9, 11), dtype=np.uint16)
    path = save(tmp_path / "deep.png", pixels)
    assert Image.open(path).mode == "I;16"
    image = load_image(path, 3, "unit")
    expected = torch.from_numpy(pixels.astype(np.float32) / 65535)
    assert image.shape == (3, 9, 11) and all(torch.allclose(image[c], expected) for c in range(3))
    assert torch.allclose(load_image(path, 1, "unit")[0], expected)


def test_float_tiff_in_unit_range_keeps_its_values_and_outside_is_refused(tmp_path):
    pixels = np.random.default_rng(1).random((7, 5)).astype(np.float32)
    path = save(tmp_path / "f.tif", pixels)
    for channels in (None, 1, 3):
        image = load_image(path, channels, "unit")
        assert torch.allclose(image[-1], torch.from_numpy(pixels)) and image.abs().sum() > 0
    save(tmp_path / "wide.tif", pixels * 255)
    with pytest.raises(ValueError, match=r"wide.tif holds floats from .* to .*'unit' scaling takes floats as already in \[0, 1\]"):
        load_image(tmp_path / "wide.tif", 1, "unit")
    assert load_image(tmp_path / "wide.tif", 1, "per_image").std() > 0.5


def test_32_bit_integers_are_16_bit_data_or_refused_for_unit_scaling(tmp_path):
    small = np.array([[0, 1000], [65535, 7]], np.int32)
    path = save(tmp_path / "i.tif", small)
    assert Image.open(path).mode == "I"
    assert torch.allclose(load_image(path, 1, "unit")[0], torch.from_numpy(small / 65535).float())  # not / 2**31
    save(tmp_path / "big.tif", np.array([[0, 70000], [5, 9]], np.int32))
    with pytest.raises(ValueError, match=r"big.tif holds int32 values from 0 to 70000, beyond the 8 and 16 bits"):
        load_image(tmp_path / "big.tif", 1, "unit")
    per_image = load_image(tmp_path / "big.tif", 1, "per_image")
    assert per_image.mean().abs() < 1e-5 and torch.isfinite(per_image).all()


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr", "I;16", "I", "F"])
def test_every_mode_is_read_as_its_reference(tmp_path, mode):
    """Against an independent reference: Pillow's own conversion to 8-bit, or the raw values / depth."""
    rng = np.random.default_rng(2)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    if mode == "I;16":
        source = Image.fromarray(rng.integers(0, 65536, (6, 8), dtype=np.uint16))
    elif mode == "I":
        source = Image.fromarray(rng.integers(0, 65536, (6, 8)).astype(np.int32))
    elif mode == "F":
        source = Image.fromarray(rng.random((6, 8)).astype(np.float32))
    else:
        source = rgb.convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "YCbCr", "I", "F") else "x.png")
    source.save(path)
    with Image.open(path) as img:
        stored = img.mode
        if stored in ("I;16", "I", "F"):
            depth = {"I;16": 65535, "I": 65535, "F": 1}[stored]
            gray = np.array(img).astype(np.float64) / depth
            as_gray, as_rgb = gray, np.repeat(gray[..., None], 3, -1)
        else:
            as_gray = np.array(img.convert("L")) / 255
            as_rgb = np.array(img.convert("RGB")) / 255
    native = 1 if stored in ("1", "L", "LA", "I;16", "I", "F") else 3
    assert read_header(path).channels == native
    for channels, expected in ((1, as_gray), (3, as_rgb), (None, as_gray if native == 1 else as_rgb)):
        image = load_image(path, channels, "unit").permute(1, 2, 0).numpy()  # (H, W, C)
        assert np.allclose(image.squeeze(-1) if expected.ndim == 2 else image, expected, atol=1e-6), (mode, channels)


def test_unsupported_modes_frames_nan_and_formats_are_refused_with_the_file_named(tmp_path):
    Image.new("LAB", (4, 4)).save(tmp_path / "lab.tif")
    with pytest.raises(ValueError, match=r"lab.tif has the pixel mode LAB, which is read neither as gray nor as RGB"):
        read_image(tmp_path / "lab.tif")
    frames = [Image.new("L", (4, 4), v) for v in (0, 9)]
    frames[0].save(tmp_path / "stack.tif", save_all=True, append_images=frames[1:])
    with pytest.raises(ValueError, match=r"stack.tif holds 2 frames .*save each frame as its own file"):
        read_image(tmp_path / "stack.tif")
    nan = np.zeros((4, 4), np.float32)
    nan[1, 2] = np.nan
    save(tmp_path / "nan.tif", nan)
    with pytest.raises(ValueError, match=r"nan.tif has 1 NaN or infinite pixel"):
        read_image(tmp_path / "nan.tif")
    Image.new("RGB", (4, 4)).save(tmp_path / "photo.png", format="JPEG")
    with pytest.raises(ValueError, match=r"photo.png is a JPEG file, not the PNG its name says"):
        read_image(tmp_path / "photo.png")
    (tmp_path / "junk.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(ValueError, match=r"cannot read image file .*junk.tif"):
        read_image(tmp_path / "junk.tif")


def test_pixel_limit_is_checked_from_the_header(tmp_path, monkeypatch):
    import struct
    import zlib

    path = save(tmp_path / "big.png", np.zeros((30, 40), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ValueError, match=r"big.png has 40x30 = 1,200 pixels, more than the limit of 1,000 .*--max-pixels N"):
        read_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)
    assert read_image(path).shape == (30, 40, 1)
    monkeypatch.undo()
    data = bytearray((tmp_path / "big.png").read_bytes())  # a bomb: the header claims 100000 x 100000
    data[16:24] = struct.pack(">II", 100000, 100000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    (tmp_path / "bomb.png").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"bomb.png has 10,000,000,000 pixels, more than the limit of"):
        read_header(tmp_path / "bomb.png")


def test_masks_negative_float_and_colour_modes_are_refused(tmp_path):
    save(tmp_path / "neg.tif", np.array([[0, -1], [1, 1]], np.int32))
    with pytest.raises(ValueError, match=r"neg.tif has negative values \[-1\]; class ids and mask values must be >= 0"):
        read_mask(tmp_path / "neg.tif", None)
    save(tmp_path / "float.tif", np.array([[0, 1.7], [1, 1]], np.float32))
    with pytest.raises(ValueError, match=r"float.tif holds floating-point values \(mode F\).*would be truncated"):
        read_mask(tmp_path / "float.tif", np.array([0, 1]))
    Image.new("CMYK", (2, 2)).save(tmp_path / "cmyk.tif")
    with pytest.raises(ValueError, match=r"cmyk.tif has the pixel mode CMYK, which is no mask format"):
        read_mask(tmp_path / "cmyk.tif", None)
    deep = np.array([[0, 65535], [300, 0]], np.uint16)
    assert np.array_equal(read_mask(save(tmp_path / "deep.png", deep), None), deep)
    palette = Image.fromarray(np.array([[0, 3], [2, 1]], np.uint8), mode="L").convert("P")
    palette.save(tmp_path / "p.png")
    assert read_mask(tmp_path / "p.png", None).max() <= 255


def test_mixed_gray_and_colour_images_are_refused_unless_channels_is_given(tmp_path):
    write_pair(tmp_path, "gray")
    write_pair(tmp_path, "colour", mode="RGB")
    with pytest.raises(ValueError, match=r"mix gray and colour: .*gray.png is gray but .*colour.png is colour.*--channels"):
        SegmentationFolder(tmp_path, mask_values={0: 0, 255: 1})
    assert SegmentationFolder(tmp_path, mask_values={0: 0, 255: 1}, channels=3).channels == 3


def test_verify_reads_every_pair_and_checks_class_ids(tmp_path):
    write_pair(tmp_path, "a", mask_fill=1)
    write_pair(tmp_path, "b", mask_fill=7)
    dataset = SegmentationFolder(tmp_path)
    with pytest.raises(ValueError, match=r"mask .*b.png has class id\(s\) \[7\] but there are 2 classes"):
        dataset.verify(num_classes=2)
    dataset.verify(num_classes=2, ignore_index=7)
    dataset.verify(num_classes=8)
    dataset.verify()  # without num_classes: readable is enough


def test_a_png_named_jpg_is_the_format_error_in_a_fresh_interpreter(tmp_path):
    """Found by tests/fuzz: FORMATS pinned .jpg to ("JPEG", "MPO"), and Image.open raised KeyError('MPO')."""
    import subprocess
    import sys

    Image.new("L", (8, 8)).save(tmp_path / "a.jpg", format="PNG")
    code = ("from unet_helpers.image_file import read_image\nfrom unet_helpers.mask_file import read_mask\n"
            "for reader in (read_image, lambda p: read_mask(p, None)):\n"
            "    try:\n"
            "        reader(r'%s')\n"
            "    except ValueError as error:\n"
            "        print(error)\n") % (tmp_path / "a.jpg")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout.count("a.jpg is a PNG file, not the JPEG its name says") >= 1, done.stdout


# Found by tests/fuzz: Pillow's GIF plugin raised IndexError counting the frames of this file.
FUZZED_GIF = ("R0lGODdhBQAGAIEAAAAnAAAAAAAIAAAAAAAsBgCBAAAAAAAAAAAIAAAAAAAsAAAAAJ6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6"
              "enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6e"
              "np6enp6enp6enp6enp6enp4FAAAAAABGRkZGBQAGAAAIDAABCBxIsKDBgwIDAgA7")


def test_a_damaged_gif_is_the_unreadable_error_not_an_index_error(tmp_path):
    import base64

    path = tmp_path / "m.gif"
    path.write_bytes(base64.b64decode(FUZZED_GIF))
    with pytest.raises(ValueError, match=r"cannot read mask file .*m.gif: .*Hint: is it a valid, complete"):
        read_mask(path, None)
