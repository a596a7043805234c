"""The bad-input suite: generated folders a practitioner might have, through the command line in-process.

Hypothesis builds folders of images and masks in every pixel mode Pillow and TIFF give (1, L,
I;16, I, F, RGB, RGBA, P, CMYK), of mixed sizes, with truncated files, wrong headers, headers that
announce a decompression bomb, empty files, odd and unicode stems, two files with one stem, and
symlinks (to a file outside, dangling, and one in predict's output folder pointing at an input).
On each folder it runs ``train`` (one step of a tiny model), ``predict`` and ``inspect`` through
``main`` and asserts the contract of the command line:

- exit code 0, or exit code 1 with exactly one line on stderr, starting ``error: `` and naming no
  Python traceback;
- every input file (and every symlink target outside) byte-identical afterwards.

The number of generated cases is printed (``pytest -s`` or the ``-rA`` summary) and recorded as
the test's ``generated_cases`` property (``--junitxml``). Settings: ``derandomize=True`` so every
run (and CI) sees the same cases; about 40 s on one core (60 folders). ``BAD_INPUT_SHOW=1`` also
prints every distinct error line the commands gave.
"""
import hashlib
import io
import os
import struct
import tempfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from unet_helpers.cli import main

TINY = ["--base", "2", "--depth", "1", "--quiet", "--device", "cpu"]
MODES = ("1", "L", "I;16", "I", "F", "RGB", "RGBA", "P", "CMYK")
CORRUPTIONS = ("none", "none", "none", "truncated", "wrong_header", "png_as_tif", "bomb_header", "empty")
STEMS = st.one_of(
    st.sampled_from(["a", "b", "img_01", "a.b", " lead", "trail ", "-dash", "ü", "日本", "émoji😀", "x" * 60, "#1", "a%20b"]),
    st.text(st.characters(codec="utf-8", exclude_characters="/\\\x00", exclude_categories=("Cs",)), min_size=1, max_size=8),
)
CASES = Counter()
ERRORS = set()


def pixels(mode, size, rng, as_mask):
    """An array Pillow stores in ``mode``; masks hold small class ids (or 0/255, 0/65535)."""
    h, w = size
    if mode == "1":
        return Image.fromarray(rng.integers(0, 2, size).astype(bool))
    if mode in ("L", "P"):
        values = rng.choice([0, 255] if as_mask else np.arange(256), size).astype(np.uint8)
        img = Image.fromarray(values)
        return img.convert("P") if mode == "P" else img
    if mode == "I;16":
        return Image.fromarray(rng.choice([0, 65535] if as_mask else np.arange(65536), size).astype(np.uint16))
    if mode == "I":
        choices = [0, 1, -1, 70000] if as_mask else [0, 5, 2**20, -3]
        return Image.fromarray(rng.choice(choices, size).astype(np.int32))
    if mode == "F":
        values = rng.random(size, dtype=np.float32) * (1.0 if rng.random() < 0.7 else 300.0)
        if rng.random() < 0.3:
            values[0, 0] = np.nan
        return Image.fromarray(values)
    colour = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    if as_mask and rng.random() < 0.5:  # a colour mask whose channels agree
        colour[..., 1] = colour[..., 2] = colour[..., 0] = rng.choice([0, 255], size)
    if mode == "RGB":
        return Image.fromarray(colour[..., :3])
    img = Image.fromarray(colour)
    return img.convert("CMYK") if mode == "CMYK" else img


