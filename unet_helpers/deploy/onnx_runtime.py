"""Predicting with an exported ``.onnx`` file and ONNX Runtime instead of PyTorch's layers.

``predict`` and ``predict_tiled`` (``inference.py``) take any ``nn.Module`` that maps an
``(N, C, H, W)`` batch to ``(N, K, H, W)`` logits. ``OnnxModule`` is such a module whose forward
hands the batch to an ONNX Runtime session, so ONNX predictions go through the very same tiling,
blending and arg-max code as PyTorch's (nothing copied); ``OnnxPredictor`` wraps it with the file's
metadata (``export.OnnxMetadata``: channels, classes, image scaling) for ``predict --onnx``.

Needs ``onnxruntime`` (pinned in ``requirements.txt``); runs on the CPU provider.

Shapes: images ``(N, C, H, W)`` or one image ``(C, H, W)``; ``K`` classes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .export import RUNTIME_PACKAGES, OnnxMetadata, require_packages
from ..inference import predict, predict_tiled


def _metadata_from_session(session, path: Path) -> OnnxMetadata:
    """The file's ``OnnxMetadata``, or what its input and output shapes tell for a foreign file."""
    props = session.get_modelmeta().custom_metadata_map
    if "format" in props:
        return OnnxMetadata.from_props(props)
    channels, classes = session.get_inputs()[0].shape[1], session.get_outputs()[0].shape[1]
    if not isinstance(channels, int) or not isinstance(classes, int):
        raise ValueError(
            f"{path} has no unet_helpers metadata and its input/output channels are not fixed "
            f"(input {session.get_inputs()[0].shape}, output {session.get_outputs()[0].shape}); "
            "export it with unet_helpers.deploy.export.export_onnx"
        )
    return OnnxMetadata(in_channels=channels, num_classes=classes, min_size=1)


class OnnxModule(nn.Module):
    """An ``nn.Module`` whose forward runs an ONNX Runtime session (inference only, on the CPU).

    It has no parameters, so ``eval()`` and ``train()`` change nothing, and no gradients flow.

    Args:
        session: an ``onnxruntime.InferenceSession`` with one image input and one logits output.
        metadata: the file's metadata (channels and smallest size are checked before running).

    Shape:
        - Input: ``(N, C, H, W)`` float, ``H, W >= metadata.min_size``
        - Output: ``(N, K, H, W)`` float32 logits, on the CPU
    """

    def __init__(self, session, metadata: OnnxMetadata) -> None:
        super().__init__()
        self.session, self.metadata = session, metadata
        self.input_name = session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        meta = self.metadata
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor; got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != meta.in_channels:
            raise ValueError(
                f"the ONNX model expects a batch (N, {meta.in_channels}, H, W); got shape {tuple(x.shape)}. "
                "Hint: one image needs x.unsqueeze(0); images in (H, W, C) need x.permute(2, 0, 1)"
            )
        if not x.is_floating_point():
            raise TypeError(f"the ONNX model expects a float input; got dtype {x.dtype}. Hint: x.float() / 255")
        if min(x.shape[-2:]) < meta.min_size:
            raise ValueError(
                f"input is {x.shape[-2]}x{x.shape[-1]} but the ONNX model needs H and W of at least "
                f"{meta.min_size}; pad the image"
            )
        batch = np.ascontiguousarray(x.detach().cpu().float().numpy())  # (N, C, H, W), ONNX wants row-major
        (logits,) = self.session.run(None, {self.input_name: batch})
        return torch.from_numpy(logits)  # (N, K, H, W)


class OnnxPredictor:
    """``predict`` / ``predict_tiled`` for an exported ``.onnx`` file, run by ONNX Runtime.

    Args:
        path: a file written by ``export.export_onnx`` (or any ONNX model with an ``(N, C, H, W)``
            input and ``(N, K, H, W)`` output).
        threads: ONNX Runtime's intra-op threads; default ``torch.get_num_threads()``, as PyTorch.

    Attributes:
        metadata: ``export.OnnxMetadata`` (``in_channels``, ``num_classes``, ``class_names``,
            ``normalize``, ``mask_values``, ``min_size``).
        module: the ``OnnxModule``, usable wherever an inference ``nn.Module`` is.

    Usage (``tests/test_export.py`` runs this against PyTorch)::

        predictor = OnnxPredictor("model.onnx")  # written by export.export_checkpoint
        ids = predictor.predict_tiled(image, tile=256)  # (H, W) int64, as inference.predict_tiled
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        require_packages(RUNTIME_PACKAGES, "Running an ONNX model")
        import onnxruntime as ort

        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise ValueError(f"threads must be a positive int or None (as many as PyTorch uses); got {threads!r}")
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no ONNX file at {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads() if threads is None else threads
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ONNX Runtime raises its own exception types for unreadable files
            raise ValueError(f"{path} is not a readable ONNX model ({type(error).__name__}: {error})") from error
        self.path = path
        self.metadata = _metadata_from_session(session, path)
        self.module = OnnxModule(session, self.metadata)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K, H, W)`` for a batch ``(N, C, H, W)``."""
        return self.module(images)

    def predict(
        self, images: torch.Tensor, batch_size: int = 8, return_probs: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``inference.predict`` with this file: ids ``(N, H, W)`` (``(H, W)`` for one image), probs optional."""
        return predict(self.module, images, batch_size=batch_size, return_probs=return_probs, channels_last=False)

    def predict_tiled(
        self,
        image: torch.Tensor,
        tile: int | tuple[int, int] = 256,
        overlap: float = 0.25,
        blend: str = "gaussian",
        batch_size: int = 4,
        return_probs: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``inference.predict_tiled`` with this file: ids ``(H, W)`` int64, probs ``(K, H, W)`` optional."""
        return predict_tiled(
            self.module, image, tile=tile, overlap=overlap, blend=blend, batch_size=batch_size,
            return_probs=return_probs, channels_last=False,
        )
