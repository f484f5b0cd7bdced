"""``layerbuild publish`` and ``layerbuild layers list|versions|prune``.

Each command parses its options, calls ``layerbuild.publish`` and renders the
result: a table on stderr, or JSON on stdout with ``--json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from layerbuild.aws import ClientFactory, LayerGateway, environment_settings
from layerbuild.cli import cli
from layerbuild.cli.console import ConsoleReporter
from layerbuild.cli.options import dist_option, json_option, recipes_argument
from layerbuild.publish import (
    GatewayFactory,
    LayerVersionInfo,
    PrunePlan,
    PublishReport,
    execute_prune,
    execute_publish,
    find_manifests,
    list_layers,
    list_versions,
    plan_prune,
    plan_publish,
    share_grants,
)
from layerbuild.records import DEFAULT_RECORDS_FILE

F = TypeVar("F", bound=Callable[..., Any])


def aws_options(command: F) -> F:
    """--region (repeatable), --profile and --endpoint-url."""
    command = click.option(
        "--endpoint-url",
        envvar="AWS_ENDPOINT_URL",
        metavar="URL",
        help="Send every AWS call here (a local stand-in, a VPC endpoint).",
    )(command)
    command = click.option(
        "--profile",
        envvar="AWS_PROFILE",
        help="A profile from the AWS config files (else the standard chain).",
    )(command)
    command = click.option(
        "--region",
        "regions",
        multiple=True,
        envvar="AWS_DEFAULT_REGION",
        metavar="REGION",
        help="A region to work in (repeatable; default: AWS_DEFAULT_REGION).",
    )(command)
    return command


records_option = click.option(
    "--records",
    "records_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(DEFAULT_RECORDS_FILE),
    show_default=True,
    help="The JSON list of published layer versions, kept up to date.",
)


def make_gateways(profile: str | None, endpoint_url: str | None) -> GatewayFactory:
    """One client factory for the run; a gateway per region on demand."""
    settings = environment_settings(
        os.environ, profile=profile, endpoint_url=endpoint_url
    )
    factory = ClientFactory(settings)
    return lambda region: LayerGateway(factory, region)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _table(rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns on stderr; stdout stays for ``--json``."""
    if not rows:
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        click.echo("  ".join(cells).rstrip(), err=True)


