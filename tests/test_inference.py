"""predict and predict_tiled, including agreement of tiled with whole-image inference."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given
from hypothesis import strategies as st

from unet_helpers import (
    ArrayDataset,
    CombinedLoss,
    ConfusionMatrix,
    RandomFlipRotate,
    UNet,
    seed_everything,
    synthetic_segmentation,
)
from unet_helpers.inference import blend_window, fuse_batchnorm, in_layout, predict, predict_tiled, scores_to_probs, tile_starts
from unet_helpers.loaders import make_loader
from unet_helpers.train import fit


@pytest.fixture(scope="module")
def trained_model():
    """A small U-Net trained for a few seconds on 64x64 synthetic shapes, in eval mode."""
    seed_everything(0)
    images, masks = synthetic_segmentation(160, size=64, seed=0)
    model = UNet(3, 3, base=8, depth=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    fit(model, make_loader(ArrayDataset(images, masks), 8), None, CombinedLoss(), optimizer, 3, num_classes=3, progress=False)
    return model.eval()


def mosaic(rows, cols, seed=5):
    """A large image made of 64x64 synthetic scenes, (3, 64 rows, 64 cols)."""
    images, masks = synthetic_segmentation(rows * cols, size=64, seed=seed)
    grid = images.reshape(rows, cols, 64, 64, 3).transpose(0, 2, 1, 3, 4).reshape(rows * 64, cols * 64, 3)
    return torch.from_numpy(grid).permute(2, 0, 1).contiguous()


def test_predict_uses_eval_mode_and_restores_mode():
    torch.manual_seed(0)
    model = UNet(3, 2, base=4, depth=2)
    model(torch.randn(4, 3, 16, 16))  # move BatchNorm running stats away from the defaults
    x = torch.randn(3, 3, 16, 16)
    model.train()
    ids, probs = predict(model, x, batch_size=2, return_probs=True)
    assert model.training
    with torch.no_grad():
        expected = model.eval()(x).softmax(1)
    assert torch.allclose(probs, expected, atol=1e-6) and torch.equal(ids, expected.argmax(1))
    assert predict(model, x[0]).shape == (16, 16)


def test_scores_to_probs_binary_and_multiclass():
    logits = torch.randn(2, 1, 3, 3)
    probs = scores_to_probs(logits)
    assert probs.shape == (2, 2, 3, 3) and torch.allclose(probs.sum(1), torch.ones(2, 3, 3))
    assert torch.allclose(probs[:, 1], torch.sigmoid(logits[:, 0]))


@given(st.integers(1, 300), st.integers(1, 64), st.floats(0, 0.9))
def test_tile_starts_cover_everything_flush_with_the_end(length, tile, overlap):
    stride = max(1, int(tile * (1 - overlap)))
    starts = tile_starts(length, tile, stride)
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s : s + tile] = True
        assert 0 <= s and (s + tile <= length or length <= tile)
    assert covered.all()
    assert starts[-1] + tile == length or length <= tile
    assert starts == sorted(set(starts))


def test_blend_window_shapes():
    window = blend_window(64, 48)
    assert window.shape == (64, 48) and window.min() > 0
    assert window[31:33, 23:25].min() == window.max()  # peak in the centre
    assert torch.equal(blend_window(5, 5, "uniform"), torch.ones(5, 5))
    with pytest.raises(ValueError, match=r"blend must be one of.*'average'"):
        blend_window(4, 4, "average")


@pytest.fixture(scope="module")
def scene_model():
    """A small U-Net that really segments large scenes: binary shapes, trained on 128x128 scenes.

    A model trained only on 64x64 images is badly calibrated on a 1024x1024 image (its deep
    BatchNorm statistics saw mostly zero padding), which makes whole-image inference itself
    unreliable; training on larger scenes is what practitioners do before tiling.
    """
    seed_everything(0)
    images, masks = synthetic_segmentation(300, size=128, seed=0, num_shapes=(4, 8), binary=True)
    model = UNet(3, 2, base=8, depth=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = make_loader(ArrayDataset(images, masks, transform=RandomFlipRotate()), 8)
    fit(model, loader, None, CombinedLoss(), optimizer, 5, progress=False)
    return model.eval()


def test_tiled_agrees_with_whole_image_on_1024(scene_model):
    images, masks = synthetic_segmentation(1, size=1024, seed=100, num_shapes=(256, 300), binary=True)
    scene, truth = torch.from_numpy(images[0]).permute(2, 0, 1).contiguous(), torch.from_numpy(masks)
    whole = predict(scene_model, scene)
    tiled = predict_tiled(scene_model, scene, tile=256, overlap=0.25, blend="gaussian")
    quality = ConfusionMatrix(2)
    quality.update(whole[None], truth)
    assert quality.iou()[1] > 0.8  # the model really segments: agreement is not trivial
    agreement = (whole == tiled).float().mean().item()
    assert agreement >= 0.995, agreement
    assert scene_model.training is False


def test_single_tile_equals_predict(trained_model):
    image = mosaic(2, 3)
    whole_ids, whole_probs = predict(trained_model, image, return_probs=True)
    for blend in ("gaussian", "uniform", "none"):
        ids, probs = predict_tiled(trained_model, image, tile=512, blend=blend, return_probs=True)
        assert torch.allclose(probs, whole_probs, atol=1e-5) and torch.equal(ids, whole_ids)


@pytest.mark.parametrize("hw,tile", [((300, 200), 128), ((100, 90), 256), ((257, 129), (64, 96))])
def test_any_size_and_binary_models(hw, tile):
    model = UNet(1, 1, base=4, depth=3)
    ids, probs = predict_tiled(model, torch.rand(1, *hw), tile=tile, overlap=0.5, return_probs=True)
    assert ids.shape == hw and probs.shape == (2, *hw)
    assert torch.allclose(probs.sum(0), torch.ones(hw), atol=1e-5)


def test_without_blending_seams_differ(trained_model):
    image = mosaic(4, 4)
    gaussian = predict_tiled(trained_model, image, tile=96, overlap=0.5, return_probs=True)[1]
    overwrite = predict_tiled(trained_model, image, tile=96, overlap=0.5, blend="none", return_probs=True)[1]
    assert not torch.allclose(gaussian, overwrite)
    for probs in (gaussian, overwrite):  # results are ordinary tensors, usable outside inference mode
        assert not probs.is_inference()
        probs.add_(0)


def test_errors_are_clear():
    model = UNet(1, 2, base=4, depth=2)
    with pytest.raises(ValueError, match=r"overlap must be in \[0, 1\); got 1.0"):
        predict_tiled(model, torch.rand(1, 32, 32), overlap=1.0)
    with pytest.raises(ValueError, match=r"takes one image \(C, H, W\); got shape \(2, 1, 32, 32\)"):
        predict_tiled(model, torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"images must be \(N, C, H, W\) or one image"):
        predict(model, torch.rand(32, 32))


def test_in_layout_changes_memory_order_only():
    x = torch.randn(2, 3, 5, 7)
    y = in_layout(x, channels_last=True)
    assert torch.equal(y, x) and y.is_contiguous(memory_format=torch.channels_last)
    assert in_layout(x, channels_last=False) is x
    assert in_layout(x[0], channels_last=True).is_contiguous()  # (C, H, W) has no channels-last form: unchanged


def test_channels_last_gives_the_default_layouts_results(trained_model):
    image = mosaic(2, 3)
    batch = torch.stack([image[:, :64, :64], image[:, 64:, 64:128]])  # (2, 3, 64, 64)
    ids, probs = predict(trained_model, batch, return_probs=True, channels_last=True)
    ids_ref, probs_ref = predict(trained_model, batch, return_probs=True, channels_last=False)
    assert probs.is_contiguous() and torch.allclose(probs, probs_ref, atol=1e-5) and torch.equal(ids, ids_ref)
    ids, probs = predict_tiled(trained_model, image, tile=96, overlap=0.5, return_probs=True, channels_last=True)
    ids_ref, probs_ref = predict_tiled(trained_model, image, tile=96, overlap=0.5, return_probs=True, channels_last=False)
    assert torch.allclose(probs, probs_ref, atol=1e-5) and torch.equal(ids, ids_ref)


def test_class_ids_are_the_first_largest_class_like_argmax():
    logits = torch.tensor([[1.0, 0.0, 1.0], [0.0, 2.0, 2.0], [3.0, 3.0, 3.0], [0.0, 0.0, 1.0]])  # 4 pixels x K=3, ties
    logits = logits.T.reshape(1, 3, 2, 2)  # (1, K, 2, 2)
    expected = [[0, 1], [0, 2]]
    assert logits.argmax(dim=1)[0].tolist() == expected
    assert predict(nn.Identity(), logits)[0].tolist() == expected
    assert predict_tiled(nn.Identity(), logits[0], tile=2).tolist() == expected


def test_fuse_batchnorm_gives_the_same_outputs_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = UNet(3, 3, base=4, depth=2, up_mode="transpose")
    for module in model.modules():  # BatchNorm statistics and affine parameters away from the identity
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.5, 0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = fuse_batchnorm(model)
    assert model.training and not fused.training
    assert sum(isinstance(m, nn.BatchNorm2d) for m in fused.modules()) == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    x = torch.randn(2, 3, 20, 18)
    with torch.no_grad():
        expected = model.eval()(x)
        assert torch.allclose(fused(x), expected, atol=1e-5)
        assert torch.allclose(fused(in_layout(x, True)), expected, atol=1e-5)
    assert torch.equal(predict(fused, x), expected.argmax(dim=1))


def test_fuse_batchnorm_leaves_other_models_working():
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.BatchNorm2d(3))  # BatchNorm not right after the conv
    fused = fuse_batchnorm(model)
    assert isinstance(fused[2], nn.BatchNorm2d)
    x = torch.randn(1, 2, 8, 8)
    with torch.no_grad():
        assert torch.equal(fused(x), model.eval()(x))
