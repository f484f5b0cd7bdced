"""``layerbuild publish`` against a moto server standing in for S3 and Lambda."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from layerbuild.publish import (
    content_key_of,
    execute_publish,
    find_manifests,
    plan_publish,
)
from layerbuild.report import RecordingReporter
from tests.aws.conftest import (
    BUCKET_TEMPLATE,
    REGIONS,
    layer_versions,
    run_cli,
    s3_objects,
    write_big_layer,
    write_layer,
)

pytestmark = pytest.mark.moto

NAME = "demo-python312-x86_64"


def publish_args(dist: Path, records: Path, *extra: str) -> list[str]:
    args = ["publish", "--bucket", BUCKET_TEMPLATE, "--dist", str(dist)]
    args += ["--records", str(records)]
    for region in REGIONS:
        args += ["--region", region]
    return [*args, *extra]


def test_publishes_in_two_regions_and_records_both(
    dist: Path, tmp_path: Path, buckets: Callable[..., None], boto: Any, capsys: Any
) -> None:
    """One version per region, uploaded via S3, and both ARNs in the records."""
    buckets(*REGIONS)
    write_layer(dist, packages={"numpy": "2.4.6", "pandas": "3.1.1"})
    records = tmp_path / "layers.json"

    status = run_cli(*publish_args(dist, records, "--json"))

    assert status == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in result["results"]] == ["published", "published"]
    for region in REGIONS:
        versions = layer_versions(boto, region, NAME)
        assert [v["Version"] for v in versions] == [1]
        assert versions[0]["CompatibleRuntimes"] == ["python3.12"]
        assert versions[0]["CompatibleArchitectures"] == ["x86_64"]
        assert versions[0]["LicenseInfo"] == "MIT"
        assert "numpy 2.4.6, pandas 3.1.1" in versions[0]["Description"]
    saved = json.loads(records.read_text())
    assert sorted(r["region"] for r in saved) == sorted(REGIONS)
    assert all(r["layer_version_arn"].endswith(f":{NAME}:1") for r in saved)
    assert len(s3_objects(boto)) == 2


def test_rerun_without_change_publishes_nothing(
    dist: Path, tmp_path: Path, buckets: Callable[..., None], boto: Any, capsys: Any
) -> None:
    """The newest version carries the same content key, so no new version."""
    buckets(*REGIONS)
    write_layer(dist)
    records = tmp_path / "layers.json"
    assert run_cli(*publish_args(dist, records)) == 0
    capsys.readouterr()

    status = run_cli(*publish_args(dist, records, "--json"))

    assert status == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in result["results"]] == ["unchanged", "unchanged"]
    assert all(r["layer_version_arn"].endswith(":1") for r in result["results"])
    for region in REGIONS:
        assert len(layer_versions(boto, region, NAME)) == 1
    assert len(json.loads(records.read_text())) == 2


def test_changed_content_publishes_one_new_version_per_region(
    dist: Path, tmp_path: Path, buckets: Callable[..., None], boto: Any
) -> None:
    """New content: exactly one new version in each region, records updated."""
    buckets(*REGIONS)
    records = tmp_path / "layers.json"
    write_layer(dist)
    assert run_cli(*publish_args(dist, records)) == 0

    write_layer(dist, files={"python/demo.py": b"VALUE = 2\n"})
    status = run_cli(*publish_args(dist, records))

    assert status == 0
    for region in REGIONS:
        versions = layer_versions(boto, region, NAME)
        assert [v["Version"] for v in versions] == [1, 2]
        keys = [content_key_of(v["Description"]) for v in versions]
        assert keys[0] != keys[1]
    saved = json.loads(records.read_text())
    assert sorted(r["version"] for r in saved) == [1, 1, 2, 2]


def test_aws_cli_sees_runtimes_architectures_and_description(
    dist: Path, tmp_path: Path, buckets: Callable[..., None], aws_env: dict[str, str]
) -> None:
    """The AWS CLI lists what layerbuild published, description and all."""
    buckets(*REGIONS)
    manifest = write_layer(dist, runtimes=["python3.12", "python3.13"])
    content_key = json.loads(manifest.read_text())["content_key"]
    assert run_cli(*publish_args(dist, tmp_path / "layers.json")) == 0

    for region in REGIONS:
        shown = subprocess.run(
            [
                "aws",
                "lambda",
                "list-layer-versions",
                "--layer-name",
                NAME,
                "--endpoint-url",
                aws_env["AWS_ENDPOINT_URL"],
                "--region",
                region,
                "--output",
                "json",
            ],
            env={**aws_env, "PATH": os.environ["PATH"]},
            capture_output=True,
            text=True,
            check=True,
        )
        (version,) = json.loads(shown.stdout)["LayerVersions"]
        assert version["CompatibleRuntimes"] == ["python3.12", "python3.13"]
        assert version["CompatibleArchitectures"] == ["x86_64"]
        assert version["Description"].endswith(f"content-key={content_key}")
        assert len(version["Description"]) <= 256


@pytest.mark.slow
def test_a_70_mb_zip_goes_through_s3_in_parts(
    dist: Path, tmp_path: Path, buckets: Callable[..., None], boto: Any
) -> None:
    """A zip over the inline limit is uploaded to S3 and published from there."""
    buckets("eu-west-1")
    write_big_layer(dist, layer_name="big", member_bytes=71 * 1024 * 1024, random=True)
    zip_size = (dist / "big.zip").stat().st_size
    assert zip_size > 70 * 1024 * 1024

    status = run_cli(
        "publish",
        "--bucket",
        BUCKET_TEMPLATE,
        "--dist",
        str(dist),
        "--region",
        "eu-west-1",
        "--records",
        str(tmp_path / "layers.json"),
    )

    assert status == 0
    (key,) = s3_objects(boto)
    bucket, _, object_key = key.removeprefix("s3://").partition("/")
    head = boto("s3", "eu-west-1").head_object(Bucket=bucket, Key=object_key)
    assert head["ContentLength"] == zip_size
    assert head["ETag"].endswith('-5"')  # five parts of 16 MiB
    (version,) = layer_versions(boto, "eu-west-1", "big")
    detail = boto("lambda", "eu-west-1").get_layer_version(
        LayerName="big", VersionNumber=version["Version"]
    )
    assert detail["Content"]["CodeSize"] == zip_size


def test_one_region_failing_leaves_the_other_published_and_rerun_completes(
    dist: Path,
    tmp_path: Path,
    buckets: Callable[..., None],
    boto: Any,
    capsys: Any,
) -> None:
    """Missing bucket in one region: exit 1 naming it; a rerun fills the gap."""
    ok_region, bad_region = REGIONS
    buckets(ok_region)
    write_layer(dist)
    records = tmp_path / "layers.json"

    status = run_cli(*publish_args(dist, records))

    err = capsys.readouterr().err
    assert status == 1
    assert f"1 of 2 publishes failed: {NAME} in {bad_region}" in err
    assert f"bucket s3://layers-{bad_region} does not exist" in err
    assert "hint: create the bucket in this region" in err
    assert "then rerun the same command" in err
    assert len(layer_versions(boto, ok_region, NAME)) == 1
    assert layer_versions(boto, bad_region, NAME) == []
    assert [r["region"] for r in json.loads(records.read_text())] == [ok_region]

    buckets(bad_region)
    status = run_cli(*publish_args(dist, records, "--json"))

    assert status == 0
    result = json.loads(capsys.readouterr().out)
    outcomes = {r["region"]: r["status"] for r in result["results"]}
    assert outcomes == {ok_region: "unchanged", bad_region: "published"}
    assert len(layer_versions(boto, ok_region, NAME)) == 1
    assert len(layer_versions(boto, bad_region, NAME)) == 1
    assert len(json.loads(records.read_text())) == 2


@pytest.mark.slow
def test_over_the_unzipped_limit_is_refused_before_any_upload(
    dist: Path, tmp_path: Path, buckets: Callable[..., None], boto: Any, capsys: Any
) -> None:
    """263 MB unzipped: exit 3 with both numbers; S3 and Lambda stay empty."""
    buckets(*REGIONS)
    write_big_layer(dist, layer_name="huge", member_bytes=263_000_000, random=False)

    status = run_cli(*publish_args(dist, tmp_path / "layers.json"))

    err = capsys.readouterr().err
    assert status == 3
    assert "263,000,000 bytes" in err
    assert "262,144,000 bytes" in err
    assert s3_objects(boto) == []
    for region in REGIONS:
        assert boto("lambda", region).list_layers()["Layers"] == []
    assert not (tmp_path / "layers.json").exists()


def test_dry_run_lists_the_calls_and_changes_nothing(
    dist: Path,
    tmp_path: Path,
    buckets: Callable[..., None],
    aws_env: dict[str, str],
    capsys: Any,
) -> None:
    """--dry-run prints uploads and API calls; moto's state is byte-for-byte equal."""
    buckets(*REGIONS)
    write_layer(dist)
    state_url = f"{aws_env['AWS_ENDPOINT_URL']}/moto-api/data.json"
    before = urllib.request.urlopen(state_url).read()

    status = run_cli(*publish_args(dist, tmp_path / "layers.json", "--dry-run"))

    err = capsys.readouterr().err
    assert status == 0
    assert "would: [eu-west-1] demo-python312-x86_64: upload" in err
    assert "PublishLayerVersion from s3://layers-us-west-2/layerbuild/" in err
    assert "no upload and no AWS call made" in err
    assert urllib.request.urlopen(state_url).read() == before
    assert not (tmp_path / "layers.json").exists()


