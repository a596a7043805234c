"""The U-Net: an encoder that halves resolution, a decoder that doubles it back, skips between.

Built step by step in ``notebooks/03_unet.ipynb``.

Shapes use ``N`` batch, ``C`` channels, ``K`` classes, ``H, W`` height and width.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from .validate import require_positive_int, require_tensor
from .blocks import UP_MODES, DoubleConv, Down, Up


@dataclass(frozen=True)
class UNetConfig:
    """Everything needed to rebuild a ``UNet`` (stored in checkpoints)."""

    in_channels: int = 3  # image channels: 3 for RGB, 1 for grayscale
    num_classes: int = 2  # K, output channels (one score per class)
    base: int = 64  # channels of the first stage; each stage down doubles them
    depth: int = 4  # number of Down (and Up) stages; the bottleneck is at H / 2**depth
    up_mode: str = "bilinear"  # "bilinear" or "transpose"


class UNet(nn.Module):
    """U-Net (Ronneberger et al., 2015) with padded convolutions, BatchNorm and any input size.

    Stage ``i`` of the encoder has ``base * 2**i`` channels at resolution ``H / 2**i``; the
    bottleneck has ``base * 2**depth`` channels. The output has the input's ``H`` and ``W`` for
    every size of at least ``2**depth`` (odd sizes included; see ``blocks.align_to``).

    Args:
        in_channels: image channels.
        num_classes: number of classes ``K``.
        base: channels of the first stage.
        depth: number of down-sampling stages.
        up_mode: ``"bilinear"`` (default) or ``"transpose"``.

    Shape:
        - Input: ``(N, in_channels, H, W)`` float, ``H, W >= 2**depth``
        - Output: ``(N, K, H, W)`` logits (apply softmax or argmax over dim 1)

    Examples::

        >>> net = UNet(in_channels=3, num_classes=3, base=16)
        >>> net(torch.randn(2, 3, 33, 34)).shape
        torch.Size([2, 3, 33, 34])
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        base: int = 64,
        depth: int = 4,
        up_mode: str = "bilinear",
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("base", base), ("depth", depth)):
            require_positive_int(value, name)
        require_positive_int(num_classes, "num_classes", minimum=1)
        if up_mode not in UP_MODES:
            raise ValueError(f"up_mode must be one of {UP_MODES}; got {up_mode!r}")
        self.config = UNetConfig(in_channels, num_classes, base, depth, up_mode)

        widths = [base * 2**i for i in range(depth + 1)]  # channels per stage, bottleneck last
        self.inc = DoubleConv(in_channels, widths[0])
        self.downs = nn.ModuleList(Down(widths[i], widths[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(Up(widths[i + 1], widths[i], widths[i], up_mode) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        features = [self.inc(x)]  # (N, base, H, W)
        for down in self.downs:  # each: half the size, twice the channels
            features.append(down(features[-1]))
        x = features.pop()  # bottleneck: (N, base * 2**depth, H / 2**depth, W / 2**depth)
        for up in self.ups:  # each: twice the size, concat the encoder map of that size
            x = up(x, features.pop())
        return self.head(x)  # (N, K, H, W)

    def _check_input(self, x: torch.Tensor) -> None:
        require_tensor(x, "input")
        cfg = self.config
        if x.ndim != 4:
            hint = " Hint: add the batch axis with x.unsqueeze(0)" if x.ndim == 3 else ""
            raise ValueError(
                f"UNet expects a 4-D batch (N, C, H, W) = (N, {cfg.in_channels}, H, W); "
                f"got shape {tuple(x.shape)} ({x.ndim}-D).{hint}"
            )
        if not x.is_floating_point():
            raise TypeError(f"UNet expects a float input; got dtype {x.dtype}. Hint: x.float() / 255")
        if x.shape[1] != cfg.in_channels:
            hint = (
                " Hint: images in channels-last layout need x.permute(0, 3, 1, 2)"
                if x.shape[-1] == cfg.in_channels
                else " Hint: build UNet(in_channels=...) to match your images, or convert them"
            )
            raise ValueError(
                f"UNet was built with in_channels={cfg.in_channels}; got {x.shape[1]} channels "
                f"in input of shape {tuple(x.shape)}.{hint}"
            )
        smallest = 2**cfg.depth
        if x.shape[-2] < smallest or x.shape[-1] < smallest:
            raise ValueError(
                f"input is {x.shape[-2]}x{x.shape[-1]} but a depth-{cfg.depth} U-Net halves it "
                f"{cfg.depth} times, so H and W must be at least {smallest}; pad the image or use a smaller depth"
            )
        bottleneck = (x.shape[-2] // smallest) * (x.shape[-1] // smallest)
        if self.training and x.shape[0] * bottleneck == 1:
            raise ValueError(
                f"BatchNorm cannot train on one value per channel: batch size 1 with a "
                f"{x.shape[-2]}x{x.shape[-1]} input leaves a 1x1 bottleneck. Use a batch of at least 2 "
                "(DataLoader(drop_last=True) avoids a last batch of one), a larger input, "
                "or call model.eval() for inference"
            )


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def unet_from_config(config: UNetConfig | dict) -> UNet:
    """Build a ``UNet`` from a ``UNetConfig`` or its ``dict`` form (as stored in checkpoints).

    Raises:
        ValueError: the dict names a setting ``UNetConfig`` does not have (e.g. a checkpoint of
            another architecture or version), or lacks one.
    """
    fields = asdict(config) if isinstance(config, UNetConfig) else dict(config)
    expected = set(UNetConfig.__dataclass_fields__)
    unknown, missing = sorted(set(fields) - expected), sorted(expected - set(fields))
    if unknown or missing:
        raise ValueError(
            f"a UNet configuration has the settings {sorted(expected)}; got unknown {unknown} and missing {missing}. "
            "Hint: was it saved by another version or for another model?"
        )
    return UNet(**fields)
