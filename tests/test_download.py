"""Download, verify and prepare, against small archives built here in the upstream layouts.

The archives are made from real files of the course copy (``data_dir``), so a prepared folder can
be compared pixel by pixel with the copy and checked against the package manifest. No network:
URLs are ``file://`` or a closed port on 127.0.0.1.
"""
import csv
import hashlib
import io
import socket
import zipfile
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from unet_helpers.realdata import download
from unet_helpers.realdata.download import (
    DatasetUnavailableError,
    dataset_dir,
    download_dataset,
    locate,
    read_manifest,
    sample_digest,
    verify_dataset,
)
from unet_helpers.realdata.prepare import merge_instance_masks

NUCLEI, SSTEM = "dsb2018_nuclei_256", "drosophila_vnc_sstem"
SLICES = ("03", "17")


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def nuclei_ids(data_dir, count=3):
    """The first ``count`` images without overlapping nuclei (their instance map gives back every mask)."""
    with open(data_dir / NUCLEI / "manifest.csv") as file:
        return [row["image_id"] for row in csv.DictReader(file) if row["overlap_pixels"] == "0"][:count]


@pytest.fixture
def nuclei_zip(tmp_path, data_dir):
    """stage1_train/<id>/images/<id>.png (RGBA, R=G=B) + masks/<hex>.png, one per nucleus, plus decoys."""
    ids, path = nuclei_ids(data_dir), tmp_path / "upload" / "stage1_train.zip"
    path.parent.mkdir()
    prefix = "kaggle-dsbowl-2018-dataset-fixes-0000/stage1_train"
    with zipfile.ZipFile(path, "w") as archive:
        for image_id in ids:
            gray = np.array(Image.open(data_dir / NUCLEI / "images" / f"{image_id}.png"))
            rgba = np.dstack([gray, gray, gray, np.full_like(gray, 255)])
            archive.writestr(f"{prefix}/{image_id}/images/{image_id}.png", png_bytes(rgba))
            instances = np.array(Image.open(data_dir / NUCLEI / "instances" / f"{image_id}.png"))
            names = sorted(hashlib.sha1(f"{image_id}{k}".encode()).hexdigest() for k in range(instances.max()))
            for k, name in enumerate(names, start=1):  # k-th name in sorted order = nucleus k
                mask = ((instances == k) * 255).astype(np.uint8)
                archive.writestr(f"{prefix}/{image_id}/masks/{name}.png", png_bytes(mask))
        colour = np.random.default_rng(0).integers(0, 256, (256, 256, 4), dtype=np.uint8)
        colour[..., 3] = 255
        tall = np.zeros((320, 256), np.uint8)
        one_mask = png_bytes(np.full((256, 256), 255, np.uint8))
        for decoy, image in (("colour", colour), ("tall", tall), ("nomasks", tall[:256])):
            archive.writestr(f"{prefix}/{decoy}/images/{decoy}.png", png_bytes(image))
            if decoy != "nomasks":
                archive.writestr(f"{prefix}/{decoy}/masks/m.png", one_mask)
        archive.writestr("kaggle-dsbowl-2018-dataset-fixes-0000/stage1_test/t/images/t.png", png_bytes(tall[:256]))
    return path, ids


@pytest.fixture
def sstem_zip(tmp_path, data_dir):
    """stack1/raw/NN.tif + stack1/labels/labels000000NN.png + README.md, as in the GitHub archive."""
    path, source = tmp_path / "upload" / "sstem.zip", data_dir / SSTEM
    path.parent.mkdir(exist_ok=True)
    prefix = "groundtruth-drosophila-vnc-4a5f0514"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{prefix}/README.md", (source / "UPSTREAM_README.md").read_bytes())
        for name in SLICES:
            archive.writestr(f"{prefix}/stack1/raw/{name}.tif", (source / "images" / f"{name}.tif").read_bytes())
            labels = (source / "labels_original" / f"{name}.png").read_bytes()
            archive.writestr(f"{prefix}/stack1/labels/labels000000{name}.png", labels)
            archive.writestr(f"{prefix}/stack1/membranes/{name}.png", b"not needed")
    return path


