"""unet_helpers: the tested code behind the U-Net segmentation course.

Each module says which notebook builds it. Public names are re-exported here.
"""
from .blocks import DoubleConv, Down, Up, align_to
from .boundary import boundary_f1, boundary_map
from .data import SHAPE_CLASSES, ArrayDataset, SegmentationFolder, split_indices, stack_dataset, synthetic_segmentation
from .losses import (
    BCEDiceLoss,
    CombinedLoss,
    DiceLoss,
    PixelCrossEntropy,
    bce_dice_loss,
    combined_loss,
    dice_loss,
    pixel_cross_entropy,
)
from .metrics import ConfusionMatrix, confusion_matrix, iou_per_class
from .transforms import Compose, RandomCrop, RandomFlipRotate
from .unet import UNet, UNetConfig, count_parameters, unet_from_config
from .utils import get_device, seed_everything

__version__ = "0.1.0"

__all__ = [
    "ArrayDataset",
    "BCEDiceLoss",
    "CombinedLoss",
    "Compose",
    "ConfusionMatrix",
    "DiceLoss",
    "DoubleConv",
    "Down",
    "PixelCrossEntropy",
    "RandomCrop",
    "RandomFlipRotate",
    "SHAPE_CLASSES",
    "SegmentationFolder",
    "UNet",
    "UNetConfig",
    "Up",
    "align_to",
    "bce_dice_loss",
    "boundary_f1",
    "boundary_map",
    "combined_loss",
    "confusion_matrix",
    "count_parameters",
    "dice_loss",
    "get_device",
    "iou_per_class",
    "pixel_cross_entropy",
    "seed_everything",
    "split_indices",
    "stack_dataset",
    "synthetic_segmentation",
    "unet_from_config",
]
