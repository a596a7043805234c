"""unet_helpers: the tested code behind the U-Net segmentation course.

Each module says which notebook builds it. Public names are re-exported here.
"""
from .blocks import DoubleConv, Down, Up, align_to
from .boundary import boundary_f1, boundary_map
from .checkpoint import load_checkpoint, save_checkpoint
from .data import SHAPE_CLASSES, ArrayDataset, SegmentationFolder, split_indices, stack_dataset, synthetic_segmentation
from .datasets import (
    NUCLEI_CLASSES,
    SSTEM_CLASSES,
    SSTEM_LABEL_TO_CLASS,
    nuclei_dataset,
    nuclei_instances,
    sstem_dataset,
    sstem_labels_to_classes,
)
from .download import DatasetUnavailableError, dataset_dir, download_dataset, verify_dataset
from .elastic import ElasticDeform, elastic_warp
from .encoders import EncoderUNet, EncoderUNetConfig
from .inference import predict, predict_tiled, tile_boxes
from .inspector import InspectorSettings, MaskReport, inspect_masks
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
from .train import evaluate, fit, make_loader
from .transforms import Compose, RandomCrop, RandomFlipRotate
from .unet import UNet, UNetConfig, count_parameters, unet_from_config
from .utils import get_device, seed_everything
from .weightmap import WeightMapDataset, border_weight_map, class_balance_weights, weight_map_parts

__version__ = "0.1.0"

__all__ = [
    "align_to",
    "ArrayDataset",
    "bce_dice_loss",
    "BCEDiceLoss",
    "border_weight_map",
    "boundary_f1",
    "boundary_map",
    "class_balance_weights",
    "combined_loss",
    "CombinedLoss",
    "Compose",
    "confusion_matrix",
    "ConfusionMatrix",
    "count_parameters",
    "dataset_dir",
    "DatasetUnavailableError",
    "dice_loss",
    "DiceLoss",
    "DoubleConv",
    "InspectorSettings",
    "MaskReport",
    "Down",
    "download_dataset",
    "elastic_warp",
    "ElasticDeform",
    "EncoderUNet",
    "EncoderUNetConfig",
    "evaluate",
    "fit",
    "get_device",
    "inspect_masks",
    "iou_per_class",
    "load_checkpoint",
    "make_loader",
    "NUCLEI_CLASSES",
    "nuclei_dataset",
    "nuclei_instances",
    "pixel_cross_entropy",
    "PixelCrossEntropy",
    "predict",
    "predict_tiled",
    "RandomCrop",
    "RandomFlipRotate",
    "save_checkpoint",
    "seed_everything",
    "SegmentationFolder",
    "SHAPE_CLASSES",
    "split_indices",
    "SSTEM_CLASSES",
    "sstem_dataset",
    "SSTEM_LABEL_TO_CLASS",
    "sstem_labels_to_classes",
    "stack_dataset",
    "synthetic_segmentation",
    "tile_boxes",
    "UNet",
    "unet_from_config",
    "UNetConfig",
    "Up",
    "verify_dataset",
    "weight_map_parts",
    "WeightMapDataset",
]
