"""A natural photo that ships with matplotlib, to check that ImageNet weights classify sensibly.

``grace_hopper.jpg`` (matplotlib's sample data, 512x600 RGB) shows Rear Admiral Grace Hopper in
uniform; an ImageNet classifier with correct weights and input scaling puts it in class 652,
"military uniform". ``tests/test_encoders.py`` uses it that way.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

MILITARY_UNIFORM = 652  # the ImageNet class id of what the photo shows


def sample_photo_path() -> Path:
    """The file ``grace_hopper.jpg`` in matplotlib's sample data."""
    import matplotlib.cbook

    return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def sample_photo(size: int = 224) -> torch.Tensor:
    """The photo, centre square cropped and resized (bilinear) to ``size``, as floats in [0, 1].

    Shape:
        - Output: ``(3, size, size)`` float32
    """
    image = Image.open(sample_photo_path()).convert("RGB")
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255  # (3, size, size)
