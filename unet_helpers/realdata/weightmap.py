"""The U-Net paper's weight map, built in ``notebooks/09_real_data.ipynb``.

Ronneberger et al. (2015), eq. 2, for an instance map (0 = background, k = object k)::

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))**2 / (2 * sigma**2))

- ``d1``, ``d2``: Euclidean distance (in pixels, centre to centre) from ``x`` to the nearest pixel
  of the nearest and of the second-nearest object.
- The border term is added on **background pixels only**: those are the thin gaps between touching
  objects that the network must learn to keep open. On object pixels ``w = w_c``.
- Distances are computed within ``reach(w0, sigma)`` pixels of each object (beyond it the border
  term is below 1e-6, and it is set to 0 there).
- With fewer than two objects ``d2`` does not exist; it is taken as infinite, so the border term
  is 0 everywhere (nothing to separate) and ``w = w_c``.
- ``w_c`` balances the class frequencies: class ``c`` gets ``N / (K * n_c)`` (``n_c`` of its
  pixels among ``N``, ``K`` classes present), so each class carries the same total weight and the
  mean of ``w_c`` over the pixels is 1, which keeps the loss on its usual scale. Absent classes get 0.

The map is a per-pixel multiplier for ``losses.pixel_cross_entropy(..., pixel_weights=w)``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from ..mask_file import read_mask
from ..folder import SegmentationFolder
from ..transforms import PairTransform
from ..validate import as_class_ids

__all__ = [
    "WeightMapDataset",
    "border_weight_map",
    "class_balance_weights",
    "reach",
    "weight_map_parts",
]


def class_balance_weights(masks: np.ndarray | torch.Tensor, num_classes: int) -> np.ndarray:
    """Weights ``N / (K * n_c)`` per class from one mask or a whole stack of masks.

    Args:
        masks: integer class ids in ``[0, num_classes)``, any shape (one mask or many).
        num_classes: ``K``.

    Shape:
        - ``masks``: ``(H, W)`` or ``(N, H, W)`` -> output ``(K,)`` float64

    Returns:
        The weight of each class; a class with no pixel gets 0.
    """
    masks = np.asarray(masks)
    if not np.issubdtype(masks.dtype, np.integer) or masks.size == 0:
        raise TypeError(
            f"masks must be a non-empty integer array of class ids; got dtype {masks.dtype}, size {masks.size}"
        )
    if masks.min() < 0 or masks.max() >= num_classes:
        raise ValueError(f"masks hold class ids {masks.min()}..{masks.max()}, expected 0..{num_classes - 1}")
    counts = np.bincount(masks.ravel(), minlength=num_classes).astype(np.float64)
    present = counts > 0
    return np.where(present, masks.size / (present.sum() * np.maximum(counts, 1)), 0.0)


def _as_instances(instances: np.ndarray | torch.Tensor) -> np.ndarray:
    instances = as_class_ids(instances, "instances", kind="object ids (0 = background, k = object k)")  # (H, W)
    if instances.size and instances.min() < 0:
        raise ValueError(f"instances must be >= 0 (0 = background, k = object k); got {instances.min()}")
    return instances


def reach(w0: float, sigma: float, tolerance: float = 1e-6) -> int:
    """Distance in pixels beyond which an object no longer changes the border term by ``tolerance``.

    If ``d1 + d2 > r`` the term is below ``w0 * exp(-r^2 / (2 sigma^2))``; solving for ``tolerance``
    gives ``r = sigma * sqrt(2 ln(w0 / tolerance))`` (26-29 px for sigma = 5). Distances are only
    computed in a window this far around each object instead of over the whole image.
    """
    return int(np.ceil(sigma * np.sqrt(2 * np.log(max(w0, 1.0) / tolerance))))


def weight_map_parts(
    instances: np.ndarray | torch.Tensor,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: Sequence[float] | None = None,
) -> dict[str, np.ndarray]:
    """Every piece of the weight map, for plotting: ``class``, ``border``, ``d1``, ``d2``, ``total``.

    Args:
        instances: 0 = background, k > 0 = object k (ids need not be consecutive).
        w0: height of the border term. sigma: its width in pixels.
        class_weights: ``(w_background, w_object)``; default ``class_balance_weights`` of this map.

    Shape:
        - ``instances``: ``(H, W)`` -> every output ``(H, W)`` float32. ``d1``/``d2`` are ``inf``
          where undefined or farther than ``reach(w0, sigma)`` (where the border term is < 1e-6)
    """
    instances = _as_instances(instances)
    if w0 < 0 or sigma <= 0:
        raise ValueError(f"need w0 >= 0 and sigma > 0 (pixels); got w0={w0}, sigma={sigma}")
    foreground = (instances > 0).astype(np.int64)  # (H, W) class ids 0/1
    if class_weights is None:
        class_weights = class_balance_weights(foreground, 2) if instances.size else np.ones(2)
    class_weights = np.asarray(class_weights, dtype=np.float64)
    if class_weights.shape != (2,) or (class_weights < 0).any():
        raise ValueError(f"class_weights must be (w_background, w_object) >= 0; got {class_weights.tolist()}")
    margin = reach(w0, sigma)
    d1 = np.full(instances.shape, np.inf)  # running smallest distance over the objects seen so far
    d2 = np.full(instances.shape, np.inf)  # running second smallest
    for k, box in enumerate(ndimage.find_objects(instances), start=1):
        if box is None:  # no object with id k
            continue
        window = tuple(slice(max(edge.start - margin, 0), edge.stop + margin) for edge in box)
        distance = ndimage.distance_transform_edt(instances[window] != k)  # exact: all of object k is inside
        second = np.minimum(d2[window], np.maximum(d1[window], distance))
        d1[window] = np.minimum(d1[window], distance)
        d2[window] = second
    border = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2)) * (foreground == 0)
    class_term = class_weights[foreground]
    parts = {"class": class_term, "border": border, "d1": d1, "d2": d2, "total": class_term + border}
    return {name: part.astype(np.float32) for name, part in parts.items()}


def border_weight_map(
    instances: np.ndarray | torch.Tensor,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: Sequence[float] | None = None,
) -> np.ndarray:
    """The U-Net weight map ``w = w_c + w0 * exp(-(d1 + d2)^2 / (2 sigma^2))`` (see the module doc).

    Args:
        instances: instance map, 0 = background, k > 0 = object k.
        w0, sigma: the paper's 10 and 5 pixels by default.
        class_weights: ``(w_background, w_object)``; default balanced on this map
            (``class_balance_weights``). Pass weights from the whole training set for steadier values.

    Shape:
        - ``instances``: ``(H, W)`` -> output ``(H, W)`` float32

    Examples::

        >>> import numpy as np
        >>> cells = np.zeros((5, 7), dtype=np.int64); cells[:, :3] = 1; cells[:, 4:] = 2
        >>> w = border_weight_map(cells, class_weights=(1.0, 1.0))
        >>> round(float(w[0, 3]), 3)  # the one-pixel gap: d1 = d2 = 1, 1 + 10 * exp(-4 / 50)
        10.231
    """
    return weight_map_parts(instances, w0, sigma, class_weights)["total"]


class WeightMapDataset(Dataset):
    """``(image, mask, weights)`` triples: a ``SegmentationFolder`` plus the border weight map.

    The weights are computed once per image on the full, untransformed instance map (as the paper
    does) and cached. The transform then
    moves them as an extra image channel, so a crop, flip or rotation moves image, mask and
    weights identically and exactly; an elastic warp interpolates them bilinearly like the image.
    Only geometric transforms make sense here (a brightness change would alter the weights).

    Args:
        folder: a dataset with ``instances/NAME.png`` beside ``images/`` and no transform of its own.
        w0, sigma: see ``border_weight_map``.
        class_weights: ``"dataset"`` (balanced over all masks of ``folder``; default), ``"image"``
            (balanced per image), or ``(w_background, w_object)``.
        transform: paired geometric transform ``f(image, mask) -> (image, mask)``.
        instance_dir: the sub-folder holding the instance maps.

    Shape:
        - Item: image ``(C, H, W)`` float32, mask ``(H, W)`` int64, weights ``(H, W)`` float32
    """

    def __init__(
        self,
        folder: SegmentationFolder,
        w0: float = 10.0,
        sigma: float = 5.0,
        class_weights: str | Sequence[float] = "dataset",
        transform: PairTransform | None = None,
        instance_dir: str = "instances",
    ) -> None:
        if folder.transform is not None:
            raise ValueError("folder has a transform of its own; pass it to WeightMapDataset(transform=...) instead")
        self.folder, self.w0, self.sigma, self.transform = folder, w0, sigma, transform
        self.instance_paths = [folder.root / instance_dir / f"{name}.png" for name in folder.names]
        missing = [path for path in self.instance_paths if not path.is_file()]
        if missing:
            raise FileNotFoundError(
                f"no instance map {missing[0]} (and {len(missing) - 1} more); expected {instance_dir}/NAME.png"
            )
        if isinstance(class_weights, str):
            if class_weights not in ("dataset", "image"):
                raise ValueError(
                    f"class_weights must be 'dataset', 'image' or (w_background, w_object); got {class_weights!r}"
                )
            if class_weights == "dataset":
                masks = np.stack([read_mask(path, None) > 0 for path in self.instance_paths]).astype(np.int64)
                class_weights = class_balance_weights(masks, 2)
            else:
                class_weights = None
        self.class_weights = None if class_weights is None else tuple(float(w) for w in class_weights)
        self._weights: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.folder)

    def weights(self, index: int) -> torch.Tensor:
        """The untransformed weight map of item ``index``, ``(H, W)`` float32 (cached)."""
        if index not in self._weights:
            instances = read_mask(self.instance_paths[index], None)  # (H, W) int64
            weights = border_weight_map(instances, self.w0, self.sigma, self.class_weights)
            self._weights[index] = torch.from_numpy(weights)
        return self._weights[index]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image, mask = self.folder.load(index)  # (C, H, W), (H, W)
        weights = self.weights(index)
        if self.transform is None:
            return image, mask, weights
        stacked = torch.cat([image, weights[None]])  # (C + 1, H, W): weights ride along as a channel
        stacked, mask = self.transform(stacked, mask)
        return stacked[:-1].contiguous(), mask, stacked[-1].contiguous()
