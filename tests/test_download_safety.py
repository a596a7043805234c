"""An upstream archive is untrusted input: size caps, zip bombs, names, formats, broken transfers, locks.

Every archive is built here in tmp_path in the upstream layout; the only server is a local
``http.server`` on 127.0.0.1 that lies about its Content-Length. Each refusal is a ``ValueError``
(or ``DatasetUnavailableError`` for a broken transfer) that names the member, and leaves nothing
behind beside the dataset folder.
"""
import http.server
import io
import threading
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from unet_helpers.realdata import download, prepare
from unet_helpers.realdata.download import (
    DatasetUnavailableError,
    dataset_lock,
    download_dataset,
)
from unet_helpers.realdata.prepare import ArchiveReader, decode_member, safe_sample_name

NUCLEI, SSTEM = "dsb2018_nuclei_256", "drosophila_vnc_sstem"
PREFIX = "kaggle-dsbowl-2018-dataset-fixes-0000/stage1_train"


def image_bytes(array, fmt="PNG"):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


GRAY = np.random.default_rng(0).integers(0, 256, (256, 256), dtype=np.uint8)
MASK = image_bytes(((GRAY > 128) * 255).astype(np.uint8))


def nuclei_archive(path, members, compression=zipfile.ZIP_STORED):
    """A zip in the nuclei layout holding ``members`` (name relative to stage1_train/ -> bytes)."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(f"{PREFIX}/{name}", data)
    return path


def one_sample(image=None, sample="s1"):
    return {f"{sample}/images/{sample}.png": image_bytes(GRAY) if image is None else image,
            f"{sample}/masks/m.png": MASK}


def assert_only(parent, names):
    assert sorted(p.name for p in parent.iterdir()) == sorted(names)


def prepare_fails(tmp_path, archive, match, name=NUCLEI):
    with pytest.raises(ValueError, match=match):
        download_dataset(name, tmp_path / "data", archive=archive, verify=False, progress=False)
    assert_only(tmp_path / "data", [])  # no staging folder, no lock file


def test_a_good_small_archive_prepares_and_leaves_only_the_dataset(tmp_path):
    archive = nuclei_archive(tmp_path / "good.zip", one_sample(), zipfile.ZIP_DEFLATED)
    folder = download_dataset(NUCLEI, tmp_path / "data", archive=archive, verify=False, progress=False)
    assert np.array_equal(np.array(Image.open(folder / "images" / "s1.png")), GRAY)
    assert_only(tmp_path / "data", [NUCLEI])


def test_oversize_member_is_refused_before_it_is_decompressed(tmp_path, monkeypatch):
    archive = nuclei_archive(tmp_path / "big.zip", one_sample())
    monkeypatch.setattr(prepare, "MAX_MEMBER_BYTES", 10_000)  # the PNG is 65 kB
    prepare_fails(tmp_path, archive, r"archive member .*s1/images/s1.png would decompress to [\d,]+ bytes, more than "
                                     r"the 10,000 any member of this dataset has; the archive is not the upstream one")
    monkeypatch.setattr(prepare, "MAX_MEMBER_BYTES", 10**6)
    monkeypatch.setattr(prepare, "MAX_ARCHIVE_BYTES", 10_000)
    prepare_fails(tmp_path, archive, r"the archive's members add up to more than 10,000 bytes uncompressed")


def test_zip_bomb_ratio_is_refused(tmp_path):
    bomb = one_sample()
    bomb["s1/images/s1.png"] = bytes(64 * 2**20)  # 64 MiB of zeros deflate to about 64 kB
    archive = nuclei_archive(tmp_path / "bomb.zip", bomb, zipfile.ZIP_DEFLATED)
    assert archive.stat().st_size < 2**20
    prepare_fails(tmp_path, archive, r"s1/images/s1.png would grow from [\d,]+ to 67,108,864 bytes when decompressed, "
                                     r"more than 50 times \(a zip bomb\?\)")


def test_a_member_that_lies_about_its_size_is_corrupt_not_read_on(tmp_path):
    """zipfile stops at the declared size; the CRC then fails, which is the documented ValueError."""
    archive = nuclei_archive(tmp_path / "liar.zip", one_sample(), zipfile.ZIP_DEFLATED)
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zipped:
        info = zipped.getinfo(f"{PREFIX}/s1/images/s1.png")
    real = info.file_size.to_bytes(4, "little")
    data = data.replace(real, (1000).to_bytes(4, "little"))  # local header and central directory
    archive.write_bytes(bytes(data))
    prepare_fails(tmp_path, archive, r"(cannot be decompressed|is not a readable PNG image|not a valid zip archive)")


@pytest.mark.parametrize("sample", ["..\\..\\evil", "C:\\evil", "a b", ".hidden", "x" * 200])
def test_sample_names_that_are_not_plain_file_names_are_refused(tmp_path, sample):
    archive = nuclei_archive(tmp_path / "names.zip", one_sample(sample=sample))
    prepare_fails(tmp_path, archive, r"gives the sample name .* which is not a plain file name")
    assert_only(tmp_path, ["names.zip", "data"])  # nothing escaped next to the data folder


def test_absolute_member_paths_stay_inside_the_dataset_folder(tmp_path):
    with zipfile.ZipFile(tmp_path / "abs.zip", "w") as archive:
        archive.writestr("/stage1_train/abs/images/abs.png", image_bytes(GRAY))
        archive.writestr("/stage1_train/abs/masks/m.png", MASK)
    folder = download_dataset(NUCLEI, tmp_path / "data", archive=tmp_path / "abs.zip", verify=False, progress=False)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png")) == [
        "images/abs.png", "instances/abs.png", "masks/abs.png"]
    assert_only(tmp_path, ["abs.zip", "data"])


def test_safe_sample_name_accepts_upstream_ids():
    upstream = "00071198d059ba7f5914a526d124d28e6d010c92466da21d4a04cd5413362552"
    assert safe_sample_name(upstream, "m") == upstream
    with pytest.raises(ValueError, match=r"archive member 'm' gives the sample name '..'"):
        safe_sample_name("..", "m")
    with pytest.raises(ValueError, match=r"sample name 'a..b'"):
        safe_sample_name("a..b", "m")


@pytest.mark.parametrize("fmt", ["JPEG", "BMP", "TIFF", "GIF"])
def test_a_png_member_must_hold_a_png(tmp_path, fmt):
    archive = nuclei_archive(tmp_path / "fmt.zip", one_sample(image_bytes(GRAY, fmt)))
    prepare_fails(tmp_path, archive, r"archive member .*s1/images/s1.png is not a readable PNG image "
                                     r"\(UnidentifiedImageError")


def test_truncated_and_garbage_members_are_the_documented_error(tmp_path):
    truncated = image_bytes(GRAY)[:5000]
    prepare_fails(tmp_path, nuclei_archive(tmp_path / "t.zip", one_sample(truncated)),
                  r"s1/images/s1.png is not a readable PNG image \((OSError|SyntaxError|ValueError|EOFError)")
    header_only = image_bytes(GRAY)[:33]  # signature + IHDR, no data at all
    prepare_fails(tmp_path, nuclei_archive(tmp_path / "h.zip", one_sample(header_only)), r"is not a readable PNG image")


def test_tiff_members_are_decoded_as_tiff_only(tmp_path):
    with pytest.raises(ValueError, match=r"archive member stack1/raw/00.tif is not a readable TIFF image"):
        decode_member(b"II*\x00" + bytes(40), "stack1/raw/00.tif")  # a TIFF header pointing at nothing
    with pytest.raises(ValueError, match=r"stack1/raw/00.tif is not a readable TIFF image \(UnidentifiedImageError"):
        decode_member(image_bytes(GRAY), "stack1/raw/00.tif")  # a PNG named .tif
    with pytest.raises(ValueError, match=r"archive member README.md is not a PNG or TIFF image"):
        decode_member(b"hello", "README.md")
    assert np.array_equal(decode_member(image_bytes(GRAY, "TIFF"), "x/00.TIF"), GRAY)


def test_sstem_raw_slice_that_is_not_a_tiff_keeps_nothing(tmp_path):
    path = tmp_path / "sstem.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("g/stack1/raw/00.tif", image_bytes(GRAY))
        archive.writestr("g/stack1/labels/labels00000000.png", image_bytes(GRAY))
    prepare_fails(tmp_path, path, r"g/stack1/raw/00.tif is not a readable TIFF image", name=SSTEM)


def test_image_member_over_the_pixel_cap_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "MAX_MEMBER_PIXELS", 100 * 100)
    archive = nuclei_archive(tmp_path / "px.zip", one_sample())
    prepare_fails(tmp_path, archive, r"s1/images/s1.png is 256x256 pixels, more than any image of this dataset")


def test_mask_of_another_size_than_its_image_is_refused(tmp_path):
    members = one_sample()
    members["s1/masks/m.png"] = image_bytes(np.zeros((256, 200), np.uint8))
    prepare_fails(tmp_path, nuclei_archive(tmp_path / "m.zip", members),
                  r"s1/masks/m.png is a 256x200 mask for the 256x256 image")


def test_archive_reader_names_a_missing_member(tmp_path):
    with zipfile.ZipFile(nuclei_archive(tmp_path / "a.zip", one_sample())) as zipped:
        with pytest.raises(ValueError, match=r"archive member 'nope' is missing"):
            ArchiveReader(zipped).read("nope")


class _ShortBody(http.server.BaseHTTPRequestHandler):
    """Announces 1 MB, sends 1000 bytes and closes: the client sees http.client.IncompleteRead."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(10**6))
        self.end_headers()
        self.wfile.write(b"PK" + bytes(998))
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def short_body_url():
    server = http.server.HTTPServer(("127.0.0.1", 0), _ShortBody)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/stage1_train.zip"
    server.shutdown()
    server.server_close()


