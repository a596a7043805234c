"""Wrong answers to exercise 04: ``MyUNet.forward`` with skips (``__init__`` is given, as in the notebook)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from unet_helpers import DoubleConv, Down, Up, UNet


class _Given(nn.Module):
    """The notebook's given ``__init__``: inc, downs, ups (deepest first), head."""

    def __init__(self, in_channels: int = 3, num_classes: int = 2, base: int = 16, depth: int = 4) -> None:
        super().__init__()
        widths = [base * 2**i for i in range(depth + 1)]
        self.inc = DoubleConv(in_channels, widths[0])
        self.downs = nn.ModuleList(Down(widths[i], widths[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(Up(widths[i + 1], widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def _encode(self, x):
        features = [self.inc(x)]
        for down in self.downs:
            features.append(down(features[-1]))
        return features


class SkipsInEncoderOrder(_Given):
    """Pairs the deepest up-block with the shallowest skip (features[0] instead of the last one)."""

    def forward(self, x):
        features = self._encode(x)
        x = features.pop()
        for up, skip in zip(self.ups, features):
            x = up(x, skip)
        return self.head(x)


class BottleneckAsSkip(_Given):
    """Keeps the bottleneck in the skip list: every skip is one level too deep."""

    def forward(self, x):
        features = self._encode(x)
        x = features[-1]
        for up in self.ups:
            x = up(x, features.pop())
        return self.head(x)


class NoHead(_Given):
    """Forgets the 1x1 head: returns `base` channels, not `num_classes`."""

    def forward(self, x):
        features = self._encode(x)
        x = features.pop()
        for up in self.ups:
            x = up(x, features.pop())
        return x


class SoftmaxOutput(_Given):
    """Returns probabilities instead of logits."""

    def forward(self, x):
        features = self._encode(x)
        x = features.pop()
        for up in self.ups:
            x = up(x, features.pop())
        return self.head(x).softmax(dim=1)


class ZeroSkips(_Given):
    """Feeds zeros as skips: the shapes are right, the fine detail is gone."""

    def forward(self, x):
        features = self._encode(x)
        x = features.pop()
        for up in self.ups:
            x = up(x, torch.zeros_like(features.pop()))
        return self.head(x)


class EncoderTwice(_Given):
    """Runs the encoder twice (once to get the shapes): BatchNorm statistics are updated twice."""

    def forward(self, x):
        self._encode(x)
        features = self._encode(x)
        x = features.pop()
        for up in self.ups:
            x = up(x, features.pop())
        return self.head(x)


class ResizeInput(_Given):
    """Resizes odd inputs to a multiple of 2**depth and back: the output changes."""

    def forward(self, x):
        h, w = x.shape[-2:]
        m = 2 ** len(self.downs)
        y = F.interpolate(x, size=(max(m, h // m * m), max(m, w // m * m)), mode="bilinear", align_corners=False)
        features = self._encode(y)
        y = features.pop()
        for up in self.ups:
            y = up(y, features.pop())
        return F.interpolate(self.head(y), size=(h, w), mode="bilinear", align_corners=False)


class DetachedBottleneck(_Given):
    """Detaches the bottleneck: the encoder's deepest layers get no gradient through the decoder."""

    def forward(self, x):
        features = self._encode(x)
        x = features.pop().detach()
        for up in self.ups:
            x = up(x, features.pop())
        return self.head(x)


class DelegatesToUNet(_Given):
    """Builds the package's UNet and calls it."""

    def forward(self, x):
        return UNet(self.inc.net[0].in_channels, self.head.out_channels, base=self.head.in_channels,
                    depth=len(self.downs))(x)


class SubclassesUNet(UNet):
    """Inherits the package's forward."""

    def __init__(self, in_channels: int = 3, num_classes: int = 2, base: int = 16, depth: int = 4) -> None:
        super().__init__(in_channels, num_classes, base=base, depth=depth)
