"""The U-Net without its skip connections, for the ablation of ``notebooks/03_unet.ipynb``.

The same encoder, bottleneck and head as ``UNet``; each decoder stage only up-samples the deeper
map and convolves it, so everything the decoder knows about where an edge lies has come through
the bottleneck at ``H / 2**depth``. Kept out of ``unet.py`` so that the model the course trains
reads like the figure.

Shapes: ``N`` batch, ``C`` channels, ``K`` classes, ``H, W`` height and width.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..blocks import DoubleConv, align_to
from ..unet import UNet


class UpWithoutSkip(nn.Module):
    """Bilinear up-sampling by 2 to ``size``, then ``DoubleConv``: an ``Up`` block with no skip.

    Shape:
        - ``x``: ``(N, in_channels, h, w)`` -> ``(N, out_channels, *size)``
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.conv(align_to(self.up(x), size))


class UNetWithoutSkips(UNet):
    """``UNet`` whose decoder gets no encoder feature maps (same arguments as ``UNet``, bilinear only).

    Examples::

        >>> UNetWithoutSkips(3, 2, base=4, depth=2)(torch.zeros(1, 3, 17, 18)).shape
        torch.Size([1, 2, 17, 18])
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, base: int = 64, depth: int = 4) -> None:
        super().__init__(in_channels, num_classes, base, depth, up_mode="bilinear")
        widths = [base * 2**i for i in range(depth + 1)]
        self.ups = nn.ModuleList(UpWithoutSkip(widths[i + 1], widths[i]) for i in reversed(range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        features = [self.inc(x)]  # (N, base, H, W)
        for down in self.downs:
            features.append(down(features[-1]))
        x = features.pop()  # bottleneck (N, base * 2**depth, H / 2**depth, W / 2**depth)
        for up in self.ups:  # the encoder maps are used for their size only, never their content
            x = up(x, features.pop().shape[-2:])
        return self.head(x)  # (N, K, H, W)
