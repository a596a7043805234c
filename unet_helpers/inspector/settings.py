"""The inspector's thresholds, one field each (what every one means: ``inspector/__init__.py``)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class InspectorSettings:
    """Thresholds of the inspector (see the module docstring for what each one means)."""

    band_width: int = 2  # pixels on each side of a true edge that count as "boundary"
    boundary_tolerance: float = 2.0  # boundary F1 match distance in pixels
    size_buckets: tuple[int, ...] = (16, 64, 256, 1024)  # object-size bucket edges in pixels
    small_object_size: int = 64  # objects with fewer pixels are "small"
    found_fraction: float = 0.5  # share of an object predicted as its class for it to be found
    connectivity: int = 8  # 4 or 8: which neighbours join pixels into one object
    weak_iou: float = 0.75  # classes with a lower IoU get a diagnosis
    under_ratio: float = 0.8  # predicted share / true share below this: under-predicted
    over_ratio: float = 1.25  # ... above this: over-predicted
    boundary_share: float = 0.5  # share of wrong pixels in the band to flag boundary blur
    small_recall_gap: float = 0.25  # small-object recall this far below large-object recall: flag
    extra: dict = field(default_factory=dict)  # free-form notes copied into the report

    def __post_init__(self) -> None:
        if isinstance(self.band_width, bool) or not isinstance(self.band_width, int) or self.band_width < 1:
            raise ValueError(f"band_width must be an int >= 1 (pixels); got {self.band_width!r}")
        edges = tuple(self.size_buckets)
        if not edges or any(e < 1 for e in edges) or list(edges) != sorted(set(edges)):
            raise ValueError(f"size_buckets must be increasing positive pixel counts like (16, 64, 256); got {edges!r}")
        object.__setattr__(self, "size_buckets", tuple(int(e) for e in edges))
        if self.connectivity not in (4, 8):
            raise ValueError(f"connectivity must be 4 or 8; got {self.connectivity!r}")
        if not 0 < self.found_fraction <= 1:
            raise ValueError(f"found_fraction must be in (0, 1]; got {self.found_fraction!r}")
        if not 0 < self.under_ratio < 1 < self.over_ratio:
            raise ValueError(
                f"need 0 < under_ratio < 1 < over_ratio; got under_ratio={self.under_ratio}, over_ratio={self.over_ratio}"
            )

    def bucket_labels(self) -> list[str]:
        """Readable names of the size buckets, e.g. ``["<16", "16-63", ..., ">=1024"]``."""
        edges = self.size_buckets
        inner = [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:])]
        return [f"<{edges[0]}", *inner, f">={edges[-1]}"]
