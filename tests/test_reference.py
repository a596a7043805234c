import pytest
import torch

from unet_helpers import ArrayDataset, UNet, count_parameters, synthetic_segmentation
from unet_helpers.realdata.references import compare_on_budget, monai_basic_unet, monai_unet, smp_available, smp_unet, train_on_budget


def test_monai_basic_unet_matches_our_layout():
    ours = UNet(3, 3, base=16, up_mode="transpose")
    theirs = monai_basic_unet(3, 3, base=16, up_mode="transpose")
    # Same structure; MONAI keeps a bias in every convolution, hence a few more parameters.
    assert abs(count_parameters(theirs) - count_parameters(ours)) / count_parameters(ours) < 0.01
    assert theirs(torch.randn(2, 3, 33, 34)).shape == (2, 3, 33, 34)
    assert monai_basic_unet(1, 2, base=4, up_mode="bilinear")(torch.randn(2, 1, 32, 32)).shape == (2, 2, 32, 32)
    with pytest.raises(ValueError, match="up_mode must be 'transpose' or 'bilinear'"):
        monai_basic_unet(1, 2, up_mode="nearest")


def test_monai_residual_unet_runs():
    assert monai_unet(1, 5, base=4)(torch.randn(2, 1, 64, 64)).shape == (2, 5, 64, 64)


def test_smp_is_optional():
    if smp_available():
        assert smp_unet(3, 3)(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    else:
        with pytest.raises(ImportError, match="segmentation_models_pytorch is not installed.*monai_basic_unet"):
            smp_unet(3, 3)


def test_compare_on_budget_gives_each_model_the_same_batches():
    images, masks = synthetic_segmentation(12, size=32, seed=0)
    seen = {}

    def recording(name):
        def build():
            model = UNet(3, 3, base=4, depth=2)
            original = model.forward

            def forward(x):
                if model.training:
                    seen.setdefault(name, []).append(x.sum().item())
                return original(x)

            model.forward = forward
            return model
        return build

    data = ArrayDataset(images, masks)
    results = compare_on_budget({"a": recording("a"), "b": recording("b")}, data, data, 3, epochs=2, batch_size=4)
    assert seen["a"] == seen["b"] and len(seen["a"]) == 6
    assert set(results["a"]) == {"history", "iou", "miou", "seconds", "parameters", "model"}
    assert len(results["b"]["history"]) == 2 and len(results["b"]["iou"]) == 3


class _RecordingDataset(torch.utils.data.Dataset):
    """Synthetic items that record one draw of torch's global generator per item (like an augmentation)."""

    def __init__(self):
        images, masks = synthetic_segmentation(8, size=32, seed=0)
        self.data, self.draws = ArrayDataset(images, masks), []

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        self.draws.append(float(torch.rand(())))
        return self.data[i]


def test_train_on_budget_batches_do_not_depend_on_the_builder():
    small = lambda: UNet(3, 3, base=4, depth=2)  # noqa: E731
    wide = lambda: UNet(3, 3, base=8, depth=2)  # draws more random numbers while building  # noqa: E731
    seen = []
    for build in (small, wide, small):
        data = _RecordingDataset()
        run = train_on_budget(build, data, 3, epochs=2, batch_size=4, seed=3)
        seen.append((data.draws, run))
    assert seen[0][0] == seen[1][0] == seen[2][0]  # the same augmentation draws for both models
    assert seen[0][1]["steps"] == 4 and len(seen[0][1]["history"]) == 2
    first, again = seen[0][1]["model"].state_dict(), seen[2][1]["model"].state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)  # same seed, same builder: same weights


def test_train_on_budget_gives_each_parameter_group_its_rate():
    from unet_helpers.encoders import encoder_parameter_groups

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.head = torch.nn.Conv2d(4, 3, 1)

        def forward(self, x):
            return self.head(self.encoder(x))

    images, masks = synthetic_segmentation(16, size=16, seed=0)
    torch.manual_seed(0)
    start = Tiny().state_dict()
    groups = lambda model, lr: encoder_parameter_groups(model, lr, encoder_lr_scale=1e-9)  # encoder all but frozen

    def build():
        model = Tiny()
        model.load_state_dict(start)
        return model

    run = train_on_budget(build, ArrayDataset(images, masks), 3, epochs=2, parameter_groups=groups)
    moved = {k: float((v - start[k]).abs().max()) for k, v in run["model"].state_dict().items()}
    assert moved["encoder.weight"] < 1e-8 and moved["head.weight"] > 1e-3
    plain = train_on_budget(build, ArrayDataset(images, masks), 3, epochs=2)
    assert float((plain["model"].encoder.weight.detach() - start["encoder.weight"]).abs().max()) > 1e-3
