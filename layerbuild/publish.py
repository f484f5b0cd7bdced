"""Publishing built layers to Lambda in one or more regions, and tidying them up.

The work runs in two stages:

1. **Plan** (``plan_publish``): read the manifests in ``dist/``, check every
   zip against its manifest and every Lambda rule (sizes, description,
   license, runtimes, architectures, names, sharing principals), and decide
   the bucket, key and description per region. No AWS call is made, so a
   broken rule costs nothing, and ``--dry-run`` stops here and lists the calls
   the plan would make.
2. **Execute** (``execute_publish``): each region runs in its own thread and
   on its own. Per layer it lists the layer's versions and stops if the newest
   already carries the same content key; otherwise it uploads the zip to S3
   (skipped if an object with the same SHA-256 is there), publishes a version
   from it and shares it. A failure in one region leaves the others going.

Zips always go through S3, whatever their size: Lambda refuses an inline zip
above about 50 MB, and one path is simpler to reason about than two.
"""

from __future__ import annotations

import base64
import hashlib
import re
import string
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from layerbuild.aws import MULTIPART_THRESHOLD_BYTES
from layerbuild.errors import (
    AwsError,
    LayerbuildError,
    LimitError,
    UsageError,
)
from layerbuild.limits import (
    LAYER_NAME_PATTERN,
    MAX_COMPATIBLE_ARCHITECTURES,
    MAX_COMPATIBLE_RUNTIMES,
    MAX_DESCRIPTION_CHARS,
    MAX_INLINE_ZIP_BYTES,
    MAX_LICENSE_CHARS,
    MAX_UNZIPPED_BYTES,
    human_bytes,
)
from layerbuild.manifest import (
    CONTENT_KEY_PATTERN,
    MANIFEST_SUFFIX,
    Manifest,
)
from layerbuild.records import LayerRecord, update_records
from layerbuild.report import Reporter

S3_KEY_PREFIX = "layerbuild"
# The marker that carries the content key inside a version's description; the
# only place Lambda lets us keep it, since a layer version has no tags.
CONTENT_KEY_MARKER = "content-key="
DESCRIPTION_KEY_PATTERN = re.compile(
    re.escape(CONTENT_KEY_MARKER) + r"(" + CONTENT_KEY_PATTERN.pattern + r")"
)
BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
BUCKET_FIELDS = frozenset({"region"})
REGION_PATTERN = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
ACCOUNT_PATTERN = re.compile(r"\d{12}")
ORGANIZATION_PATTERN = re.compile(r"o-[a-z0-9]{10,32}")
# Regions are independent, so they run side by side; this bounds the threads
# (and S3 upload connections) one run opens.
MAX_PARALLEL_REGIONS = 8
HASH_CHUNK_BYTES = 1024 * 1024
RERUN_HINT = "rerun the same command: it publishes only what is missing"


class LayerApi(Protocol):
    """What the core needs from AWS in one region (``aws.LayerGateway``)."""

    region: str

    def bucket_region(self, bucket: str) -> str: ...

    def object_sha256(self, bucket: str, key: str) -> str | None: ...

    def upload_zip(self, path: Path, bucket: str, key: str, sha256: str) -> None: ...

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
    ) -> dict[str, Any]: ...

    def layer_versions(self, name: str) -> list[dict[str, Any]]: ...

    def layers(self) -> list[dict[str, Any]]: ...

    def layer_version_statements(
        self, name: str, version: int
    ) -> list[dict[str, Any]]: ...

    def add_layer_version_permission(
        self,
        *,
        name: str,
        version: int,
        statement_id: str,
        principal: str,
        organization_id: str | None = None,
        public: bool = False,
    ) -> None: ...

    def delete_layer_version(self, name: str, version: int) -> None: ...

    def function_layers(self) -> dict[str, list[str]]: ...


# Makes the gateway for a region; the command line passes one over boto3.
GatewayFactory = Callable[[str], LayerApi]


# ---------------------------------------------------------------- manifests


