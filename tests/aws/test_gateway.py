"""The AWS gateway: clients against the moto server, errors turned into AwsError."""

from __future__ import annotations

import pytest

from layerbuild.aws import AwsSettings, ClientFactory, aws_errors
from layerbuild.errors import AwsError, ExitStatus

pytestmark = pytest.mark.moto


def test_client_reaches_moto_through_the_environment(aws_env: dict[str, str]) -> None:
    """A client made with default settings uses AWS_ENDPOINT_URL from the env."""
    factory = ClientFactory()

    s3 = factory.client("s3", "us-east-1")
    s3.create_bucket(Bucket="probe")

    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert names == ["probe"]


def test_client_error_becomes_aws_error_naming_operation_and_resource(
    aws_env: dict[str, str],
) -> None:
    """A ClientError leaves the gateway as AwsError with the operation and a hint."""
    s3 = ClientFactory(AwsSettings(endpoint_url=aws_env["AWS_ENDPOINT_URL"])).client(
        "s3", "eu-west-1"
    )

    with pytest.raises(AwsError) as caught, aws_errors("list objects in", "s3://nope"):
        s3.list_objects_v2(Bucket="nope")

    assert str(caught.value).startswith(
        "list objects in s3://nope failed: NoSuchBucket"
    )
    assert caught.value.hint is not None
    assert "bucket" in caught.value.hint
    assert caught.value.exit_status == ExitStatus.FAILED


def test_unreachable_endpoint_becomes_aws_error(aws_env: dict[str, str]) -> None:
    """A refused connection is reported with the endpoint and a next step."""
    settings = AwsSettings(endpoint_url="http://127.0.0.1:9", max_attempts=1)
    s3 = ClientFactory(settings).client("s3", "us-east-1")

    with pytest.raises(AwsError) as caught, aws_errors("list buckets in", "us-east-1"):
        s3.list_buckets()

    assert "127.0.0.1:9" in str(caught.value)
    assert caught.value.hint is not None
    assert "--endpoint-url" in caught.value.hint
