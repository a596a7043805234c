import pytest
import torch
import torch.nn.functional as F

from unet_helpers.blocks import DoubleConv, Down, Up, align_to


def test_double_conv_keeps_size_and_has_no_conv_bias():
    block = DoubleConv(3, 8)
    assert block(torch.randn(2, 3, 33, 34)).shape == (2, 8, 33, 34)
    convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2 and all(c.bias is None and c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in block.modules()) == 2


def test_down_halves_rounding_down():
    assert Down(4, 8)(torch.randn(2, 4, 33, 34)).shape == (2, 8, 16, 17)


@pytest.mark.parametrize("up_mode", ["bilinear", "transpose"])
@pytest.mark.parametrize("skip_hw", [(32, 34), (33, 35), (32, 35)])
def test_up_aligns_to_skip_size(up_mode, skip_hw):
    up = Up(16, 8, 8, up_mode=up_mode)
    out = up(torch.randn(2, 16, 16, 17), torch.randn(2, 8, *skip_hw))
    assert out.shape == (2, 8, *skip_hw)


def test_up_concatenates_skip_first():
    """The DoubleConv sees [skip, upsampled]: zeroing the weights of the skip channels must
    make the output independent of the skip."""
    torch.manual_seed(0)
    up = Up(4, 2, 3).eval()
    first_conv = up.conv.net[0]
    with torch.no_grad():
        first_conv.weight[:, :2] = 0  # the first 2 input channels are the skip's
    x = torch.randn(1, 4, 5, 5)
    out_a = up(x, torch.randn(1, 2, 10, 10))
    out_b = up(x, torch.randn(1, 2, 10, 10))
    assert torch.allclose(out_a, out_b)


def test_bilinear_up_matches_interpolate_on_even_sizes():
    up = Up(2, 0, 2)
    x = torch.randn(1, 2, 4, 6)
    expected = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(up.up(x), expected)


def test_align_to_pads_bottom_right_and_crops():
    x = torch.arange(4.0).reshape(1, 1, 2, 2)
    padded = align_to(x, (3, 3))
    assert padded.shape == (1, 1, 3, 3)
    assert torch.equal(padded[..., :2, :2], x)  # original pixels stay where they were
    assert torch.equal(padded[..., 2, :2], x[..., 1, :])  # replicated edge
    assert torch.equal(align_to(padded, (2, 2)), x)


def test_up_channel_mismatch_is_loud():
    up = Up(16, 8, 8)
    with pytest.raises(ValueError, match=r"expected skip with 8 channels.*got \(2, 4, 32, 32\)"):
        up(torch.randn(2, 16, 16, 16), torch.randn(2, 4, 32, 32))
    with pytest.raises(ValueError, match=r"expected x with 16 channels"):
        up(torch.randn(2, 12, 16, 16), torch.randn(2, 8, 32, 32))
    with pytest.raises(TypeError, match=r"Up needs the encoder feature map as skip, a tensor; got NoneType"):
        up(torch.randn(2, 16, 16, 16), None)


def test_up_rejects_unknown_mode():
    with pytest.raises(ValueError, match=r"up_mode must be one of.*'nearest'"):
        Up(4, 2, 2, up_mode="nearest")
