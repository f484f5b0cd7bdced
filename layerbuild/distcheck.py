"""Checks on a downloaded wheel or sdist before anything is installed from it.

An installer unpacks what a distribution lists. A hostile one can list a path
that climbs out of the install folder (``../``), an absolute path, a link that
leads out of the tree, a device file, or a member that inflates to far more
than a layer may hold. uv drops the first two silently and turns links and
devices into plain files, so a build would carry on as if nothing happened;
layerbuild refuses such a file instead, naming it and the offending entry.
Only the archive's index is read: nothing is extracted.
"""

from __future__ import annotations

import posixpath
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from layerbuild.errors import BuildError
from layerbuild.limits import MAX_UNZIPPED_BYTES, human_bytes

# No layer may unzip to more than Lambda's limit, so no distribution in it may
# declare more either.
MAX_DECLARED_BYTES = MAX_UNZIPPED_BYTES

# Deflate cannot do better than about 1032:1, which only runs of one byte
# reach; real members stay under 50:1. A large member far past that is a bomb.
MAX_COMPRESSION_RATIO = 200
RATIO_CHECK_FROM_BYTES = 8 * 1024 * 1024

HINT = "the file on the index is malformed or hostile; remove it from the lock"


class UnsafeDistributionError(BuildError):
    """A wheel or sdist holds an entry that must not be installed."""


@dataclass(frozen=True)
class _Item:
    name: str
    kind: str  # "file", "dir", "link" or "special"
    size: int = 0
    compressed: int | None = None  # zip members only
    link: str | None = None


def check_distribution(path: Path) -> None:
    """Refuse ``path`` (a ``.whl``, ``.zip`` or ``.tar.gz`` sdist) if unsafe.

    Raises ``UnsafeDistributionError`` naming the file and the first bad entry.
    """
    try:
        if path.name.endswith((".whl", ".zip")):
            items = list(_zip_items(path))
        else:
            items = list(_tar_items(path))
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as error:
        msg = f"{path.name}: not a readable archive ({error})"
        raise UnsafeDistributionError(msg, hint=HINT) from None

    total = 0
    for item in items:
        problem = _problem(item)
        if problem is not None:
            msg = f"{path.name}: entry {item.name!r} {problem}; refusing to install it"
            raise UnsafeDistributionError(msg, hint=HINT)
        total += item.size
    if total > MAX_DECLARED_BYTES:
        largest = max(items, key=lambda item: item.size)
        msg = (
            f"{path.name}: unpacks to {human_bytes(total)} (largest entry "
            f"{largest.name!r}), more than a layer may hold "
            f"({human_bytes(MAX_DECLARED_BYTES)}); refusing to install it"
        )
        raise UnsafeDistributionError(msg, hint=HINT)


def _problem(item: _Item) -> str | None:
    """Why ``item`` must not be unpacked, or None."""
    name = item.name
    if name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    if ".." in name.split("/"):
        return "climbs out of the install folder ('..')"
    if item.kind == "special":
        return "is a device, fifo or socket"
    if item.kind == "link":
        target = item.link or ""
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            return f"is a link leading out of the tree (to {target!r})"
    if item.size > MAX_DECLARED_BYTES:
        return f"declares {human_bytes(item.size)}, more than a layer may hold"
    if (
        item.compressed is not None
        and item.size >= RATIO_CHECK_FROM_BYTES
        and item.size > MAX_COMPRESSION_RATIO * max(item.compressed, 1)
    ):
        return (
            f"inflates {item.size // max(item.compressed, 1):,} times "
            f"(to {human_bytes(item.size)}): a zip bomb"
        )
    return None


def _zip_items(path: Path) -> Iterator[_Item]:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            mode = info.external_attr >> 16 if info.create_system == 3 else 0
            name = info.filename.rstrip("/")
            if stat.S_ISLNK(mode):
                # A link's target is its content; real ones are short.
                target = archive.read(info)[:4096].decode("utf-8", "replace")
                yield _Item(name, "link", link=target)
            elif stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                # Many wheels record permission bits only, with no file type.
                yield _Item(name, "special")
            elif info.is_dir():
                yield _Item(name, "dir")
            else:
                yield _Item(name, "file", info.file_size, info.compress_size)


def _tar_items(path: Path) -> Iterator[_Item]:
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            name = member.name.rstrip("/")
            if member.issym():
                yield _Item(name, "link", link=member.linkname)
            elif member.islnk():
                # A hard link names another member by its path from the root;
                # seen from the link's own folder, that is this many levels up.
                target = member.linkname
                if not target.startswith("/"):
                    target = "../" * name.count("/") + target
                yield _Item(name, "link", link=target)
            elif member.isdir():
                yield _Item(name, "dir")
            elif member.isfile():
                yield _Item(name, "file", member.size)
            else:
                yield _Item(name, "special")