def subset(name, samples):
    manifest = read_manifest(name)
    return {s: manifest[s] for s in samples}


def pixels(path):
    return np.array(Image.open(path))


def test_prepares_nuclei_from_a_file_url_exactly_like_the_course_copy(nuclei_zip, data_dir, tmp_path, capsys):
    archive, ids = nuclei_zip
    expected = subset(NUCLEI, ids)
    folder = download_dataset(NUCLEI, tmp_path / "data", url=archive.as_uri(), expected=expected, progress=False)
    assert folder == tmp_path / "data" / NUCLEI
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [NUCLEI]  # no temporary files left
    for sub in ("images", "masks", "instances"):
        assert sorted(p.stem for p in (folder / sub).iterdir()) == sorted(ids)
        for image_id in ids:
            ours, theirs = pixels(folder / sub / f"{image_id}.png"), pixels(data_dir / NUCLEI / sub / f"{image_id}.png")
            assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
    with open(data_dir / NUCLEI / "manifest.csv") as file:
        expected_rows = [line.strip() for line in file if line.split(",")[0] in ids]
    assert (folder / "manifest.csv").read_text().splitlines()[1:] == expected_rows
    first_sum = (folder / "SHA256SUMS").read_text().splitlines()[0].split()
    assert hashlib.sha256((folder / first_sum[1]).read_bytes()).hexdigest() == first_sum[0]
    assert "CC0" in (folder / "SOURCE.txt").read_text()
    assert capsys.readouterr().err == ""  # progress=False: no bar at all


def test_local_archive_is_read_not_moved_and_progress_is_shown(nuclei_zip, tmp_path, capsys):
    archive, ids = nuclei_zip
    before = archive.read_bytes()
    sha = hashlib.sha256(before).hexdigest()
    expected = subset(NUCLEI, ids)
    folder = download_dataset(NUCLEI, tmp_path / "data", archive=archive, archive_sha256=sha, expected=expected)
    assert archive.read_bytes() == before and (folder / "images").is_dir()
    assert "preparing nuclei" in capsys.readouterr().err
    download_dataset(NUCLEI, tmp_path / "again", url=archive.as_uri(), archive_sha256=sha.upper(), expected=expected)
    assert "downloading stage1_train.zip" in capsys.readouterr().err


def test_prepares_sstem_with_byte_identical_raw_files(sstem_zip, data_dir, tmp_path):
    folder = download_dataset(SSTEM, tmp_path, url=sstem_zip.as_uri(), expected=subset(SSTEM, SLICES), progress=False)
    source = data_dir / SSTEM
    assert (folder / "UPSTREAM_README.md").read_bytes() == (source / "UPSTREAM_README.md").read_bytes()
    for name in SLICES:
        assert (folder / "images" / f"{name}.tif").read_bytes() == (source / "images" / f"{name}.tif").read_bytes()
        original = folder / "labels_original" / f"{name}.png"
        assert original.read_bytes() == (source / "labels_original" / f"{name}.png").read_bytes()
        assert np.array_equal(pixels(folder / "masks" / f"{name}.png"), pixels(source / "masks" / f"{name}.png"))
    assert "CC BY-NC-SA 3.0" in (folder / "SOURCE.txt").read_text()


def assert_nothing_left(parent):
    assert not parent.exists() or list(parent.iterdir()) == []


def test_wrong_archive_checksum_keeps_nothing(nuclei_zip, tmp_path):
    archive, ids = nuclei_zip
    message = r"checksum mismatch for file://.*stage1_train.zip: sha256 is [0-9a-f]{64}, expected 0{64}"
    with pytest.raises(ValueError, match=message):
        download_dataset(NUCLEI, tmp_path / "data", url=archive.as_uri(), archive_sha256="0" * 64, progress=False)
    assert_nothing_left(tmp_path / "data")
    with pytest.raises(ValueError, match=r"checksum mismatch for .*stage1_train.zip"):
        download_dataset(NUCLEI, tmp_path / "data", archive=archive, archive_sha256="0" * 64, progress=False)
    assert_nothing_left(tmp_path / "data")


