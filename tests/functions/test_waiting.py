"""Waiting for an update in progress (LastUpdateStatus) before publishing.

moto finishes every update at once, so the answers of GetFunctionConfiguration
are rewritten through the client's own event hooks to say InProgress or
Failed: the real client, the real moto server, only the status differs.
"""

from __future__ import annotations

from typing import Any

import pytest

from layerbuild import functions
from layerbuild.aws import UPDATE_POLL_SECONDS, ClientFactory, FunctionGateway
from layerbuild.errors import AwsError
from layerbuild.report import RecordingReporter
from tests.functions.conftest import REGION, FakeClock, Stand

pytestmark = pytest.mark.moto


def gateway_reporting(statuses: list[str]) -> FunctionGateway:
    """A gateway whose next GetFunctionConfiguration answers carry ``statuses``."""

    def rewrite(parsed: dict[str, Any], **_: Any) -> None:
        if statuses:
            parsed["LastUpdateStatus"] = statuses.pop(0)
            parsed["LastUpdateStatusReason"] = "the subnet has no free addresses"

    def hook(client: Any) -> None:
        client.meta.events.register(
            "after-call.lambda.GetFunctionConfiguration", rewrite
        )

    return FunctionGateway(ClientFactory(on_client=hook), REGION)


def test_publish_waits_while_an_update_is_in_progress(stand: Stand) -> None:
    """Two InProgress answers: two polls, then the version is published."""
    stand.function("MyLambda")
    clock = FakeClock()

    published = functions.publish_version(
        gateway_reporting(["InProgress", "InProgress"]),
        "MyLambda",
        clock=functions.Clock(sleep=clock.sleep, now=clock.now),
        reporter=RecordingReporter(),
    )

    assert published.version == "1"
    assert clock.slept == [UPDATE_POLL_SECONDS, UPDATE_POLL_SECONDS]


def test_a_failed_update_stops_with_its_reason(stand: Stand) -> None:
    """LastUpdateStatus Failed: nothing is published, the reason is shown."""
    stand.function("MyLambda")

    with pytest.raises(AwsError) as caught:
        functions.publish_version(
            gateway_reporting(["Failed"]),
            "MyLambda",
            clock=functions.Clock(sleep=FakeClock().sleep, now=FakeClock().now),
            reporter=RecordingReporter(),
        )

    assert str(caught.value) == (
        "the last update of MyLambda (us-east-1) failed: the subnet has no free "
        "addresses"
    )
    versions = stand.lam.list_versions_by_function(FunctionName="MyLambda")
    assert [v["Version"] for v in versions["Versions"]] == ["$LATEST"]


def test_an_update_that_never_ends_times_out(stand: Stand) -> None:
    """Still InProgress after the timeout: an error naming the wait."""
    stand.function("MyLambda")
    clock = FakeClock()

    with pytest.raises(AwsError, match=r"was still updating after 10 s"):
        gateway_reporting(["InProgress"] * 100).wait_until_updated(
            "MyLambda", sleep=clock.sleep, clock=clock.now, timeout=10
        )

    assert sum(clock.slept) >= 10
