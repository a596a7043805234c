"""predict_files: a folder predicted with DataLoader workers gives the plain loop's class ids."""
import numpy as np
import pytest
import torch
from PIL import Image

from unet_helpers import UNet
from unet_helpers.image_file import read_image, scale_image
from unet_helpers.slides.folder_stream import predict_files, predict_image, stored_values
from unet_helpers.inference import predict, predict_tiled


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return UNet(3, 3, base=4, depth=2).eval()


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a": (40, 52), "b": (97, 130), "c": (33, 33), "d": (64, 20)}.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    Image.fromarray(rng.integers(0, 256, (50, 60), dtype=np.uint8)).save(tmp_path / "gray.png")  # converted to RGB
    return sorted(tmp_path.glob("*.png"))


def plain_loop(model, paths, tile):
    """What the predict command did before: read, scale, predict, one file after the other."""
    out = []
    for path in paths:
        image = torch.from_numpy(scale_image(read_image(path, 3), "unit")).permute(2, 0, 1).contiguous()
        out.append(predict_tiled(model, image, tile=tile) if max(image.shape[-2:]) > tile else predict(model, image))
    return out


@pytest.mark.parametrize("workers", [0, 2])
def test_predict_files_equals_the_plain_loop_in_order(model, folder, workers):
    expected = plain_loop(model, folder, tile=64)
    got = list(predict_files(model, folder, tile=64, num_workers=workers))
    assert [path for path, _ in got] == folder
    for (_, ids), reference in zip(got, expected):
        assert torch.equal(ids, reference)


def test_predict_image_tiles_only_what_does_not_fit(model):
    image = torch.rand(3, 70, 50)
    assert torch.equal(predict_image(model, image, tile=80), predict(model, image))
    assert torch.equal(predict_image(model, image, tile=48, overlap=0.5), predict_tiled(model, image, tile=48, overlap=0.5))


def test_an_unreadable_file_is_named_in_one_error(model, folder, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot read image file .*broken.png") as caught:
        list(predict_files(model, [folder[0], tmp_path / "broken.png"], num_workers=1))
    assert "Traceback" not in str(caught.value)
    with pytest.raises(ValueError, match="num_workers must be >= 0"):
        list(predict_files(model, folder, num_workers=-1))


def test_stored_values_maps_and_picks_the_dtype():
    ids = torch.tensor([[0, 1], [2, 1]])
    assert stored_values(ids).dtype == np.uint8
    mapped = stored_values(ids, np.array([0, 255, 1000]))
    assert mapped.dtype == np.uint16 and mapped.tolist() == [[0, 255], [1000, 255]]