def test_corrupt_archive_keeps_nothing(nuclei_zip, tmp_path):
    archive, _ = nuclei_zip
    broken = tmp_path / "broken.zip"
    broken.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"broken.zip is not a valid zip archive"):
        download_dataset(NUCLEI, tmp_path / "data", url=broken.as_uri(), progress=False)
    assert_nothing_left(tmp_path / "data")


def test_pixels_that_differ_from_the_manifest_keep_nothing(nuclei_zip, tmp_path):
    archive, ids = nuclei_zip
    expected = subset(NUCLEI, ids) | {ids[1]: "f" * 64}
    message = rf"verification of {NUCLEI} .* 0 samples missing .* 1 with different pixels \['{ids[1]}'\]"
    with pytest.raises(ValueError, match=message):
        download_dataset(NUCLEI, tmp_path / "data", archive=archive, expected=expected, progress=False)
    assert_nothing_left(tmp_path / "data")
    with pytest.raises(ValueError, match=r"1 samples missing \['zz'\]"):
        download_dataset(NUCLEI, tmp_path / "data", archive=archive, expected={**expected, "zz": "0"}, progress=False)
    folder = download_dataset(NUCLEI, tmp_path / "data", archive=archive, expected=expected, verify=False)
    assert len(list((folder / "images").iterdir())) == 3


def test_wrong_archive_content(sstem_zip, tmp_path):
    with pytest.raises(ValueError, match=r"archive holds no <id>/images/<id>.png files; is it DSB2018 stage1_train"):
        download_dataset(NUCLEI, tmp_path / "data", archive=sstem_zip, progress=False)
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(ValueError, match=r"archive holds no stack1/raw/NN.tif"):
        download_dataset(SSTEM, tmp_path / "data", archive=empty, progress=False)
    assert_nothing_left(tmp_path / "data")


def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/stage1_train.zip"


@pytest.mark.parametrize("url", ["file:///nonexistent/stage1_train.zip", "closed-port"])
def test_unreachable_url_says_where_to_put_the_files(url, tmp_path, monkeypatch):
    monkeypatch.setenv("UNET_DATA_DIR", str(tmp_path / "env"))
    url = closed_port_url() if url == "closed-port" else url
    message = r"(?s)the download failed .*Put the files here:.*data/dsb2018_nuclei_256/  with  images/<id>.png .*UNET_DATA"
    with pytest.raises(DatasetUnavailableError, match=message):
        download_dataset(NUCLEI, tmp_path / "data", url=url, progress=False)
    assert_nothing_left(tmp_path / "data")


def test_existing_folder_is_never_touched(nuclei_zip, tmp_path):
    archive, _ = nuclei_zip
    mine = tmp_path / "data" / NUCLEI / "notes.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("my file")
    with pytest.raises(FileExistsError, match=r"dsb2018_nuclei_256 already exists; nothing was downloaded or changed"):
        download_dataset(NUCLEI, tmp_path / "data", archive=archive, progress=False)
    assert mine.read_text() == "my file" and sorted(p.name for p in (tmp_path / "data").iterdir()) == [NUCLEI]
    message = r"exists but is not a prepared dsb2018_nuclei_256 folder: missing images/, masks/, instances/"
    with pytest.raises(ValueError, match=message):
        dataset_dir(NUCLEI, tmp_path / "data")
    assert mine.read_text() == "my file"


