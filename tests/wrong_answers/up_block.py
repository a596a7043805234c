"""Wrong ``Up`` blocks (exercise 2), each with one plausible mistake."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from unet_helpers import DoubleConv


class _Up(nn.Module):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__()
        self.conv = DoubleConv(skip_channels + in_channels, out_channels)

    @staticmethod
    def pad(x, skip):
        dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        return F.pad(x, (0, dw, 0, dh), mode="replicate")


class SkipLast(_Up):
    def forward(self, x, skip):
        x = self.pad(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), skip)
        return self.conv(torch.cat([x, skip], dim=1))


class NoAlignment(_Up):
    def forward(self, x, skip):
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.conv(torch.cat([skip, x], dim=1))


class AlignCorners(_Up):
    def forward(self, x, skip):
        x = self.pad(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True), skip)
        return self.conv(torch.cat([skip, x], dim=1))


class Nearest(_Up):
    def forward(self, x, skip):
        x = self.pad(F.interpolate(x, scale_factor=2, mode="nearest"), skip)
        return self.conv(torch.cat([skip, x], dim=1))


class AddInsteadOfConcat(nn.Module):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, skip_channels, 1)
        self.conv = DoubleConv(skip_channels, out_channels)

    def forward(self, x, skip):
        x = F.interpolate(self.reduce(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(skip + x)


class ShrinkSkip(_Up):
    """Resamples the skip to x's size instead of up-sampling x."""

    def forward(self, x, skip):
        skip = F.interpolate(skip, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([skip, x], dim=1))


class ResizeToSkip(_Up):
    def forward(self, x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([skip, x], dim=1))


class ZeroPad(_Up):
    def forward(self, x, skip):
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        return self.conv(torch.cat([skip, F.pad(x, (0, dw, 0, dh))], dim=1))


class SeedsInForward(_Up):
    """Right block, but calls torch.manual_seed(0) in forward "to make it reproducible": every forward
    resets the caller's random stream (the next batch's shuffling and dropout repeat)."""

    def forward(self, x, skip):
        torch.manual_seed(0)
        x = self.pad(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), skip)
        return self.conv(torch.cat([skip, x], dim=1))
