"""Test-time augmentation against a brute-force average of the transformed predictions."""
import pytest
import torch

from unet_helpers import UNet
from unet_helpers.inference import predict, predict_tiled, scores_to_probs
from unet_helpers.tta import TTA, check_tta_mode


def brute_force(model, images, mode):
    """Mean probabilities over the transformed views, each written out (not from ``TTA_MODES``)."""
    views = [
        (images, lambda p: p),
        (images.flip(-1), lambda p: p.flip(-1)),
        (images.flip(-2), lambda p: p.flip(-2)),
        (images.flip(-2).flip(-1), lambda p: p.flip(-1).flip(-2)),
    ]
    if mode == "d4":  # the 8 symmetries of a square: the 4 flips above, both diagonals, both quarter turns
        views += [
            (images.transpose(-2, -1), lambda p: p.transpose(-2, -1)),  # main diagonal
            (images.flip(-2, -1).transpose(-2, -1), lambda p: p.transpose(-2, -1).flip(-2, -1)),  # anti-diagonal
            (images.rot90(1, (-2, -1)), lambda p: p.rot90(-1, (-2, -1))),  # quarter turn
            (images.rot90(-1, (-2, -1)), lambda p: p.rot90(1, (-2, -1))),  # three quarters
        ]
    with torch.no_grad():
        return torch.stack([back(scores_to_probs(model(view))) for view, back in views]).mean(0)


@pytest.mark.parametrize("mode", ["flips", "d4"])
@pytest.mark.parametrize("classes", [1, 3])
def test_matches_brute_force_on_odd_sizes(mode, classes):
    torch.manual_seed(0)
    model = UNet(2, classes, base=4, depth=2).eval()
    images = torch.rand(2, 2, 21, 34)  # not square, odd: transposed turns change the shape
    expected = brute_force(model, images, mode)
    ids, probs = predict(TTA(model, mode), images, return_probs=True)
    assert probs.shape == (2, max(classes, 2), 21, 34)
    torch.testing.assert_close(probs, expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(ids, expected.argmax(1))


def test_d4_is_invariant_to_a_turn_of_the_input():
    torch.manual_seed(1)
    model = UNet(1, 3, base=4, depth=2).eval()
    image = torch.rand(1, 1, 24, 24)
    _, probs = predict(TTA(model, "d4"), image, return_probs=True)
    _, turned = predict(TTA(model, "d4"), image.rot90(1, (-2, -1)), return_probs=True)
    torch.testing.assert_close(turned, probs.rot90(1, (-2, -1)), atol=1e-5, rtol=1e-5)
    _, plain = predict(model, image, return_probs=True)
    _, plain_turned = predict(model, image.rot90(1, (-2, -1)), return_probs=True)
    assert not torch.allclose(plain_turned, plain.rot90(1, (-2, -1)), atol=1e-5)  # without TTA it is not


def test_tiles_are_augmented_like_the_whole_image():
    torch.manual_seed(2)
    model = UNet(1, 2, base=4, depth=2).eval()
    image = torch.rand(1, 40, 40)
    _, whole = predict(TTA(model, "flips"), image, return_probs=True)
    _, tiled = predict_tiled(TTA(model, "flips"), image, tile=64, return_probs=True)  # one tile: the whole image
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)


def test_restores_training_mode_and_refuses_unknown_modes():
    model = UNet(1, 2, base=4, depth=2).train()
    predict(TTA(model), torch.rand(1, 1, 16, 16))
    assert model.training
    for bad in ("flip", None, 4):
        with pytest.raises(ValueError, match="tta must be one of"):
            check_tta_mode(bad)
        with pytest.raises(ValueError, match="tta must be one of"):
            TTA(model, bad)