def test_a_transfer_that_breaks_off_is_the_documented_error(tmp_path, short_body_url):
    with pytest.raises(ConnectionError, match=r"cannot download http://127.0.0.1:\d+/stage1_train.zip: .*IncompleteRead"
                                              r"|cannot download .*1000 bytes read"):
        download.fetch(short_body_url, tmp_path, progress=False, name=NUCLEI)
    assert_only(tmp_path, [])  # the .part file went with it
    with pytest.raises(DatasetUnavailableError, match=r"(?s)the download failed \(cannot download .*Put the files here"):
        download_dataset(NUCLEI, tmp_path / "data", url=short_body_url, progress=False)
    assert_only(tmp_path / "data", [])


def test_leftovers_of_a_killed_download_are_removed_and_nothing_else(tmp_path):
    data = tmp_path / "data"
    (data / f".{NUCLEI}.partial-abc" / "images").mkdir(parents=True)
    (data / f".{NUCLEI}.download-xyz.part").write_bytes(b"half")
    mine = [f".{SSTEM}.download-1.part", "notes.txt", f"{NUCLEI}.download-1.part"]
    for name in mine:
        (data / name).write_text("keep me")
    archive = nuclei_archive(tmp_path / "good.zip", one_sample())
    download_dataset(NUCLEI, data, archive=archive, verify=False, progress=False)
    assert_only(data, [NUCLEI, *mine])
    assert all((data / name).read_text() == "keep me" for name in mine)


