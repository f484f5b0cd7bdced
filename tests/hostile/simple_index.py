"""A package index on 127.0.0.1 serving a folder of files, and crafted wheels.

The index answers the simple API in both forms uv and layerbuild ask for
(PEP 691 JSON and PEP 503 HTML) for every file in its folder, so builds can be
pointed at wheels and sdists made by the tests: well-formed ones, ones whose
bytes no longer match a lock, and hostile ones. It can require a user name
and password, to check that credentials in an index URL never leak.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import stat
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import (
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


def _project_of(filename: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        if filename.endswith((".tar.gz", ".zip")):
            return str(parse_sdist_filename(filename)[0])
    except ValueError:
        return None
    return None


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class IndexServer:
    """A running index: ``url`` is the simple root, ``requests`` what was asked."""

    folder: Path
    url: str
    requests: list[str]


def _handler(folder: Path, auth: str | None, seen: list[str]) -> type:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the tests read ``requests`` instead."""

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            seen.append(self.path)
            if auth is not None and self.headers.get("Authorization") != auth:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="index"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if len(parts) == 2 and parts[0] == "files":
                path = folder / parts[1]
                if path.is_file():
                    self._send(200, path.read_bytes(), "application/octet-stream")
                    return
            elif len(parts) == 2 and parts[0] == "simple":
                self._project(canonicalize_name(parts[1]))
                return
            self._send(404, b"not found", "text/plain")

        do_HEAD = do_GET

        def _project(self, name: str) -> None:
            files = sorted(
                p
                for p in folder.iterdir()
                if p.is_file() and _project_of(p.name) == name
            )
            if not files:
                self._send(404, b"no such project", "text/plain")
                return
            if SIMPLE_JSON in self.headers.get("Accept", ""):
                document = {
                    "meta": {"api-version": "1.0"},
                    "name": name,
                    "files": [
                        {
                            "filename": p.name,
                            "url": f"../../files/{p.name}",
                            "hashes": {"sha256": sha256_of(p)},
                        }
                        for p in files
                    ],
                }
                self._send(200, json.dumps(document).encode(), SIMPLE_JSON)
                return
            links = "".join(
                f'<a href="../../files/{html.escape(p.name)}#sha256={sha256_of(p)}">'
                f"{html.escape(p.name)}</a>\n"
                for p in files
            )
            self._send(200, f"<html><body>{links}</body></html>".encode(), "text/html")

    return Handler


@contextmanager
def serve_index(
    folder: Path, *, user: str | None = None, password: str | None = None
) -> Iterator[IndexServer]:
    """Serve ``folder`` as an index on a free port for the block's duration."""
    auth = None
    credentials = ""
    if user is not None and password is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        auth = f"Basic {token}"
        credentials = f"{user}:{password}@"
    seen: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(folder, auth, seen))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield IndexServer(folder, f"http://{credentials}127.0.0.1:{port}/simple/", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ------------------------------------------------------------- crafted files


@dataclass(frozen=True)
class Member:
    """One zip or tar member of a crafted distribution."""

    name: str
    data: bytes = b""
    mode: int = stat.S_IFREG | 0o644  # full st_mode: a link, a device, a fifo
    declared_size: int | None = None  # a lie in the zip headers, for bombs


def _record(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"{name},sha256={digest.decode()},{len(data)}"


def make_wheel(
    folder: Path,
    name: str,
    version: str = "1.0",
    *,
    extra: tuple[Member, ...] = (),
    module: bytes = b"VALUE = 1\n",
) -> Path:
    """A pure-Python wheel ``name-version-py3-none-any.whl``, plus ``extra``.

    The extra members are listed in RECORD as they are, hostile names included,
    as a hostile wheel would list them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    members = [
        Member(f"{name}/__init__.py", module),
        *extra,
        Member(
            f"{dist_info}/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        ),
        Member(
            f"{dist_info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: hostile\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n",
        ),
    ]
    record = "\n".join(_record(m.name, m.data) for m in members)
    record += f"\n{dist_info}/RECORD,,\n"
    members.append(Member(f"{dist_info}/RECORD", record.encode()))
    path = folder / f"{name}-{version}-py3-none-any.whl"
    write_zip_members(path, members)
    return path


def write_zip_members(path: Path, members: list[Member]) -> None:
    """A zip holding ``members`` exactly as given, modes and lies included."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in members:
            info = zipfile.ZipInfo(member.name, date_time=(2020, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = member.mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.data)
    data = buffer.getvalue()
    for member in members:
        if member.declared_size is not None:
            data = _declare_size(data, member.name, member.declared_size)
    path.write_bytes(data)


def _declare_size(data: bytes, name: str, size: int) -> bytes:
    """Rewrite the uncompressed size of ``name`` in both of its zip headers."""
    raw = name.encode()
    patched = bytearray(data)
    local = patched.find(b"PK\x03\x04")
    while local != -1:
        name_length = int.from_bytes(patched[local + 26 : local + 28], "little")
        if bytes(patched[local + 30 : local + 30 + name_length]) == raw:
            patched[local + 22 : local + 26] = size.to_bytes(4, "little")
        local = patched.find(b"PK\x03\x04", local + 4)
    central = patched.find(b"PK\x01\x02")
    while central != -1:
        name_length = int.from_bytes(patched[central + 28 : central + 30], "little")
        if bytes(patched[central + 46 : central + 46 + name_length]) == raw:
            patched[central + 24 : central + 28] = size.to_bytes(4, "little")
        central = patched.find(b"PK\x01\x02", central + 4)
    return bytes(patched)


# A build backend inside the sdist, so building it needs nothing from an index.
IN_TREE_BACKEND = """\
import zipfile


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = "{name}-{version}-py3-none-any.whl"
    info = "{name}-{version}.dist-info"
    with zipfile.ZipFile(wheel_directory + "/" + name, "w") as wheel:
        wheel.write("{name}/__init__.py")
        wheel.writestr(info + "/METADATA", "Metadata-Version: 2.1\\nName: {name}\\n"
                       "Version: {version}\\n")
        wheel.writestr(info + "/WHEEL", "Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\n"
                       "Tag: py3-none-any\\n")
        wheel.writestr(info + "/RECORD", "")
    return name
"""


def make_sdist(
    folder: Path, name: str, version: str = "1.0", *, extra: tuple[Member, ...] = ()
) -> Path:
    """A pure-Python sdist ``name-version.tar.gz`` that setuptools can build."""
    folder.mkdir(parents=True, exist_ok=True)
    root = f"{name}-{version}"
    members = [
        Member(f"{root}/{name}/__init__.py", b"VALUE = 1\n"),
        Member(
            f"{root}/pyproject.toml",
            b'[build-system]\nrequires = []\nbuild-backend = "backend"\n'
            b'backend-path = ["."]\n'
            + f'[project]\nname = "{name}"\nversion = "{version}"\n'.encode(),
        ),
        Member(
            f"{root}/backend.py",
            IN_TREE_BACKEND.format(name=name, version=version).encode(),
        ),
        Member(
            f"{root}/PKG-INFO",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        ),
        *extra,
    ]
    path = folder / f"{root}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.mtime = 1577836800
            info.mode = stat.S_IMODE(member.mode)
            if stat.S_ISLNK(member.mode):
                info.type = tarfile.SYMTYPE
                info.linkname = member.data.decode()
                archive.addfile(info)
            elif stat.S_ISCHR(member.mode):
                info.type = tarfile.CHRTYPE
                archive.addfile(info)
            else:
                info.size = len(member.data)
                archive.addfile(info, io.BytesIO(member.data))
    return path
