"""ONNX export (deploy/export.py) and ONNX Runtime prediction (deploy/onnx_runtime.py), against PyTorch itself.

Reference: the same model run by PyTorch, in float32 and in float64 (the exact answer both float32
runtimes round). Tolerance of the logits: each output is the end of 19 float32 convolutions (depth
4: 2 + 8 + 8 + 1), each a sum of up to 9 * 64 = 576 products at base 4, summed in another order
(oneDNN vs ONNX Runtime's MLAS). Rounding of such a sum is about sqrt(576) * 1.2e-7 = 3e-6 of
its size per layer, so ``LOGIT_RTOL`` = 1e-4 of the largest logit covers 19 layers with room; and
ONNX Runtime must be about as close to the float64 answer as PyTorch's own float32 run is.
Class ids must be identical wherever ties are impossible: where the best two logits are further
apart than twice the tolerance (and that must be nearly every pixel, or the test would be vacuous).
"""
import copy
import re
import sys
from pathlib import Path

import onnx
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import unet_helpers.blocks as blocks
from unet_helpers import UNet
from unet_helpers.checkpoint import load_checkpoint, save_checkpoint
from unet_helpers.deploy.export import EXPORT_PACKAGES, RUNTIME_PACKAGES, OnnxMetadata, export_checkpoint, export_onnx
from unet_helpers.inference import predict, predict_tiled
from unet_helpers.deploy.onnx_runtime import OnnxPredictor

ROOT = Path(__file__).resolve().parents[1]
LOGIT_RTOL = 1e-4
SIZES = [(1, 64, 64), (3, 65, 67), (1, 33, 34), (3, 97, 128)]  # none is the export example (2, 64, 64)
EXTRA = {"class_names": ["background", "circle", "square"], "normalize": "per_image", "mask_values": {0: 0, 128: 1, 255: 2}}


def with_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """``model`` with BatchNorm running statistics and affine parameters moved off their defaults."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.weight.data.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(m.num_features, generator=g))
    return model


def small_unet(up_mode: str, seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    return with_statistics(UNet(3, 3, base=4, depth=4, up_mode=up_mode), seed)


def assert_matches_pytorch(onnx_logits: torch.Tensor, model: nn.Module, x: torch.Tensor) -> None:
    """Logits within the tolerance, as close to float64 as PyTorch's float32, ids identical off ties."""
    model.eval()
    with torch.no_grad():
        ours = model(x)
        exact = model.double()(x.double())
        model.float()
    assert onnx_logits.shape == ours.shape == x.shape[:1] + (3,) + x.shape[2:]
    scale = float(ours.abs().max())
    tolerance = LOGIT_RTOL * scale
    assert float((onnx_logits - ours).abs().max()) <= tolerance
    onnx_error, torch_error = float((onnx_logits.double() - exact).abs().max()), float((ours.double() - exact).abs().max())
    assert onnx_error <= 4 * torch_error + 1.2e-7 * scale, (onnx_error, torch_error)
    top2 = ours.topk(2, dim=1).values  # (N, 2, H, W)
    clear = (top2[:, 0] - top2[:, 1]) > 2 * tolerance  # (N, H, W): pixels whose class cannot flip
    assert clear.float().mean() > 0.99
    assert torch.equal(onnx_logits.argmax(1)[clear], ours.argmax(1)[clear])


@pytest.fixture(scope="module")
def bilinear(tmp_path_factory):
    """A bilinear U-Net left in train mode, exported: ``(model, predictor, mode after export)``."""
    model = small_unet("bilinear").train()
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "bilinear.onnx", class_names=EXTRA["class_names"])
    return model, OnnxPredictor(path), model.training


@pytest.fixture(scope="module")
def from_checkpoint(tmp_path_factory):
    """A transpose U-Net saved with the train command's extra, exported with export_checkpoint."""
    folder = tmp_path_factory.mktemp("ckpt")
    checkpoint = save_checkpoint(folder / "best.pt", small_unet("transpose", seed=1), epoch=3, extra=EXTRA)
    path = export_checkpoint(checkpoint, folder / "model.onnx")
    return load_checkpoint(checkpoint), path, OnnxPredictor(path)


