"""Fuzz target: ``folder.read_header``, ``read_image`` (+ ``scale_image``) and ``read_mask`` on any bytes.

Run by ``tests/fuzz/test_fuzz.py`` for a bounded number of iterations, or by hand for longer::

    python tests/fuzz/fuzz_image_reader.py CORPUS_DIR -runs=100000

Input: byte 0 picks the extension and the reader, the rest is the file. The documented errors
(``ValueError``, ``TypeError``) are expected; anything else is a crash that atheris reports.
Pillow's pixel limit is lowered to 2**20 here so that a fuzzed header cannot make one input
decode for seconds (the limit itself is what is being exercised).
"""
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["unet_helpers"]):
    from PIL import Image

    from unet_helpers.image_file import read_header, read_image, scale_image
    from unet_helpers.mask_file import read_mask

EXTENSIONS = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".gif")
READERS = ("header", "image", "image1", "image3", "mask")
FOLDER = tempfile.mkdtemp(prefix="fuzz_image_")
Image.MAX_IMAGE_PIXELS = 2**20


def one_input(data: bytes) -> None:
    if not data:
        return
    ext, reader = EXTENSIONS[data[0] % len(EXTENSIONS)], READERS[(data[0] // len(EXTENSIONS)) % len(READERS)]
    path = os.path.join(FOLDER, "input" + ext)
    with open(path, "wb") as file:
        file.write(data[1:])
    try:
        if reader == "header":
            read_header(path)
        elif reader == "mask":
            read_mask(path, None)
        else:
            channels = {"image": None, "image1": 1, "image3": 3}[reader]
            array = read_image(path, channels=channels)
            scale_image(array, "unit" if data[0] % 2 else "per_image")
    except (ValueError, TypeError):
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
