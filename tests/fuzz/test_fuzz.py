"""A bounded fuzz run of the image reader and the checkpoint reader (atheris, in a subprocess).

Each target runs ``RUNS`` inputs from a seed corpus built here (valid files in every pixel mode
and format; a valid checkpoint, raw and with edits), mutated by libFuzzer. The run fails on any
exception other than the documented ``ValueError``/``TypeError`` (atheris prints the traceback and
the crashing input is kept in ``tmp_path``). Longer runs by hand: see each target's docstring.
"""
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

atheris = pytest.importorskip("atheris", reason="atheris is in requirements-test.txt")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUNS = 2000
EXTENSIONS = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".gif")  # as in fuzz_image_reader.py
FORMATS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".jpg": "JPEG", ".gif": "GIF"}


def image_seeds(corpus):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    images = {
        "1": Image.fromarray(gray > 128), "L": Image.fromarray(gray), "P": Image.fromarray(gray).convert("P"),
        "I;16": Image.fromarray(gray.astype(np.uint16) * 257), "I": Image.fromarray(gray.astype(np.int32) * 1000),
        "F": Image.fromarray(gray.astype(np.float32) / 255), "RGB": Image.fromarray(np.dstack([gray] * 3)),
        "RGBA": Image.fromarray(np.dstack([gray] * 4)), "CMYK": Image.fromarray(np.dstack([gray] * 4)).convert("CMYK"),
    }
    count = 0
    for index, ext in enumerate(EXTENSIONS):
        for mode, img in images.items():
            buffer = io.BytesIO()
            try:
                img.save(buffer, format=FORMATS[ext])
            except (OSError, ValueError, KeyError):
                continue
            for reader in range(5):  # header, image, image1, image3, mask
                (corpus / f"{ext[1:]}_{mode.replace(';', '')}_{reader}").write_bytes(
                    bytes([index + reader * len(EXTENSIONS)]) + buffer.getvalue())
                count += 1
    return count


def checkpoint_seeds(corpus):
    (corpus / "edits").write_bytes(bytes([1, 0, 7, 1, 4, 2, 3]))
    (corpus / "config").write_bytes(bytes([1, 1, 4, 4, 2]))  # a model_config value
    (corpus / "weights").write_bytes(bytes([1, 2, 1, 5, 3]))  # a weight of another shape
    (corpus / "delete").write_bytes(bytes([1, 0, 250]))
    (corpus / "random").write_bytes(bytes([0]) + b"PK\x03\x04" + bytes(60))
    return 5


def fuzz(target, corpus, tmp_path):
    """Run ``target`` for RUNS inputs; returns (return code, output, inputs run)."""
    done = subprocess.run(
        [sys.executable, str(HERE / target), str(corpus), f"-runs={RUNS}", "-max_len=4096", "-timeout=20",
         "-rss_limit_mb=4096", f"-artifact_prefix={tmp_path}/", "-seed=1", "-print_final_stats=1"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    output = done.stdout + done.stderr
    found = re.search(r"stat::number_of_executed_units:\s*(\d+)", output)
    return done.returncode, output, int(found.group(1)) if found else 0


@pytest.mark.parametrize("target, seeds", [("fuzz_image_reader.py", image_seeds),
                                           ("fuzz_checkpoint_reader.py", checkpoint_seeds)])
def test_fuzz_target_finds_no_crash(target, seeds, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    n_seeds = seeds(corpus)
    code, output, executed = fuzz(target, corpus, tmp_path)
    assert code == 0, f"{target} crashed (input kept in {tmp_path}):\n{output[-6000:]}"
    assert executed >= RUNS, output[-3000:]  # it really ran, on more than the seeds
    with capsys.disabled():
        print(f"\n{target}: {executed} inputs from {n_seeds} seeds, no crash")
