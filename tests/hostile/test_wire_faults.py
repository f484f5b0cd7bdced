"""Publishing through a proxy that throttles, fails and drops connections.

Whatever the wire does, a publish either completes or says what is missing;
a rerun never makes a second version of the same content, and the records
file never names a version Lambda does not hold.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from layerbuild.aws import AwsSettings, ClientFactory, LayerGateway
from layerbuild.publish import execute_publish, find_manifests, plan_publish
from layerbuild.records import load_records
from layerbuild.report import RecordingReporter
from tests.aws.conftest import (
    BUCKET_TEMPLATE,
    boto,
    buckets,
    layer_versions,
    run_cli,
    write_big_layer,
    write_layer,
)
from tests.hostile.faultproxy import Fault, Proxy, fault_proxy

pytestmark = [pytest.mark.hostile, pytest.mark.moto]

__all__ = ["boto", "buckets"]  # fixtures used by name below

REGION = "eu-west-1"
OTHER = "us-west-2"
LAYER = "demo-python312-x86_64"
PUBLISH = "/2018-10-31/layers/"  # ListLayerVersions (GET), PublishLayerVersion (POST)
OBJECT = "/layerbuild/"  # the zips' keys in S3


def _publish(proxy: Proxy, dist: Path, records: Path, *regions: str) -> Any:
    """Publish every layer in ``dist`` through the proxy, as the CLI would."""
    factory = ClientFactory(AwsSettings(endpoint_url=proxy.url))
    plan = plan_publish(find_manifests(dist), regions=regions, bucket=BUCKET_TEMPLATE)

    def gateways(region: str) -> LayerGateway:
        return LayerGateway(factory, region, sleep=lambda _: None)

    return execute_publish(plan, gateways, RecordingReporter(), records_path=records)


def _records_exist(records: Path, boto: Callable[[str, str], Any]) -> None:
    """Every version the records file names is one moto holds."""
    for record in load_records(records):
        held = {
            v["LayerVersionArn"]
            for v in layer_versions(boto, record.region, record.layer_name)
        }
        assert record.layer_version_arn in held


@pytest.mark.parametrize(
    "fault",
    [
        Fault("throttle-lambda", "POST", PUBLISH, times=2),
        Fault("throttle-400", "GET", PUBLISH, times=1),
        Fault("error-500", "GET", PUBLISH, times=1),
        Fault("slowdown", "PUT", OBJECT, times=1),
        Fault("error-500", "PUT", OBJECT, times=1),
        Fault("drop-before", "PUT", OBJECT, times=1),
        Fault("drop-mid-body", "PUT", OBJECT, times=1),
        Fault("drop-before", "POST", PUBLISH, times=1),
        Fault("drop-after", "POST", PUBLISH, times=1),
        Fault("error-500", "POST", PUBLISH, times=1),
    ],
    ids=lambda f: (
        f"{f.action}-{f.method}-{'lambda' if f.path_contains == PUBLISH else 's3'}"
    ),
)
def test_transient_faults_publish_exactly_one_version(
    moto_endpoint: str,
    aws_env: dict[str, str],
    boto: Callable[[str, str], Any],
    buckets: Callable[..., None],
    tmp_path: Path,
    fault: Fault,
) -> None:
    """A throttled, failed or cut-off call is retried; one version results."""
    buckets(REGION)
    dist, records = tmp_path / "dist", tmp_path / "layers.json"
    write_layer(dist)

    with fault_proxy(moto_endpoint, [fault]) as proxy:
        report = _publish(proxy, dist, records, REGION)
        again = _publish(proxy, dist, records, REGION)

    assert fault.fired == fault.times
    assert [o.status for o in report.outcomes] == ["published"]
    assert [o.status for o in again.outcomes] == ["unchanged"]
    versions = layer_versions(boto, REGION, LAYER)
    assert len(versions) == 1
    [record] = load_records(records)
    assert record.layer_version_arn == versions[0]["LayerVersionArn"]


def test_multipart_upload_resends_only_the_part_cut_off(
    moto_endpoint: str,
    aws_env: dict[str, str],
    boto: Callable[[str, str], Any],
    buckets: Callable[..., None],
    tmp_path: Path,
) -> None:
    """A connection dropped inside part 2 costs part 2, not the whole zip."""
    buckets(REGION)
    dist, records = tmp_path / "dist", tmp_path / "layers.json"
    write_big_layer(dist, layer_name=LAYER, member_bytes=20 * 2**20, random=True)
    fault = Fault("drop-mid-body", "PUT", "partNumber=2", times=1)

    with fault_proxy(moto_endpoint, [fault]) as proxy:
        report = _publish(proxy, dist, records, REGION)

    assert [o.status for o in report.outcomes] == ["published"]
    assert fault.fired == 1
    parts = [path for method, path, _ in proxy.log if "partNumber=" in path]
    assert sum("partNumber=1&" in p or p.endswith("partNumber=1") for p in parts) == 1
    assert sum("partNumber=2" in p for p in parts) == 2
    starts = [p for m, p, _ in proxy.log if m == "POST" and p.endswith("?uploads")]
    assert len(starts) == 1
    assert len(layer_versions(boto, REGION, LAYER)) == 1


def test_region_that_keeps_failing_leaves_records_true_and_rerun_completes(
    moto_endpoint: str,
    aws_env: dict[str, str],
    boto: Callable[[str, str], Any],
    buckets: Callable[..., None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One region down: exit 1, records list only the other; a rerun fills in."""
    buckets(REGION, OTHER)
    dist, records = tmp_path / "dist", tmp_path / "layers.json"
    write_layer(dist)
    args = [
        "publish", "--bucket", BUCKET_TEMPLATE, "--region", REGION, "--region", OTHER,
        "--dist", str(dist), "--records", str(records),
    ]  # fmt: skip
    down = Fault("denied-403", "POST", PUBLISH, region=OTHER, times=1000)

    with fault_proxy(moto_endpoint, [down]) as proxy:
        status = run_cli(*args, "--endpoint-url", proxy.url)
    first = capsys.readouterr().err

    assert status == 1
    assert "Traceback" not in first
    assert f"{LAYER} in {OTHER}" in first
    assert [r.region for r in load_records(records)] == [REGION]
    assert layer_versions(boto, OTHER, LAYER) == []
    _records_exist(records, boto)

    with fault_proxy(moto_endpoint, []) as proxy:
        assert run_cli(*args, "--endpoint-url", proxy.url) == 0

    assert sorted(r.region for r in load_records(records)) == [REGION, OTHER]
    assert len(layer_versions(boto, REGION, LAYER)) == 1
    assert len(layer_versions(boto, OTHER, LAYER)) == 1
    _records_exist(records, boto)
    json.loads(records.read_text())  # whole, valid JSON
