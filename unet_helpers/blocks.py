"""The three building blocks of the U-Net figure: ``DoubleConv``, ``Down`` and ``Up``.

Built step by step in ``notebooks/02_building_blocks.ipynb``.

Shapes use ``N`` batch, ``C`` channels, ``H, W`` height and width.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

UP_MODES = ("bilinear", "transpose")


class DoubleConv(nn.Module):
    """(3x3 conv -> BatchNorm -> ReLU) twice; padding keeps ``H`` and ``W``.

    The convolutions have ``bias=False``: BatchNorm subtracts the per-channel mean right after,
    which cancels any bias, and adds its own learnable shift (``beta``) instead.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output (both convolutions produce this many).

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, out_channels, H, W)``

    Examples::

        >>> DoubleConv(3, 16)(torch.zeros(2, 3, 33, 34)).shape
        torch.Size([2, 16, 33, 34])
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Down(nn.Module):
    """2x2 max-pool (halves ``H`` and ``W``, rounding down), then ``DoubleConv``.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output.

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, out_channels, H // 2, W // 2)``
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


def align_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pad (replicating the edge) or crop ``x`` at the bottom and right to spatial ``size``.

    Max-pooling an odd size drops the last row or column; doubling the pooled map then comes back
    one short. Padding at the bottom/right puts every up-sampled pixel back over the input pixels
    it came from (re-interpolating the whole map to the new size would shift all of them).

    Under ``torch.export`` (ONNX export, ``deploy/export.py``) the graph must serve every input size, so
    it may not branch on this size's ``dh, dw``: it always pads, by amounts that are symbols of the
    input size (0 for even sizes). Inside a U-Net the up-sampled map is never larger than its skip,
    so the crop is not needed there.

    Shape:
        - Input: ``(N, C, h, w)``
        - Output: ``(N, C, *size)``
    """
    dh, dw = size[0] - x.shape[-2], size[1] - x.shape[-1]
    if torch.compiler.is_exporting():
        return F.pad(x, (0, dw, 0, dh), mode="replicate")  # (N, C, *size) for every size, odd or even
    if dh < 0 or dw < 0:
        x = x[..., : size[0], : size[1]]
        dh, dw = max(dh, 0), max(dw, 0)
    if dh or dw:
        x = F.pad(x, (0, dw, 0, dh), mode="replicate")
    return x


class Up(nn.Module):
    """Up-sample by 2, align to the skip, concatenate ``[skip, x]``, then ``DoubleConv``.

    Args:
        in_channels: channels of the deeper feature map ``x``.
        skip_channels: channels of the encoder feature map ``skip``.
        out_channels: channels of the output.
        up_mode: ``"bilinear"`` (``align_corners=False``; keeps ``in_channels``, no parameters) or
            ``"transpose"`` (a learnable ``ConvTranspose2d``, kernel 2, stride 2, that halves the
            channels as in the original paper).

    Shape:
        - ``x``: ``(N, in_channels, h, w)``
        - ``skip``: ``(N, skip_channels, H, W)`` with ``H, W`` about ``2h, 2w``
        - Output: ``(N, out_channels, H, W)`` (the skip's spatial size)

    Raises:
        ValueError: when the channels of ``x`` or ``skip`` differ from the ones given here. Spatial
            sizes may differ by the rows that max-pooling dropped; channels never may.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, up_mode: str = "bilinear") -> None:
        super().__init__()
        if up_mode not in UP_MODES:
            raise ValueError(f"up_mode must be one of {UP_MODES}; got {up_mode!r}")
        self.in_channels, self.skip_channels, self.up_mode = in_channels, skip_channels, up_mode
        if up_mode == "bilinear":
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            up_channels = in_channels
        else:
            up_channels = in_channels // 2
            self.up = nn.ConvTranspose2d(in_channels, up_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(skip_channels + up_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        self._check_channels(x, skip)
        x = self.up(x)  # (N, up_channels, 2h, 2w)
        x = align_to(x, skip.shape[-2:])  # (N, up_channels, H, W)
        x = torch.cat([skip, x], dim=1)  # (N, skip_channels + up_channels, H, W)
        return self.conv(x)

    def _check_channels(self, x: torch.Tensor, skip: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"Up expected x with {self.in_channels} channels, shape (N, {self.in_channels}, h, w); "
                f"got {tuple(x.shape)}. Hint: in_channels must equal the channels of the deeper block"
            )
        if not isinstance(skip, torch.Tensor):
            raise TypeError(f"Up needs the encoder feature map as skip, a tensor; got {type(skip).__name__}")
        if skip.ndim != 4 or skip.shape[1] != self.skip_channels:
            raise ValueError(
                f"Up expected skip with {self.skip_channels} channels, shape (N, {self.skip_channels}, H, W); "
                f"got {tuple(skip.shape)}. Channel counts never get aligned automatically: "
                "check that skip_channels matches the encoder stage at this resolution"
            )
