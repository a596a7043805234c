"""unet_helpers: the tested code behind the U-Net segmentation course.

The library a learner reads sits at the top of the folder, in lesson order: ``blocks``, ``unet``
(lessons 02-03), ``losses`` (04), ``metrics``, ``boundary`` (05), ``data``, ``transforms``,
``records``, ``loaders``, ``schedules``, ``train``, ``progress``, ``tensorboard_log``, ``checkpoint`` (06),
``inference``, ``tta`` (08), ``image_file``, ``mask_file``, ``folder`` (09) and ``encoders/`` (10),
with ``validate``, ``runtime`` and ``atomic`` as helpers and ``viz/`` for figures. The wings import
the library and never the other way round: ``inspector/``, ``realdata/``, ``views/`` (with
``widgets/``), ``slides/``, ``deploy/``, ``cli/``, ``checks/`` and ``course/``
(``tests/test_layering.py``). Each module says which notebook builds it; the public names are
collected here.
"""
from .blocks import DoubleConv, Down, Up, align_to
from .boundary import boundary_f1, boundary_map
from .checkpoint import load_checkpoint, save_checkpoint
from .data import SHAPE_CLASSES, ArrayDataset, split_indices, stack_dataset, synthetic_segmentation
from .deploy.export import OnnxMetadata, export_checkpoint, export_onnx
from .deploy.onnx_runtime import OnnxPredictor
from .encoders import EncoderUNet, EncoderUNetConfig
from .folder import SegmentationFolder
from .inference import predict, predict_tiled, tile_boxes
from .inspector import InspectorSettings, MaskReport, inspect_masks
from .loaders import EpochShuffle, make_loader
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
from .realdata.datasets import (
    NUCLEI_CLASSES,
    SSTEM_CLASSES,
    SSTEM_LABEL_TO_CLASS,
    nuclei_dataset,
    nuclei_instances,
    sstem_dataset,
    sstem_labels_to_classes,
)
from .realdata.download import DatasetUnavailableError, dataset_dir, download_dataset, verify_dataset
from .realdata.weightmap import WeightMapDataset, border_weight_map, class_balance_weights, weight_map_parts
from .records import EpochRecord, Evaluation, TrainSummary
from .runtime import get_device, seed_everything
from .train import evaluate, fit, train_one_epoch
from .transforms import CentreCrop, Compose, ElasticDeform, RandomCrop, RandomFlipRotate, elastic_warp, training_transform
from .unet import UNet, UNetConfig, count_parameters, unet_from_config

__version__ = "0.1.0"

__all__ = [
    "align_to",
    "ArrayDataset",
    "bce_dice_loss",
    "BCEDiceLoss",
    "border_weight_map",
    "boundary_f1",
    "boundary_map",
    "CentreCrop",
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
    "Down",
    "download_dataset",
    "elastic_warp",
    "ElasticDeform",
    "EncoderUNet",
    "EncoderUNetConfig",
    "EpochRecord",
    "EpochShuffle",
    "evaluate",
    "Evaluation",
    "export_checkpoint",
    "export_onnx",
    "fit",
    "get_device",
    "inspect_masks",
    "InspectorSettings",
    "iou_per_class",
    "load_checkpoint",
    "make_loader",
    "MaskReport",
    "NUCLEI_CLASSES",
    "nuclei_dataset",
    "nuclei_instances",
    "OnnxMetadata",
    "OnnxPredictor",
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
    "train_one_epoch",
    "training_transform",
    "TrainSummary",
    "UNet",
    "unet_from_config",
    "UNetConfig",
    "Up",
    "verify_dataset",
    "weight_map_parts",
    "WeightMapDataset",
]
