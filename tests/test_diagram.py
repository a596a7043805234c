"""viz/diagram.py: the U-Net figure is drawn from the model, checked against a real forward pass."""
import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn as nn

from unet_helpers import UNet, count_parameters
from unet_helpers.views.ablation import UNetWithoutSkips
from unet_helpers.viz.diagram import main, plot_unet_diagram, unet_layout


@pytest.fixture(autouse=True)
def pyplot_keeps_no_figure():
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def recorded_shapes(model, size):
    """Output shape of every stage of a real forward pass (the independent reference)."""
    shapes = {}
    named = {"inc": model.inc, "head": model.head}
    named.update({f"downs.{i}": m for i, m in enumerate(model.downs)})
    named.update({f"ups.{i}": m for i, m in enumerate(model.ups)})
    hooks = [m.register_forward_hook(lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
             for name, m in named.items()]
    with torch.no_grad():
        model.eval()(torch.zeros(1, model.config.in_channels, *size))
    for hook in hooks:
        hook.remove()
    return shapes


@pytest.mark.parametrize("base, depth, up_mode, size", [
    (4, 2, "bilinear", (33, 34)), (2, 3, "transpose", (41, 16)), (3, 4, "bilinear", (16, 47)), (2, 5, "bilinear", (70, 65)),
])
def test_layout_matches_the_shapes_of_a_forward_pass(base, depth, up_mode, size):
    model = UNet(in_channels=2, num_classes=5, base=base, depth=depth, up_mode=up_mode)
    layout = unet_layout(model, size)
    shapes = recorded_shapes(model, size)
    for box in layout.stages[1:]:
        assert (1, box.channels, box.height, box.width) == shapes[box.name], box
    assert layout.stages[0].channels == 2 and (layout.stages[0].height, layout.stages[0].width) == size
    assert (layout.depth, layout.base, layout.up_mode) == (depth, base, up_mode)
    assert layout.parameters == count_parameters(model)
    assert len(layout.stages) == 2 * depth + 3  # input, inc, downs, ups, head
    assert [b.kind for b in layout.stages].count("bottleneck") == 1


def test_every_decoder_stage_takes_the_encoder_map_of_its_level():
    model = UNet(3, 2, base=4, depth=3)
    layout = unet_layout(model, (64, 64))
    assert layout.skips == (("downs.1", "ups.0"), ("downs.0", "ups.1"), ("inc", "ups.2"))
    for encoder, decoder in layout.skips:
        enc, dec = layout.stage(encoder), layout.stage(decoder)
        assert (enc.level, enc.height, enc.width) == (dec.level, dec.height, dec.width)
        up = model.ups[int(decoder.split(".")[1])]
        assert dec.concat == (up.skip_channels, up.conv.net[0].in_channels - up.skip_channels)


def test_transposed_up_sampling_halves_the_channels_before_the_concat():
    layout = unet_layout(UNet(3, 2, base=8, depth=2, up_mode="transpose"), (32, 32))
    assert layout.stage("ups.0").concat == (16, 16)  # 32-channel bottleneck -> ConvTranspose2d -> 16
    assert unet_layout(UNet(3, 2, base=8, depth=2), (32, 32)).stage("ups.0").concat == (16, 32)


def test_the_model_without_skips_has_no_skip_arrows():
    model = UNetWithoutSkips(3, 3, base=4, depth=3)
    layout = unet_layout(model, (40, 40))
    assert layout.skips == () and all(b.concat is None for b in layout.stages)
    fig = plot_unet_diagram(model, (40, 40))
    assert not [p for p in fig.axes[0].patches if (p.get_gid() or "").startswith("skip:")]


def patches_by_kind(fig):
    gids = [p.get_gid() or "" for p in fig.axes[0].patches]
    return {kind: sum(g.startswith(kind + ":") for g in gids) for kind in ("stage", "down", "up", "skip", "head")}


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
def test_the_figure_redraws_with_the_depth(depth):
    model = UNet(3, 2, base=4, depth=depth)
    fig = plot_unet_diagram(model, (64, 64))
    assert patches_by_kind(fig) == {"stage": 2 * depth + 3, "down": depth, "up": depth, "skip": depth, "head": 2}
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert f"{4 * 2**depth} ch\n{64 // 2**depth}x{64 // 2**depth}" in texts  # the bottleneck box
    assert f"{count_parameters(model):,} parameters" in fig.axes[0].get_title()


def test_the_labels_follow_the_base_width():
    texts = [t.get_text() for t in plot_unet_diagram(UNet(3, 2, base=32), (256, 256)).axes[0].texts]
    assert "32 ch\n256x256" in texts and "512 ch\n16x16" in texts and "cat 256 + 512" in texts
    texts = [t.get_text() for t in plot_unet_diagram(UNet(3, 2, base=16), (256, 256)).axes[0].texts]
    assert "16 ch\n256x256" in texts and "256 ch\n16x16" in texts and "512 ch\n16x16" not in texts


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match=r"input_size \(15, 40\) is too small for a depth-4 U-Net: each side must be at least 2\*\*4 = 16"):
        unet_layout(UNet(3, 2, base=4), (15, 40))
    with pytest.raises(ValueError, match=r"input_size must be \(H, W\), two ints; got 64"):
        unet_layout(UNet(3, 2, base=4), 64)
    with pytest.raises(TypeError, match=r"unet_layout needs a U-Net with inc, downs, ups and head; Conv2d has no"):
        unet_layout(nn.Conv2d(3, 2, 1))
    with pytest.raises(KeyError, match="no stage 'ups.9'"):
        unet_layout(UNet(3, 2, base=4), (32, 32)).stage("ups.9")


def test_main_writes_a_png(tmp_path, capsys):
    out = tmp_path / "docs" / "unet.png"
    assert main([str(out), "--base", "8", "--depth", "3", "--size", "64", "--dpi", "40"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "wrote" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(tmp_path / "unet.jpg")])
