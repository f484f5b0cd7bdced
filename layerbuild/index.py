"""What the package index offers: the files of each release, by the simple API.

The lock step asks the index (PEP 691 JSON) which files exist, to tell which
packages a target can only get from source and why a newer release was passed
over. Answers are kept for the life of one ``PackageIndex``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from layerbuild.errors import BuildError

DEFAULT_INDEX_URL = "https://pypi.org/simple/"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
MANYLINUX_TAG = re.compile(r"manylinux_(\d+)_(\d+)_")
LEGACY_GLIBC = {
    "manylinux1": (2, 5),
    "manylinux2010": (2, 12),
    "manylinux2014": (2, 17),
}
REQUEST_TIMEOUT_SECONDS = 30


def index_url_from_environment(env: Mapping[str, str] = os.environ) -> str:
    """The index the user configured for uv or pip, else PyPI."""
    for variable in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        if env.get(variable):
            return env[variable]
    return DEFAULT_INDEX_URL


def redact_url(url: str) -> str:
    """Hide credentials in a URL before it reaches any message or file."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, ""))


@dataclass(frozen=True)
class DistFile:
    """One file of one release, as the index lists it."""

    filename: str
    url: str
    version: Version
    wheel_tags: frozenset[Tag]  # empty for a source distribution
    sha256: str | None

    @property
    def is_wheel(self) -> bool:
        return bool(self.wheel_tags)

    def min_glibc(self) -> tuple[int, int] | None:
        """The oldest glibc this wheel's platform tags accept; None if not manylinux."""
        versions = []
        for tag in self.wheel_tags:
            match = MANYLINUX_TAG.match(tag.platform)
            if match:
                versions.append((int(match.group(1)), int(match.group(2))))
            for legacy, glibc in LEGACY_GLIBC.items():
                if tag.platform.startswith(legacy + "_"):
                    versions.append(glibc)
        return min(versions) if versions else None


Fetch = Callable[[str], bytes]


def open_url(
    url: str, *, accept: str | None = None, timeout: float = REQUEST_TIMEOUT_SECONDS
) -> Any:
    """Open ``url`` for reading; credentials in it become an Authorization header.

    urllib does not read ``user:password@`` in a URL; left in, they would be
    taken for part of the host name and could surface in an error message.
    """
    parts = urlsplit(url)
    headers = {"Accept": accept} if accept else {}
    if parts.username is not None or parts.password is not None:
        secret = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        token = base64.b64encode(secret.encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        url = urlunsplit((parts.scheme, host, parts.path, parts.query, ""))
    request = urllib.request.Request(url, headers=headers)
    return urllib.request.urlopen(request, timeout=timeout)


def _fetch(url: str) -> bytes:
    with open_url(url, accept=SIMPLE_JSON) as response:
        return bytes(response.read())


class PackageIndex:
    """Reads project pages from one simple-API index."""

    def __init__(self, url: str = DEFAULT_INDEX_URL, fetch: Fetch = _fetch) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self._fetch = fetch
        self._cache: dict[str, list[DistFile]] = {}

    def files(self, project: str) -> list[DistFile]:
        """Every wheel and sdist of ``project`` on the index, yanked ones left out."""
        name = canonicalize_name(project)
        if name not in self._cache:
            self._cache[name] = self._read_project(name)
        return self._cache[name]

    def prefetch(self, projects: Iterable[str], jobs: int = 8) -> None:
        """Read several project pages at once; the index answers slowly one by one."""
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(self.files, projects))

    def _read_project(self, name: str) -> list[DistFile]:
        page = urljoin(self.url, f"{name}/")
        try:
            document = json.loads(self._fetch(page))
        except (urllib.error.URLError, OSError, ValueError) as error:
            msg = f"cannot read {redact_url(page)} from the package index: {error}"
            raise BuildError(msg, hint="check the network or the index URL") from None
        files = []
        for entry in document.get("files", []):
            if entry.get("yanked"):
                continue
            parsed = _parse_filename(entry.get("filename", ""))
            if parsed is not None:
                version, tags = parsed
                url = urljoin(page, entry.get("url", ""))
                sha256 = entry.get("hashes", {}).get("sha256")
                files.append(DistFile(entry["filename"], url, version, tags, sha256))
        return files


def _parse_filename(filename: str) -> tuple[Version, frozenset[Tag]] | None:
    try:
        if filename.endswith(".whl"):
            _, version, _, tags = parse_wheel_filename(filename)
            return version, tags
        if filename.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(filename)[1], frozenset()
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return None
