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