def find_manifests(dist: Path, recipes: Sequence[str] = ()) -> list[Manifest]:
    """The manifests in ``dist`` (those beside a zip of the same name).

    With recipe names, only theirs, and each name must have at least one.
    """
    if not dist.is_dir():
        msg = f"{dist}: no such folder of built layers"
        raise UsageError(msg, hint="run `layerbuild build` first or pass --dist")
    manifests = [
        Manifest.from_file(path)
        for path in sorted(dist.glob(f"*{MANIFEST_SUFFIX}"))
        if path.with_suffix(".zip").is_file()
    ]
    if recipes:
        missing = sorted(set(recipes) - {m.recipe for m in manifests})
        if missing:
            msg = f"{dist}: no built layer for recipe(s) {', '.join(missing)}"
            raise UsageError(msg, hint="run `layerbuild build` for them first")
        manifests = [m for m in manifests if m.recipe in recipes]
    if not manifests:
        msg = f"{dist}: no built layers (a .zip with its .json manifest) to publish"
        raise UsageError(msg, hint="run `layerbuild build` first or pass --dist")

    seen: dict[str, Path] = {}
    for manifest in manifests:
        if manifest.layer_name in seen:
            msg = (
                f"{manifest.path}: layer_name {manifest.layer_name!r} is also "
                f"built by {seen[manifest.layer_name]}"
            )
            raise UsageError(msg, hint="remove the stale build from the folder")
        seen[manifest.layer_name] = manifest.path
    return manifests


@dataclass(frozen=True)
class LocalZip:
    """A zip as measured on disk, not as its manifest claims."""

    path: Path
    size: int
    sha256: str
    unzipped_bytes: int

    @property
    def sha256_base64(self) -> str:
        """The hash as Lambda reports it in ``CodeSha256``."""
        return base64.b64encode(bytes.fromhex(self.sha256)).decode("ascii")


def measure_zip(manifest: Manifest) -> LocalZip:
    """Hash the zip (streamed) and add up its members' unzipped sizes."""
    path = manifest.zip_path
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            unzipped = sum(member.file_size for member in archive.infolist())
    except OSError as error:
        msg = f"{path}: cannot read the zip: {error.strerror}"
        raise UsageError(msg, hint="rebuild the layer") from error
    except zipfile.BadZipFile as error:
        msg = f"{path}: not a zip file: {error}"
        raise UsageError(msg, hint="rebuild the layer") from error

    if digest.hexdigest() != manifest.sha256:
        msg = (
            f"{path}: its sha256 {digest.hexdigest()} does not match "
            f"{manifest.path} field 'sha256' {manifest.sha256}"
        )
        raise UsageError(msg, hint="rebuild the layer; the zip changed after")
    return LocalZip(path, size, digest.hexdigest(), unzipped)


# ------------------------------------------------------------- descriptions


def layer_description(manifest: Manifest) -> str:
    """A version description: main package versions, the recipe's words, the key.

    The content key always comes last and whole, because skipping unchanged
    layers depends on reading it back; packages and words are shortened to fit
    Lambda's 256 characters.
    """
    tail = f"{CONTENT_KEY_MARKER}{manifest.content_key}"
    room = MAX_DESCRIPTION_CHARS - len(tail) - 1

    pins = [f"{name} {version}" for name, version in manifest.packages.items()]
    shown: list[str] = []
    for index, pin in enumerate(pins):
        rest = len(pins) - index - 1
        more = f" +{rest} more" if rest else ""
        candidate = ", ".join([*shown, pin]) + more
        if len(candidate) > room:
            break
        shown.append(pin)
    hidden = len(pins) - len(shown)
    head = ", ".join(shown) + (f" +{hidden} more" if hidden else "")

    words = " ".join(manifest.description.split())
    if words:
        separator = " - " if head else ""
        space = room - len(head) - len(separator)
        if len(words) > space:
            words = words[: max(space - 3, 0)].rstrip() + "..." if space > 3 else ""
        if words:
            head = f"{head}{separator}{words}"
    return f"{head} {tail}" if head else tail


def content_key_of(description: str | None) -> str | None:
    """The content key a layerbuild description carries, if any."""
    match = DESCRIPTION_KEY_PATTERN.search(description or "")
    return match.group(1) if match else None


# ------------------------------------------------------------------ sharing