def test_bucket_in_another_region_is_refused_for_that_region(
    dist: Path, tmp_path: Path, buckets: Callable[..., None], boto: Any, capsys: Any
) -> None:
    """Lambda only reads a bucket in its own region; say so before uploading."""
    buckets("eu-west-1")
    write_layer(dist)

    status = run_cli(
        "publish",
        "--bucket",
        "layers-eu-west-1",
        "--dist",
        str(dist),
        "--region",
        "us-west-2",
        "--records",
        str(tmp_path / "layers.json"),
    )

    err = capsys.readouterr().err
    assert status == 1
    assert "bucket layers-eu-west-1 is in eu-west-1" in err
    assert s3_objects(boto) == []


def test_an_uploaded_zip_is_not_uploaded_again(
    dist: Path,
    gateways: Any,
    buckets: Callable[..., None],
    boto: Any,
) -> None:
    """Same sha256 already in S3: the publish reuses it and uploads nothing."""
    buckets("eu-west-1")
    write_layer(dist)
    plan = plan_publish(
        find_manifests(dist), regions=["eu-west-1"], bucket=BUCKET_TEMPLATE
    )
    first = execute_publish(plan, gateways, RecordingReporter())
    boto("lambda", "eu-west-1").delete_layer_version(LayerName=NAME, VersionNumber=1)

    second = execute_publish(plan, gateways, RecordingReporter())

    assert [o.uploaded for o in first.outcomes] == [True]
    assert [(o.status, o.uploaded) for o in second.outcomes] == [("published", False)]
    assert [v["Version"] for v in layer_versions(boto, "eu-west-1", NAME)] == [2]
