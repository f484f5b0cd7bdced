"""Small file operations every writer of layerbuild's outputs shares."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

NEW_FILE_MODE = 0o644
HASH_CHUNK_BYTES = 1 << 20


def write_atomically(path: Path, text: str, *, mode: int = NEW_FILE_MODE) -> None:
    """Write ``text`` so that readers see the old file or the whole new one.

    The text goes to a temporary file beside ``path``, is flushed to disk, and
    is renamed over ``path`` in one step; on any failure the temporary file is
    removed and ``path`` is left as it was.
    """
    folder = path.parent if str(path.parent) else Path()
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def move_atomically(source: Path, destination: Path) -> None:
    """Move a finished file into place so readers never see part of it.

    A rename when both are on one file system; otherwise a copy to a
    temporary file beside ``destination``, then a rename.
    """
    try:
        os.replace(source, destination)
        return
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
    handle, temporary = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}."
    )
    try:
        with os.fdopen(handle, "wb") as stream, source.open("rb") as original:
            shutil.copyfileobj(original, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, source.stat().st_mode & 0o777)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    source.unlink()