@dataclass(frozen=True)
class Grant:
    """Who may use the published versions (``lambda:GetLayerVersion``)."""

    statement_id: str
    principal: str
    organization_id: str | None = None
    public: bool = False

    @property
    def label(self) -> str:
        if self.public:
            return "every AWS account"
        if self.organization_id:
            return f"organization {self.organization_id}"
        return f"account {self.principal}"


def share_grants(
    accounts: Iterable[str] = (),
    organizations: Iterable[str] = (),
    *,
    public: bool = False,
) -> list[Grant]:
    """Check the sharing options and turn them into grants.

    Only ``public=True`` makes a grant to ``*`` without an organization; an
    organization grant names ``*`` *within* that organization, as Lambda asks.
    """
    grants: list[Grant] = []
    for account in dict.fromkeys(accounts):
        if not ACCOUNT_PATTERN.fullmatch(account):
            msg = f"--share {account!r} is not an AWS account id (12 digits)"
            raise UsageError(msg)
        grants.append(Grant(f"layerbuild-account-{account}", account))
    for organization in dict.fromkeys(organizations):
        if not ORGANIZATION_PATTERN.fullmatch(organization):
            msg = f"--share-org {organization!r} is not an organization id (o-...)"
            raise UsageError(msg)
        grants.append(Grant(f"layerbuild-org-{organization}", "*", organization))
    if public:
        grants.append(Grant("layerbuild-public", "*", public=True))
    return grants


def apply_grants(
    api: LayerApi, name: str, version: int, grants: list[Grant]
) -> list[str]:
    """Add the grants a version's policy lacks; returns the statement ids added.

    The policy is read first, so rerunning adds nothing twice.
    """
    if not grants:
        return []
    statements = api.layer_version_statements(name, version)
    present = {str(s.get("Sid")) for s in statements}
    granted = {
        (str(s.get("Principal")), s.get("OrganizationId"))
        for s in statements
        if s.get("Effect", "Allow") == "Allow"
    }
    added: list[str] = []
    for grant in grants:
        if grant.statement_id in present:
            continue
        if (grant.principal, grant.organization_id) in granted:
            continue
        api.add_layer_version_permission(
            name=name,
            version=version,
            statement_id=grant.statement_id,
            principal=grant.principal,
            organization_id=grant.organization_id,
            public=grant.public,
        )
        added.append(grant.statement_id)
    return added


# --------------------------------------------------------------------- plan


@dataclass(frozen=True)
class LayerJob:
    """One layer to publish in one region, fully decided."""

    manifest: Manifest
    local: LocalZip
    region: str
    bucket: str
    key: str
    description: str

    @property
    def s3_url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class PublishPlan:
    """Everything ``execute_publish`` will do, checked before any AWS call."""

    jobs: tuple[LayerJob, ...]
    regions: tuple[str, ...]
    grants: tuple[Grant, ...] = ()

    def actions(self) -> list[str]:
        """The uploads and calls the plan makes, as lines for ``--dry-run``."""
        lines: list[str] = []
        for job in self.jobs:
            name = job.manifest.layer_name
            where = f"[{job.region}] {name}:"
            size = human_bytes(job.local.size)
            lines += [
                f"{where} ListLayerVersions {name}; stop if the newest carries "
                f"{CONTENT_KEY_MARKER}{job.manifest.content_key[:12]}...",
                f"{where} HeadBucket {job.bucket}; HeadObject {job.s3_url}",
                f"{where} upload {job.local.path} ({size}) to {job.s3_url} "
                f"{upload_style(job.local.size)}, unless it is there with "
                f"sha256 {job.local.sha256[:12]}...",
                f"{where} PublishLayerVersion from {job.s3_url}, runtimes "
                f"{', '.join(job.manifest.runtimes)}, architectures "
                f"{', '.join(job.manifest.architectures)}",
            ]
            lines += [
                f"{where} AddLayerVersionPermission {grant.statement_id} "
                f"(lambda:GetLayerVersion for {grant.label}) unless present"
                for grant in self.grants
            ]
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": True,
            "layers": [
                {
                    "recipe": job.manifest.recipe,
                    "layer_name": job.manifest.layer_name,
                    "region": job.region,
                    "bucket": job.bucket,
                    "key": job.key,
                    "zip": str(job.local.path),
                    "zipped_bytes": job.local.size,
                    "unzipped_bytes": job.local.unzipped_bytes,
                    "description": job.description,
                }
                for job in self.jobs
            ],
            "actions": self.actions(),
        }


