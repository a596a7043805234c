"""Are close objects kept apart? Counting narrowly separated pairs in a prediction.

Built for ``notebooks/09_real_data.ipynb`` (does the border weight map keep close nuclei apart?).
Pixel metrics hardly notice two objects merged by a one-pixel bridge; these two functions count it:

- ``narrow_gap_pairs``: pairs of objects of a true instance map that lie ``1..max_gap`` background
  pixels apart and that the true mask keeps separate (no path of object pixels joins them);
- ``pairs_kept_apart``: for such pairs, how many have both objects found in a predicted class-id
  mask, and how many of those lie in different predicted regions.

Regions are 8-connected: two pixels that touch at a corner belong to one region, so a diagonal
one-pixel bridge merges two objects.

Shapes: ``instances`` and ``pred`` are ``(H, W)``; instances 0 = background, k > 0 = object k;
``pred`` class ids with 0 = background.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ..validate import as_class_ids

EIGHT = np.ones((3, 3), bool)  # 8-connectivity: diagonal neighbours join regions


def _as_map(values: np.ndarray | torch.Tensor, name: str, kind: str) -> np.ndarray:
    values = as_class_ids(values, name, kind=kind)  # (H, W) int64, or a ValueError naming the shape
    if values.size and values.min() < 0:
        raise ValueError(f"{name} must be >= 0; got {values.min()}")
    return values


def narrow_gap_pairs(instances: np.ndarray | torch.Tensor, max_gap: int = 3) -> list[tuple[int, int]]:
    """Pairs ``(a, b)``, ``a < b``, of objects at most ``max_gap`` pixels apart that the truth keeps separate.

    "Apart" is the Euclidean distance between the nearest pixels of the two objects: at most
    ``max_gap + 1`` (a gap of ``max_gap`` background pixels between them on a row, column or
    diagonal). Objects joined by a path of object pixels (touching, or bridged by a third object)
    are one region of the true mask and never a pair: no class-id mask can separate them.

    Args:
        instances: ``(H, W)`` instance map (0 = background, k = object k).
        max_gap: the widest gap, in pixels, that counts as narrow (>= 1).

    Returns:
        Sorted list of ``(a, b)`` object ids.
    """
    instances = _as_map(instances, "instances", "object ids (0 = background, k = object k)")
    if isinstance(max_gap, bool) or not isinstance(max_gap, int) or max_gap < 1:
        raise ValueError(f"max_gap must be an int >= 1 (pixels of background between two objects); got {max_gap!r}")
    regions, _ = ndimage.label(instances > 0, structure=EIGHT)  # (H, W) connected regions of the truth
    region_of = {}
    pairs = set()
    for a, box in enumerate(ndimage.find_objects(instances), start=1):
        if box is None:  # no object with this id
            continue
        region_of.setdefault(a, regions[box][instances[box] == a][0])
        window = tuple(slice(max(s.start - max_gap - 1, 0), s.stop + max_gap + 1) for s in box)
        near = ndimage.distance_transform_edt(instances[window] != a) <= max_gap + 1  # (h, w) within reach of a
        for b in np.unique(instances[window][near]):
            b = int(b)
            if b > a:
                region_b = regions[instances == b][0]
                if region_of[a] != region_b:
                    pairs.add((a, b))
    return sorted(pairs)


def pairs_kept_apart(
    pred: np.ndarray | torch.Tensor, instances: np.ndarray | torch.Tensor, pairs: list[tuple[int, int]]
) -> tuple[int, int]:
    """How many of ``pairs`` have both objects found in ``pred``, and how many of those stay apart.

    An object is found when a predicted region (8-connected pixels of any class > 0) covers some
    of its pixels; its region is the one covering most of them. A pair stays apart when its two
    objects are found in two different regions.

    Args:
        pred: ``(H, W)`` predicted class ids (0 = background).
        instances: ``(H, W)`` true instance map the pairs come from.
        pairs: from ``narrow_gap_pairs(instances)``.

    Returns:
        ``(both_found, kept_apart)``.
    """
    pred = _as_map(pred, "pred", "class ids (0 = background)")
    instances = _as_map(instances, "instances", "object ids (0 = background, k = object k)")
    if pred.shape != instances.shape:
        raise ValueError(f"pred {pred.shape} and instances {instances.shape} must have the same (H, W)")
    regions, _ = ndimage.label(pred > 0, structure=EIGHT)

    def region_of(k: int) -> int:  # the predicted region covering most of object k (0 if none)
        hits = regions[(instances == k) & (regions > 0)]
        return int(np.bincount(hits).argmax()) if hits.size else 0

    found = [(region_of(a), region_of(b)) for a, b in pairs]
    both = [(ra, rb) for ra, rb in found if ra and rb]
    return len(both), sum(ra != rb for ra, rb in both)
