"""Throttling and dropped connections, injected through botocore's event hooks.

Handlers registered on a client's event system answer in place of the server
(``before-send``), so the real retry logic runs against the real moto server
without patching anything.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError

from layerbuild.aws import AwsSettings, ClientFactory, LayerGateway
from layerbuild.errors import AwsError
from layerbuild.publish import execute_publish, find_manifests, plan_publish
from layerbuild.report import RecordingReporter
from tests.aws.conftest import BUCKET_TEMPLATE, layer_versions, write_layer

pytestmark = pytest.mark.moto

REGION = "eu-west-1"
NAME = "demo-python312-x86_64"
THROTTLED_BODY = b'{"message": "Rate exceeded"}'


class _Body:
    """The raw body an ``AWSResponse`` reads its content from."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


def throttled(request: Any) -> AWSResponse:
    headers = {
        "x-amzn-ErrorType": "TooManyRequestsException",
        "Content-Type": "application/json",
    }
    return AWSResponse(request.url, 429, headers, _Body(THROTTLED_BODY))


class Injector:
    """Answers the first ``times`` calls of one operation in place of moto."""

    def __init__(self, event: str, times: int, answer: Callable[[Any], Any]) -> None:
        self.event = event
        self.times = times
        self.answer = answer
        self.calls = 0

    def hook(self, client: Any) -> None:
        client.meta.events.register(self.event, self.handle)

    def handle(self, request: Any, **_: Any) -> Any:
        self.calls += 1
        if self.calls <= self.times:
            return self.answer(request)
        return None


def run_publish(dist: Path, endpoint: str, injector: Injector) -> Any:
    factory = ClientFactory(AwsSettings(endpoint_url=endpoint), on_client=injector.hook)
    sleeps: list[float] = []

    def gateway(region: str) -> LayerGateway:
        return LayerGateway(factory, region, sleep=sleeps.append)

    plan = plan_publish(find_manifests(dist), regions=[REGION], bucket=BUCKET_TEMPLATE)
    return execute_publish(plan, gateway, RecordingReporter()), sleeps


def test_throttled_publish_is_retried_with_backoff_and_publishes_once(
    dist: Path, aws_env: dict[str, str], buckets: Callable[..., None], boto: Any
) -> None:
    """Three 429s, then success: one version, three growing waits."""
    buckets(REGION)
    write_layer(dist)
    injector = Injector("before-send.lambda.PublishLayerVersion", 3, throttled)

    report, sleeps = run_publish(dist, aws_env["AWS_ENDPOINT_URL"], injector)

    assert [o.status for o in report.outcomes] == ["published"]
    assert injector.calls == 4
    assert sleeps == [1.0, 2.0, 4.0]
    assert [v["Version"] for v in layer_versions(boto, REGION, NAME)] == [1]


def test_throttling_that_never_ends_fails_the_region_with_a_hint(
    dist: Path, aws_env: dict[str, str], buckets: Callable[..., None], boto: Any
) -> None:
    """After the last attempt the region fails, naming the throttling."""
    buckets(REGION)
    write_layer(dist)
    injector = Injector("before-send.lambda.PublishLayerVersion", 99, throttled)

    report, _ = run_publish(dist, aws_env["AWS_ENDPOINT_URL"], injector)

    (outcome,) = report.outcomes
    assert outcome.status == "failed"
    assert "TooManyRequestsException" in (outcome.error or "")
    assert "throttling" in (outcome.hint or "")
    assert injector.calls == 6
    assert layer_versions(boto, REGION, NAME) == []
    with pytest.raises(AwsError, match="1 of 1 publishes failed"):
        report.raise_for_failures()


def test_answer_lost_after_publishing_does_not_publish_twice(
    dist: Path, aws_env: dict[str, str], buckets: Callable[..., None], boto: Any
) -> None:
    """moto publishes, the connection drops: the retry finds that version."""
    buckets(REGION)
    write_layer(dist)

    def deliver_then_drop(request: Any) -> None:
        forwarded = urllib.request.Request(
            request.url,
            data=request.body,
            headers=dict(request.headers),
            method=request.method,
        )
        with urllib.request.urlopen(forwarded) as response:
            response.read()
        raise ConnectionClosedError(endpoint_url=request.url)

    injector = Injector("before-send.lambda.PublishLayerVersion", 1, deliver_then_drop)

    report, sleeps = run_publish(dist, aws_env["AWS_ENDPOINT_URL"], injector)

    (outcome,) = report.outcomes
    assert outcome.status == "published"
    assert outcome.version == 1
    assert injector.calls == 1  # found, not published again
    assert sleeps == []
    assert [v["Version"] for v in layer_versions(boto, REGION, NAME)] == [1]


def test_dropped_connections_during_upload_are_retried(
    dist: Path, aws_env: dict[str, str], buckets: Callable[..., None], boto: Any
) -> None:
    """Two dropped PutObject requests: botocore retries, the zip arrives."""
    buckets(REGION)
    write_layer(dist)

    def drop(request: Any) -> None:
        raise ConnectionClosedError(endpoint_url=request.url)

    injector = Injector("before-send.s3.PutObject", 2, drop)

    report, _ = run_publish(dist, aws_env["AWS_ENDPOINT_URL"], injector)

    assert [(o.status, o.uploaded) for o in report.outcomes] == [("published", True)]
    assert injector.calls == 3
    assert [v["Version"] for v in layer_versions(boto, REGION, NAME)] == [1]
