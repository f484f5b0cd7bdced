"""The function side: attach layers, publish versions, move aliases, release.

Every operation follows the same order: read what AWS has, check Lambda's
rules (``layerbuild.rules``) on the complete result, and only then change
anything. A refused request therefore leaves the function as it was. AWS is
reached only through ``layerbuild.aws.FunctionGateway``; time only through an
injected ``Clock``, so tests never wait for real.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from layerbuild.errors import (
    AwsError,
    RolledBackError,
    RuleError,
    UsageError,
)
from layerbuild.records import LayerRecord
from layerbuild.report import Reporter
from layerbuild.rules import (
    LATEST,
    LayerFacts,
    LayerRequest,
    SizePart,
    alias_version,
    check_compatible,
    check_layer_count,
    check_routing,
    check_same_settings,
    check_unzipped_total,
    find_collisions,
    merge_layers,
    parse_layer_arn,
    parse_layer_request,
    parse_routing,
    parse_weight,
    size_table,
)

if TYPE_CHECKING:  # the gateway module loads boto3; the core needs only its type
    from layerbuild.aws import FunctionGateway

DEFAULT_DIST = Path("dist")

# How long a download of a presigned URL may stall, and how much of a zip's end
# is read first: the central directory of a layer rarely needs more.
DOWNLOAD_TIMEOUT_SECONDS = 30
ZIP_TAIL_BYTES = 1024 * 1024

# How often a stepped release looks at its alarm while it waits.
ALARM_POLL_SECONDS = 30.0

# What makes two versions the same for PublishVersion: Lambda returns the
# newest version instead of a new one when none of these changed. Description
# is left out: a version's own description is set when it is published.
VERSION_IDENTITY = (
    "CodeSha256",
    "Role",
    "Handler",
    "Runtime",
    "MemorySize",
    "Timeout",
    "Environment",
    "Layers",
    "DeadLetterConfig",
    "TracingConfig",
    "VpcConfig",
    "Architectures",
    "EphemeralStorage",
    "KMSKeyArn",
    "FileSystemConfigs",
    "ImageConfigResponse",
    "LoggingConfig",
)


@dataclass(frozen=True)
class Clock:
    """Time as this module sees it: replaced in tests by a fake that only counts."""

    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], float] = time.monotonic


# -- Published-layer records and local zips -----------------------------------


def layer_zips(dist: Path) -> dict[str, Path]:
    """layerbuild's zips in ``dist``, by content key, from their manifests."""
    found: dict[str, Path] = {}
    for manifest in sorted(dist.glob("*.json")):
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            key, name = data["content_key"], data["zip"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a layer manifest: nothing to learn from it
        zip_path = dist / str(name)
        if zip_path.is_file():
            found[str(key)] = zip_path
    return found


def zip_files(path: Path) -> frozenset[str]:
    """The file paths (not folders) a zip holds."""
    with zipfile.ZipFile(path) as archive:
        return frozenset(
            info.filename for info in archive.infolist() if not info.is_dir()
        )


def zip_unzipped_bytes(archive: zipfile.ZipFile) -> int:
    """The sum of the sizes of a zip's files once extracted."""
    return sum(info.file_size for info in archive.infolist() if not info.is_dir())


# -- Reading the size of a zip behind a URL ------------------------------------


class SizeUnknown(Exception):
    """The unzipped size of some content cannot be learnt; says why."""


Opener = Callable[..., Any]  # urllib.request.urlopen's shape


def remote_unzipped_bytes(url: str, *, opener: Opener = urllib.request.urlopen) -> int:
    """The unzipped size of the zip at ``url`` (a presigned S3 URL).

    Only the end of the zip, where its central directory lists every file's
    size, is fetched with range requests: the last MiB first, and once more
    from the directory's start when it is longer than that. A server that
    ignores ranges sends the whole zip, which is spooled to a temporary file.
    """
    if not url.startswith(("https://", "http://")):
        msg = f"{url or 'the location'} is not a downloadable URL"
        raise SizeUnknown(msg)
    where = url.split("?", 1)[0]  # a presigned URL's query holds a signature
    wanted = f"bytes=-{ZIP_TAIL_BYTES}"
    try:
        for _attempt in range(2):
            try:
                return _fetch_and_sum(url, wanted, opener)
            except _FetchFrom as short:
                wanted = f"bytes={short.position}-"
    except (urllib.error.URLError, OSError, ValueError) as error:
        if isinstance(error, urllib.error.HTTPError):
            error.close()  # an HTTP error answer holds its connection open
        reason = getattr(error, "reason", error)
        msg = f"{where} could not be read ({reason})"
        raise SizeUnknown(msg) from None
    except zipfile.BadZipFile as error:
        msg = f"{where} is not a readable zip ({error})"
        raise SizeUnknown(msg) from None
    msg = f"{where}: the zip's central directory could not be reached with ranges"
    raise SizeUnknown(msg)


class _FetchFrom(Exception):
    """The zip's central directory starts before the bytes fetched so far."""

    def __init__(self, position: int) -> None:
        super().__init__(position)
        self.position = position


def _fetch_and_sum(url: str, wanted: str, opener: Opener) -> int:
    request = urllib.request.Request(url, headers={"Range": wanted})
    with (
        opener(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response,
        tempfile.TemporaryFile() as spool,
    ):
        while chunk := response.read(1024 * 1024):
            spool.write(chunk)
        fetched = spool.tell()
        spool.seek(0)
        if getattr(response, "status", 200) != 206:
            with zipfile.ZipFile(spool) as archive:
                return zip_unzipped_bytes(archive)
        content_range = response.headers.get("Content-Range", "")
        try:
            total = int(content_range.rsplit("/", 1)[1])
        except (IndexError, ValueError):
            msg = f"a partial answer without a usable Content-Range: {content_range!r}"
            raise ValueError(msg) from None
        view = _Shifted(spool, total - fetched, total)
        with zipfile.ZipFile(view) as archive:  # type: ignore[call-overload]
            return zip_unzipped_bytes(archive)


class _Shifted:
    """The last bytes of a zip, in a spool file, read at their offsets in the zip."""

    def __init__(self, spool: IO[bytes], offset: int, total: int) -> None:
        self.spool, self.offset, self.total, self.position = spool, offset, total, 0

    def seek(self, position: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.position, 2: self.total}[whence]
        self.position = base + position
        return self.position

    def tell(self) -> int:
        return self.position

    def read(self, size: int = -1) -> bytes:
        if self.position < self.offset:
            raise _FetchFrom(self.position)
        self.spool.seek(self.position - self.offset)
        data = self.spool.read(size)
        self.position += len(data)
        return data


SizeReader = Callable[[str], int]


# -- Attaching layers ---------------------------------------------------------


@dataclass(frozen=True)
class FunctionFacts:
    """What attach needs to know about a function's ``$LATEST``."""

    name: str
    region: str
    runtime: str | None  # None for a container image function
    architecture: str
    revision_id: str | None
    code_sha256: str
    zipped_bytes: int
    layer_arns: tuple[str, ...]
    code_location: str | None

    @classmethod
    def from_get_function(
        cls, name: str, region: str, answer: dict[str, Any]
    ) -> FunctionFacts:
        """Read the facts from a GetFunction answer."""
        config = answer["Configuration"]
        image = config.get("PackageType") == "Image"
        return cls(
            name=name,
            region=region,
            runtime=None if image else config.get("Runtime"),
            architecture=(config.get("Architectures") or ["x86_64"])[0],
            revision_id=config.get("RevisionId"),
            code_sha256=config.get("CodeSha256", ""),
            zipped_bytes=int(config.get("CodeSize") or 0),
            layer_arns=tuple(layer["Arn"] for layer in config.get("Layers") or []),
            code_location=(answer.get("Code") or {}).get("Location"),
        )


@dataclass(frozen=True)
class AttachPlan:
    """The layers a function has and would have, and whether it all fits."""

    function: FunctionFacts
    before: tuple[LayerFacts, ...]
    after: tuple[LayerFacts, ...]
    code: SizePart
    warnings: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        """Whether applying the plan changes the function at all."""
        return [layer.arn for layer in self.after] != list(self.function.layer_arns)

    @property
    def size_parts(self) -> list[SizePart]:
        return [
            self.code,
            *(
                SizePart(
                    f"layer {layer.label}", layer.unzipped_bytes, layer.size_source
                )
                for layer in self.after
            ),
        ]

    def describe(self) -> list[str]:
        """The plan as lines for the terminal."""
        fn = self.function
        lines = [
            f"{fn.name} ({fn.region}, {fn.runtime}, {fn.architecture}): "
            f"{len(self.before)} layers now, {len(self.after)} after"
        ]
        before = {layer.layer_arn: layer for layer in self.before}
        for position, layer in enumerate(self.after, start=1):
            previous = before.get(layer.layer_arn)
            if previous is None:
                change = "added"
            elif previous.arn != layer.arn:
                change = f"replaces {previous.label}"
            else:
                change = "kept"
            lines.append(f"  {position}. {layer.arn} ({change})")
        after = {layer.layer_arn for layer in self.after}
        lines += [
            f"  -  {layer.arn} (removed)"
            for layer in self.before
            if layer.layer_arn not in after
        ]
        lines.append("unzipped size:")
        lines += size_table(self.size_parts)
        return lines


def code_size_part(
    function: FunctionFacts,
    *,
    code_size: int | None,
    code_zip: Path | None,
    read_size: SizeReader,
    warnings: list[str],
) -> SizePart:
    """The unzipped size of the function's own code, or why it is unknown."""
    label = "function code"
    if code_size is not None:
        return SizePart(label, code_size, "--code-size")
    if code_zip is not None:
        try:
            digest = base64.b64encode(hashlib.sha256(code_zip.read_bytes()).digest())
            with zipfile.ZipFile(code_zip) as archive:
                size = zip_unzipped_bytes(archive)
        except (OSError, zipfile.BadZipFile) as error:
            msg = f"--code-zip {code_zip}: not a readable zip ({error})"
            raise UsageError(msg) from None
        if digest.decode() != function.code_sha256:
            warnings.append(
                f"{code_zip} is not the code {function.name} runs (its sha256 "
                "differs from the function's CodeSha256); its size is used anyway"
            )
        return SizePart(label, size, str(code_zip))
    try:
        return SizePart(label, read_size(function.code_location or ""), "Code.Location")
    except SizeUnknown as error:
        reason = f"{error}; give --code-size or --code-zip"
        return SizePart(label, None, reason)


def _layer_from_aws(
    gateway: FunctionGateway,
    layer: str,
    version: int,
    *,
    records: Sequence[LayerRecord],
    read_size: SizeReader,
    new: bool,
) -> LayerFacts:
    """Facts about one layer version: AWS's answer plus the records' size."""
    answer = gateway.get_layer_version(layer, version)
    arn = answer["LayerVersionArn"]
    parts = parse_layer_arn(arn)
    label = f"{parts.name}:{version}" if parts else arn
    content = answer.get("Content") or {}
    record = next((r for r in records if r.layer_version_arn == arn), None)
    if record is not None and record.unzipped_bytes is not None:
        size: int | None = record.unzipped_bytes
        source = "records"
    else:
        try:
            size, source = read_size(content.get("Location", "")), "Content.Location"
        except SizeUnknown as error:
            size, source = None, str(error)
    return LayerFacts(
        arn=arn,
        label=label,
        unzipped_bytes=size,
        size_source=source,
        runtimes=tuple(answer.get("CompatibleRuntimes") or ()),
        architectures=tuple(answer.get("CompatibleArchitectures") or ()),
        zipped_bytes=content.get("CodeSize"),
        new=new,
    )


def _current_layer(
    gateway: FunctionGateway,
    arn: str,
    *,
    records: Sequence[LayerRecord],
    read_size: SizeReader,
) -> LayerFacts:
    """A layer the function has now; one we may not read stays of unknown size."""
    parts = parse_layer_arn(arn)
    if parts is None or parts.version is None:
        return LayerFacts(arn, arn, None, "not a layer version ARN")
    try:
        return _layer_from_aws(
            gateway,
            parts.layer_arn,
            parts.version,
            records=records,
            read_size=read_size,
            new=False,
        )
    except AwsError as error:
        label = f"{parts.name}:{parts.version}"
        return LayerFacts(arn, label, None, f"not readable: {error.message}")


def _record_for(
    request: LayerRequest, function: FunctionFacts, records: Sequence[LayerRecord]
) -> LayerRecord:
    """The newest published layer of a recipe that fits the function."""
    in_region = [
        r for r in records if r.recipe == request.name and r.region == function.region
    ]
    if not in_region:
        msg = f"no published layer of recipe {request.name} in {function.region}"
        raise UsageError(
            msg,
            hint=f"run 'layerbuild publish {request.name} --region {function.region}'"
            " or pass --records",
        )
    fitting = [
        r
        for r in in_region
        if r.architecture == function.architecture and function.runtime in r.runtimes
    ]
    if not fitting:
        published = ", ".join(
            sorted({f"{'/'.join(r.runtimes)} {r.architecture}" for r in in_region})
        )
        msg = (
            f"recipe {request.name} is published in {function.region} for "
            f"{published}, not for {function.name}'s {function.runtime} "
            f"{function.architecture}"
        )
        raise RuleError(msg, hint="add the runtime or architecture to the recipe")
    return max(fitting, key=lambda r: r.version)


def plan_attach(
    gateway: FunctionGateway,
    function: str,
    layers: Sequence[str],
    *,
    records: Sequence[LayerRecord] = (),
    replace: bool = False,
    code_size: int | None = None,
    code_zip: Path | None = None,
    dist: Path | None = None,
    read_size: SizeReader = remote_unzipped_bytes,
) -> AttachPlan:
    """Work out the function's layers after an attach and check every rule.

    Raises ``LimitError``/``RuleError`` (exit status 3) when the result would
    break one of Lambda's rules; nothing has been changed at that point.
    """
    requests = [parse_layer_request(text) for text in layers]
    facts = FunctionFacts.from_get_function(
        function, gateway.region, gateway.get_function(function)
    )
    warnings: list[str] = []

    wanted = []
    for request in requests:
        if request.kind == "recipe":
            record = _record_for(request, facts, records)
            parts = parse_layer_arn(record.layer_version_arn)
            if parts is None or parts.version is None:
                msg = f"records: {record.layer_version_arn} is not a layer version ARN"
                raise UsageError(msg)
            layer_id, version = parts.layer_arn, parts.version
        else:
            assert request.version is not None  # parse_layer_request requires one
            layer_id = request.arn.layer_arn if request.arn else request.name
            version = request.version
        wanted.append(
            _layer_from_aws(
                gateway,
                layer_id,
                version,
                records=records,
                read_size=read_size,
                new=True,
            )
        )
    current = [
        _current_layer(gateway, arn, records=records, read_size=read_size)
        for arn in facts.layer_arns
    ]

    after = merge_layers(current, wanted, replace=replace)
    check_layer_count(function, after)
    for layer in wanted:
        check_compatible(function, facts.runtime, facts.architecture, layer)
    code = code_size_part(
        facts,
        code_size=code_size,
        code_zip=code_zip,
        read_size=read_size,
        warnings=warnings,
    )
    plan = AttachPlan(facts, tuple(current), tuple(after), code)
    warnings += check_unzipped_total(function, plan.size_parts)
    if dist is not None:
        warnings += collision_warnings(after, records, dist)
    return AttachPlan(facts, tuple(current), tuple(after), code, tuple(warnings))


def collision_warnings(
    layers: Sequence[LayerFacts], records: Sequence[LayerRecord], dist: Path
) -> list[str]:
    """Warnings for files that several of the layers put at the same path.

    Only layers whose zips layerbuild still has in ``dist`` can be looked into.
    """
    zips = layer_zips(dist)
    keys = {record.layer_version_arn: record.content_key for record in records}
    contents = []
    for layer in layers:
        zip_path = zips.get(keys.get(layer.arn, ""))
        if zip_path is not None:
            contents.append((layer.label, zip_files(zip_path)))
    warnings = []
    for earlier, later, paths in find_collisions(contents):
        shown = ", ".join(paths[:3]) + (", ..." if len(paths) > 3 else "")
        warnings.append(
            f"layers {earlier} and {later} both hold {len(paths)} file(s) "
            f"({shown}); the function sees {later}'s copies"
        )
    return warnings


def apply_attach(
    gateway: FunctionGateway, plan: AttachPlan, *, clock: Clock, reporter: Reporter
) -> dict[str, Any]:
    """Give the function the planned layers; its configuration afterwards.

    The update carries the revision the plan was made from, so a function
    changed in between is refused by Lambda rather than overwritten.
    """
    name = plan.function.name
    if not plan.changes:
        reporter.step(f"{name} already has these layers; nothing to change")
        return gateway.get_configuration(name)
    gateway.wait_until_updated(name, sleep=clock.sleep, clock=clock.now)
    reporter.step(f"updating the layers of {name}")
    gateway.update_layers(
        name,
        [layer.arn for layer in plan.after],
        revision_id=plan.function.revision_id,
    )
    config = gateway.wait_until_updated(name, sleep=clock.sleep, clock=clock.now)
    reporter.step(f"{name} now has {len(plan.after)} layer(s)")
    return config


# -- Versions -----------------------------------------------------------------


def _identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """What PublishVersion compares, normalised so absent and empty agree."""
    identity: dict[str, Any] = {}
    for key in VERSION_IDENTITY:
        value = config.get(key)
        if key == "Layers":
            value = [layer["Arn"] for layer in value or []]
        elif key == "VpcConfig" and value:
            value = {
                "SubnetIds": sorted(value.get("SubnetIds") or []),
                "SecurityGroupIds": sorted(value.get("SecurityGroupIds") or []),
            }
            if not any(value.values()):
                value = None
        elif key == "Environment" and value:
            value = value.get("Variables") or None
        identity[key] = value or None
    return identity


def numbered_versions(versions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The published versions, oldest first, without ``$LATEST``."""
    numbered = [dict(v) for v in versions if v.get("Version") != LATEST]
    return sorted(numbered, key=lambda v: int(v["Version"]))


@dataclass(frozen=True)
class Published:
    """A version publish-version produced, or found already there."""

    version: str
    reused: bool
    config: dict[str, Any]


def publish_version(
    gateway: FunctionGateway,
    function: str,
    *,
    description: str = "",
    clock: Clock,
    reporter: Reporter,
) -> Published:
    """Publish the current code and configuration as a numbered version.

    Waits for an update in progress first. When nothing changed since the
    newest version, that version is returned instead, as Lambda itself does
    (moto, the test stand-in, would publish a duplicate).
    """
    latest = gateway.wait_until_updated(function, sleep=clock.sleep, clock=clock.now)
    versions = numbered_versions(gateway.list_versions(function))
    if versions and _identity(versions[-1]) == _identity(latest):
        newest = versions[-1]
        reporter.step(
            f"{function}: nothing changed since version {newest['Version']}; reusing it"
        )
        return Published(str(newest["Version"]), True, newest)
    answer = gateway.publish_version(
        function, code_sha256=latest.get("CodeSha256"), description=description
    )
    reporter.step(f"{function}: published version {answer['Version']}")
    return Published(str(answer["Version"]), False, answer)


# -- Aliases ------------------------------------------------------------------


def routing_of(alias: Mapping[str, Any]) -> dict[str, float]:
    """An alias's additional version weights ({} when it routes nowhere else)."""
    routing = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    return {str(v): float(w) for v, w in (routing or {}).items()}


def _check_versions(
    gateway: FunctionGateway, function: str, primary: str, routing: Mapping[str, float]
) -> None:
    """Both versions exist, and share the settings Lambda requires for routing."""
    primary_config = gateway.get_configuration(function, primary)
    for version in routing:
        routed_config = gateway.get_configuration(function, version)
        check_same_settings(function, primary_config, routed_config)


def create_alias(
    gateway: FunctionGateway,
    function: str,
    alias: str,
    *,
    version: str,
    description: str = "",
    routing: Sequence[str] = (),
) -> dict[str, Any]:
    """Create an alias on a published version, checking every rule first."""
    primary = alias_version(version)
    weights = parse_routing(routing)
    check_routing(primary, weights)
    _check_versions(gateway, function, primary, weights)
    return gateway.create_alias(
        function, alias, version=primary, description=description, routing=weights
    )


def get_alias(gateway: FunctionGateway, function: str, alias: str) -> dict[str, Any]:
    """The alias; a ``UsageError`` naming it when it does not exist."""
    found = gateway.find_alias(function, alias)
    if found is None:
        msg = f"{function} has no alias {alias} in {gateway.region}"
        raise UsageError(
            msg, hint=f"create it: layerbuild alias create {function} {alias} -v N"
        )
    return found


def update_alias(
    gateway: FunctionGateway,
    function: str,
    alias: str,
    *,
    version: str | None = None,
    description: str | None = None,
    routing: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Change an alias; ``routing=[]`` clears its routing, None keeps it.

    The rules are checked on the alias as it would be afterwards.
    """
    current = get_alias(gateway, function, alias)
    primary = alias_version(version) if version else str(current["FunctionVersion"])
    weights = parse_routing(routing) if routing is not None else routing_of(current)
    if routing is None and primary in weights:
        # Moving the alias onto its routed version ends that routing.
        weights = {}
    check_routing(primary, weights)
    _check_versions(gateway, function, primary, weights)
    return gateway.update_alias(
        function,
        alias,
        version=primary,
        description=description,
        routing=weights,
        revision_id=current.get("RevisionId"),
    )


# -- Releases -----------------------------------------------------------------


@dataclass
class ReleaseResult:
    """Where a release left the alias, and what it did on the way."""

    alias: dict[str, Any]
    old_version: str
    new_version: str
    published: bool = False
    events: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReleaseRequest:
    """One of the four ways to run ``layerbuild release``."""

    canary: float | None = None  # percent routed to the new version
    promote: bool = False
    rollback: bool = False
    steps: tuple[float, ...] = ()  # rising percents; 100 means promote
    interval: float = 300.0  # seconds between steps
    alarm: str | None = None
    description: str = ""

    def check(self) -> None:
        chosen = [
            self.canary is not None,
            self.promote,
            self.rollback,
            bool(self.steps),
        ]
        if sum(chosen) != 1:
            msg = "choose exactly one of --canary, --promote, --rollback and --steps"
            raise UsageError(msg)
        if self.alarm and not self.steps:
            msg = "--alarm is watched only between --steps"
            raise UsageError(msg)
        if self.canary is not None:
            parse_weight(str(self.canary / 100), version="the new version")


def release(
    gateway: FunctionGateway,
    function: str,
    alias: str,
    request: ReleaseRequest,
    *,
    clock: Clock,
    reporter: Reporter,
) -> ReleaseResult:
    """Publish the current code and shift ``alias`` to it as ``request`` says."""
    request.check()
    current = get_alias(gateway, function, alias)
    old = str(current["FunctionVersion"])
    routing = routing_of(current)

    if request.promote or request.rollback:
        return _end_routing(
            gateway,
            function,
            alias,
            current,
            promote=request.promote,
            reporter=reporter,
        )

    if routing:
        (routed,) = routing
        msg = (
            f"alias {alias} already routes {routing[routed]:.0%} to version {routed}; "
            "a new release would route to a third version"
        )
        raise RuleError(msg, hint="finish that release first: --promote or --rollback")
    if request.alarm:
        state = gateway.alarm_state(request.alarm)
        if state == "ALARM":
            msg = f"alarm {request.alarm} is in ALARM already; not starting a release"
            raise RuleError(msg)

    # The new version will carry $LATEST's settings: compare them with the
    # alias's version before publishing anything.
    latest = gateway.wait_until_updated(function, sleep=clock.sleep, clock=clock.now)
    check_same_settings(function, gateway.get_configuration(function, old), latest)
    published = publish_version(
        gateway,
        function,
        description=request.description,
        clock=clock,
        reporter=reporter,
    )
    new = published.version
    result = ReleaseResult(current, old, new, published=not published.reused)
    if new == old:
        reporter.warn(f"alias {alias} is on version {old} already; nothing to release")
        return result

    if request.canary is not None:
        weight = request.canary / 100
        check_routing(old, {new: weight})
        result.alias = gateway.update_alias(
            function,
            alias,
            version=old,
            routing={new: weight},
            revision_id=current.get("RevisionId"),
        )
        event = f"alias {alias}: {request.canary:g}% to version {new}, rest on {old}"
        result.events.append(event)
        reporter.step(event)
        return result
    return _stepped(gateway, function, alias, request, result, clock, reporter)


def _end_routing(
    gateway: FunctionGateway,
    function: str,
    alias: str,
    current: dict[str, Any],
    *,
    promote: bool,
    reporter: Reporter,
) -> ReleaseResult:
    """Stop routing: onto the routed version (promote) or back on the main one."""
    old = str(current["FunctionVersion"])
    routing = routing_of(current)
    if not routing:
        if promote:
            msg = f"alias {alias} routes to no second version; nothing to promote"
            raise UsageError(msg, hint="start a release with --canary PERCENT")
        reporter.warn(f"alias {alias} routes only to version {old}; nothing to undo")
        return ReleaseResult(current, old, old)
    (new,) = routing
    answer = gateway.update_alias(
        function,
        alias,
        version=alias_version(new) if promote else old,
        routing={},
        revision_id=current.get("RevisionId"),
    )
    if promote:
        event = f"alias {alias}: all traffic to version {new} (was {old})"
    else:
        event = f"alias {alias}: routing to version {new} removed, all on {old}"
    reporter.step(event)
    return ReleaseResult(answer, old, new, events=[event])


def _stepped(
    gateway: FunctionGateway,
    function: str,
    alias: str,
    request: ReleaseRequest,
    result: ReleaseResult,
    clock: Clock,
    reporter: Reporter,
) -> ReleaseResult:
    """Shift traffic step by step, watching the alarm between steps."""
    old, new = result.old_version, result.new_version
    if request.alarm is None:
        reporter.warn("no --alarm given: steps follow the clock, nothing is watched")
    for step in request.steps:
        if step >= 100:
            result.alias = gateway.update_alias(
                function, alias, version=new, routing={}
            )
            event = f"alias {alias}: all traffic to version {new}"
            result.events.append(event)
            reporter.step(event)
            return result
        weight = step / 100
        check_routing(old, {new: weight})
        result.alias = gateway.update_alias(
            function, alias, version=old, routing={new: weight}
        )
        event = f"alias {alias}: {step:g}% to version {new}"
        result.events.append(event)
        reporter.step(event)
        state = _watch(gateway, request.alarm, request.interval, clock, reporter)
        if state == "ALARM":
            result.alias = gateway.update_alias(
                function, alias, version=old, routing={}
            )
            event = (
                f"alias {alias}: alarm {request.alarm} fired; all traffic back on {old}"
            )
            result.events.append(event)
            reporter.step(event)
            msg = (
                f"release of {function} version {new} rolled back at {step:g}%: "
                f"alarm {request.alarm} is in ALARM; alias {alias} is on version {old}"
            )
            raise RolledBackError(
                msg, hint="look at the alarm's metric, fix, release again"
            )
    return result


def _watch(
    gateway: FunctionGateway,
    alarm: str | None,
    seconds: float,
    clock: Clock,
    reporter: Reporter,
) -> str:
    """Wait ``seconds``, looking at ``alarm`` as it goes; its last state."""
    state = "OK"
    deadline = clock.now() + seconds
    while True:
        remaining = deadline - clock.now()
        if remaining <= 0:
            return state
        clock.sleep(min(ALARM_POLL_SECONDS, remaining) if alarm else remaining)
        if alarm is None:
            continue
        state = gateway.alarm_state(alarm)
        reporter.detail(f"alarm {alarm}: {state}")
        if state == "ALARM":
            return state