def encode(img, ext):
    buffer = io.BytesIO()
    fmt = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".gif": "GIF", ".jpg": "JPEG"}[ext]
    try:
        img.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):  # this mode cannot be stored in this format: use TIFF
        buffer = io.BytesIO()
        img.save(buffer, format="TIFF")
    return buffer.getvalue()


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width=200_000, height=200_000):
    """A valid PNG header announcing width x height 8-bit gray pixels, and almost no data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def corrupt(data, corruption, ext):
    if corruption == "truncated":
        return data[: max(len(data) // 3, 8)]
    if corruption == "wrong_header":
        return b"\x00GARBAGE" + data[8:]
    if corruption == "png_as_tif":
        return encode(Image.new("L", (8, 8)), ".png") if ext != ".png" else encode(Image.new("L", (8, 8)), ".tif")
    if corruption == "bomb_header":
        return bomb_png()
    if corruption == "empty":
        return b""
    return data


GOOD = {"image_mode": "L", "mask_mode": "L", "image_ext": ".png", "mask_ext": ".png", "size": (16, 16),
        "image_corruption": "none", "mask_corruption": "none", "with_mask": True}
# One mistake changes one field of one sample from its GOOD value.
MISTAKES = st.one_of(
    st.tuples(st.just("image_mode"), st.sampled_from(MODES)),
    st.tuples(st.just("mask_mode"), st.sampled_from(MODES)),
    st.tuples(st.just("image_ext"), st.sampled_from([".tif", ".jpg", ".bmp", ".gif"])),
    st.tuples(st.just("mask_ext"), st.sampled_from([".tif", ".gif", ".bmp", ".jpg"])),
    st.tuples(st.just("size"), st.sampled_from([(16, 24), (20, 16), (3, 5), (1, 1)])),
    st.tuples(st.just("image_corruption"), st.sampled_from(CORRUPTIONS[3:])),
    st.tuples(st.just("mask_corruption"), st.sampled_from(CORRUPTIONS[3:])),
    st.tuples(st.just("with_mask"), st.just(False)),
)
samples = st.builds(lambda stem, mistakes: {**GOOD, **dict(mistakes), "stem": stem},
                    STEMS, st.lists(MISTAKES, max_size=2))
folders = st.fixed_dictionaries({
    "samples": st.lists(st.builds(lambda stem: {**GOOD, "stem": stem}, STEMS), min_size=2, max_size=3,
                        unique_by=lambda sample: sample["stem"].lstrip("."))
    .flatmap(lambda good: st.lists(samples, max_size=2).map(lambda odd: good + odd)),
    "seed": st.integers(0, 2**16),
    "mask_values": st.sampled_from(["0:0,255:1"] * 6 + [None, "0:0,1:1", "0:0,65535:1", "0:0,70000:1"]),
    "crop": st.sampled_from([None, None, None, 8, 8, 64]),
    "links": st.sets(st.sampled_from(["outside", "dangling", "output_to_input"])),
})


def build(root, spec):
    """Write the folder described by ``spec`` under ``root``; returns (data folder, outside folder)."""
    rng = np.random.default_rng(spec["seed"])
    data, outside = root / "data", root / "outside"
    for folder in (data / "images", data / "masks", outside):
        folder.mkdir(parents=True)
    for sample in spec["samples"]:
        stem = sample["stem"]
        if stem in (".", "..") or stem.startswith("."):  # not a file one would name; keep it a plain name
            stem = "dot" + stem
        image = encode(pixels(sample["image_mode"], sample["size"], rng, False), sample["image_ext"])
        (data / "images" / f"{stem}{sample['image_ext']}").write_bytes(
            corrupt(image, sample["image_corruption"], sample["image_ext"]))
        if sample["with_mask"]:
            mask = encode(pixels(sample["mask_mode"], sample["size"], rng, True), sample["mask_ext"])
            (data / "masks" / f"{stem}{sample['mask_ext']}").write_bytes(
                corrupt(mask, sample["mask_corruption"], sample["mask_ext"]))
    if "outside" in spec["links"]:
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(outside / "far.png")
        (data / "images" / "linked.png").symlink_to(outside / "far.png")
        (data / "masks" / "linked.png").symlink_to(data / "masks" / next(iter(sorted(os.listdir(data / "masks"))), "none"))
    if "dangling" in spec["links"]:
        (data / "images" / "gone.png").symlink_to(root / "nowhere.png")
    return data, outside


def snapshot(*folders):
    """path -> sha256 of the bytes (or the link text for a symlink) of everything under ``folders``."""
    state = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink():
                state[path] = "link:" + os.readlink(path)
            elif path.is_file():
                state[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def run(capsys, argv, command):
    """``main(argv)`` under the contract; returns its exit code."""
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    ERRORS.add(err.strip()[:120])
    assert "Traceback" not in err, (argv, err)
    assert code in (0, 1), (argv, code, err)
    if code == 1:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) > len("error: ") + 10, (argv, err)
    CASES[f"{command} exit {code}"] += 1
    return code


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("bad_input_model")
    argv = ["train", "--out", str(out), "--epochs", "1", "--steps-per-epoch", "1", "--synthetic-train", "4",
            "--synthetic-val", "2", "--size", "16", *TINY]
    assert main(argv) == 0
    return out / "last.pt"


def test_bad_input_suite(checkpoint, capsys, record_property):
    CASES.clear()

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(spec=folders)
    def one_folder(spec):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            data, outside = build(root, spec)
            before = snapshot(data, outside, checkpoint.parent)
            train = ["train", "--data", str(data), "--out", str(root / "run"), "--epochs", "1", "--steps-per-epoch",
                     "1", "--batch-size", "2", "--val-fraction", "0.5", *TINY]
            train += ["--mask-values", spec["mask_values"]] if spec["mask_values"] else []
            train += ["--crop", str(spec["crop"])] if spec["crop"] else []
            run(capsys, train, "train")
            predicted = root / "predicted"
            predict = ["predict", str(checkpoint), str(data / "images"), str(predicted), "--quiet", "--device", "cpu"]
            if "output_to_input" in spec["links"]:
                predicted.mkdir()
                for image in sorted((data / "images").iterdir()):
                    if not (predicted / f"{image.stem}.png").exists() and not image.is_symlink():
                        (predicted / f"{image.stem}.png").symlink_to(image)
                predict.append("--overwrite")
            run(capsys, predict, "predict")
            inspect = ["inspect", str(data / "masks"), str(data / "masks")]
            inspect += ["--mask-values", spec["mask_values"]] if spec["mask_values"] else []
            run(capsys, inspect, "inspect")
            if predicted.is_dir():
                run(capsys, ["inspect", str(predicted), str(data / "masks")], "inspect")
            after = snapshot(data, outside, checkpoint.parent)
            assert after == before, sorted(set(after.items()) ^ set(before.items()))
            CASES["folders"] += 1

    one_folder()
    total = sum(n for key, n in CASES.items() if key != "folders")
    record_property("generated_cases", CASES["folders"])
    record_property("command_runs", total)
    with capsys.disabled():
        print(f"\nbad-input suite: {CASES['folders']} generated folders, {total} command runs: "
              + ", ".join(f"{key} x{n}" for key, n in sorted(CASES.items()) if key != "folders"))
    if os.environ.get("BAD_INPUT_SHOW"):
        with capsys.disabled():
            print("\n".join(sorted(ERRORS)))
    # The suite must exercise both sides of the contract, or it proves nothing.
    assert CASES["train exit 0"] and CASES["train exit 1"] and CASES["predict exit 1"] and CASES["inspect exit 0"]
