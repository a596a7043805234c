"""Wrong transposed-convolution up-blocks (exercise 7), each with one plausible mistake."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from unet_helpers import DoubleConv


def _pad(x, skip, mode="replicate", where="bottom/right"):
    dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
    pad = (0, dw, 0, dh) if where == "bottom/right" else (dw, 0, dh, 0)
    return F.pad(x, pad, mode=mode) if mode == "replicate" else F.pad(x, pad)


class _Base(nn.Module):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(skip_channels + in_channels // 2, out_channels)


class Kernel3Stride2(nn.Module):
    """Kernel 3, stride 2, padding 1, output_padding 1: the right size, but uneven overlap."""

    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, 3, stride=2, padding=1, output_padding=1)
        self.conv = DoubleConv(skip_channels + in_channels // 2, out_channels)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, _pad(self.up(x), skip)], dim=1))


class NoHalving(nn.Module):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(skip_channels + in_channels, out_channels)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, _pad(self.up(x), skip)], dim=1))


class SkipLast(_Base):
    def forward(self, x, skip):
        return self.conv(torch.cat([_pad(self.up(x), skip), skip], dim=1))


class NoAlignment(_Base):
    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class Bilinear(nn.Module):
    """The bilinear block of exercise 2, with a 1x1 convolution to halve the channels."""

    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.reduce = nn.Conv2d(in_channels, in_channels // 2, 1)
        self.conv = DoubleConv(skip_channels + in_channels // 2, out_channels)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, _pad(self.reduce(self.up(x)), skip)], dim=1))


class ZeroPad(_Base):
    def forward(self, x, skip):
        return self.conv(torch.cat([skip, _pad(self.up(x), skip, mode="zeros")], dim=1))


class PadTopLeft(_Base):
    def forward(self, x, skip):
        return self.conv(torch.cat([skip, _pad(self.up(x), skip, where="top/left")], dim=1))


class CropSkip(_Base):
    """Crops the skip to the up-sampled size (the paper's valid-convolution habit): loses a row."""

    def forward(self, x, skip):
        x = self.up(x)
        skip = skip[..., : x.shape[-2], : x.shape[-1]]
        return self.conv(torch.cat([skip, x], dim=1))


class ResizeToSkip(_Base):
    def forward(self, x, skip):
        x = F.interpolate(self.up(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([skip, x], dim=1))


class SeedsInInit(_Base):
    """Right block, but torch.manual_seed(0) in __init__ for reproducible weights: building the block resets
    the caller's random stream, so every model built after it starts from the same numbers."""

    def __init__(self, in_channels, skip_channels, out_channels):
        torch.manual_seed(0)
        super().__init__(in_channels, skip_channels, out_channels)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, _pad(self.up(x), skip)], dim=1))
