"""Fuzz target: ``checkpoint.load_checkpoint`` on damaged files and on hostile content.

Run by ``tests/fuzz/test_fuzz.py`` for a bounded number of iterations, or by hand for longer::

    python tests/fuzz/fuzz_checkpoint_reader.py CORPUS_DIR -runs=100000

Input: when byte 0 is even, the rest is written as the checkpoint file as it is (a damaged or
truncated zip, random bytes). When it is odd, a valid checkpoint of a tiny U-Net is loaded and the
following bytes, two at a time, edit it (a top-level key, a ``model_config`` value or a weight:
deleted, or replaced by a hostile value: a negative or huge integer, NaN, a string, a tensor of
another shape, ...) before it is saved and read back. The documented errors (``ValueError``,
``TypeError``) are expected; anything else is a crash that atheris reports.
"""
import copy
import io
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["unet_helpers"]):
    import torch

    from unet_helpers.checkpoint import load_checkpoint, save_checkpoint
    from unet_helpers.unet import UNet

torch.set_num_threads(1)
FOLDER = tempfile.mkdtemp(prefix="fuzz_checkpoint_")
SEED_PATH = os.path.join(FOLDER, "seed.pt")
torch.manual_seed(0)
_model = UNet(in_channels=1, num_classes=2, base=2, depth=1)
save_checkpoint(SEED_PATH, _model, torch.optim.Adam(_model.parameters()), epoch=1, extra={"class_names": ["a", "b"]})
SEED = torch.load(SEED_PATH, weights_only=True)
HOSTILE = (None, -1, 0, 1, 2**40, 2**62, 1.5, float("nan"), "x", "", [], {}, True, [1, 2], {"a": 1},
           torch.zeros(3), torch.zeros(0), torch.full((2,), float("nan")), "unet_helpers.checkpoint/1")


def edited(spec: bytes) -> dict:
    state = copy.deepcopy(SEED)
    for i in range(0, len(spec) - 1, 2):
        where, what = spec[i], spec[i + 1]
        value = HOSTILE[what % len(HOSTILE)]
        delete = what >= 240
        if where % 3 == 0:
            target = state
        elif where % 3 == 1:
            target = state.get("model_config") if isinstance(state.get("model_config"), dict) else state
        else:
            target = state.get("model_state") if isinstance(state.get("model_state"), dict) else state
        keys = sorted(target, key=str)
        if not keys:
            continue
        key = keys[(where // 3) % len(keys)]
        if delete:
            del target[key]
        elif isinstance(target.get(key), torch.Tensor) and what % 2:
            target[key] = torch.zeros(tuple(s + 1 for s in target[key].shape))  # another shape
        else:
            target[key] = value
    return state


def one_input(data: bytes) -> None:
    if not data:
        return
    path = os.path.join(FOLDER, "input.pt")
    if data[0] % 2 == 0:
        payload = data[1:]
    else:
        buffer = io.BytesIO()
        torch.save(edited(data[1:65]), buffer)
        payload = buffer.getvalue()
    with open(path, "wb") as file:
        file.write(payload)
    try:
        loaded = load_checkpoint(path)
        loaded["model"](torch.zeros(1, loaded["model"].config.in_channels, 4, 4))  # a loaded model must run
    except (ValueError, TypeError):
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
