"""Helpers for the publishing tests: real zips, manifests and moto state."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from layerbuild.aws import AwsSettings, ClientFactory, LayerGateway
from layerbuild.publish import GatewayFactory

REGIONS = ("eu-west-1", "us-west-2")
BUCKET_TEMPLATE = "layers-{region}"
CHUNK = 1024 * 1024


def write_layer(
    dist: Path,
    *,
    recipe: str = "demo",
    layer_name: str = "demo-python312-x86_64",
    files: dict[str, bytes] | None = None,
    runtimes: list[str] | None = None,
    architecture: str = "x86_64",
    packages: dict[str, str] | None = None,
    description: str = "A demo layer for the tests.",
    license_text: str | None = "MIT",
    content_key: str | None = None,
    **overrides: Any,
) -> Path:
    """A real zip and its manifest in ``dist``; returns the manifest path.

    The content key follows the files, so new content means a new key.
    """
    dist.mkdir(parents=True, exist_ok=True)
    files = files if files is not None else {"python/demo.py": b"VALUE = 1\n"}
    zip_path = dist / f"{layer_name}.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            archive.writestr(name, data)
    key_material = hashlib.sha256()
    for name, data in sorted(files.items()):
        key_material.update(name.encode() + b"\0" + data)
    return _write_manifest(
        zip_path,
        {
            "recipe": recipe,
            "layer_name": layer_name,
            "runtimes": runtimes or ["python3.12"],
            "architecture": architecture,
            "packages": packages if packages is not None else {"demo": "1.0"},
            "description": description,
            "license": license_text,
            "unzipped_bytes": sum(len(d) for d in files.values()),
            "content_key": content_key or key_material.hexdigest(),
            **overrides,
        },
    )


def write_big_layer(
    dist: Path, *, layer_name: str, member_bytes: int, random: bool, **fields: Any
) -> Path:
    """A zip with one member of ``member_bytes``, streamed in 1 MiB chunks.

    Random bytes are stored (they do not compress); zeros are deflated, so a
    tiny zip can unzip to more than Lambda allows.
    """
    dist.mkdir(parents=True, exist_ok=True)
    zip_path = dist / f"{layer_name}.zip"
    method = zipfile.ZIP_STORED if random else zipfile.ZIP_DEFLATED
    zeros = bytes(CHUNK)
    with (
        zipfile.ZipFile(zip_path, "w", method, allowZip64=True) as archive,
        archive.open("python/blob.bin", "w", force_zip64=True) as member,
    ):
        left = member_bytes
        while left:
            size = min(CHUNK, left)
            member.write(os.urandom(size) if random else zeros[:size])
            left -= size
    return _write_manifest(
        zip_path,
        {
            "recipe": fields.pop("recipe", "big"),
            "layer_name": layer_name,
            "runtimes": ["python3.12"],
            "architecture": "x86_64",
            "packages": {"blob": "1.0"},
            "description": "Big.",
            "license": "MIT",
            "unzipped_bytes": member_bytes,
            "content_key": hashlib.sha256(layer_name.encode()).hexdigest(),
            **fields,
        },
    )


def _write_manifest(zip_path: Path, fields: dict[str, Any]) -> Path:
    digest = hashlib.sha256()
    with zip_path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    manifest = {
        **fields,
        "zipped_bytes": zip_path.stat().st_size,
        "sha256": digest.hexdigest(),
        "zip": zip_path.name,
        "layerbuild_version": "0.1.0",
    }
    path = zip_path.with_suffix(".json")
    path.write_text(json.dumps(manifest, indent=2))
    return path


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    return tmp_path / "dist"


@pytest.fixture
def boto(aws_env: dict[str, str]) -> Callable[[str, str], Any]:
    """Plain boto3 clients on the moto server, to arrange and inspect state."""

    def make(service: str, region: str) -> Any:
        return boto3.client(
            service, region_name=region, endpoint_url=aws_env["AWS_ENDPOINT_URL"]
        )

    return make


@pytest.fixture
def buckets(boto: Callable[[str, str], Any]) -> Callable[..., None]:
    """Create the per-region bucket in each region given."""

    def create(*regions: str) -> None:
        for region in regions:
            s3 = boto("s3", region)
            name = BUCKET_TEMPLATE.format(region=region)
            if region == "us-east-1":
                s3.create_bucket(Bucket=name)
            else:
                s3.create_bucket(
                    Bucket=name,
                    CreateBucketConfiguration={"LocationConstraint": region},
                )

    return create


@pytest.fixture
def gateways(aws_env: dict[str, str]) -> GatewayFactory:
    """Real gateways on the moto server, with no waiting between retries."""
    factory = ClientFactory(AwsSettings(endpoint_url=aws_env["AWS_ENDPOINT_URL"]))
    return lambda region: LayerGateway(factory, region, sleep=lambda _: None)


def layer_versions(boto: Callable[[str, str], Any], region: str, name: str) -> list:
    """The versions moto holds for a layer in a region, oldest first."""
    versions = boto("lambda", region).list_layer_versions(LayerName=name)
    return sorted(versions["LayerVersions"], key=lambda v: v["Version"])


def s3_objects(boto: Callable[[str, str], Any]) -> list[str]:
    """Every object in every bucket moto holds, as s3://bucket/key."""
    s3 = boto("s3", "us-east-1")
    found = []
    for bucket in s3.list_buckets()["Buckets"]:
        listing = s3.list_objects_v2(Bucket=bucket["Name"])
        found += [
            f"s3://{bucket['Name']}/{o['Key']}" for o in listing.get("Contents", [])
        ]
    return found


def run_cli(*args: str) -> int:
    """Run the real entry point in-process; returns its exit status."""
    from layerbuild.cli import main

    try:
        main(list(args))
    except SystemExit as done:
        return int(done.code or 0)
    return 0
