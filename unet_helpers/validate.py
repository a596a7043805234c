"""Input checks shared by the public entry points (losses, metrics, model, data, views).

Every check raises ``TypeError`` or ``ValueError`` with four parts: what was wrong, what was
expected, what was received, and how to fix it. They never use ``assert`` (``python -O`` strips
asserts). Conventions for the letters are in ``losses.py``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def require_tensor(x: object, name: str) -> torch.Tensor:
    """Raise ``TypeError`` unless ``x`` is a ``torch.Tensor``."""
    if not isinstance(x, torch.Tensor):
        hint = " (convert with torch.as_tensor(...))" if hasattr(x, "shape") else ""
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}{hint}")
    return x


def require_logits(logits: torch.Tensor, name: str = "logits") -> torch.Tensor:
    """Check ``logits`` is a float tensor of shape ``(N, K, H, W)``."""
    require_tensor(logits, name)
    if logits.ndim != 4:
        raise ValueError(
            f"{name} must have shape (N, K, H, W); got {tuple(logits.shape)} "
            f"({logits.ndim}-D). Hint: a single image needs a batch axis, e.g. x.unsqueeze(0)"
        )
    if not logits.is_floating_point():
        raise TypeError(
            f"{name} must be a float tensor of scores; got dtype {logits.dtype}. "
            "Hint: pass the model output before argmax"
        )
    return logits


def require_class_ids(
    target: torch.Tensor,
    num_classes: int,
    ignore_index: int | None = None,
    name: str = "target",
) -> torch.Tensor:
    """Check ``target`` holds integer class ids in ``[0, num_classes)`` (or ``ignore_index``).

    Returns the target as ``int64``.
    """
    require_tensor(target, name)
    if target.is_floating_point() or target.dtype == torch.bool or target.is_complex():
        raise TypeError(
            f"{name} must hold integer class ids (int64); got dtype {target.dtype}. "
            f"Hint: use {name}.long() if the values are whole numbers, or argmax over the class "
            "axis if it holds one-hot or probabilities"
        )
    if target.dtype not in _INT_DTYPES:
        raise TypeError(f"{name} must be an integer tensor; got dtype {target.dtype}")
    target = target.long()
    if target.numel() == 0:
        return target
    valid = target if ignore_index is None else target[target != ignore_index]
    if valid.numel() == 0:
        return target
    lo, hi = (int(v) for v in torch.aminmax(valid))  # one pass over the pixels for both
    if lo < 0 or hi >= num_classes:
        bad = hi if hi >= num_classes else lo
        if hi == 255 and num_classes == 2:
            hint = "masks saved as 0/255 need mapping to 0/1 (see SegmentationFolder(mask_values={0: 0, 255: 1}))"
        elif hi == 255:
            hint = "if 255 marks unlabelled pixels, pass ignore_index=255; otherwise map the mask values to class ids"
        else:
            hint = f"class ids must lie in [0, {num_classes - 1}]"
        ignore = "" if ignore_index is None else f" and is not ignore_index={ignore_index}"
        raise ValueError(
            f"{name} has class id {bad}{ignore}, but num_classes={num_classes} "
            f"(expected ids 0..{num_classes - 1}); {hint}"
        )
    return target


def require_same_spatial(
    scores: torch.Tensor, target: torch.Tensor, scores_name: str = "logits", target_name: str = "target"
) -> None:
    """Check ``scores`` ``(N, K, H, W)`` and ``target`` ``(N, H, W)`` agree on N, H and W."""
    if target.ndim != 3 or target.shape != scores.shape[:1] + scores.shape[2:]:
        expected = (scores.shape[0], *scores.shape[2:])
        hint = ""
        if target.ndim == 4 and target.shape[1] == 1:
            hint = f" Hint: drop the channel axis with {target_name}.squeeze(1)"
        elif target.ndim == 2:
            hint = f" Hint: add the batch axis with {target_name}.unsqueeze(0)"
        raise ValueError(
            f"{scores_name} {tuple(scores.shape)} and {target_name} {tuple(target.shape)} do not match: "
            f"expected {target_name} of shape (N, H, W) = {expected}.{hint}"
        )


def require_positive_int(value: object, name: str, minimum: int = 1) -> int:
    """Check ``value`` is an int ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int; got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return value


def as_numpy(x: Any) -> np.ndarray:
    """A NumPy view of ``x``: tensors are detached and moved to the CPU, anything else ``np.asarray``."""
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def as_class_ids(mask: Any, name: str = "mask", ndim: int = 2, kind: str = "class ids") -> np.ndarray:
    """``mask`` as an int64 NumPy array of ``kind`` (class ids, or object ids of an instance map)
    with ``ndim`` axes (``(H, W)`` by default).

    Raises ``TypeError`` for a float or bool mask and ``ValueError`` for the wrong number of axes.
    Values are not range-checked here (the caller knows ``K`` and ``ignore_index``).
    """
    array = as_numpy(mask)
    layout = {2: "(H, W)", 3: "(N, H, W)"}.get(ndim, f"{ndim}-D")
    if array.ndim != ndim:
        raise ValueError(f"{name} must be a mask of {kind} {layout}; got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"{name} must hold integer {kind}; got dtype {array.dtype}. "
            "Hint: take logits.argmax(dim=1) first, or .astype(int) if the values are whole numbers"
        )
    return array.astype(np.int64, copy=False)
