"""Turn the upstream archives of the two real datasets into the course layout.

Used by ``download.py`` (which fetches, verifies and moves the result into place):

- DSB2018 ``stage1_train``: every 256x256 grayscale image; the per-nucleus masks merged into a
  0/255 mask and a 16-bit instance map (a later mask wins where two overlap).
- ssTEM stack 1: raw TIFF slices as they are, the 9 gray codes of ``labels/`` mapped to 5 classes.

An archive is untrusted input, read member by member through ``ArchiveReader``: a member larger
than ``MAX_MEMBER_BYTES`` uncompressed (or members adding up to more than ``MAX_ARCHIVE_BYTES``) is
refused before it is decompressed, and so is a member over 1 MiB that would grow more than
``MAX_RATIO`` times (a zip bomb), so a small zip cannot fill memory; an image member must be of
the format its name says (a ``.png`` member is decoded as PNG only, never as whatever Pillow would
guess) and within ``MAX_MEMBER_PIXELS``; a sample name taken from the archive must be a plain file
name (``SAFE_NAME``: no ``..``, no ``/`` or ``\\``, so a Windows path cannot escape the staging
folder). Every problem is a ``ValueError`` naming the member.

Shapes: masks ``(H, W)``.
"""
from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

MAX_MEMBER_BYTES = 256 * 2**20  # one member, uncompressed (the largest upstream member is a few MB)
MAX_ARCHIVE_BYTES = 8 * 2**30  # all members read, uncompressed
MAX_MEMBER_PIXELS = 4096 * 4096  # one image member (upstream: 1024 x 1024 at most)
MAX_RATIO = 50  # uncompressed / compressed size of a member over 1 MiB (upstream PNG and TIFF: about 1)
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_FORMATS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF"}
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error, zlib.error,
                  Image.DecompressionBombError)


class ArchiveReader:
    """Reads members of an upstream zip within size caps, and decodes image members safely.

    Args:
        archive: the open zip file.
        max_member_bytes, max_total_bytes: caps on the uncompressed sizes (declared in the zip's
            directory, which also bounds what ``zipfile`` decompresses); default
            ``MAX_MEMBER_BYTES`` and ``MAX_ARCHIVE_BYTES``.
    """

    def __init__(self, archive: zipfile.ZipFile, max_member_bytes: int | None = None,
                 max_total_bytes: int | None = None) -> None:
        self.archive = archive
        self.max_member_bytes = MAX_MEMBER_BYTES if max_member_bytes is None else max_member_bytes
        self.max_total_bytes = MAX_ARCHIVE_BYTES if max_total_bytes is None else max_total_bytes
        self.total = 0

    def names(self) -> list[str]:
        """Member names as the archive lists them (a sample name is checked by ``safe_sample_name``)."""
        return self.archive.namelist()

    def read(self, member: str) -> bytes:
        """The bytes of ``member``; ``ValueError`` when it is too large or cannot be decompressed."""
        try:
            info = self.archive.getinfo(member)
        except KeyError:
            raise ValueError(f"archive member {member!r} is missing") from None
        if info.file_size > self.max_member_bytes:
            raise ValueError(f"archive member {member} would decompress to {info.file_size:,} bytes, more than the "
                             f"{self.max_member_bytes:,} any member of this dataset has; the archive is not the upstream one")
        if info.file_size > 2**20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ValueError(f"archive member {member} would grow from {info.compress_size:,} to {info.file_size:,} bytes "
                             f"when decompressed, more than {MAX_RATIO} times (a zip bomb?); the archive is not the upstream one")
        self.total += info.file_size
        if self.total > self.max_total_bytes:
            raise ValueError(f"the archive's members add up to more than {self.max_total_bytes:,} bytes uncompressed; "
                             "it is not the upstream archive")
        try:
            return self.archive.read(info)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as error:
            raise ValueError(f"archive member {member} cannot be decompressed ({error}); the archive is corrupt") from error

    def image(self, member: str) -> np.ndarray:
        """The pixels of an image member, decoded as the format its name says."""
        return decode_member(self.read(member), member)


def decode_member(data: bytes, member: str) -> np.ndarray:
    """Decode ``data`` as the image format of ``member``'s extension only, within ``MAX_MEMBER_PIXELS``."""
    fmt = _FORMATS.get(Path(member.replace("\\", "/")).suffix.lower())
    if fmt is None:
        raise ValueError(f"archive member {member} is not a PNG or TIFF image")
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:
            if img.width * img.height > MAX_MEMBER_PIXELS:
                raise ValueError(f"archive member {member} is {img.width}x{img.height} pixels, more than any image of "
                                 "this dataset; the archive is not the upstream one")
            return np.array(img)
    except _DECODE_ERRORS as error:
        if isinstance(error, ValueError) and str(error).startswith("archive member"):
            raise
        raise ValueError(f"archive member {member} is not a readable {fmt} image ({type(error).__name__}: {error})") from error


