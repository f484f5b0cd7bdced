"""A deterministic, parallel and incremental zip writer for layer trees.

The same tree gives a byte-identical zip on any run and any machine with the
same zlib: members are sorted by name, stamped 1980-01-01 00:00, given
normalised modes and no extra fields or comments. Compression, most of a
build's time once installing is fast, runs in threads (zlib releases the GIL)
over fixed 1 MiB chunks, so one big shared library does not leave the other
cores idle; with a cache folder, a member whose content was deflated before is
reused instead of compressed again.

The format written is the plain one (no ZIP64): a local header and data per
member, then the central directory and the end record. Anything that would
need ZIP64 is refused, since no Lambda layer comes near those sizes.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import tempfile
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from layerbuild.errors import BuildError, LimitError
from layerbuild.limits import MAX_UNZIPPED_BYTES, human_bytes

# The plain zip format counts entries in 16 bits and sizes and offsets in 32;
# the all-ones values are reserved as "look in the ZIP64 record".
MAX_ENTRIES = 0xFFFF
MAX_ZIP32 = 0xFFFFFFFF - 1

# Deflate works on fixed-size chunks, each primed with the 32 KiB before it
# and ended on a byte boundary with a sync flush, so the chunks of one file
# compress in parallel and concatenate into one valid stream. The chunk size
# is part of the output: changing it changes every zip (and the cache key).
CHUNK_BYTES = 1 << 20
DEFLATE_WINDOW = 1 << 15

# Uncompressed bytes read ahead of the writer; bounds memory on big layers.
READ_AHEAD_BYTES = 64 << 20

# Deflating a few KiB takes microseconds; creating a cache file for it takes
# longer than that on most file systems. Half the files of a numpy + pandas
# tree are this small, so they are compressed every time instead.
MIN_CACHED_BYTES = 4096

STORED = 0
DEFLATED = 8
VERSION_NEEDED = 20  # 2.0: deflate and folders
VERSION_MADE_BY = (3 << 8) | 20  # Unix, 2.0: external attributes hold st_mode
UTF8_NAMES = 0x800
DOS_TIME = 0  # 00:00:00
DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01, the earliest DOS date
MSDOS_DIRECTORY = 0x10

LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
CENTRAL_HEADER = struct.Struct("<IHHHHHHIIIHHHHHII")
END_RECORD = struct.Struct("<IHHHHIIH")
LOCAL_SIGNATURE = 0x04034B50
CENTRAL_SIGNATURE = 0x02014B50
END_SIGNATURE = 0x06054B50

DIR_MODE = stat.S_IFDIR | 0o755
FILE_MODE = stat.S_IFREG | 0o644
EXEC_MODE = stat.S_IFREG | 0o755
LINK_MODE = stat.S_IFLNK | 0o777

# A cache entry: magic, method, crc of the content, content size, crc of the
# payload, payload size; then the payload (the deflated bytes, or nothing for a
# member that is stored because deflate did not shrink it).
CACHE_HEADER = struct.Struct("<4sBIQIQ")
CACHE_MAGIC = b"LBZ1"
CACHE_FORMAT = f"deflate1-zlib{zlib.ZLIB_RUNTIME_VERSION}-chunk{CHUNK_BYTES}"


@dataclass(frozen=True)
class ZipResult:
    """The zip written and what it holds."""

    path: Path
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int
    entries: int
    reused: int = 0  # members taken from the cache instead of compressed


@dataclass(frozen=True)
class _Member:
    """One entry of the zip, before its data is known."""

    name: str  # POSIX, relative; folders end with "/"
    mode: int  # full st_mode written to the external attributes
    source: Path | None = None  # a regular file's content
    size: int = 0  # a regular file's size when scanned
    link: str | None = None  # a symlink's target


@dataclass
class _Pending:
    """A member on its way to the zip: content read, compression under way."""

    member: _Member
    data: bytes = b""
    crc: int = 0
    chunks: list[Future[bytes]] = field(default_factory=list)
    cached: tuple[int, bytes] | None = None  # method and payload, when known
    hit: bool = False  # whether the payload came from the cache
    cache_path: Path | None = None  # where to keep the result, on a cache miss


def write_zip(
    root: Path,
    destination: Path,
    *,
    jobs: int = os.cpu_count() or 1,
    cache_dir: Path | None = None,
    level: int = 6,
) -> ZipResult:
    """Zip the layer tree at ``root`` into ``destination``, deterministically.

    ``jobs`` threads deflate; ``cache_dir`` (created if missing) keeps each
    member's deflated bytes by content and level for the next write. The zip
    appears at ``destination`` whole or not at all. Raises ``LimitError`` for
    a tree that would need ZIP64 and ``BuildError`` for one that cannot be
    zipped faithfully (a link leading out, a device file, a name that is not
    UTF-8, an unreadable file).
    """
    if not root.is_dir():
        msg = f"{root}: not a folder, so there is no layer tree to zip"
        raise BuildError(msg)
    if not 0 <= level <= 9:
        msg = f"deflate level {level} is not between 0 and 9"
        raise ValueError(msg)

    members = sorted(_scan(root), key=lambda member: member.name)
    if len(members) > MAX_ENTRIES:
        msg = (
            f"{root}: {len(members):,} files and folders; a zip without ZIP64 holds"
            f" at most {MAX_ENTRIES:,}, and a layer with that many would not fit"
            f" Lambda's {human_bytes(MAX_UNZIPPED_BYTES)} anyway"
        )
        raise LimitError(msg, hint="Slim the layer or split it into several.")

    cache = None if cache_dir is None else cache_dir / CACHE_FORMAT / f"level{level}"
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as stream:
            writer = _ZipWriter(stream)
            pool = ThreadPoolExecutor(max_workers=max(1, jobs))
            try:
                reused = _write_members(writer, members, pool, cache, level)
            except BaseException:
                # Chunks and cache writes not yet started are dropped, not run.
                pool.shutdown(cancel_futures=True)
                raise
            pool.shutdown()  # lets the last cache writes finish
            writer.finish()
            stream.flush()
            os.fchmod(stream.fileno(), 0o644)
            os.fsync(stream.fileno())
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

    return ZipResult(
        path=destination,
        sha256=writer.digest.hexdigest(),
        zipped_bytes=writer.offset,
        unzipped_bytes=writer.unzipped,
        entries=len(members),
        reused=reused,
    )


def _scan(root: Path) -> Iterator[_Member]:
    """Every folder, file and link under ``root``, links not followed."""
    real_root = os.path.realpath(root)
    for folder, dirnames, filenames in os.walk(root, onerror=_raise):
        base = Path(folder)
        # os.walk lists links to folders among the folders, without descending
        # into them; they are zipped as links.
        for name in [*dirnames, *filenames]:
            path = base / name
            relative = path.relative_to(root).as_posix()
            _check_name(relative, path)
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                yield _Member(relative, LINK_MODE, link=_inside_link(path, real_root))
            elif stat.S_ISDIR(info.st_mode):
                yield _Member(relative + "/", DIR_MODE)
            elif stat.S_ISREG(info.st_mode):
                mode = EXEC_MODE if info.st_mode & 0o111 else FILE_MODE
                yield _Member(relative, mode, source=path, size=info.st_size)
            else:
                msg = f"{path}: a device, fifo or socket cannot go into a layer"
                raise BuildError(msg)


def _raise(error: OSError) -> None:
    msg = f"{error.filename}: cannot be listed ({error.strerror})"
    raise BuildError(msg) from error


def _check_name(relative: str, path: Path) -> None:
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        msg = f"{path}: the name is not valid UTF-8; rename it to zip it"
        raise BuildError(msg) from None


def _inside_link(path: Path, real_root: str) -> str:
    """The target of the link at ``path``, refused if it leads out of the tree."""
    target = os.readlink(path)
    resolved = os.path.realpath(path)
    inside = os.path.commonpath([real_root, resolved]) == real_root
    if os.path.isabs(target) or not inside:
        msg = (
            f"{path} -> {target}: a link leading out of the layer (or an absolute"
            " one) cannot be zipped; copy the file in or make the link relative"
        )
        raise BuildError(msg)
    return target


def _write_members(
    writer: _ZipWriter,
    members: list[_Member],
    pool: ThreadPoolExecutor,
    cache: Path | None,
    level: int,
) -> int:
    """Read, compress and write every member in order; return cache reuses."""
    pending: deque[_Pending] = deque()
    ahead = 0
    reused = 0
    for member in members:
        item = _start(member, pool, cache, level)
        reused += item.hit
        pending.append(item)
        ahead += len(item.data)
        while pending and ahead > READ_AHEAD_BYTES:
            done = pending.popleft()
            ahead -= len(done.data)
            _finish(writer, done, pool)
    while pending:
        _finish(writer, pending.popleft(), pool)
    return reused


def _start(
    member: _Member, pool: ThreadPoolExecutor, cache: Path | None, level: int
) -> _Pending:
    """Read a member's content and hand its compression to the pool."""
    if member.link is not None:
        data = member.link.encode("utf-8")
        return _Pending(member, data, zlib.crc32(data), cached=(STORED, b""))
    if member.source is None:
        return _Pending(member, cached=(STORED, b""))

    # Checked before reading, so a huge file is refused without loading it.
    if member.size > MAX_ZIP32:
        msg = (
            f"{member.source} is {human_bytes(member.size)}; a zip without ZIP64"
            " cannot hold it, and no Lambda layer could either"
        )
        raise LimitError(msg, hint="Leave the file out of the layer.")
    try:
        data = member.source.read_bytes()
    except OSError as error:
        msg = f"{member.source}: cannot be read ({error.strerror})"
        raise BuildError(msg) from error
    item = _Pending(member, data, zlib.crc32(data))

    if level == 0 or not data:
        item.cached = (STORED, b"")
        return item
    if cache is not None and len(data) >= MIN_CACHED_BYTES:
        digest = hashlib.sha256(data).hexdigest()
        item.cache_path = cache / digest[:2] / digest
        item.cached = _cache_read(item.cache_path, item.crc, len(data))
        if item.cached is not None:
            item.hit = True
            return item

    view = memoryview(data)
    for start in range(0, len(data), CHUNK_BYTES):
        item.chunks.append(pool.submit(_deflate_chunk, view, start, level))
    return item


