import pytest
import torch

from unet_helpers import UNet, count_parameters, unet_from_config
from unet_helpers.unet import UNetConfig

# The exact count of our U-Net at base=32, depth=4 (the README states the same numbers).
# Bilinear equals the lesson's own architecture (7,849,634); "about 7.7M" in the lesson text
# matches neither variant exactly.
PARAMS_BASE32_BILINEAR = 7_849_634
PARAMS_BASE32_TRANSPOSE = 7_763_074


def brute_force_param_count(in_ch, k, base, depth, up_mode):
    """Parameter count from the architecture's arithmetic, independent of the module code."""
    def double_conv(cin, cout):  # two 3x3 convs without bias + two BatchNorms (gamma, beta)
        return 9 * cin * cout + 9 * cout * cout + 4 * cout

    widths = [base * 2**i for i in range(depth + 1)]
    total = double_conv(in_ch, widths[0]) + sum(double_conv(widths[i], widths[i + 1]) for i in range(depth))
    for i in range(depth):
        deep, skip = widths[i + 1], widths[i]
        if up_mode == "bilinear":
            total += double_conv(deep + skip, skip)
        else:
            total += 4 * deep * (deep // 2) + deep // 2 + double_conv(deep // 2 + skip, skip)
    return total + widths[0] * k + k  # 1x1 head with bias


def test_parameter_count_base32():
    assert count_parameters(UNet(3, 2, base=32)) == PARAMS_BASE32_BILINEAR
    assert count_parameters(UNet(3, 2, base=32, up_mode="transpose")) == PARAMS_BASE32_TRANSPOSE


@pytest.mark.parametrize("up_mode", ["bilinear", "transpose"])
@pytest.mark.parametrize("base,depth,in_ch,k", [(32, 4, 3, 2), (8, 3, 1, 5), (16, 5, 3, 3)])
def test_parameter_count_matches_arithmetic(up_mode, base, depth, in_ch, k):
    net = UNet(in_ch, k, base=base, depth=depth, up_mode=up_mode)
    assert count_parameters(net) == brute_force_param_count(in_ch, k, base, depth, up_mode)


@pytest.mark.parametrize("up_mode", ["bilinear", "transpose"])
@pytest.mark.parametrize("hw", [(250, 250), (33, 34), (347, 260), (16, 16), (17, 31), (64, 64)])
def test_output_has_input_size(up_mode, hw):
    net = UNet(3, 4, base=4, up_mode=up_mode).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, *hw)).shape == (1, 4, *hw)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    for up_mode in ("bilinear", "transpose"):
        net = UNet(3, 3, base=4, up_mode=up_mode)
        net(torch.randn(2, 3, 33, 34)).square().mean().backward()
        missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        assert missing == []


def test_the_skip_ablation_decodes_from_the_bottleneck_alone():
    from unet_helpers.views.ablation import UNetWithoutSkips

    net = UNetWithoutSkips(1, 2, base=4, depth=2)
    assert net(torch.randn(2, 1, 9, 10)).shape == (2, 2, 9, 10)
    # each decoder stage convolves only the up-sampled deeper map: 16 -> 8 and 8 -> 4 channels
    assert [up.conv.net[0].in_channels for up in net.ups] == [16, 8]
    # the skip connections are exactly the weights that read the encoder maps
    with_skips = UNet(1, 2, base=4, depth=2)
    assert count_parameters(with_skips) - count_parameters(net) == 3 * 3 * (8 * 8 + 4 * 4)


def test_config_round_trip():
    net = UNet(1, 5, base=8, depth=3, up_mode="transpose")
    again = unet_from_config(net.config)
    assert again.config == net.config
    assert unet_from_config({**net.config.__dict__}).config == UNetConfig(1, 5, 8, 3, "transpose")


def test_3d_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expects a 4-D batch \(N, C, H, W\).*got shape \(3, 64, 64\).*unsqueeze\(0\)"):
        UNet(3, 2, base=4)(torch.randn(3, 64, 64))


def test_wrong_channels_is_a_clear_error():
    with pytest.raises(ValueError, match=r"in_channels=3; got 1 channels.*UNet\(in_channels=...\)"):
        UNet(3, 2, base=4)(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"channels-last.*permute\(0, 3, 1, 2\)"):
        UNet(3, 2, base=4)(torch.randn(2, 32, 32, 3))


def test_too_small_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"input is 15x40.*at least 16"):
        UNet(3, 2, base=4)(torch.randn(2, 3, 15, 40))


def test_integer_input_is_a_clear_error():
    with pytest.raises(TypeError, match=r"float input; got dtype torch.uint8"):
        UNet(3, 2, base=4)(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


def test_batchnorm_batch_of_one_training():
    net = UNet(3, 2, base=4)
    # Batch of one trains fine while the bottleneck has more than one pixel ...
    net(torch.randn(1, 3, 32, 32)).mean().backward()
    # ... and a 1x1 bottleneck gets an explanation instead of BatchNorm's terse error.
    with pytest.raises(ValueError, match=r"batch size 1.*1x1 bottleneck.*drop_last=True.*model.eval\(\)"):
        net(torch.randn(1, 3, 16, 16))
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 16, 16)).shape == (1, 2, 16, 16)


def test_constructor_rejects_bad_arguments():
    with pytest.raises(ValueError, match="up_mode"):
        UNet(up_mode="nearest")
    with pytest.raises(TypeError, match="base must be an int"):
        UNet(base=16.0)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        UNet(depth=0)