def test_where_a_dataset_is_looked_for(tmp_path, monkeypatch, data_dir):
    monkeypatch.delenv("UNET_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert locate(SSTEM) == tmp_path / "cache" / "unet_helpers" / SSTEM
    monkeypatch.setenv("UNET_DATA_DIR", str(tmp_path / "env"))
    assert locate(SSTEM) == tmp_path / "env" / SSTEM
    assert locate(SSTEM, tmp_path / "mine") == tmp_path / "mine" / SSTEM
    assert locate(SSTEM, data_dir / SSTEM) == data_dir / SSTEM  # the dataset folder itself
    assert dataset_dir(SSTEM, data_dir, download=False) == data_dir / SSTEM
    message = r"(?s)env/drosophila_vnc_sstem and download=False. Put the files here.*labels_original/NN.png"
    with pytest.raises(DatasetUnavailableError, match=message):
        dataset_dir(SSTEM, download=False)
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'; known datasets: \['drosophila_vnc_sstem', 'dsb2"):
        locate("mnist")


def test_dataset_dir_downloads_when_missing(sstem_zip, tmp_path, monkeypatch):
    monkeypatch.setitem(download.DATASETS, SSTEM, replace(download.DATASETS[SSTEM], url=sstem_zip.as_uri()))
    monkeypatch.setattr(download, "read_manifest", lambda name: subset(name, SLICES))
    monkeypatch.setenv("UNET_DATA_DIR", str(tmp_path / "env"))
    folder = dataset_dir(SSTEM, progress=False)
    assert folder == tmp_path / "env" / SSTEM and sorted(p.stem for p in (folder / "masks").iterdir()) == list(SLICES)
    assert dataset_dir(SSTEM, progress=False) == folder  # found now, not downloaded again


def test_course_copies_match_the_package_manifests(data_dir):
    for name in (NUCLEI, SSTEM):
        verify_dataset(data_dir / name, name)
    assert len(read_manifest(NUCLEI)) == 334 and len(read_manifest(SSTEM)) == 20


def test_sample_digest_ignores_png_compression_but_not_pixels(tmp_path):
    array = np.arange(64, dtype=np.uint16).reshape(8, 8)
    for level, folder in ((0, "a"), (9, "b")):
        (tmp_path / folder / "instances").mkdir(parents=True)
        Image.fromarray(array).save(tmp_path / folder / "instances" / "x.png", compress_level=level)
    assert (tmp_path / "a/instances/x.png").read_bytes() != (tmp_path / "b/instances/x.png").read_bytes()
    assert sample_digest(tmp_path / "a", "x", ["instances"]) == sample_digest(tmp_path / "b", "x", ["instances"])
    Image.fromarray(array + 1).save(tmp_path / "b" / "instances" / "x.png")
    assert sample_digest(tmp_path / "a", "x", ["instances"]) != sample_digest(tmp_path / "b", "x", ["instances"])
    with pytest.raises(ValueError, match=r"sample 'y' has no file in .*a/instances"):
        sample_digest(tmp_path / "a", "y", ["instances"])


def test_merge_instance_masks_later_mask_wins_and_counts_overlap():
    first, second = np.zeros((4, 5), np.uint8), np.zeros((4, 5), np.uint8)
    first[0:2, 0:3], second[1:3, 2:5] = 255, 1
    instances, overlap = merge_instance_masks([first, second])
    assert instances.dtype == np.uint16 and overlap == 1
    assert instances.tolist() == [[1, 1, 1, 0, 0], [1, 1, 2, 2, 2], [0, 0, 2, 2, 2], [0, 0, 0, 0, 0]]
    with pytest.raises(ValueError, match=r"expected 1 to 65535 object masks; got 0"):
        merge_instance_masks([])


def test_fetch_streams_to_a_temporary_file(nuclei_zip, tmp_path):
    archive, _ = nuclei_zip
    (tmp_path / "into").mkdir()
    path = download.fetch(archive.as_uri(), tmp_path / "into", progress=False)
    assert path.parent == tmp_path / "into" and path.read_bytes() == archive.read_bytes()
    with pytest.raises(ConnectionError, match=r"cannot download file:///nonexistent.zip"):
        download.fetch("file:///nonexistent.zip", tmp_path / "into", progress=False)
    assert list((tmp_path / "into").iterdir()) == [path]


def test_missing_manifest_says_to_reinstall(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "MANIFEST_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"manifest .*dsb2018_nuclei_256.sha256 is missing .*reinstall"):
        read_manifest(NUCLEI)