def upload_style(size: int) -> str:
    """How a zip of ``size`` bytes goes up: always S3, in parts when large."""
    parts = "in parts" if size > MULTIPART_THRESHOLD_BYTES else "in one request"
    inline = " (over the inline limit)" if size > MAX_INLINE_ZIP_BYTES else ""
    return f"via S3{inline}, {parts}, SHA-256 checksums"


def bucket_for(template: str, region: str) -> str:
    """The bucket for a region: ``--bucket`` with ``{region}`` filled in."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    except ValueError as error:
        msg = f"--bucket {template!r}: {error}"
        raise UsageError(msg, hint="the only placeholder is {region}") from error
    if not fields <= BUCKET_FIELDS:
        msg = f"--bucket {template!r}: unknown placeholder(s) {sorted(fields)}"
        raise UsageError(msg, hint="the only placeholder is {region}")
    name = template.format(region=region)
    if not BUCKET_PATTERN.fullmatch(name) or ".." in name:
        msg = f"--bucket {template!r}: {name!r} is not a valid S3 bucket name"
        raise UsageError(msg, hint="3-63 lowercase letters, digits, '-' or '.'")
    return name


def check_regions(regions: Sequence[str]) -> tuple[str, ...]:
    """At least one region, each spelled like one, no repeats."""
    if not regions:
        msg = "no region given"
        raise UsageError(msg, hint="pass --region (repeatable) or AWS_DEFAULT_REGION")
    for region in regions:
        if not REGION_PATTERN.fullmatch(region):
            msg = f"--region {region!r} is not an AWS region name (like eu-west-1)"
            raise UsageError(msg)
    return tuple(dict.fromkeys(regions))


def check_limits(manifest: Manifest, local: LocalZip) -> None:
    """Lambda's rules for a layer version, checked before anything is sent."""
    unzipped = max(local.unzipped_bytes, manifest.unzipped_bytes)
    if unzipped > MAX_UNZIPPED_BYTES:
        msg = (
            f"{manifest.layer_name}: unzips to {human_bytes(unzipped)}, over "
            f"Lambda's limit of {human_bytes(MAX_UNZIPPED_BYTES)}"
        )
        raise LimitError(msg, hint="split the recipe into smaller layers or slim it")
    if len(manifest.runtimes) > MAX_COMPATIBLE_RUNTIMES:
        msg = (
            f"{manifest.path}: {len(manifest.runtimes)} compatible runtimes, "
            f"Lambda allows {MAX_COMPATIBLE_RUNTIMES}"
        )
        raise LimitError(msg, hint="build one layer per group of runtimes")
    if len(manifest.architectures) > MAX_COMPATIBLE_ARCHITECTURES:
        msg = (
            f"{manifest.path}: {len(manifest.architectures)} architectures, "
            f"Lambda allows {MAX_COMPATIBLE_ARCHITECTURES}"
        )
        raise LimitError(msg, hint="build one layer per architecture")
    if manifest.license is not None and len(manifest.license) > MAX_LICENSE_CHARS:
        msg = (
            f"{manifest.path}: license is {len(manifest.license)} characters, "
            f"Lambda allows {MAX_LICENSE_CHARS}"
        )
        raise LimitError(msg, hint="use an SPDX identifier or a URL to the text")


def plan_publish(
    manifests: Sequence[Manifest],
    *,
    regions: Sequence[str],
    bucket: str,
    grants: Sequence[Grant] = (),
) -> PublishPlan:
    """Check every zip and rule, and decide what goes where; calls no AWS API."""
    regions = check_regions(regions)
    buckets = {region: bucket_for(bucket, region) for region in regions}
    jobs: list[LayerJob] = []
    for manifest in manifests:
        local = measure_zip(manifest)
        check_limits(manifest, local)
        description = layer_description(manifest)
        if len(description) > MAX_DESCRIPTION_CHARS:  # pragma: no cover - a bug
            msg = f"{manifest.layer_name}: description over {MAX_DESCRIPTION_CHARS}"
            raise LimitError(msg)
        key = f"{S3_KEY_PREFIX}/{manifest.layer_name}/{local.sha256}.zip"
        jobs += [
            LayerJob(manifest, local, region, buckets[region], key, description)
            for region in regions
        ]
    return PublishPlan(tuple(jobs), regions, tuple(grants))