@pytest.mark.slow
@pytest.mark.parametrize("shape", SIZES, ids=lambda s: "x".join(map(str, s)))
def test_bilinear_export_runs_every_size_like_pytorch(bilinear, shape):
    model, predictor, _ = bilinear
    x = torch.randn(*shape[:1], 3, *shape[1:], generator=torch.Generator().manual_seed(sum(shape)))
    assert_matches_pytorch(predictor(x), model, x)


@pytest.mark.slow
@pytest.mark.parametrize("shape", SIZES, ids=lambda s: "x".join(map(str, s)))
def test_transpose_export_from_checkpoint_runs_every_size_like_pytorch(from_checkpoint, shape):
    loaded, _, predictor = from_checkpoint
    x = torch.randn(*shape[:1], 3, *shape[1:], generator=torch.Generator().manual_seed(sum(shape)))
    assert_matches_pytorch(predictor(x), loaded["model"], x)


@pytest.mark.slow
def test_model_left_in_train_mode_is_exported_in_eval_mode(bilinear):
    model, predictor, mode_after_export = bilinear
    assert mode_after_export is True  # the caller's mode is restored
    x = torch.randn(2, 3, 48, 40, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        train_logits = copy.deepcopy(model).train()(x)  # a copy: a train-mode pass updates running stats
        eval_logits = model.eval()(x)
    assert float((train_logits - eval_logits).abs().max()) > 0.1  # batch statistics would show
    assert torch.allclose(predictor(x), eval_logits, rtol=0, atol=LOGIT_RTOL * float(eval_logits.abs().max()))


@pytest.mark.slow
def test_file_has_dynamic_axes_and_checkpoint_metadata(from_checkpoint):
    loaded, path, predictor = from_checkpoint
    proto = onnx.load(str(path))
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["format"] == "unet_helpers.onnx/1"
    meta = OnnxMetadata.from_props(props)
    assert meta == predictor.metadata
    assert meta.class_names == tuple(EXTRA["class_names"]) and meta.normalize == "per_image"
    assert meta.mask_values == EXTRA["mask_values"] and meta.min_size == 16
    assert (meta.in_channels, meta.num_classes) == (3, 3)
    assert meta.model_config == loaded["config"]


@pytest.mark.slow
def test_onnx_predictor_tiled_and_batch_ids_equal_pytorch(from_checkpoint):
    loaded, _, predictor = from_checkpoint
    model = loaded["model"]
    image = torch.rand(3, 300, 200, generator=torch.Generator().manual_seed(3))
    ids, probs = predict_tiled(model, image, tile=128, overlap=0.25, batch_size=3, return_probs=True)
    onnx_ids, onnx_probs = predictor.predict_tiled(image, tile=128, overlap=0.25, batch_size=3, return_probs=True)
    assert onnx_ids.shape == (300, 200) and onnx_ids.dtype == torch.int64
    assert float((onnx_probs - probs).abs().max()) < 1e-5
    top2 = probs.topk(2, dim=0).values
    assert float((top2[0] - top2[1]).min()) > 1e-4  # no near-tie on this image, so ids must agree everywhere
    assert torch.equal(onnx_ids, ids)
    batch = torch.rand(5, 3, 33, 34, generator=torch.Generator().manual_seed(4))
    assert torch.equal(predictor.predict(batch, batch_size=2), predict(model, batch, batch_size=2))
    assert predictor.predict(batch[0]).shape == (33, 34)


@pytest.mark.slow
def test_export_refuses_a_graph_that_lost_odd_sizes(tmp_path, monkeypatch):
    def branching_align_to(x, size):  # the pre-export align_to: pads only when the size is odd
        dh, dw = size[0] - x.shape[-2], size[1] - x.shape[-1]
        return F.pad(x, (0, dw, 0, dh), mode="replicate") if dh or dw else x

    monkeypatch.setattr(blocks, "align_to", branching_align_to)
    with pytest.raises(ValueError, match=r"does not accept a 5x7 input.*branches on a size"):
        export_onnx(UNet(3, 2, base=2, depth=1), tmp_path / "narrowed.onnx")
    assert not (tmp_path / "narrowed.onnx").exists()


@pytest.mark.slow
def test_any_module_exports_with_example_and_min_size(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    with pytest.raises(ValueError, match=r"not a UNet.*pass example=torch.randn\(2, C, H, W\) and min_size"):
        export_onnx(net, tmp_path / "net.onnx")
    path = export_onnx(net, tmp_path / "net.onnx", example=torch.randn(2, 1, 8, 8), min_size=1)
    predictor = OnnxPredictor(path)
    assert (predictor.metadata.in_channels, predictor.metadata.num_classes, predictor.metadata.model_config) == (1, 2, None)
    x = torch.randn(3, 1, 5, 7)
    with torch.no_grad():
        assert torch.allclose(predictor(x), net(x), atol=1e-5)


def test_missing_packages_name_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # find_spec reports it missing
    with pytest.raises(ModuleNotFoundError, match=r"onnxscript is not installed.*pip install onnx==1\.23\.2 onnxscript==0\.7\.2"):
        export_onnx(UNet(3, 2, base=4), tmp_path / "model.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ModuleNotFoundError, match=r"onnxruntime is not installed.*pip install onnxruntime==1\.31\.1"):
        OnnxPredictor(tmp_path / "model.onnx")


def test_pins_in_messages_are_the_requirements():
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", (ROOT / "requirements.txt").read_text(), re.M))
    for name, version in {**EXPORT_PACKAGES, **RUNTIME_PACKAGES}.items():
        assert pins.get(name) == version, name


def test_bad_arguments_are_clear_errors(tmp_path):
    model = UNet(3, 2, base=4)
    with pytest.raises(ValueError, match=r"should end in \.onnx; got 'model\.pt'"):
        export_onnx(model, tmp_path / "model.pt")
    existing = tmp_path / "kept.onnx"
    existing.write_bytes(b"user data")
    with pytest.raises(FileExistsError, match=r"already exists; pass overwrite=True"):
        export_onnx(model, existing)
    assert existing.read_bytes() == b"user data"
    with pytest.raises(ValueError, match=r"opset must be an int >= 18 or None.*got 11"):
        export_onnx(model, tmp_path / "m.onnx", opset=11)
    with pytest.raises(TypeError, match=r"model must be a torch.nn.Module; got dict"):
        export_onnx({}, tmp_path / "m.onnx")
    checkpoint = save_checkpoint(tmp_path / "same.onnx", model)
    with pytest.raises(ValueError, match=r"is the checkpoint itself"):
        export_checkpoint(checkpoint, tmp_path / "same.onnx", overwrite=True)
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at"):
        export_checkpoint(tmp_path / "missing.pt", tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"2 class names \['a', 'b'\] for a model with 3 output channels"):
        OnnxMetadata(in_channels=3, num_classes=3, min_size=16, class_names=("a", "b"))
    with pytest.raises(ValueError, match=r"not of format 'unet_helpers.onnx/1'"):
        OnnxMetadata.from_props({"in_channels": "3"})


def test_predictor_rejects_bad_files(tmp_path):
    with pytest.raises(ValueError, match=r"threads must be a positive int or None.*got 0"):
        OnnxPredictor(tmp_path / "model.onnx", threads=0)
    with pytest.raises(FileNotFoundError, match=r"no ONNX file at"):
        OnnxPredictor(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"junk.onnx is not a readable ONNX model"):
        OnnxPredictor(junk)


@pytest.mark.slow
def test_predictor_rejects_bad_input_clearly(from_checkpoint):
    predictor = from_checkpoint[2]
    with pytest.raises(ValueError, match=r"expects a batch \(N, 3, H, W\); got shape \(1, 1, 32, 32\)"):
        predictor(torch.rand(1, 1, 32, 32))
    with pytest.raises(TypeError, match=r"expects a float input; got dtype torch.uint8"):
        predictor(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"input is 15x40 but the ONNX model needs H and W of at least 16"):
        predictor(torch.rand(1, 3, 15, 40))
