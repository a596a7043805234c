"""Loaders for the real datasets, checked against the raw files and the numbers in shared/README.md."""
import csv

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from unet_helpers.realdata.datasets import (
    NUCLEI_CLASSES,
    SSTEM_CLASSES,
    SSTEM_LABEL_TO_CLASS,
    nuclei_dataset,
    nuclei_instances,
    sstem_dataset,
    sstem_labels_to_classes,
    training_transform,
)
from unet_helpers import UNet, combined_loss
from unet_helpers.folder import SegmentationFolder
from unet_helpers.realdata.download import DatasetUnavailableError
from unet_helpers.mask_file import read_mask
from unet_helpers.transforms import Compose, RandomCrop, RandomFlipRotate
from unet_helpers.realdata.weightmap import WeightMapDataset, border_weight_map, class_balance_weights

NUCLEI, SSTEM = "dsb2018_nuclei_256", "drosophila_vnc_sstem"


def test_sstem_mapping_reproduces_every_mask(data_dir):
    for index in range(20):
        labels = np.array(Image.open(data_dir / SSTEM / "labels_original" / f"{index:02d}.png"))
        expected = np.array(Image.open(data_dir / SSTEM / "masks" / f"{index:02d}.png"))
        assert np.array_equal(sstem_labels_to_classes(labels), expected), f"slice {index:02d}"


def test_sstem_mapping_codes_and_errors():
    codes = np.array([0, 32, 64, 96, 128, 159, 191, 223, 255])
    assert sstem_labels_to_classes(codes).tolist() == [1, 1, 1, 1, 1, 2, 3, 4, 0]
    assert sorted(SSTEM_LABEL_TO_CLASS) == codes.tolist()
    with pytest.raises(ValueError, match=r"values \[100, 300\] that are none of the 9 gray codes"):
        sstem_labels_to_classes(np.array([0, 100, 300]))


def test_class_names_follow_the_pixel_shares(data_dir):
    """shared/README.md: ssTEM 74.1 / 17.2 / 2.9 / 5.4 / 0.56 %, nuclei 92.3 / 7.7 %."""
    assert SSTEM_CLASSES == ("intracellular", "membrane", "glia/extracellular", "mitochondria", "synapse")
    assert NUCLEI_CLASSES == ("background", "nucleus")
    sstem = sstem_dataset("all", data_dir, cache=False)
    counts = sum(np.bincount(read_mask(path, sstem.lookup).ravel(), minlength=5) for path in sstem.mask_paths)
    np.testing.assert_allclose(counts / counts.sum(), [0.741, 0.172, 0.029, 0.054, 0.0056], atol=0.0006)
    nuclei = nuclei_dataset("all", data_dir)
    foreground = np.mean([read_mask(path, nuclei.lookup).mean() for path in nuclei.mask_paths])
    assert foreground == pytest.approx(0.077, abs=0.0006)


def test_nuclei_split_is_seeded_and_disjoint(data_dir):
    train, val = nuclei_dataset("train", data_dir), nuclei_dataset("val", data_dir)
    everything = nuclei_dataset("all", data_dir)
    assert (len(train), len(val), len(everything)) == (267, 67, 334)
    assert not set(train.names) & set(val.names) and sorted(train.names + val.names) == everything.names
    assert nuclei_dataset("val", data_dir).names == val.names
    assert nuclei_dataset("val", data_dir, seed=1).names != val.names
    assert len(nuclei_dataset("val", data_dir, val_fraction=0.5)) == 167