# ------------------------------------------------------------------ execute


@dataclass(frozen=True)
class Outcome:
    """What happened to one layer in one region."""

    job: LayerJob
    status: str  # "published", "unchanged" or "failed"
    layer_version_arn: str | None = None
    version: int | None = None
    uploaded: bool = False
    shared: tuple[str, ...] = ()
    error: str | None = None
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def record(self) -> LayerRecord | None:
        """The records-file entry, for a version Lambda confirmed."""
        if not self.ok or self.layer_version_arn is None or self.version is None:
            return None
        manifest = self.job.manifest
        return LayerRecord(
            recipe=manifest.recipe,
            layer_name=manifest.layer_name,
            runtimes=manifest.runtimes,
            architecture=",".join(manifest.architectures),
            region=self.job.region,
            layer_version_arn=self.layer_version_arn,
            version=self.version,
            content_key=manifest.content_key,
            unzipped_bytes=max(self.job.local.unzipped_bytes, manifest.unzipped_bytes),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "recipe": self.job.manifest.recipe,
            "layer_name": self.job.manifest.layer_name,
            "region": self.job.region,
            "status": self.status,
            "layer_version_arn": self.layer_version_arn,
            "version": self.version,
            "uploaded": self.uploaded,
            "shared": list(self.shared),
            "error": self.error,
        }


@dataclass
class PublishReport:
    """Every outcome of a run, in plan order."""

    outcomes: list[Outcome] = field(default_factory=list)
    records_path: Path | None = None

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": False,
            "results": [o.to_json() for o in self.outcomes],
            "records": str(self.records_path) if self.records_path else None,
        }

    def raise_for_failures(self) -> None:
        """Raise one ``AwsError`` naming every failed layer and region."""
        failures = self.failures
        if not failures:
            return
        named = "; ".join(
            f"{o.job.manifest.layer_name} in {o.job.region}: {o.error}"
            for o in failures
        )
        msg = f"{len(failures)} of {len(self.outcomes)} publishes failed: {named}"
        # One cause everywhere (say, no credentials) deserves its own next step.
        hints = {o.hint for o in failures}
        hint = RERUN_HINT
        if len(hints) == 1 and (only := hints.pop()) and only != RERUN_HINT:
            hint = f"{only}; then {RERUN_HINT}"
        raise AwsError(msg, hint=hint)


def _newest_with_key(api: LayerApi, job: LayerJob) -> dict[str, Any] | None:
    """The layer's newest version if it carries the job's content key."""
    versions = api.layer_versions(job.manifest.layer_name)
    if versions and content_key_of(versions[0].get("Description")) == (
        job.manifest.content_key
    ):
        return versions[0]
    return None


def publish_job(api: LayerApi, job: LayerJob, grants: Sequence[Grant]) -> Outcome:
    """Publish one layer in one region unless its newest version is the same."""
    name = job.manifest.layer_name
    newest = _newest_with_key(api, job)
    if newest is not None:
        version = int(newest["Version"])
        shared = tuple(apply_grants(api, name, version, list(grants)))
        return Outcome(
            job, "unchanged", str(newest["LayerVersionArn"]), version, shared=shared
        )

    bucket_region = api.bucket_region(job.bucket)
    if bucket_region != job.region:
        msg = (
            f"bucket {job.bucket} is in {bucket_region}, and Lambda in "
            f"{job.region} only publishes from a bucket in its own region"
        )
        raise AwsError(msg, hint="use one bucket per region: --bucket NAME-{region}")
    uploaded = api.object_sha256(job.bucket, job.key) != job.local.sha256
    if uploaded:
        api.upload_zip(job.local.path, job.bucket, job.key, job.local.sha256)

    response = api.publish_layer_version(
        name=name,
        description=job.description,
        bucket=job.bucket,
        key=job.key,
        runtimes=list(job.manifest.runtimes),
        architectures=list(job.manifest.architectures),
        license_info=job.manifest.license,
        find_existing=lambda: _newest_with_key(api, job),
    )
    version = int(response["Version"])
    code_sha = response.get("Content", {}).get("CodeSha256")
    if code_sha and code_sha != job.local.sha256_base64:
        msg = (
            f"Lambda published {response['LayerVersionArn']} from {job.s3_url}, "
            f"but its CodeSha256 {code_sha} is not the zip's {job.local.sha256_base64}"
        )
        raise AwsError(msg, hint="the S3 object changed during the publish; rerun")
    shared = tuple(apply_grants(api, name, version, list(grants)))
    return Outcome(
        job,
        "published",
        str(response["LayerVersionArn"]),
        version,
        uploaded=uploaded,
        shared=shared,
    )