def _deflate_chunk(data: memoryview, start: int, level: int) -> bytes:
    """Deflate one chunk of ``data`` so that the chunks concatenate."""
    end = min(start + CHUNK_BYTES, len(data))
    if start:
        primer = data[max(0, start - DEFLATE_WINDOW) : start]
        compressor = zlib.compressobj(
            level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, primer
        )
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    last = end == len(data)
    return compressor.compress(data[start:end]) + compressor.flush(
        zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH
    )


def _finish(writer: _ZipWriter, item: _Pending, pool: ThreadPoolExecutor) -> None:
    """Wait for a member's compression, write it, and keep it in the cache."""
    if item.cached is not None:
        method, payload = item.cached
    else:
        deflated = b"".join(chunk.result() for chunk in item.chunks)
        # Deflate can grow incompressible data; such members are stored.
        method, payload = (
            (DEFLATED, deflated) if len(deflated) < len(item.data) else (STORED, b"")
        )
        if item.cache_path is not None:
            # Creating files is slow on many file systems: done in the pool,
            # beside the compression, rather than holding up the writer.
            pool.submit(
                _cache_write, item.cache_path, method, item.crc, len(item.data), payload
            )

    if method == STORED:
        payload = item.data
    writer.add(item.member, method, item.crc, len(item.data), payload)


