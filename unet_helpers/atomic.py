"""Writing a file so that nothing already there is damaged: a temporary file, flushed, renamed.

Used by ``checkpoint.save_checkpoint`` and by the command line (``predict`` masks, ``train``'s
``metrics.jsonl``). ``atomic_path(path)`` hands out a temporary file in the same folder; when the
block ends without an error it is flushed to disk (``fsync``), given the usual file mode (what
``open`` would create under the process umask, not the owner-only mode of a temporary file), and
renamed over ``path``. So:

- a crash, a full disk or Ctrl-C leaves the previous file intact (the rename is atomic);
- a symlink at ``path`` is *replaced* by the new file, never followed: writing ``out/a.png`` can
  never overwrite the file a link ``out/a.png -> ../images/a.png`` points to.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


def _default_mode() -> int:
    umask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    return 0o666 & ~umask


def _fsync(path: str | Path, directory: bool = False) -> None:
    flags = (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if directory else os.O_RDWR
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:  # some systems cannot open a folder (Windows): the rename is still atomic
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write to; renamed over ``path`` when the block succeeds.

    Args:
        path: the file to (re)place; its folder is created.

    Yields:
        The temporary file (empty, in ``path``'s folder). Write it by name, e.g.
        ``torch.save(obj, tmp)`` or ``image.save(tmp, format="PNG")``.

    Examples::

        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "notes.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("saved")
        >>> target.read_text(), oct(target.stat().st_mode & 0o777) != "0o600"
        ('saved', True)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        yield Path(tmp)
        _fsync(tmp)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)  # replaces a symlink at path, never what it points to
        _fsync(path.parent, directory=True)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)