def safe_sample_name(name: str, member: str) -> str:
    """``name`` when it is a plain file name (``SAFE_NAME``), else a ``ValueError`` naming ``member``."""
    if not SAFE_NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"archive member {member!r} gives the sample name {name!r}, which is not a plain file name "
                         "(letters, digits, '.', '_', '-'); the archive is not the upstream one")
    return name

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


def _gray_256(array: np.ndarray) -> np.ndarray | None:
    """Channel 0 of a 256x256 image whose colour channels are equal and alpha is 255, else None."""
    if array.shape[:2] != (256, 256):
        return None
    if array.ndim == 3:  # (H, W, C): LA, RGB or RGBA
        colour = array[..., : 3 if array.shape[2] >= 3 else 1]
        opaque = array.shape[2] not in (2, 4) or (array[..., -1] == 255).all()
        if not opaque or (colour != colour[..., :1]).any():
            return None
        array = array[..., 0]
    return np.ascontiguousarray(array) if array.dtype == np.uint8 else None


def prepare_nuclei(archive: zipfile.ZipFile, out: Path, progress: bool) -> list[str]:
    """Every 256x256 grayscale training image: images/, masks/ (0/255), instances/, manifest.csv."""
    reader = ArchiveReader(archive)
    members = reader.names()
    if any("stage1_train/" in m for m in members):  # the fixes repository also holds test images
        members = [m for m in members if "stage1_train/" in m]
    images, masks = {}, defaultdict(list)
    for member in members:
        if found := re.search(r"(?:^|/)([^/]+)/images/\1\.png$", member):
            images[safe_sample_name(found.group(1), member)] = member
        elif found := re.search(r"(?:^|/)([^/]+)/masks/[^/]+\.png$", member):
            masks[found.group(1)].append(member)
    if not images:
        raise ValueError("archive holds no <id>/images/<id>.png files; is it DSB2018 stage1_train?")
    for folder in ("images", "masks", "instances"):
        (out / folder).mkdir()
    names, rows = [], ["image_id,n_nuclei,foreground_fraction,overlap_pixels"]
    for name in tqdm(sorted(images), desc="preparing nuclei", disable=not progress):
        gray = _gray_256(reader.image(images[name])) if masks[name] else None
        if gray is None:
            continue
        objects = []
        for member in sorted(masks[name]):
            mask = reader.image(member)
            mask = mask[..., :3].max(axis=-1) if mask.ndim == 3 else mask
            if mask.shape != gray.shape:
                raise ValueError(f"archive member {member} is a {mask.shape[0]}x{mask.shape[1]} mask for the "
                                 f"{gray.shape[0]}x{gray.shape[1]} image {images[name]}; the archive is damaged")
            objects.append(mask)
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
    reader = ArchiveReader(archive)
    raw, labels = {}, {}
    for member in reader.names():
        if found := re.search(r"(?:^|/)stack1/raw/(\d+)\.tif$", member):
            raw[f"{int(found.group(1)):02d}"] = member
        elif found := re.search(r"(?:^|/)stack1/labels/labels(\d+)\.png$", member):
            labels[f"{int(found.group(1)):02d}"] = member
        elif re.fullmatch(r"(?:[^/]+/)?README\.md", member):
            (out / "UPSTREAM_README.md").write_bytes(reader.read(member))
    names = sorted(set(raw) & set(labels))
    if not names:
        raise ValueError(
            "archive holds no stack1/raw/NN.tif with stack1/labels/labels000000NN.png; is it the ssTEM repository?"
        )
    for folder in ("images", "labels_original", "masks"):
        (out / folder).mkdir()
    for name in tqdm(names, desc="preparing ssTEM", disable=not progress):
        image_bytes, label_bytes = reader.read(raw[name]), reader.read(labels[name])
        decode_member(image_bytes, raw[name])  # a .tif member must be a TIFF image
        (out / "images" / f"{name}.tif").write_bytes(image_bytes)
        (out / "labels_original" / f"{name}.png").write_bytes(label_bytes)
        label_pixels = decode_member(label_bytes, labels[name])
        if label_pixels.ndim != 2:
            raise ValueError(f"archive member {labels[name]} is not a gray label image (shape {label_pixels.shape})")
        Image.fromarray(sstem_labels_to_classes(label_pixels)).save(out / "masks" / f"{name}.png")
    return names
