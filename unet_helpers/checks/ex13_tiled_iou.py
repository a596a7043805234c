"""Check of exercise 13, part 2 (the lesson's hard exercise): whole-image evaluation by tiles.

``tiled_iou``: per-class IoU over a set of whole images, each predicted with
``unet_helpers.predict_tiled`` (the model never sees more than one tile) and counted into one
``ConfusionMatrix`` (never an average of per-image IoUs); NaN for a class absent from every mask
and every prediction. The training piece is checked in ``ex13_train_steps.py``, which classes gain
from Dice in ``ex13_dice_gains.py``.

``reference_tiled_iou`` is the reference the check compares with (private to the checks: the
learner's answer may not call it).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from ..inference import predict, predict_tiled
from ..metrics import ConfusionMatrix
from .compare import Variant, expect_same
from .core import Property, PropertyFailed
from .isolation import call_learner
from .spec import ExerciseSpec
from .tools import generator, require_tensor


def reference_tiled_iou(model: nn.Module, dataset: Sequence, num_classes: int, tile: int = 256,
                        overlap: float = 0.25) -> torch.Tensor:
    """Per-class IoU over whole images predicted by tiles, from one accumulated confusion matrix.

    Args:
        model: the network (``predict_tiled`` puts it in eval mode and restores its mode).
        dataset: items ``(image (C, H, W), mask (H, W))``, e.g. ``sstem_dataset("val")``.
        num_classes: ``K``.
        tile, overlap: passed to ``predict_tiled`` (gaussian blending).

    Shape:
        - Output: ``(K,)`` float64, NaN for classes absent from every mask and prediction

    The check's reference for ``solutions/ex13_real_data.ipynb``.
    """
    cm = ConfusionMatrix(num_classes)
    for image, mask in dataset:
        ids = predict_tiled(model, image, tile=tile, overlap=overlap)  # (H, W)
        cm.update(ids.unsqueeze(0), mask.unsqueeze(0))  # counts add up over every image
    return cm.iou()


# ---------------------------------------------------------------------------------------------
# tiled_iou
# ---------------------------------------------------------------------------------------------
K = 4  # class 3 is in no mask and never predicted: its IoU is NaN
_SIZES = ((40, 52), (33, 47), (48, 40))
TILE, OVERLAP = 16, 0.25


def _model() -> nn.Module:
    """A tiny two-layer conv net: its receptive field makes tiles differ from whole-image runs."""
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, K, 3, padding=1))
    gen = generator(900)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
        model[2].bias[3] = -100.0  # class 3 is never predicted
    return model


def _dataset() -> list[tuple[torch.Tensor, torch.Tensor]]:
    items = []
    for index, (h, w) in enumerate(_SIZES):
        gen = generator(910 + index)
        image = torch.randn(1, h, w, generator=gen)
        shares = torch.tensor([0.6, 0.3, 0.1]).roll(index)  # a different class mix in every image
        mask = torch.multinomial(shares, h * w, replacement=True, generator=gen).reshape(h, w)
        items.append((image, mask))
    return items


class _SizeRecorder:
    """Records the largest ``(H, W)`` the model is called on."""

    def __init__(self, model: nn.Module) -> None:
        self.largest = (0, 0)
        model.register_forward_pre_hook(self)

    def __call__(self, _module: nn.Module, inputs: tuple) -> None:
        h, w = inputs[0].shape[-2:]
        self.largest = (max(self.largest[0], h), max(self.largest[1], w))


def _whole_images(model: nn.Module, data: list) -> torch.Tensor:
    whole = ConfusionMatrix(K)
    for image, mask in data:
        whole.update(predict(model, image).unsqueeze(0), mask.unsqueeze(0))
    return whole.iou()


def _variants(model: nn.Module, data: list, tile: int, overlap: float) -> list[Variant]:
    per_image = lambda: torch.stack([reference_tiled_iou(model, [item], K, tile, overlap) for item in data])  # noqa: E731 (I, K)
    counts = "IoU from counts summed over every image"
    return [
        Variant(counts, lambda: per_image().nanmean(0),
                "You average per-image IoUs; sum the counts of every image in one ConfusionMatrix and take its IoU once."),
        Variant(counts, lambda: per_image()[-1],
                "Only the last image counts: create the ConfusionMatrix once, before the loop over images."),
        Variant(counts, lambda: per_image()[0], "Only the first image counts: loop over them all."),
        Variant("tile and overlap as given", lambda: reference_tiled_iou(model, data, K, tile, 0.25),
                "You ignore `overlap`: pass it on to predict_tiled."),
        Variant("tile and overlap as given", lambda: reference_tiled_iou(model, data, K, 256, overlap),
                "You ignore `tile`: pass it on to predict_tiled."),
        Variant("the model never sees more than one tile", lambda: _whole_images(model, data),
                "You predict whole images; predict each one by tiles with predict_tiled."),
    ]


def _run(fn: Callable[..., Any], tile: int = TILE, overlap: float = OVERLAP) -> tuple[torch.Tensor, _SizeRecorder]:
    model, data = _model(), _dataset()
    recorder = _SizeRecorder(model)
    got = call_learner(fn, model, data, K, tile=tile, overlap=overlap)
    return require_tensor(got, "The result", shape=(K,)), recorder


def _ti_shape(fn: Callable[..., Any]) -> None:
    _run(fn)


def _ti_tiles(fn: Callable[..., Any]) -> None:
    _, recorder = _run(fn)
    if recorder.largest[0] > TILE or recorder.largest[1] > TILE:
        raise PropertyFailed(f"With tile={TILE} your model was run on an input of {recorder.largest[0]}x"
                             f"{recorder.largest[1]}: the memory of a forward pass grows with the input, so a whole "
                             "1024x1024 slice may not fit where a tile does.", recorder.largest, (TILE, TILE),
                             hint="`predict_tiled(model, image, tile=tile, overlap=overlap)` gives the ids (H, W) of a "
                                  "whole image while running the model on one tile at a time.")


def _ti_nan(fn: Callable[..., Any]) -> None:
    got, _ = _run(fn)
    if not math.isnan(float(got[3])):
        raise PropertyFailed("Class 3 is in no mask and is never predicted: its IoU is 0/0, undefined.", got, "NaN "
                             "for class 3", hint="ConfusionMatrix.iou() already gives NaN there; do not replace it.")


def _compare(fn: Callable[..., Any], tile: int, overlap: float, what: str) -> None:
    got, _ = _run(fn, tile, overlap)
    model, data = _model(), _dataset()
    expect_same(got, reference_tiled_iou(model, data, K, tile, overlap), what, _variants(model, data, tile, overlap))


def _ti_counts(fn: Callable[..., Any]) -> None:
    _compare(fn, TILE, OVERLAP, f"3 images {_SIZES}, tile={TILE}, overlap={OVERLAP}")


def _ti_arguments(fn: Callable[..., Any]) -> None:
    _compare(fn, 20, 0.5, "the same images, tile=20, overlap=0.5")


def _tiled_properties() -> list[Property]:
    data = f"a tiny conv net, K={K}, 3 images of {', '.join(f'{h}x{w}' for h, w in _SIZES)}"
    return [
        Property("returns one IoU per class (K,)", f"{data}, tile={TILE}", _ti_shape,
                 "Return `cm.iou()`, a (K,) float64 tensor."),
        Property("the model never sees more than one tile", f"{data}, tile={TILE}: largest input the model gets",
                 _ti_tiles),
        Property("classes in no mask and no prediction are NaN", f"{data}; class 3 appears nowhere", _ti_nan),
        Property("IoU from counts summed over every image", f"{data}, tile={TILE}, overlap={OVERLAP}", _ti_counts,
                 "One `ConfusionMatrix(num_classes)` before the loop; `cm.update(ids[None], mask[None])` for every "
                 "image; `cm.iou()` after the loop."),
        Property("tile and overlap as given", f"{data}, tile=20, overlap=0.5", _ti_arguments,
                 "Pass `tile=tile, overlap=overlap` on to predict_tiled."),
    ]


TILED_IOU = ExerciseSpec(
    name="tiled_iou",
    title="Per-class IoU over whole images, predicted by tiles",
    notebook="ex13_real_data",
    task="Write `my_tiled_iou(model, dataset, num_classes, tile=256, overlap=0.25)`: for every `(image, mask)` of "
         "`dataset`, predict the whole image with `predict_tiled`, count it into one `ConfusionMatrix`; return the "
         "per-class IoU `(K,)` (NaN where undefined).",
    properties=_tiled_properties,
    hints=(
        "Three pieces from the package: `predict_tiled` (whole image, one tile at a time), `ConfusionMatrix` "
        "(counts that add up), and its `iou()`.",
        "`cm = ConfusionMatrix(num_classes)` once; in the loop `ids = predict_tiled(model, image, tile=tile, "
        "overlap=overlap)` gives `(H, W)` class ids.",
        "`cm.update(ids.unsqueeze(0), mask.unsqueeze(0))` (both need a batch axis), and after the loop `return cm.iou()`.",
    ),
    defines=("my_tiled_iou",),
    reference="unet_helpers/checks/ex13_tiled_iou.py: reference_tiled_iou",
    forbidden=("unet_helpers.checks.ex13_tiled_iou.reference_tiled_iou",),
    next_steps="the next cells evaluate your trained models over the four whole validation slices with your function.",
)
