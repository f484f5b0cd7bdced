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

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3.session
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)
from botocore.exceptions import ConnectionError as BotocoreConnectionError

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
    "403": "check that the credentials in use may read this bucket",
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
    max_attempts: int = DEFAULT_MAX_ATTEMPTS  # counting the first attempt
    retry_mode: str = DEFAULT_RETRY_MODE

    def botocore_config(self) -> Config:
        """The client configuration: retries with backoff, bounded timeouts."""
        return Config(
            retries={"total_max_attempts": self.max_attempts, "mode": self.retry_mode},
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
        self._clients: dict[tuple[str, str, int], Any] = {}

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

    def client(
        self, service: str, region: str, *, max_attempts: int | None = None
    ) -> Any:
        """The client for ``service`` in ``region``, made on first use.

        ``max_attempts`` overrides the retry count, e.g. 1 for a call that is
        not safe to repeat blindly and is retried by its caller instead.
        """
        attempts = max_attempts or self.settings.max_attempts
        key = (service, region, attempts)
        with self._lock:
            if key not in self._clients:
                config = replace(self.settings, max_attempts=attempts)
                with aws_errors(f"create {service} client", region):
                    client = self._get_session().client(
                        service,
                        region_name=region,
                        endpoint_url=self.settings.endpoint_url,
                        config=config.botocore_config(),
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
    cause = error.__context__
    if isinstance(error, Boto3Error) and isinstance(cause, ClientError):
        # The transfer manager wraps the S3 error; the code inside is what counts.
        return describe_error(cause)
    return str(error), DEFAULT_HINT


@contextmanager
def aws_errors(operation: str, resource: str) -> Iterator[None]:
    """Turn any botocore failure inside the block into an ``AwsError``.

    The message reads ``<operation> <resource> failed: <code>: <reason>``.
    """
    try:
        yield
    except (ClientError, BotoCoreError, Boto3Error) as error:
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


# Uploads above this size go in parts, each with its own SHA-256 checksum, so a
# dropped connection costs one part rather than the whole zip.
MULTIPART_THRESHOLD_BYTES = 16 * 1024 * 1024
MULTIPART_CHUNK_BYTES = 16 * 1024 * 1024
UPLOAD_CONCURRENCY = 4
# User metadata on every uploaded zip: the hex SHA-256 of the whole file. S3's
# own checksum of a multipart object is a checksum of part checksums, so it
# cannot be compared with the zip's hash; this can.
SHA256_METADATA_KEY = "layerbuild-sha256"
# The action that lets another account use a layer version.
GET_LAYER_VERSION_ACTION = "lambda:GetLayerVersion"
PUBLIC_PRINCIPAL = "*"
# PublishLayerVersion is not idempotent: repeating it after a lost answer makes
# a second version. So it runs on a client without botocore's retries and is
# retried here, after checking whether the lost attempt went through.
PUBLISH_ATTEMPTS = 6
PUBLISH_BACKOFF_SECONDS = 1.0
PUBLISH_BACKOFF_CAP_SECONDS = 20.0
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)


def is_throttling(error: BaseException | None) -> bool:
    """True when AWS refused a call for its rate: it was not carried out."""
    if not isinstance(error, ClientError):
        return False
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 429 or error_code(error) in THROTTLING_CODES


def outcome_unknown(error: BaseException | None) -> bool:
    """True when a call may or may not have been carried out.

    A dropped connection, a timeout or a server error can come after AWS did
    the work; only asking again tells.
    """
    if isinstance(error, (BotocoreConnectionError, HTTPClientError)):
        return True
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return isinstance(status, int) and status >= 500
    return False


class LayerGateway:
    """The S3 and Lambda calls layerbuild makes for layers, in one region.

    Each method makes the calls its name says, pages through every result,
    and raises ``AwsError`` naming the operation and the resource on failure.
    """

    def __init__(
        self,
        factory: ClientFactory,
        region: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.factory = factory
        self.region = region
        self.sleep = sleep

    @property
    def s3(self) -> Any:
        return self.factory.client("s3", self.region)

    @property
    def lambda_(self) -> Any:
        return self.factory.client("lambda", self.region)

    def bucket_region(self, bucket: str) -> str:
        """The region the bucket lives in; AwsError when it does not exist."""
        try:
            with aws_errors("find bucket", f"s3://{bucket} (from {self.region})"):
                response = self.s3.head_bucket(Bucket=bucket)
        except AwsError as error:
            # HEAD answers carry no body: a bare 404 is all S3 says.
            if is_not_found(error.__cause__ or error):
                msg = f"bucket s3://{bucket} does not exist (asked in {self.region})"
                raise AwsError(msg, hint=HINTS_BY_CODE["NoSuchBucket"]) from error
            raise
        region = response.get("BucketRegion") or response["ResponseMetadata"][
            "HTTPHeaders"
        ].get("x-amz-bucket-region")
        # S3 reports no region only for the oldest endpoint, us-east-1.
        return str(region or "us-east-1")

    def object_sha256(self, bucket: str, key: str) -> str | None:
        """The hex SHA-256 recorded on an uploaded zip, or None if absent."""
        try:
            with aws_errors("look up", f"s3://{bucket}/{key}"):
                response = self.s3.head_object(Bucket=bucket, Key=key)
        except AwsError as error:
            if is_not_found(error.__cause__ or error):
                return None
            raise
        return response.get("Metadata", {}).get(SHA256_METADATA_KEY)

    def upload_zip(self, path: Path, bucket: str, key: str, sha256: str) -> None:
        """Upload a zip, in parts above the threshold, each part checksummed."""
        transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD_BYTES,
            multipart_chunksize=MULTIPART_CHUNK_BYTES,
            max_concurrency=UPLOAD_CONCURRENCY,
        )
        extra = {
            "ChecksumAlgorithm": "SHA256",
            "ContentType": "application/zip",
            "Metadata": {SHA256_METADATA_KEY: sha256},
        }
        with aws_errors("upload", f"{path} to s3://{bucket}/{key}"):
            self.s3.upload_file(
                str(path), bucket, key, ExtraArgs=extra, Config=transfer
            )

    def publish_layer_version(
        self,
        *,
        name: str,
        description: str,
        bucket: str,
        key: str,
        runtimes: list[str],
        architectures: list[str],
        license_info: str | None,
        find_existing: Callable[[], dict[str, Any] | None] | None = None,
    ) -> dict[str, Any]:
        """Publish a layer version from an S3 object; returns Lambda's answer.

        Throttling is retried with backoff. When an attempt's outcome is
        unknown (connection dropped, timeout, server error), ``find_existing``
        is asked first and its version is returned if the attempt went
        through, so a retry never publishes the same content twice.
        """
        arguments: dict[str, Any] = {
            "LayerName": name,
            "Description": description,
            "Content": {"S3Bucket": bucket, "S3Key": key},
            "CompatibleRuntimes": runtimes,
            "CompatibleArchitectures": architectures,
        }
        if license_info:
            arguments["LicenseInfo"] = license_info
        client = self.factory.client("lambda", self.region, max_attempts=1)
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                with aws_errors("publish layer", f"{name} in {self.region}"):
                    response: dict[str, Any] = client.publish_layer_version(**arguments)
                return response
            except AwsError as error:
                cause = error.__cause__
                retryable = is_throttling(cause) or outcome_unknown(cause)
                if not retryable or attempt == PUBLISH_ATTEMPTS:
                    raise
                if outcome_unknown(cause) and find_existing is not None:
                    existing = find_existing()
                    if existing is not None:
                        return existing
            self.sleep(
                min(
                    PUBLISH_BACKOFF_SECONDS * 2 ** (attempt - 1),
                    PUBLISH_BACKOFF_CAP_SECONDS,
                )
            )
        raise AssertionError  # pragma: no cover - the loop returns or raises

    def layer_versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of a layer, newest first; empty if there is none."""
        versions: list[dict[str, Any]] = []
        with aws_errors("list versions of layer", f"{name} in {self.region}"):
            pages = self.lambda_.get_paginator("list_layer_versions")
            for page in pages.paginate(LayerName=name):
                versions.extend(page.get("LayerVersions", []))
        return sorted(versions, key=lambda v: int(v["Version"]), reverse=True)

    def layers(self) -> list[dict[str, Any]]:
        """Every layer in the region with its latest version."""
        layers: list[dict[str, Any]] = []
        with aws_errors("list layers in", self.region):
            for page in self.lambda_.get_paginator("list_layers").paginate():
                layers.extend(page.get("Layers", []))
        return sorted(layers, key=lambda layer: str(layer["LayerName"]))

    def layer_version_statements(self, name: str, version: int) -> list[dict[str, Any]]:
        """The statements of a layer version's policy; empty if it has none."""
        resource = f"{name}:{version} in {self.region}"
        try:
            with aws_errors("read the policy of layer", resource):
                response = self.lambda_.get_layer_version_policy(
                    LayerName=name, VersionNumber=version
                )
        except AwsError as error:
            if is_not_found(error.__cause__ or error):
                return []
            raise
        policy = json.loads(response.get("Policy") or "{}")
        statements = policy.get("Statement", [])
        return [statements] if isinstance(statements, dict) else list(statements)

    def add_layer_version_permission(
        self,
        *,
        name: str,
        version: int,
        statement_id: str,
        principal: str,
        organization_id: str | None = None,
        public: bool = False,
    ) -> None:
        """Let a principal use a layer version (``lambda:GetLayerVersion``).

        ``*`` without an organization grants every AWS account: it is refused
        unless the caller says ``public=True``, so no other path can grant it
        by mistake.
        """
        if principal == PUBLIC_PRINCIPAL and organization_id is None and not public:
            msg = f"refusing to share layer {name}:{version} with every AWS account"
            raise UsageError(msg, hint="pass --share-public to mean it")
        arguments: dict[str, Any] = {
            "LayerName": name,
            "VersionNumber": version,
            "StatementId": statement_id,
            "Action": GET_LAYER_VERSION_ACTION,
            "Principal": principal,
        }
        if organization_id is not None:
            arguments["OrganizationId"] = organization_id
        resource = f"{name}:{version} in {self.region} with {statement_id}"
        with aws_errors("share layer", resource):
            self.lambda_.add_layer_version_permission(**arguments)

    def delete_layer_version(self, name: str, version: int) -> None:
        """Delete one layer version (Lambda answers success if it is gone)."""
        with aws_errors("delete layer version", f"{name}:{version} in {self.region}"):
            self.lambda_.delete_layer_version(LayerName=name, VersionNumber=version)

    def function_layers(self) -> dict[str, list[str]]:
        """Layer version ARNs used by each function and function version seen."""
        used: dict[str, list[str]] = {}
        with aws_errors("list functions in", self.region):
            pages = self.lambda_.get_paginator("list_functions")
            for page in pages.paginate(FunctionVersion="ALL"):
                for function in page.get("Functions", []):
                    arns = [layer["Arn"] for layer in function.get("Layers", [])]
                    if arns:
                        used[str(function["FunctionArn"])] = arns
        return used


# Function side

# Conflicts on functions and aliases: AWS says ResourceConflictException, moto
# says ConflictException for an alias name already taken.
CONFLICT_CODES = frozenset({"ResourceConflictException", "ConflictException"})
NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "NotFound", "404"})
CONFLICT_HINT = "rerun when the other change has finished"
UPDATE_POLL_SECONDS = 2.0
UPDATE_TIMEOUT_SECONDS = 600.0


