"""EfficientNet-Lite0 in plain PyTorch: the ImageNet classifier whose stages become a U-Net encoder.

EfficientNet-Lite (Tan and Le, *EfficientNet*, ICML 2019, arXiv:1905.11946; the "Lite" edge variant
of the TensorFlow TPU repository) is EfficientNet-B0 made friendly to mobile hardware: no
squeeze-and-excitation, ReLU6 instead of swish, and a stem and head of fixed width. It is a stem
(3x3 convolution, stride 2) followed by 16 *inverted residual* blocks (``MBConv``) in 7 stages, then
a 1x1 head convolution to 1280 channels, global average pooling and a 1000-way linear classifier.

The layers follow the TensorFlow original that the ImageNet weights were trained in (they were
converted from its checkpoint), because a network only computes what its weights learned when it
is the same network:

- **"SAME" padding.** TensorFlow pads a stride-2 convolution so that the output has
  ``ceil(H / 2)`` rows, putting the odd pixel of padding at the bottom/right (for an even ``H`` a
  3x3 kernel gets 0 rows on top and 1 below). PyTorch's symmetric ``padding=k // 2`` shifts every
  stride-2 output by one input pixel against that. ``ConvBNAct`` computes the TensorFlow padding
  for each input size, so odd sizes work too.
- **BatchNorm epsilon 1e-3**, TensorFlow's default (PyTorch's is 1e-5); the stored running
  variances were estimated with it.

Input scaling: the TensorFlow training code scaled pixels as ``(x - 127) / 128`` on 0..255
("inception-style mean and std" for edge models), that is ``(x - IMAGE_MEAN) / IMAGE_STD`` on
``x`` in [0, 1] with ``IMAGE_MEAN = 127 / 255`` and ``IMAGE_STD = 128 / 255`` for every channel,
within 0.4 % of the 0.5 / 0.5 that timm's ``tf_efficientnet_lite0`` uses. Not the usual ImageNet
mean and std: ``tests/test_encoders.py`` shows that the stem's stored BatchNorm statistics match a
photo scaled this way, and are off by a factor of about five in variance with ImageNet's.

Weights and their loading live in ``encoders/weights.py``; the U-Net around the encoder in
``encoders/unet.py``. Shapes use ``N`` batch, ``C`` channels, ``H, W`` height and width.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGE_MEAN = 127.0 / 255.0  # per channel, for images scaled to [0, 1]
IMAGE_STD = 128.0 / 255.0
BN_EPS = 1e-3  # TensorFlow's BatchNorm epsilon, used when the weights were trained
STEM_WIDTH = 32
HEAD_WIDTH = 1280

# (expansion, kernel, stride of the first block, output channels, blocks) per stage
STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
# The encoder's outputs: the last block of the stages that end at strides 2, 4, 8, 16 and 32.
FEATURE_BLOCKS = (0, 2, 4, 10, 15)
FEATURE_CHANNELS = (16, 24, 40, 112, 320)
FEATURE_STRIDES = (2, 4, 8, 16, 32)


def scale_for_weights(images: torch.Tensor) -> torch.Tensor:
    """Scale images from [0, 1] to what the ImageNet weights expect: ``(x - IMAGE_MEAN) / IMAGE_STD``.

    Shape:
        - Input and output: any, e.g. ``(N, C, H, W)``; the same scaling for every channel
    """
    return (images - IMAGE_MEAN) / IMAGE_STD


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding of one axis: ``(before, after)`` so the output is ``ceil(size / stride)``.

    Examples::

        >>> same_padding(64, 3, 2), same_padding(33, 3, 2), same_padding(64, 5, 2)
        ((0, 1), (1, 1), (1, 2))
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ConvBNAct(nn.Module):
    """Convolution (no bias) -> BatchNorm (eps 1e-3) -> ReLU6 (unless ``act=False``), "SAME" padded.

    Args:
        in_channels, out_channels: channels in and out.
        kernel: kernel size (odd).
        stride: 1 or 2; a stride-2 output has ``ceil(H / 2)`` rows, as in TensorFlow.
        groups: ``in_channels`` for a depthwise convolution.
        act: apply ReLU6 after the BatchNorm.

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, out_channels, ceil(H / stride), ceil(W / stride))``
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1,
                 groups: int = 1, act: bool = True) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        # At stride 1 "SAME" is the symmetric k // 2 that Conv2d does itself; stride 2 pads in forward.
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2 if stride == 1 else 0,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            top, bottom = same_padding(x.shape[-2], self.kernel, self.stride)
            left, right = same_padding(x.shape[-1], self.kernel, self.stride)
            x = F.pad(x, (left, right, top, bottom))  # (N, C, H + top + bottom, W + left + right)
        return self.act(self.bn(self.conv(x)))


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand -> depthwise ``k x k`` -> 1x1 project, plus the input when shapes allow.

    The block widens ``in_channels`` by ``expansion`` (skipped when it is 1), filters each channel
    on its own (depthwise, carrying the block's stride), and projects back to ``out_channels``
    without an activation ("linear bottleneck", MobileNetV2). The residual is added when the block
    keeps both the resolution and the width.

    Args:
        in_channels, out_channels: channels in and out.
        expansion: width multiplier of the hidden layer.
        kernel: depthwise kernel size (3 or 5).
        stride: 1 or 2.

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, out_channels, ceil(H / stride), ceil(W / stride))``
    """

    def __init__(self, in_channels: int, out_channels: int, expansion: int, kernel: int, stride: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = ConvBNAct(in_channels, hidden) if expansion != 1 else nn.Identity()
        self.depthwise = ConvBNAct(hidden, hidden, kernel, stride, groups=hidden)
        self.project = ConvBNAct(hidden, out_channels, act=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0: an ImageNet classifier, and ``features`` for a U-Net encoder.

    Built without weights; ``encoders.weights.load_imagenet_weights`` (or
    ``efficientnet_lite0(pretrained=True)``) loads the ImageNet ones. With all parts it has
    4,652,008 parameters (``tests/test_encoders.py`` counts them against the weight file).

    Args:
        in_channels: image channels (3 for the ImageNet weights; 1 after ``weights.adapt_stem``).
        num_classes: outputs of the classifier (1000 for ImageNet).
        classifier: build the head convolution and the classifier; ``False`` keeps only what
            ``features`` needs (2,958,848 parameters with 3 input channels).

    Shape:
        - Input: ``(N, in_channels, H, W)`` float, scaled as ``(x - IMAGE_MEAN) / IMAGE_STD`` for
          ``x`` in [0, 1] when the ImageNet weights are loaded
        - ``forward``: ``(N, num_classes)`` logits; ``features``: see there

    Examples::

        >>> net = EfficientNetLite0(classifier=False)
        >>> [tuple(f.shape) for f in net.features(torch.zeros(1, 3, 64, 64))]
        [(1, 16, 32, 32), (1, 24, 16, 16), (1, 40, 8, 8), (1, 112, 4, 4), (1, 320, 2, 2)]
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, classifier: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.stem = ConvBNAct(in_channels, STEM_WIDTH, kernel=3, stride=2)
        blocks, width = [], STEM_WIDTH
        for expansion, kernel, stride, out_channels, repeats in STAGES:
            for i in range(repeats):  # only the first block of a stage changes stride and width
                blocks.append(MBConv(width, out_channels, expansion, kernel, stride if i == 0 else 1))
                width = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.has_classifier = classifier
        if classifier:
            self.head = ConvBNAct(width, HEAD_WIDTH)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.dropout = nn.Dropout(0.2)  # as in training; inactive in eval mode
            self.classifier = nn.Linear(HEAD_WIDTH, num_classes)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The maps at strides 2, 4, 8, 16, 32 (the skips of a U-Net).

        Shape:
            - Input: ``(N, in_channels, H, W)``
            - Output: five maps ``(N, c, ceil(H / s), ceil(W / s))`` for ``(c, s)`` in
              ``zip(FEATURE_CHANNELS, FEATURE_STRIDES)``: 16, 24, 40, 112, 320 channels
        """
        outputs = []
        x = self.stem(x)  # (N, 32, H/2, W/2)
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in FEATURE_BLOCKS:
                outputs.append(x)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_classifier:
            raise RuntimeError("this EfficientNetLite0 was built with classifier=False; call .features(x) "
                               "for the encoder maps, or build it with classifier=True to classify")
        x = self.head(self.features(x)[-1])  # (N, 1280, H/32, W/32)
        x = self.pool(x).flatten(1)  # (N, 1280)
        return self.classifier(self.dropout(x))  # (N, num_classes)