@cli.command()
@recipes_argument
@click.option(
    "--bucket",
    required=True,
    metavar="NAME",
    help="S3 bucket for the zips; may contain {region}, e.g. my-layers-{region}.",
)
@aws_options
@dist_option
@records_option
@click.option(
    "--share",
    "share_accounts",
    multiple=True,
    metavar="ACCOUNT_ID",
    help="Let this AWS account use the versions (repeatable).",
)
@click.option(
    "--share-org",
    "share_orgs",
    multiple=True,
    metavar="ORG_ID",
    help="Let every account in this organization (o-...) use them (repeatable).",
)
@click.option(
    "--share-public", is_flag=True, help="Let every AWS account use the versions."
)
@click.option("--dry-run", is_flag=True, help="Print the uploads and calls; make none.")
@json_option
@click.pass_obj
def publish(
    reporter: ConsoleReporter,
    recipes: tuple[str, ...],
    bucket: str,
    regions: tuple[str, ...],
    profile: str | None,
    endpoint_url: str | None,
    dist_dir: Path,
    records_path: Path,
    share_accounts: tuple[str, ...],
    share_orgs: tuple[str, ...],
    share_public: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Upload built layers to S3 and publish them as layer versions.

    Publishes the layers in DIST (all of them, or those of the RECIPEs named)
    in every --region, side by side. A layer whose newest version already has
    the same content is not published again, so a rerun after a failure
    completes only what is missing. Exit status 1 if any region failed.
    """
    grants = share_grants(share_accounts, share_orgs, public=share_public)
    manifests = find_manifests(dist_dir, recipes)
    plan = plan_publish(manifests, regions=regions, bucket=bucket, grants=grants)

    if dry_run:
        if as_json:
            _echo_json(plan.to_json())
        else:
            for line in plan.actions():
                click.echo(f"would: {line}", err=True)
            reporter.step("dry run: no upload and no AWS call made")
        return

    gateways = make_gateways(profile, endpoint_url)
    report = execute_publish(plan, gateways, reporter, records_path=records_path)
    if as_json:
        _echo_json(report.to_json())
    else:
        _render_report(report)
    report.raise_for_failures()


def _render_report(report: PublishReport) -> None:
    rows = [["REGION", "LAYER", "OUTCOME", "VERSION ARN / ERROR"]]
    for outcome in report.outcomes:
        status = outcome.status
        if outcome.uploaded:
            status += " (uploaded)"
        rows.append(
            [
                outcome.job.region,
                outcome.job.manifest.layer_name,
                status,
                outcome.layer_version_arn or outcome.error or "",
            ]
        )
    _table(rows)
    if report.records_path is not None:
        click.echo(f"records: {report.records_path}", err=True)


@cli.group()
def layers() -> None:
    """Look at and tidy up published layers."""


def _render_versions(infos: Sequence[LayerVersionInfo]) -> None:
    rows = [["REGION", "LAYER", "VERSION", "RUNTIMES", "ARCH", "CREATED", "KEY"]]
    rows += [
        [
            info.region,
            info.layer_name,
            str(info.version),
            ",".join(info.runtimes),
            ",".join(info.architectures),
            info.created,
            (info.content_key or "-")[:12],
        ]
        for info in infos
    ]
    _table(rows)


@layers.command("list")
@aws_options
@json_option
def list_command(
    regions: tuple[str, ...],
    profile: str | None,
    endpoint_url: str | None,
    as_json: bool,
) -> None:
    """List the layers in each region with their newest version."""
    infos = list_layers(regions, make_gateways(profile, endpoint_url))
    if as_json:
        _echo_json([info.to_json() for info in infos])
    elif infos:
        _render_versions(infos)
    else:
        click.echo("no layers", err=True)


@layers.command("versions")
@click.argument("name")
@aws_options
@json_option
def versions_command(
    name: str,
    regions: tuple[str, ...],
    profile: str | None,
    endpoint_url: str | None,
    as_json: bool,
) -> None:
    """List every version of layer NAME in each region, newest first."""
    infos = list_versions(name, regions, make_gateways(profile, endpoint_url))
    if as_json:
        _echo_json([info.to_json() for info in infos])
    elif infos:
        _render_versions(infos)
    else:
        click.echo(f"no versions of {name}", err=True)


@layers.command("prune")
@click.argument("name")
@click.option(
    "--keep",
    type=int,
    required=True,
    help="How many of the newest versions to keep per region (1 or more).",
)
@aws_options
@records_option
@click.option("--yes", is_flag=True, help="Delete without asking.")
@click.option(
    "--force", is_flag=True, help="Also delete versions that functions still use."
)
@json_option
@click.pass_obj
def prune_command(
    reporter: ConsoleReporter,
    name: str,
    keep: int,
    regions: tuple[str, ...],
    profile: str | None,
    endpoint_url: str | None,
    records_path: Path,
    yes: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Delete old versions of layer NAME, keeping the newest --keep.

    Shows the plan and asks before deleting unless --yes. Versions used by a
    function these credentials can see are kept unless --force.
    """
    gateways = make_gateways(profile, endpoint_url)
    plan = plan_prune(
        name, keep=keep, regions=regions, gateway_for=gateways, force=force
    )
    _render_prune_plan(plan)
    for item in plan.refused:
        users = ", ".join(item.used_by)
        reporter.warn(
            f"keeping {item.info.layer_version_arn}: used by {users} (--force deletes)"
        )

    deleted: list[LayerVersionInfo] = []
    if plan.deletions and (
        yes or click.confirm(f"Delete {len(plan.deletions)} version(s)?", err=True)
    ):
        deleted = execute_prune(plan, gateways, reporter, records_path=records_path)
    elif not plan.deletions:
        reporter.step("nothing to delete")
    else:
        reporter.step("nothing deleted")

    if as_json:
        _echo_json(
            {
                "plan": [item.to_json() for item in plan.items],
                "deleted": [info.layer_version_arn for info in deleted],
            }
        )


def _render_prune_plan(plan: PrunePlan) -> None:
    rows = [["REGION", "VERSION", "ACTION", "ARN"]]
    rows += [
        [
            item.info.region,
            str(item.info.version),
            item.action,
            item.info.layer_version_arn,
        ]
        for item in plan.items
    ]
    _table(rows)
