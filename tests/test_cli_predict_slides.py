"""predict on whole slides (streamed above --stream-above) and with test-time augmentation (--tta)."""
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from unet_helpers import UNet
from unet_helpers.checkpoint import save_checkpoint
from unet_helpers.cli import main
from unet_helpers.image_file import load_image
from unet_helpers.inference import predict, predict_tiled
from unet_helpers.tta import TTA


@pytest.fixture
def run(tmp_path):
    """A checkpoint of a small random model, and a folder with a small PNG and a 300x260 BigTIFF."""
    torch.manual_seed(4)
    net = UNet(1, 2, base=4, depth=2).eval()
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 36), dtype=np.uint8)).save(images / "small.png")
    tifffile.imwrite(images / "slide.tif", rng.integers(0, 256, (300, 260), dtype=np.uint8), bigtiff=True, tile=(64, 64))
    with torch.no_grad():  # balance the two classes, so that the ids vary from pixel to pixel (and TTA can change them)
        logits = net(load_image(images / "slide.tif", 1, "unit")[None])  # (1, 2, H, W)
        net.head.bias[1] -= (logits[:, 1] - logits[:, 0]).median()
    save_checkpoint(tmp_path / "best.pt", net, extra={"normalize": "unit", "mask_values": {0: 0, 255: 1}})
    return net, tmp_path


def test_large_images_are_streamed_to_ome_tiff_and_equal_predict_tiled(run, capsys):
    net, root = run
    out = root / "pred"
    argv = ["predict", str(root / "best.pt"), str(root / "images"), str(out), "--tile", "64", "--stream-above", "10000",
            "--stored-values"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "slide.tif -> " in printed and "streamed" in printed and "wrote 2 mask(s)" in printed
    assert sorted(p.name for p in out.iterdir()) == ["slide.ome.tif", "small.png"]
    slide = load_image(root / "images" / "slide.tif", 1, "unit")
    expected = predict_tiled(net, slide, tile=64, overlap=0.25, batch_size=4)
    np.testing.assert_array_equal(tifffile.imread(out / "slide.ome.tif"), np.array([0, 255])[expected.numpy()])
    small = predict(net, load_image(root / "images" / "small.png", 1, "unit"))  # 40x36 <= tile: one pass
    np.testing.assert_array_equal(np.array(Image.open(out / "small.png")), np.array([0, 255])[small.numpy()])
    assert main(argv) == 1  # the outputs exist now
    assert "already exist" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--resume"]) == 0


def test_tta_averages_the_flipped_predictions(run, capsys):
    net, root = run
    out = root / "pred"
    assert main(["predict", str(root / "best.pt"), str(root / "images"), str(out), "--tile", "64", "--tta", "flips"]) == 0
    slide = load_image(root / "images" / "slide.tif", 1, "unit")
    expected = predict_tiled(TTA(net, "flips"), slide, tile=64, overlap=0.25, batch_size=4)
    got = np.array(Image.open(out / "slide.png"))  # 78,000 px: under the default --stream-above, so a PNG
    np.testing.assert_array_equal(got, expected.numpy())
    plain = predict_tiled(net, slide, tile=64, overlap=0.25, batch_size=4)
    assert 0.2 < plain.float().mean() < 0.8 and not torch.equal(plain, expected)  # the flag changed something
    capsys.readouterr()


def test_tta_refuses_onnx_and_unknown_modes(run, capsys):
    _, root = run
    assert main(["predict", "--onnx", str(root / "model.onnx"), str(root / "images"), str(root / "pred"), "--tta", "flips"]) == 1
    assert "--tta applies to checkpoints" in capsys.readouterr().err
    assert main(["predict", str(root / "best.pt"), str(root / "images"), str(root / "pred"), "--tta", "rot"]) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "invalid choice" in err
