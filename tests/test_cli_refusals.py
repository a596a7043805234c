"""The command line prints exactly the message the Python API raises (README: "What the command line refuses")."""
import numpy as np
import pytest
from PIL import Image

from unet_helpers.checkpoint import load_checkpoint
from unet_helpers.cli import main
from unet_helpers.image_file import read_image
from unet_helpers.mask_file import read_mask
from unet_helpers.inspector import inspect_masks

TINY = ["--base", "2", "--depth", "1", "--quiet", "--device", "cpu"]


def cli_error(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    return err[len("error: "):].strip()


def api_error(call, *args, error=ValueError):
    with pytest.raises(error) as info:
        call(*args)
    return " ".join(str(info.value).split())


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("refusals")
    assert main(["train", "--out", str(out), "--epochs", "1", "--steps-per-epoch", "1", "--synthetic-train", "4",
                 "--synthetic-val", "2", "--size", "16", *TINY]) == 0
    return str(out / "last.pt")


def test_predict_prints_the_readers_message(tmp_path, checkpoint, capsys):
    (tmp_path / "images").mkdir()
    Image.new("L", (16, 16)).save(tmp_path / "images" / "a.jpg", format="PNG")
    message = api_error(read_image, tmp_path / "images" / "a.jpg")
    assert "a.jpg is a PNG file, not the JPEG its name says" in message
    assert cli_error(capsys, ["predict", checkpoint, str(tmp_path / "images"), str(tmp_path / "out")]) == message


def test_predict_prints_the_checkpoint_loaders_message(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    Image.new("L", (16, 16)).save(tmp_path / "images" / "a.png")
    (tmp_path / "bad.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    message = api_error(load_checkpoint, tmp_path / "bad.pt")
    assert "is not a readable checkpoint" in message
    assert cli_error(capsys, ["predict", str(tmp_path / "bad.pt"), str(tmp_path / "images"), str(tmp_path / "o")]) == message


def test_inspect_prints_inspect_masks_message_for_16_bit_masks(tmp_path, capsys):
    for folder in ("pred", "true"):
        (tmp_path / folder).mkdir()
        mask = np.zeros((8, 8), np.uint16)
        mask[2:5, 2:5] = 65535
        Image.fromarray(mask).save(tmp_path / folder / "a.png")
    masks = [read_mask(tmp_path / "true" / "a.png", None)]
    message = api_error(inspect_masks, masks, masks)
    assert "65535" in message or "65,536" in message
    assert cli_error(capsys, ["inspect", str(tmp_path / "pred"), str(tmp_path / "true")]) == message


def test_a_negative_mask_value_is_the_same_message_in_train(tmp_path, capsys):
    for folder in ("images", "masks"):
        (tmp_path / "d" / folder).mkdir(parents=True)
    for stem in ("a", "b", "c"):
        Image.new("L", (16, 16)).save(tmp_path / "d" / "images" / f"{stem}.png")
        Image.fromarray(np.full((16, 16), -1 if stem == "b" else 0, np.int32)).save(tmp_path / "d" / "masks" / f"{stem}.tif")
    message = api_error(read_mask, tmp_path / "d" / "masks" / "b.tif", None)
    assert "negative values [-1]" in message
    err = cli_error(capsys, ["train", "--data", str(tmp_path / "d"), "--classes", "2", "--out", str(tmp_path / "run"),
                             "--epochs", "1", *TINY])
    assert err == message