def test_a_second_download_waits_says_so_and_finds_the_first_ones_folder(tmp_path, capsys):
    data, outcome = tmp_path / "data", {}
    data.mkdir()
    archive = nuclei_archive(tmp_path / "good.zip", one_sample())

    def second():
        try:
            outcome["folder"] = download_dataset(NUCLEI, data, archive=archive, verify=False, progress=False)
        except Exception as error:  # the outcome is checked below, in the test's thread
            outcome["error"] = error

    with dataset_lock(data / NUCLEI):  # the "first download" holds the lock
        thread = threading.Thread(target=second)
        thread.start()
        err, deadline = "", time.monotonic() + 20
        while "waiting for another download" not in err and time.monotonic() < deadline:
            time.sleep(0.05)
            err += capsys.readouterr().err
        assert f"waiting for another download of {NUCLEI} (lock {data}/.{NUCLEI}.lock) ..." in err
        assert thread.is_alive()  # it waits, and has not touched anything
        (data / NUCLEI).mkdir()  # the first one finishes
    thread.join(20)
    assert isinstance(outcome.get("error"), FileExistsError), outcome
    assert f"{NUCLEI} was just prepared by another download; nothing was changed" in str(outcome["error"])
    assert_only(data, [NUCLEI])
    assert list((data / NUCLEI).iterdir()) == []


def test_the_lock_is_given_back_when_preparation_fails(tmp_path):
    bad = nuclei_archive(tmp_path / "bad.zip", one_sample(b"not a png"))
    prepare_fails(tmp_path, bad, r"is not a readable PNG image")
    good = nuclei_archive(tmp_path / "good.zip", one_sample())
    download_dataset(NUCLEI, tmp_path / "data", archive=good, verify=False, progress=False)  # does not wait
    assert_only(tmp_path / "data", [NUCLEI])