def _publish_region(
    api: LayerApi, jobs: list[LayerJob], grants: Sequence[Grant], reporter: Reporter
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for job in jobs:
        label = f"[{job.region}] {job.manifest.layer_name}"
        try:
            outcome = publish_job(api, job, grants)
        except LayerbuildError as error:
            reporter.warn(f"{label}: {error.message}")
            outcomes.append(
                Outcome(job, "failed", error=error.message, hint=error.hint)
            )
            continue
        reporter.step(f"{label}: {outcome.status} {outcome.layer_version_arn}")
        if outcome.uploaded:
            reporter.detail(f"{label}: uploaded {human_bytes(job.local.size)}")
        for statement in outcome.shared:
            reporter.detail(f"{label}: shared with {statement}")
        outcomes.append(outcome)
    return outcomes


def execute_publish(
    plan: PublishPlan,
    gateway_for: GatewayFactory,
    reporter: Reporter,
    *,
    records_path: Path | None = None,
) -> PublishReport:
    """Publish the plan, regions in parallel; record what Lambda confirmed.

    Never raises for a failure in one region: the report says which failed,
    and the records file gets every version that does exist.
    """
    by_region: dict[str, list[LayerJob]] = {region: [] for region in plan.regions}
    for job in plan.jobs:
        by_region[job.region].append(job)

    workers = max(1, min(len(by_region), MAX_PARALLEL_REGIONS))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            region: pool.submit(
                _publish_region, gateway_for(region), jobs, plan.grants, reporter
            )
            for region, jobs in by_region.items()
        }
        results = {region: future.result() for region, future in futures.items()}

    # Report in plan order, whatever order the threads finished in.
    order = {id(job): index for index, job in enumerate(plan.jobs)}
    outcomes = sorted(
        (o for region_outcomes in results.values() for o in region_outcomes),
        key=lambda o: order[id(o.job)],
    )
    report = PublishReport(outcomes)
    if records_path is not None:
        records = [r for r in (o.record() for o in outcomes) if r is not None]
        if records:
            update_records(records_path, added=records)
            report.records_path = records_path
    return report


# ------------------------------------------------------------ list and prune


@dataclass(frozen=True)
class LayerVersionInfo:
    """One layer version as ``layers list`` and ``layers versions`` show it."""

    region: str
    layer_name: str
    version: int
    layer_version_arn: str
    runtimes: tuple[str, ...]
    architectures: tuple[str, ...]
    created: str
    description: str

    @property
    def content_key(self) -> str | None:
        return content_key_of(self.description)

    @classmethod
    def from_api(cls, region: str, name: str, data: dict[str, Any]) -> LayerVersionInfo:
        return cls(
            region=region,
            layer_name=name,
            version=int(data["Version"]),
            layer_version_arn=str(data["LayerVersionArn"]),
            runtimes=tuple(data.get("CompatibleRuntimes", [])),
            architectures=tuple(data.get("CompatibleArchitectures", [])),
            created=str(data.get("CreatedDate", "")),
            description=str(data.get("Description", "")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "layer_name": self.layer_name,
            "version": self.version,
            "layer_version_arn": self.layer_version_arn,
            "runtimes": list(self.runtimes),
            "architectures": list(self.architectures),
            "created": self.created,
            "description": self.description,
            "content_key": self.content_key,
        }


def _each_region(
    regions: Sequence[str],
    gateway_for: GatewayFactory,
    work: Callable[[LayerApi], list[Any]],
) -> list[Any]:
    """Run a read in every region side by side; results in region order."""
    regions = check_regions(regions)
    workers = max(1, min(len(regions), MAX_PARALLEL_REGIONS))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(work, gateway_for(region)) for region in regions]
        return [item for future in futures for item in future.result()]


