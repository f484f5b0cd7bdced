"""The manifest beside each zip: written by the build, read back by every step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from layerbuild.errors import UsageError
from layerbuild.manifest import Manifest


def _manifest(path: Path, **changes: object) -> Manifest:
    fields: dict[str, object] = {
        "path": path,
        "recipe": "demo",
        "layer_name": "demo-py312-x86_64",
        "runtimes": ("python3.12",),
        "architectures": ("x86_64",),
        "packages": {"idna": "3.20"},
        "description": "",
        "license": None,
        "unzipped_bytes": 10,
        "zipped_bytes": 5,
        "sha256": "ab" * 32,
        "content_key": "cd" * 32,
        "zip_name": "demo-python3.12-x86_64.zip",
        "layerbuild_version": "0.1.0",
        "builder": "local",
        "highest_glibc": None,
    }
    fields.update(changes)
    return Manifest(**fields)  # type: ignore[arg-type]


def test_what_the_build_writes_reads_back_equal(tmp_path: Path) -> None:
    """A recipe without description or license still round-trips."""
    written = _manifest(tmp_path / "demo.json")

    written.write()

    assert Manifest.from_file(written.path) == written
    assert json.loads(written.path.read_text())["architecture"] == "x86_64"


def test_a_broken_manifest_names_its_field(tmp_path: Path) -> None:
    """Reading back checks every field; the reuse check just sees no manifest."""
    path = tmp_path / "demo.json"
    _manifest(path).write()
    data = json.loads(path.read_text())
    data["sha256"] = "not a digest"
    path.write_text(json.dumps(data))

    with pytest.raises(UsageError, match=r"demo\.json: field 'sha256'"):
        Manifest.from_file(path)
    assert Manifest.read_if_valid(path) is None
    assert Manifest.read_if_valid(tmp_path / "missing.json") is None