def test_nuclei_items_are_mapped_and_normalised(data_dir):
    dataset = nuclei_dataset("val", data_dir)
    image, mask = dataset[0]
    name = dataset.names[0]
    raw_mask = np.array(Image.open(data_dir / NUCLEI / "masks" / f"{name}.png"))
    raw_image = np.array(Image.open(data_dir / NUCLEI / "images" / f"{name}.png")).astype(np.float32)
    assert image.shape == (1, 256, 256) and image.dtype == torch.float32 and mask.dtype == torch.int64
    assert torch.equal(mask, torch.from_numpy(raw_mask // 255).long())
    expected = (raw_image - raw_image.mean()) / raw_image.std()
    np.testing.assert_allclose(image[0].numpy(), expected, atol=1e-4)


def test_nuclei_instances_match_mask_and_manifest(data_dir):
    dataset = nuclei_dataset("train", data_dir)
    with open(data_dir / NUCLEI / "manifest.csv") as file:
        counts = {row["image_id"]: int(row["n_nuclei"]) for row in csv.DictReader(file)}
    for index in (0, 5):
        instances = nuclei_instances(dataset, index)
        assert instances.dtype == torch.int64 and instances.shape == (256, 256)
        assert int(instances.max()) == counts[dataset.names[index]]
        assert torch.equal(instances > 0, dataset.load(index)[1] == 1)


def test_nuclei_crops_augmentation_and_weight_triples(data_dir):
    torch.manual_seed(0)
    image, mask = nuclei_dataset("train", data_dir, crop=96, augment=True)[3]
    assert image.shape == (1, 96, 96) and mask.shape == (96, 96)
    weighted = nuclei_dataset("val", data_dir, border_weights=True)
    assert isinstance(weighted, WeightMapDataset) and len(weighted) == 67
    train = nuclei_dataset("train", data_dir)
    train_masks = np.stack([read_mask(path, train.lookup) for path in train.mask_paths])
    np.testing.assert_allclose(weighted.class_weights, class_balance_weights(train_masks, 2))
    image, mask, weights = weighted[2]
    instances = nuclei_instances(weighted.folder, 2)
    expected = border_weight_map(instances, class_weights=weighted.class_weights)
    np.testing.assert_allclose(weights.numpy(), expected)
    assert torch.equal(mask, (instances > 0).long()) and image.shape == (1, 256, 256)
    cropped = nuclei_dataset("val", data_dir, border_weights=True, crop=64, augment=True)
    assert [t.shape for t in cropped[0]] == [(1, 64, 64), (64, 64), (64, 64)]


def test_sstem_block_split_crops_and_cache(data_dir):
    train, val = sstem_dataset("train", data_dir), sstem_dataset("val", data_dir)
    assert train.names == [f"{i:02d}" for i in range(16)] and val.names == ["16", "17", "18", "19"]
    image, mask = val[0]
    assert image.shape == (1, 1024, 1024) and mask.dtype == torch.int64 and int(mask.max()) <= 4
    assert val.load(0)[0] is val.load(0)[0]  # decoded once, then cached
    cropped = sstem_dataset("train", data_dir, crop=(128, 96), augment=True, cache=False)
    image, mask = cropped[0]
    assert image.shape == (1, 128, 96) and mask.shape == (128, 96)
    custom = sstem_dataset("val", data_dir, train_slices=range(0, 10), val_slices=[12, 13])
    assert custom.names == ["12", "13"]


def test_training_transform_order():
    assert training_transform() is None
    assert isinstance(training_transform(crop=8), RandomCrop)
    flip = RandomFlipRotate()
    pipeline = training_transform(crop=8, augment=True, transform=flip)
    assert isinstance(pipeline, Compose) and isinstance(pipeline.transforms[0], RandomCrop)
    assert isinstance(pipeline.transforms[1], RandomFlipRotate) and pipeline.transforms[2] is flip


def test_found_through_the_environment_variable(data_dir, monkeypatch):
    monkeypatch.setenv("UNET_DATA_DIR", str(data_dir))
    assert nuclei_dataset("val").root == data_dir / NUCLEI
    assert sstem_dataset("val").root == data_dir / SSTEM


def test_bad_arguments(data_dir, tmp_path):
    with pytest.raises(ValueError, match=r"unknown split 'test'; expected one of \('train', 'val', 'all'\)"):
        nuclei_dataset("test", data_dir)
    with pytest.raises(ValueError, match=r"unknown split 'validation'"):
        sstem_dataset("validation", data_dir)
    with pytest.raises(ValueError, match=r"train_slices and val_slices share slices \[15\]"):
        sstem_dataset("train", data_dir, val_slices=range(15, 20))
    with pytest.raises(ValueError, match=r"val_slices has slice 20, but the slices on disk are 00..19"):
        sstem_dataset("val", data_dir, val_slices=[19, 20])
    with pytest.raises(TypeError, match=r"train_slices must hold slice numbers \(int\); got '3'"):
        sstem_dataset("train", data_dir, train_slices=["3"])
    with pytest.raises(ValueError, match=r"val_slices is empty"):
        sstem_dataset("val", data_dir, val_slices=[])
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\)"):
        nuclei_dataset("val", data_dir, val_fraction=1.5)
    message = r"(?s)nowhere/dsb2018_nuclei_256 and download=False. Put the files here"
    with pytest.raises(DatasetUnavailableError, match=message):
        nuclei_dataset("train", tmp_path / "nowhere", download=False)
    (tmp_path / "half" / SSTEM / "images").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"missing labels_original/, masks/"):
        sstem_dataset("train", tmp_path / "half")
    (tmp_path / "bare" / SSTEM / "masks").mkdir(parents=True)
    (tmp_path / "bare" / SSTEM / "labels_original").mkdir()
    (tmp_path / "bare" / SSTEM / "images").mkdir()
    with pytest.raises(ValueError, match=r"no slices NN.tif in .*images"):
        sstem_dataset("train", tmp_path / "bare")


def test_weight_triples_batch_into_the_loss(data_dir):
    torch.manual_seed(0)
    dataset = nuclei_dataset("val", data_dir, border_weights=True, crop=64, augment=True)
    images, masks, weights = next(iter(DataLoader(dataset, batch_size=2)))
    assert images.shape == (2, 1, 64, 64) and masks.shape == weights.shape == (2, 64, 64)
    logits = UNet(in_channels=1, num_classes=2, base=4, depth=2)(images)
    loss, parts = combined_loss(logits, masks, pixel_weights=weights)
    loss.backward()
    assert torch.isfinite(loss) and set(parts) == {"ce", "dice"}


def test_missing_instance_map_is_named(tmp_path):
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / sub / "x.png")
    folder = SegmentationFolder(tmp_path, mask_values={0: 0, 255: 1})
    with pytest.raises(FileNotFoundError, match=r"instance map .*instances/x.png does not exist"):
        nuclei_instances(folder, 0)