class FunctionGateway:
    """Lambda's function-side calls (and CloudWatch alarms) in one region.

    Each method makes one kind of call and returns AWS's answer as a dict;
    deciding what to call, and checking Lambda's rules first, is the job of
    ``layerbuild.functions``.
    """

    def __init__(self, factory: ClientFactory, region: str) -> None:
        self.factory = factory
        self.region = region

    @property
    def _lambda(self) -> Any:
        return self.factory.client("lambda", self.region)

    def _call(
        self,
        operation: str,
        resource: str,
        method: str,
        *,
        conflict: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Call one Lambda API; a conflict gets its own message when given."""
        with aws_errors(operation, resource):
            try:
                response: dict[str, Any] = getattr(self._lambda, method)(**params)
            except ClientError as error:
                if conflict and error_code(error) in CONFLICT_CODES:
                    msg = f"{operation} {resource} failed: {conflict}"
                    raise AwsError(msg, hint=CONFLICT_HINT) from error
                raise
        response.pop("ResponseMetadata", None)
        return response

    # -- Functions and versions ---------------------------------------------

    def get_function(self, function: str) -> dict[str, Any]:
        """Configuration and code location (``Code.Location``) of ``$LATEST``."""
        return self._call(
            "get function", self._where(function), "get_function", FunctionName=function
        )

    def get_configuration(
        self, function: str, qualifier: str | None = None
    ) -> dict[str, Any]:
        """One version's configuration (``$LATEST`` when no qualifier)."""
        params: dict[str, Any] = {"FunctionName": function}
        resource = self._where(function)
        if qualifier is not None:
            params["Qualifier"] = qualifier
            resource = self._where(f"{function}:{qualifier}")
        return self._call(
            "get configuration of", resource, "get_function_configuration", **params
        )

    def update_layers(
        self, function: str, layer_arns: list[str], *, revision_id: str | None
    ) -> dict[str, Any]:
        """Set the function's layers; refused if it changed since ``revision_id``."""
        params: dict[str, Any] = {"FunctionName": function, "Layers": layer_arns}
        if revision_id:
            params["RevisionId"] = revision_id
        return self._call(
            "update layers of",
            self._where(function),
            "update_function_configuration",
            conflict="the function changed or is being updated by someone else",
            **params,
        )

    def wait_until_updated(
        self,
        function: str,
        *,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        timeout: float = UPDATE_TIMEOUT_SECONDS,
    ) -> dict[str, Any]:
        """Wait until no update of ``$LATEST`` is in progress; its configuration.

        ``sleep`` and ``clock`` are injected so tests never wait for real.
        """
        deadline = clock() + timeout
        while True:
            config = self.get_configuration(function)
            state = config.get("State", "Active")
            status = config.get("LastUpdateStatus", "Successful")
            if status == "Failed" or state == "Failed":
                reason = config.get("LastUpdateStatusReason") or config.get(
                    "StateReason", "no reason given"
                )
                msg = f"the last update of {self._where(function)} failed: {reason}"
                raise AwsError(msg, hint="fix the function's configuration and rerun")
            if status != "InProgress" and state != "Pending":
                return config
            if clock() >= deadline:
                msg = (
                    f"{self._where(function)} was still updating after {timeout:.0f} s"
                )
                raise AwsError(msg, hint="rerun when the update has finished")
            sleep(UPDATE_POLL_SECONDS)

    def publish_version(
        self, function: str, *, code_sha256: str | None, description: str = ""
    ) -> dict[str, Any]:
        """Publish ``$LATEST`` as a numbered version.

        With ``code_sha256`` Lambda refuses if the code changed since it was read.
        """
        params: dict[str, Any] = {"FunctionName": function, "Description": description}
        if code_sha256:
            params["CodeSha256"] = code_sha256
        return self._call(
            "publish a version of",
            self._where(function),
            "publish_version",
            conflict="the function is being updated; rerun when it has finished",
            **params,
        )

    def list_versions(self, function: str) -> list[dict[str, Any]]:
        """Every version of the function, ``$LATEST`` included, as AWS lists them."""
        versions: list[dict[str, Any]] = []
        with aws_errors("list versions of", self._where(function)):
            paginator = self._lambda.get_paginator("list_versions_by_function")
            for page in paginator.paginate(FunctionName=function):
                versions.extend(page.get("Versions", []))
        return versions

    def get_layer_version(self, layer: str, version: int) -> dict[str, Any]:
        """One layer version, by layer name or layer ARN plus the version number.

        (Not GetLayerVersionByArn: moto, the test stand-in, lacks it.)
        """
        return self._call(
            "get layer version",
            self._where(f"{layer}:{version}"),
            "get_layer_version",
            LayerName=layer,
            VersionNumber=version,
        )

    # -- Aliases ------------------------------------------------------------

    def create_alias(
        self,
        function: str,
        alias: str,
        *,
        version: str,
        description: str = "",
        routing: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """Create ``alias`` on ``version``, optionally routing to one more."""
        params: dict[str, Any] = {
            "FunctionName": function,
            "Name": alias,
            "FunctionVersion": version,
            "Description": description,
        }
        if routing:
            params["RoutingConfig"] = {"AdditionalVersionWeights": dict(routing)}
        return self._call(
            "create alias",
            self._where(f"{function}:{alias}"),
            "create_alias",
            conflict=f"alias {alias} already exists; use 'layerbuild alias update'",
            **params,
        )

    def find_alias(self, function: str, alias: str) -> dict[str, Any] | None:
        """The alias, or None when the function has no alias of that name."""
        resource = self._where(f"{function}:{alias}")
        with aws_errors("get alias", resource):
            try:
                response: dict[str, Any] = self._lambda.get_alias(
                    FunctionName=function, Name=alias
                )
            except ClientError as error:
                if error_code(error) in NOT_FOUND_CODES:
                    return None
                raise
        response.pop("ResponseMetadata", None)
        return response

    def update_alias(
        self,
        function: str,
        alias: str,
        *,
        version: str | None = None,
        description: str | None = None,
        routing: Mapping[str, float] | None = None,
        revision_id: str | None = None,
    ) -> dict[str, Any]:
        """Change an alias; an empty ``routing`` clears any routing it has.

        With ``revision_id`` Lambda refuses if the alias changed since it was read.
        """
        params: dict[str, Any] = {"FunctionName": function, "Name": alias}
        if version is not None:
            params["FunctionVersion"] = version
        if description is not None:
            params["Description"] = description
        if routing is not None:
            params["RoutingConfig"] = {"AdditionalVersionWeights": dict(routing)}
        if revision_id:
            params["RevisionId"] = revision_id
        return self._call(
            "update alias",
            self._where(f"{function}:{alias}"),
            "update_alias",
            conflict=f"alias {alias} changed meanwhile; read it again and rerun",
            **params,
        )

    def delete_alias(self, function: str, alias: str) -> None:
        """Delete an alias; the versions it pointed to stay."""
        self._call(
            "delete alias",
            self._where(f"{function}:{alias}"),
            "delete_alias",
            FunctionName=function,
            Name=alias,
        )

    def list_aliases(self, function: str) -> list[dict[str, Any]]:
        """Every alias of the function."""
        aliases: list[dict[str, Any]] = []
        with aws_errors("list aliases of", self._where(function)):
            paginator = self._lambda.get_paginator("list_aliases")
            for page in paginator.paginate(FunctionName=function):
                aliases.extend(page.get("Aliases", []))
        return aliases

    # -- CloudWatch ---------------------------------------------------------

    def alarm_state(self, alarm: str) -> str:
        """The state of a metric or composite alarm: OK, ALARM or INSUFFICIENT_DATA."""
        resource = f"{alarm} ({self.region})"
        with aws_errors("describe alarm", resource):
            response = self.factory.client("cloudwatch", self.region).describe_alarms(
                AlarmNames=[alarm], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
            )
        found = [
            *response.get("MetricAlarms", []),
            *response.get("CompositeAlarms", []),
        ]
        if not found:
            msg = f"no CloudWatch alarm named {alarm} in {self.region}"
            raise UsageError(msg, hint="check --alarm and --region")
        return str(found[0]["StateValue"])

    def _where(self, resource: str) -> str:
        return f"{resource} ({self.region})"
