"""The one gateway to AWS: every boto3 and botocore import lives in this module.

The rest of layerbuild asks a ``ClientFactory`` for clients and calls the typed
methods of the gateway classes below. Every failure leaves this module as an
``AwsError`` that names the operation, the resource and a next step, so no raw
``ClientError`` or traceback ever reaches the user.

Credentials come from boto3's standard chain (environment, shared files,
``--profile``, instance roles). ``AWS_ENDPOINT_URL`` or an explicit endpoint
points every client at a stand-in service such as a local moto server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from layerbuild.errors import AwsError, UsageError

# Standard mode retries throttling and transient errors with exponential
# backoff and jitter; eight attempts ride out a burst of throttling from
# parallel regions without hiding a real outage for long.
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_RETRY_MODE = "standard"
CONNECT_TIMEOUT_SECONDS = 10
# Publishing a layer from a large S3 object can take a while on AWS's side.
READ_TIMEOUT_SECONDS = 120

# What the user can do next, by the error code AWS returns.
HINTS_BY_CODE: dict[str, str] = {
    "AccessDenied": "check that the credentials in use may perform this action",
    "AccessDeniedException": (
        "check that the credentials in use may perform this action"
    ),
    "UnrecognizedClientException": "check the credentials or the --profile in use",
    "InvalidClientTokenId": "check the credentials or the --profile in use",
    "ExpiredToken": "refresh the credentials (for example `aws sso login`)",
    "ExpiredTokenException": "refresh the credentials (for example `aws sso login`)",
    "NoSuchBucket": "create the bucket in this region or pass another --bucket",
    "ThrottlingException": "AWS kept throttling after retries; rerun later",
    "TooManyRequestsException": "AWS kept throttling after retries; rerun later",
    "SlowDown": "S3 kept throttling after retries; rerun later",
    "ResourceNotFoundException": "check the name and the region",
    "InvalidParameterValueException": "check the values layerbuild sent (see -v)",
    "CodeStorageExceededException": (
        "delete old layer versions (`layerbuild layers prune`) to free storage"
    ),
}
DEFAULT_HINT = "rerun with -v for details; a rerun completes only what is missing"


@dataclass(frozen=True)
class AwsSettings:
    """How clients are made: profile, endpoint and retry behaviour."""

    profile: str | None = None
    endpoint_url: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    retry_mode: str = DEFAULT_RETRY_MODE

    def botocore_config(self) -> Config:
        """The client configuration: retries with backoff, bounded timeouts."""
        return Config(
            retries={"max_attempts": self.max_attempts, "mode": self.retry_mode},
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
        )


# A callback that receives every new client; tests use it to register
# handlers on the client's event system (for example to inject throttling).
ClientHook = Callable[[Any], None]


class ClientFactory:
    """Makes and caches one boto3 client per service and region.

    A boto3 session is not safe to share between threads, the clients it makes
    are; so clients are created under a lock and then used freely from the
    threads that publish to each region.
    """

    def __init__(
        self,
        settings: AwsSettings | None = None,
        *,
        on_client: ClientHook | None = None,
    ) -> None:
        self.settings = settings or AwsSettings()
        self.on_client = on_client
        self._lock = threading.Lock()
        self._session: boto3.session.Session | None = None
        self._clients: dict[tuple[str, str], Any] = {}

    def _get_session(self) -> boto3.session.Session:
        if self._session is None:
            try:
                self._session = boto3.session.Session(
                    profile_name=self.settings.profile
                )
            except ProfileNotFound as error:
                msg = f"AWS profile {self.settings.profile!r} not found"
                raise UsageError(
                    msg, hint="list profiles with `aws configure list-profiles`"
                ) from error
        return self._session

    def client(self, service: str, region: str) -> Any:
        """The client for ``service`` in ``region``, made on first use."""
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                with aws_errors(f"create {service} client", region):
                    client = self._get_session().client(
                        service,
                        region_name=region,
                        endpoint_url=self.settings.endpoint_url,
                        config=self.settings.botocore_config(),
                    )
                if self.on_client is not None:
                    self.on_client(client)
                self._clients[key] = client
            return self._clients[key]


def error_code(error: BaseException) -> str | None:
    """The AWS error code of a ``ClientError``, or None for anything else."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def is_not_found(error: BaseException) -> bool:
    """True when AWS says the resource asked for does not exist."""
    if not isinstance(error, ClientError):
        return False
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = error_code(error) or ""
    return status == 404 or code in {"404", "NoSuchKey", "ResourceNotFoundException"}


def describe_error(error: BaseException) -> tuple[str, str]:
    """A one-line reason and a next step for a botocore failure."""
    if isinstance(error, ClientError):
        code = error_code(error) or "Unknown"
        text = error.response.get("Error", {}).get("Message") or ""
        reason = f"{code}: {text}" if text else code
        return reason, HINTS_BY_CODE.get(code, DEFAULT_HINT)
    if isinstance(error, EndpointConnectionError):
        return str(error), "check the network, the region name and --endpoint-url"
    if isinstance(error, NoCredentialsError):
        return (
            "no AWS credentials found",
            "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or pass --profile",
        )
    if isinstance(error, NoRegionError):
        return "no AWS region given", "pass --region"
    return str(error), DEFAULT_HINT


@contextmanager
def aws_errors(operation: str, resource: str) -> Iterator[None]:
    """Turn any botocore failure inside the block into an ``AwsError``.

    The message reads ``<operation> <resource> failed: <code>: <reason>``.
    """
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        reason, hint = describe_error(error)
        msg = f"{operation} {resource} failed: {reason}"
        raise AwsError(msg, hint=hint) from error


def environment_settings(
    env: Mapping[str, str],
    *,
    profile: str | None = None,
    endpoint_url: str | None = None,
) -> AwsSettings:
    """Settings from the command line, falling back to ``AWS_ENDPOINT_URL``.

    botocore reads ``AWS_ENDPOINT_URL`` itself too; reading it here as well
    makes the endpoint in use visible to ``--dry-run`` and to error messages.
    """
    return AwsSettings(
        profile=profile,
        endpoint_url=endpoint_url or env.get("AWS_ENDPOINT_URL") or None,
    )


# Function side