def _cache_read(path: Path, crc: int, size: int) -> tuple[int, bytes] | None:
    """A cached member whose header and payload check out, or None."""
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    if len(blob) < CACHE_HEADER.size:
        return None

    magic, method, entry_crc, entry_size, payload_crc, payload_size = (
        CACHE_HEADER.unpack_from(blob)
    )
    payload = blob[CACHE_HEADER.size :]
    valid = (
        magic == CACHE_MAGIC
        and method in (STORED, DEFLATED)
        and (entry_crc, entry_size) == (crc, size)
        and payload_size == len(payload)
        and payload_crc == zlib.crc32(payload)
    )
    return (method, payload) if valid else None


def _cache_write(path: Path, method: int, crc: int, size: int, payload: bytes) -> None:
    """Keep a member's payload; written whole under a temporary name, or not."""
    header = CACHE_HEADER.pack(
        CACHE_MAGIC, method, crc, size, zlib.crc32(payload), len(payload)
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError:
        return  # a cache that cannot be written only costs time
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(header)
            stream.write(payload)
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)


class _ZipWriter:
    """Writes local headers and data, then the central directory."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.offset = 0
        self.unzipped = 0
        self.central: list[bytes] = []

    def _write(self, data: bytes) -> None:
        self.stream.write(data)
        self.digest.update(data)
        self.offset += len(data)

    def add(
        self, member: _Member, method: int, crc: int, size: int, payload: bytes
    ) -> None:
        """Append one member with its (compressed or stored) payload."""
        name = member.name.encode("utf-8")
        offset = self.offset
        if offset + LOCAL_HEADER.size + len(name) + len(payload) > MAX_ZIP32:
            msg = (
                f"the zip would pass {human_bytes(MAX_ZIP32)} at {member.name},"
                " which needs ZIP64; no Lambda layer can be that large"
            )
            raise LimitError(msg, hint="Slim the layer or split it into several.")

        # The fields both headers share, in the order both lay them out.
        shared = (
            VERSION_NEEDED,
            UTF8_NAMES,
            method,
            DOS_TIME,
            DOS_DATE,
            crc,
            len(payload),
            size,
            len(name),
            0,  # extra field length
        )
        self._write(LOCAL_HEADER.pack(LOCAL_SIGNATURE, *shared))
        self._write(name)
        self._write(payload)
        if stat.S_ISREG(member.mode):
            self.unzipped += size

        external = member.mode << 16
        if stat.S_ISDIR(member.mode):
            external |= MSDOS_DIRECTORY
        self.central.append(
            CENTRAL_HEADER.pack(
                CENTRAL_SIGNATURE,
                VERSION_MADE_BY,
                *shared,
                0,  # comment
                0,  # disk number
                0,  # internal attributes
                external,
                offset,
            )
            + name
        )

    def finish(self) -> None:
        """Write the central directory and the end record."""
        start = self.offset
        for record in self.central:
            self._write(record)
        size = self.offset - start
        if self.offset > MAX_ZIP32:
            msg = (
                f"the zip's central directory would end past {human_bytes(MAX_ZIP32)},"
                " which needs ZIP64; no Lambda layer can be that large"
            )
            raise LimitError(msg, hint="Slim the layer or split it into several.")

        count = len(self.central)
        self._write(END_RECORD.pack(END_SIGNATURE, 0, 0, count, count, size, start, 0))
