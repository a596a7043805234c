"""Turn the upstream archives of the two real datasets into the course layout.

Used by ``download.py`` (which fetches, verifies and moves the result into place):

- DSB2018 ``stage1_train``: every 256x256 grayscale image; the per-nucleus masks merged into a
  0/255 mask and a 16-bit instance map (a later mask wins where two overlap).
- ssTEM stack 1: raw TIFF slices as they are, the 9 gray codes of ``labels/`` mapped to 5 classes.

Shapes: masks ``(H, W)``.
"""
from __future__ import annotations

import io
import re
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

# ssTEM gray codes -> class ids: 4 membrane orientations + junction -> 1 membrane, 159 -> 2 glia /
# extracellular, 191 -> 3 mitochondria, 223 -> 4 synapse, 255 -> 0 intracellular.
SSTEM_LABEL_TO_CLASS = {0: 1, 32: 1, 64: 1, 96: 1, 128: 1, 159: 2, 191: 3, 223: 4, 255: 0}


def sstem_labels_to_classes(labels: np.ndarray) -> np.ndarray:
    """Map the ssTEM gray codes (``labels_original/``) to the 5 class ids of ``masks/``.

    Args:
        labels: gray codes (the keys of ``SSTEM_LABEL_TO_CLASS``); a value outside them is a ``ValueError``.

    Shape:
        - ``labels``: ``(H, W)`` (any shape works) -> same shape, ``uint8`` class ids 0..4
    """
    labels = np.asarray(labels)
    unknown = sorted(set(np.unique(labels).tolist()) - set(SSTEM_LABEL_TO_CLASS))
    if unknown:
        raise ValueError(
            f"ssTEM labels have values {unknown[:10]} that are none of the 9 gray codes "
            f"{sorted(SSTEM_LABEL_TO_CLASS)}; is this a labels_original/ file?"
        )
    lookup = np.zeros(256, dtype=np.uint8)  # gray code -> class id
    lookup[list(SSTEM_LABEL_TO_CLASS)] = list(SSTEM_LABEL_TO_CLASS.values())
    return lookup[labels.astype(np.int64)]


def merge_instance_masks(masks: Sequence[np.ndarray]) -> tuple[np.ndarray, int]:
    """One 16-bit instance map from per-object binary masks (DSB2018 ``masks/*.png``).

    Object ``k`` (1-based) is ``masks[k - 1]``; where masks overlap, the later one wins.

    Shape:
        - ``masks``: ``K`` arrays ``(H, W)`` (nonzero = object) -> ``(H, W)`` ``uint16`` (0 = background)

    Returns:
        The instance map and the number of pixels covered by more than one mask.
    """
    if not masks or len(masks) > 65535:
        raise ValueError(f"expected 1 to 65535 object masks; got {len(masks)}")
    instances = np.zeros(masks[0].shape, dtype=np.uint16)
    coverage = np.zeros(masks[0].shape, dtype=np.int32)
    for k, mask in enumerate(masks, start=1):
        inside = np.asarray(mask) > 0
        instances[inside] = k
        coverage += inside
    return instances, int((coverage > 1).sum())


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.array(img)


def _gray_256(data: bytes) -> np.ndarray | None:
    """Channel 0 of a 256x256 image whose colour channels are equal and alpha is 255, else None."""
    with Image.open(io.BytesIO(data)) as img:
        if img.size != (256, 256):
            return None
        array = np.array(img)
    if array.ndim == 3:  # (H, W, C): LA, RGB or RGBA
        colour = array[..., : 3 if array.shape[2] >= 3 else 1]
        opaque = array.shape[2] not in (2, 4) or (array[..., -1] == 255).all()
        if not opaque or (colour != colour[..., :1]).any():
            return None
        array = array[..., 0]
    return np.ascontiguousarray(array) if array.dtype == np.uint8 else None


def prepare_nuclei(archive: zipfile.ZipFile, out: Path, progress: bool) -> list[str]:
    """Every 256x256 grayscale training image: images/, masks/ (0/255), instances/, manifest.csv."""
    members = archive.namelist()
    if any("stage1_train/" in m for m in members):  # the fixes repository also holds test images
        members = [m for m in members if "stage1_train/" in m]
    images, masks = {}, defaultdict(list)
    for member in members:
        if found := re.search(r"(?:^|/)([^/]+)/images/\1\.png$", member):
            images[found.group(1)] = member
        elif found := re.search(r"(?:^|/)([^/]+)/masks/[^/]+\.png$", member):
            masks[found.group(1)].append(member)
    if not images:
        raise ValueError("archive holds no <id>/images/<id>.png files; is it DSB2018 stage1_train?")
    for folder in ("images", "masks", "instances"):
        (out / folder).mkdir()
    names, rows = [], ["image_id,n_nuclei,foreground_fraction,overlap_pixels"]
    for name in tqdm(sorted(images), desc="preparing nuclei", disable=not progress):
        gray = _gray_256(archive.read(images[name])) if masks[name] else None
        if gray is None:
            continue
        objects = []
        for member in sorted(masks[name]):
            mask = _decode(archive.read(member))
            objects.append(mask[..., :3].max(axis=-1) if mask.ndim == 3 else mask)
        instances, overlap = merge_instance_masks(objects)
        Image.fromarray(gray).save(out / "images" / f"{name}.png")
        Image.fromarray(((instances > 0) * 255).astype(np.uint8)).save(out / "masks" / f"{name}.png")
        Image.fromarray(instances).save(out / "instances" / f"{name}.png")
        rows.append(f"{name},{len(objects)},{(instances > 0).mean():.5f},{overlap}")
        names.append(name)
    (out / "manifest.csv").write_text("\n".join(rows) + "\n")
    return names


def prepare_sstem(archive: zipfile.ZipFile, out: Path, progress: bool) -> list[str]:
    """stack1: images/NN.tif and labels_original/NN.png as they are, masks/NN.png as class ids."""
    raw, labels = {}, {}
    for member in archive.namelist():
        if found := re.search(r"(?:^|/)stack1/raw/(\d+)\.tif$", member):
            raw[f"{int(found.group(1)):02d}"] = member
        elif found := re.search(r"(?:^|/)stack1/labels/labels(\d+)\.png$", member):
            labels[f"{int(found.group(1)):02d}"] = member
        elif re.fullmatch(r"(?:[^/]+/)?README\.md", member):
            (out / "UPSTREAM_README.md").write_bytes(archive.read(member))
    names = sorted(set(raw) & set(labels))
    if not names:
        raise ValueError(
            "archive holds no stack1/raw/NN.tif with stack1/labels/labels000000NN.png; is it the ssTEM repository?"
        )
    for folder in ("images", "labels_original", "masks"):
        (out / folder).mkdir()
    for name in tqdm(names, desc="preparing ssTEM", disable=not progress):
        (out / "images" / f"{name}.tif").write_bytes(archive.read(raw[name]))
        label_bytes = archive.read(labels[name])
        (out / "labels_original" / f"{name}.png").write_bytes(label_bytes)
        Image.fromarray(sstem_labels_to_classes(_decode(label_bytes))).save(out / "masks" / f"{name}.png")
    return names
