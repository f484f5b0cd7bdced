"""The manifest beside each built zip: ``dist/<name>.json``.

The build writes it once its zip is in place; publishing, ``layerbuild audit``
and the reuse check read it. One class serves all of them, and every mistake
in a manifest read back names the file and the field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerbuild.errors import UsageError
from layerbuild.files import write_atomically
from layerbuild.limits import LAYER_NAME_PATTERN
from layerbuild.targets import ARCHITECTURES, RUNTIMES

MANIFEST_SUFFIX = ".json"
CONTENT_KEY_PATTERN = re.compile(r"[0-9a-f]{16,64}")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Manifest:
    """What the build wrote beside a zip: ``dist/<zip-name>.json``."""

    path: Path
    recipe: str
    layer_name: str
    runtimes: tuple[str, ...]
    architectures: tuple[str, ...]
    packages: dict[str, str]
    description: str
    license: str | None
    unzipped_bytes: int
    zipped_bytes: int
    sha256: str
    content_key: str
    zip_name: str
    layerbuild_version: str | None
    builder: str | None = None  # "local" or "docker"
    highest_glibc: str | None = None  # the highest GLIBC_x.y any ELF file needs

    @property
    def zip_path(self) -> Path:
        return self.path.parent / self.zip_name

    def to_json(self) -> dict[str, Any]:
        """The manifest as written to disk: one architecture, the zip's name."""
        return {
            "recipe": self.recipe,
            "layer_name": self.layer_name,
            "runtimes": list(self.runtimes),
            "architecture": self.architectures[0],
            "packages": dict(sorted(self.packages.items())),
            "description": self.description,
            "license": self.license,
            "unzipped_bytes": self.unzipped_bytes,
            "zipped_bytes": self.zipped_bytes,
            "sha256": self.sha256,
            "content_key": self.content_key,
            "zip": self.zip_name,
            "builder": self.builder,
            "highest_glibc": self.highest_glibc,
            "layerbuild_version": self.layerbuild_version,
        }

    def write(self) -> None:
        """Write the manifest to its ``path``, atomically."""
        text = json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"
        write_atomically(self.path, text)

    @classmethod
    def read_if_valid(cls, path: Path) -> Manifest | None:
        """The manifest at ``path``, or None when it is missing or broken."""
        if not path.is_file():
            return None
        try:
            return cls.from_file(path)
        except UsageError:
            return None

    @classmethod
    def from_file(cls, path: Path) -> Manifest:
        """Read and check a manifest; every mistake names the file and field."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            msg = f"{path}: cannot read the manifest: {error.strerror}"
            raise UsageError(msg, hint="rebuild the layer") from error
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            msg = f"{path}: the manifest is not valid JSON: {error}"
            raise UsageError(msg, hint="rebuild the layer") from error
        if not isinstance(data, dict):
            msg = f"{path}: the manifest is not a JSON object"
            raise UsageError(msg, hint="rebuild the layer")
        return cls._from_dict(path, data)

    @classmethod
    def _from_dict(cls, path: Path, data: dict[str, Any]) -> Manifest:
        def fail(key: str, expected: str) -> UsageError:
            value = data.get(key)
            msg = f"{path}: field '{key}': {value!r} is not valid; expected {expected}"
            return UsageError(msg, hint="rebuild the layer to write a fresh manifest")

        def require(ok: bool, key: str, expected: str) -> None:
            if not ok:
                raise fail(key, expected)

        def text(key: str, *, optional: bool = False) -> Any:
            value = data.get(key)
            if value in (None, "") and optional:
                return None
            if not isinstance(value, str) or not value:
                raise fail(key, "a non-empty string")
            return value

        def count(key: str) -> int:
            value = data.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise fail(key, "a whole number of bytes")
            return value

        def names(key: str) -> tuple[str, ...]:
            value = data.get(key)
            if isinstance(value, str):
                value = [value]
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(v, str) for v in value)
            ):
                raise fail(key, "a non-empty list of names")
            return tuple(value)

        packages = data.get("packages", {})
        require(
            isinstance(packages, dict)
            and all(
                isinstance(k, str) and isinstance(v, str) for k, v in packages.items()
            ),
            "packages",
            "an object of package names to versions",
        )

        runtimes = names("runtimes")
        known = ", ".join(RUNTIMES)
        require(set(runtimes) <= set(RUNTIMES), "runtimes", f"runtimes among {known}")
        arch_key = "architectures" if "architectures" in data else "architecture"
        architectures = names(arch_key)
        known = ", ".join(ARCHITECTURES)
        require(set(architectures) <= set(ARCHITECTURES), arch_key, f"one of {known}")

        layer_name = text("layer_name")
        require(
            re.fullmatch(LAYER_NAME_PATTERN, layer_name) is not None,
            "layer_name",
            "letters, digits, '-' or '_', 1 to 140 of them",
        )
        sha256 = text("sha256")
        require(bool(SHA256_PATTERN.fullmatch(sha256)), "sha256", "64 hex digits")
        content_key = text("content_key")
        require(
            bool(CONTENT_KEY_PATTERN.fullmatch(content_key)),
            "content_key",
            "16 to 64 lowercase hex digits",
        )
        zip_name = text("zip")
        require(Path(zip_name).name == zip_name, "zip", "a file name beside it")

        return cls(
            path=path,
            recipe=text("recipe"),
            layer_name=layer_name,
            runtimes=runtimes,
            architectures=architectures,
            packages=dict(packages),
            description=text("description", optional=True) or "",
            license=text("license", optional=True),
            unzipped_bytes=count("unzipped_bytes"),
            zipped_bytes=count("zipped_bytes"),
            sha256=sha256,
            content_key=content_key,
            zip_name=zip_name,
            layerbuild_version=text("layerbuild_version", optional=True),
            builder=text("builder", optional=True),
            highest_glibc=text("highest_glibc", optional=True),
        )