def list_layers(
    regions: Sequence[str], gateway_for: GatewayFactory
) -> list[LayerVersionInfo]:
    """The newest version of every layer in each region."""

    def read(api: LayerApi) -> list[LayerVersionInfo]:
        return [
            LayerVersionInfo.from_api(
                api.region, str(layer["LayerName"]), layer["LatestMatchingVersion"]
            )
            for layer in api.layers()
            if layer.get("LatestMatchingVersion")
        ]

    return _each_region(regions, gateway_for, read)


def list_versions(
    name: str, regions: Sequence[str], gateway_for: GatewayFactory
) -> list[LayerVersionInfo]:
    """Every version of one layer in each region, newest first."""
    check_layer_name(name)

    def read(api: LayerApi) -> list[LayerVersionInfo]:
        return [
            LayerVersionInfo.from_api(api.region, name, data)
            for data in api.layer_versions(name)
        ]

    return _each_region(regions, gateway_for, read)


def check_layer_name(name: str) -> None:
    """A layer name as Lambda accepts it, or UsageError."""
    if not re.fullmatch(LAYER_NAME_PATTERN, name):
        msg = f"layer name {name!r} is not valid"
        raise UsageError(msg, hint="letters, digits, '-' or '_', 1 to 140 of them")


@dataclass(frozen=True)
class PruneItem:
    """One version and what pruning does with it."""

    info: LayerVersionInfo
    action: str  # "keep" (among the newest), "delete", or "in-use" (kept)
    used_by: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**self.info.to_json(), "action": self.action, "used_by": self.used_by}


@dataclass(frozen=True)
class PrunePlan:
    """What ``layers prune`` will delete and keep, per region."""

    name: str
    keep: int
    items: tuple[PruneItem, ...]

    @property
    def deletions(self) -> list[PruneItem]:
        return [item for item in self.items if item.action == "delete"]

    @property
    def refused(self) -> list[PruneItem]:
        return [item for item in self.items if item.action == "in-use"]


def plan_prune(
    name: str,
    *,
    keep: int,
    regions: Sequence[str],
    gateway_for: GatewayFactory,
    force: bool = False,
) -> PrunePlan:
    """Decide which versions to delete: all but the newest ``keep`` per region.

    The newest version is never deleted (``keep`` must be at least 1), and a
    version that a function visible to these credentials uses is kept unless
    ``force``.
    """
    check_layer_name(name)
    if keep < 1:
        msg = f"--keep {keep}: at least the newest version must be kept"
        raise UsageError(msg, hint="pass --keep 1 or more")

    def read(api: LayerApi) -> list[PruneItem]:
        versions = api.layer_versions(name)
        old = versions[keep:]
        used: dict[str, list[str]] = {}
        if old and not force:
            for function, arns in api.function_layers().items():
                for arn in arns:
                    used.setdefault(arn, []).append(function)
        items = [
            PruneItem(LayerVersionInfo.from_api(api.region, name, data), "keep")
            for data in versions[:keep]
        ]
        for data in old:
            info = LayerVersionInfo.from_api(api.region, name, data)
            users = tuple(used.get(info.layer_version_arn, ()))
            items.append(PruneItem(info, "in-use" if users else "delete", users))
        return items

    return PrunePlan(name, keep, tuple(_each_region(regions, gateway_for, read)))


def execute_prune(
    plan: PrunePlan,
    gateway_for: GatewayFactory,
    reporter: Reporter,
    *,
    records_path: Path | None = None,
) -> list[LayerVersionInfo]:
    """Delete the planned versions; drop them from the records file.

    Returns the versions deleted. Deletions stop at the first failure, and the
    records file loses only what was really deleted.
    """
    deleted: list[LayerVersionInfo] = []
    try:
        for item in plan.deletions:
            info = item.info
            gateway_for(info.region).delete_layer_version(info.layer_name, info.version)
            reporter.step(f"[{info.region}] deleted {info.layer_version_arn}")
            deleted.append(info)
    finally:
        if records_path is not None and deleted:
            update_records(
                records_path, removed_arns=[i.layer_version_arn for i in deleted]
            )
    return deleted
