"""smp's models build and run offline, and smp's EfficientNet-Lite0 gets our ImageNet weights exactly.

Also the independent check of our EfficientNet-Lite0: timm's ``tf_efficientnet_lite0`` (the same
TensorFlow network, written by others) given the same weight file computes the same logits.
"""
from __future__ import annotations

import pytest
import torch

from unet_helpers.encoders import MILITARY_UNIFORM, efficientnet_lite0, sample_photo, scale_for_weights
from unet_helpers.encoders.weights import read_imagenet_weights
from unet_helpers.realdata.references import SMP_LITE0_ENCODER, copy_in_order, smp_efficientnet_lite0_unet, smp_model

pytestmark = pytest.mark.smp


@pytest.mark.parametrize("architecture, encoder", [("Unet", "resnet34"), ("DeepLabV3Plus", "resnet34"),
                                                   ("Segformer", "mit_b0")])
def test_the_lessons_libraries_build_and_run(smp, architecture, encoder):
    model = smp_model(architecture, 1, 5, encoder)  # encoder_weights=None: nothing is downloaded
    assert isinstance(model, getattr(smp, architecture))
    model.train()
    logits = model(torch.randn(2, 1, 64, 64))
    assert logits.shape == (2, 5, 64, 64)
    logits.mean().backward()
    assert all(p.grad is not None for p in model.segmentation_head.parameters())


def test_unknown_architecture_is_named(smp):
    with pytest.raises(ValueError, match="no architecture 'UNet3000'"):
        smp_model("UNet3000", 1, 2)


@pytest.fixture(scope="module")
def timm_lite0(timm):
    """timm's TensorFlow-faithful EfficientNet-Lite0 with the package's weights, layer by layer in order."""
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    copy_in_order(read_imagenet_weights(), net)
    return net


def test_our_network_computes_timms_logits(timm_lite0):
    ours = efficientnet_lite0().eval()
    photo = scale_for_weights(sample_photo(224)[None])
    torch.manual_seed(0)
    for x in (photo, torch.randn(2, 3, 64, 64) * 0.5, torch.randn(1, 3, 33, 35) * 0.5):  # odd sizes: TF padding
        with torch.no_grad():
            torch.testing.assert_close(ours(x), timm_lite0(x), rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        assert int(timm_lite0(photo).argmax()) == MILITARY_UNIFORM


def test_pytorch_padded_variant_is_another_network(timm, timm_lite0):
    # timm's "efficientnet_lite0" pads symmetrically and uses BatchNorm eps 1e-5: the same weight
    # file loads into it (same shapes) but it computes something else. Our network follows the
    # TensorFlow one that the weights were trained in.
    other = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    copy_in_order(read_imagenet_weights(), other)
    x = scale_for_weights(sample_photo(224)[None])
    with torch.no_grad():
        assert (other(x) - timm_lite0(x)).abs().max() > 0.5


@pytest.mark.parametrize("in_channels", [1, 3])
def test_smp_encoder_gets_the_same_weights_and_features(smp, in_channels):
    model = smp_efficientnet_lite0_unet(in_channels, 5).eval()
    assert model.encoder.name == SMP_LITE0_ENCODER.removeprefix("tu-")
    ours = efficientnet_lite0(in_channels=in_channels, classifier=False).eval()
    image = sample_photo(64)[None]
    image = scale_for_weights(image.mean(1, keepdim=True) if in_channels == 1 else image)
    with torch.no_grad():
        theirs = model.encoder(image)  # [image, then strides 2, 4, 8, 16, 32]
        mine = ours.features(image)
    assert len(theirs) == 6 and torch.equal(theirs[0], image)
    for a, b in zip(theirs[1:], mine):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        assert model(image).shape == (1, 5, 64, 64)


def test_smp_encoder_from_scratch_differs(smp):
    torch.manual_seed(0)
    scratch = smp_efficientnet_lite0_unet(1, 2, pretrained=False)
    pretrained = smp_efficientnet_lite0_unet(1, 2)
    weight = "conv_stem.weight"
    assert not torch.equal(scratch.encoder.model.state_dict()[weight], pretrained.encoder.model.state_dict()[weight])
    torch.testing.assert_close(pretrained.encoder.model.state_dict()[weight],
                               read_imagenet_weights()["_conv_stem.weight"].sum(1, keepdim=True))


def test_copy_in_order_refuses_another_network(timm):
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    state = read_imagenet_weights()
    with pytest.raises(ValueError, match="cannot copy 295 tensors"):
        copy_in_order(dict(list(state.items())[1:]), net)
    state["_conv_stem.weight"] = torch.zeros(32, 1, 3, 3)
    with pytest.raises(ValueError, match=r"_conv_stem.weight \(32, 1, 3, 3\) does not fit conv_stem.weight"):
        copy_in_order(state, net)
