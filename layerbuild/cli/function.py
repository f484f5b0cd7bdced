"""``layerbuild attach``, ``versions``, ``publish-version``, ``alias`` and ``release``.

Each command parses its arguments, makes the AWS gateway for one region, calls
one function of ``layerbuild.functions`` and renders what it returns: results
on stdout (``--json`` for machines), progress and warnings on stderr.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from layerbuild import functions
from layerbuild.aws import ClientFactory, FunctionGateway, environment_settings
from layerbuild.cli import cli
from layerbuild.cli.console import ConsoleReporter
from layerbuild.errors import UsageError
from layerbuild.recipe import parse_size
from layerbuild.records import DEFAULT_RECORDS_FILE, load_records
from layerbuild.rules import parse_duration, parse_percent, parse_steps


def with_gateway(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --region, --profile and --endpoint-url; pass ``gateway`` instead."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        region: str | None,
        profile: str | None,
        endpoint_url: str | None,
        **kwargs: Any,
    ) -> Any:
        if not region:
            msg = "no region given"
            raise UsageError(msg, hint="pass --region or set AWS_DEFAULT_REGION")
        settings = environment_settings(
            os.environ, profile=profile, endpoint_url=endpoint_url
        )
        gateway = FunctionGateway(ClientFactory(settings), region)
        return command(*args, gateway=gateway, **kwargs)

    options = [
        click.option(
            "--region",
            envvar=["AWS_REGION", "AWS_DEFAULT_REGION"],
            metavar="REGION",
            help="The function's region (default: AWS_REGION, AWS_DEFAULT_REGION).",
        ),
        click.option(
            "--profile",
            envvar="AWS_PROFILE",
            help="A profile from the AWS config files (else the standard chain).",
        ),
        click.option(
            "--endpoint-url",
            envvar="AWS_ENDPOINT_URL",
            metavar="URL",
            help="Send every AWS call here (a local stand-in, a VPC endpoint).",
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON on stdout."
)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


# -- attach -------------------------------------------------------------------


@cli.command()
@click.argument("function")
@click.argument("layers", nargs=-1, metavar="LAYER...")
@click.option(
    "--replace", is_flag=True, help="Use only the layers given; drop the others."
)
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@click.option(
    "--records",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(DEFAULT_RECORDS_FILE),
    show_default=True,
    help="The published-layers records, to resolve recipe names and sizes.",
)
@click.option(
    "--dist",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dist"),
    show_default=True,
    help="Where layerbuild's zips are, to look for files two layers both hold.",
)
@click.option(
    "--code-size",
    metavar="SIZE",
    help="The function code's unzipped size (bytes, or such as 12MB), when it "
    "cannot be downloaded.",
)
@click.option(
    "--code-zip",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A local copy of the function's zip, to measure its unzipped size.",
)
@json_option
@with_gateway
@click.pass_obj
def attach(
    reporter: ConsoleReporter,
    function: str,
    layers: tuple[str, ...],
    replace: bool,
    dry_run: bool,
    records: Path,
    dist: Path,
    code_size: str | None,
    code_zip: Path | None,
    as_json: bool,
    gateway: FunctionGateway,
) -> None:
    """Attach layers to FUNCTION, within Lambda's limits.

    A LAYER is a recipe name (its newest published layer that fits the
    function, from --records), NAME:VERSION, or a layer version ARN. A layer
    the function already uses in another version is replaced in place; new
    ones go last, and later layers' files win over earlier ones'. Nothing
    changes when a rule would be broken (exit status 3).
    """
    if not layers and not replace:
        msg = "give at least one LAYER (or --replace with none to remove all)"
        raise UsageError(msg)
    if code_size is not None and code_zip is not None:
        msg = "give --code-size or --code-zip, not both"
        raise UsageError(msg)
    code_bytes = parse_size(code_size) if code_size is not None else None
    if code_size is not None and code_bytes is None:
        msg = f"--code-size {code_size!r} is not a size such as 12000000 or 12MB"
        raise UsageError(msg)

    plan = functions.plan_attach(
        gateway,
        function,
        layers,
        records=load_records(records),
        replace=replace,
        code_size=code_bytes,
        code_zip=code_zip,
        dist=dist if dist.is_dir() else None,
    )
    for warning in plan.warnings:
        reporter.warn(warning)
    summary: dict[str, Any] = {
        "function": function,
        "region": gateway.region,
        "changes": plan.changes,
        "layers": [layer.arn for layer in plan.after],
        "unzipped": {part.label: part.unzipped_bytes for part in plan.size_parts},
    }
    if dry_run:
        if as_json:
            echo_json({**summary, "dry_run": True})
        else:
            click.echo("\n".join(plan.describe()))
        return

    for line in plan.describe():
        reporter.detail(line)
    functions.apply_attach(gateway, plan, clock=functions.Clock(), reporter=reporter)
    if as_json:
        echo_json(summary)
    else:
        click.echo("\n".join(layer.arn for layer in plan.after))


# -- versions -----------------------------------------------------------------


@cli.command()
@click.argument("function")
@json_option
@with_gateway
def versions(
    function: str,
    as_json: bool,
    gateway: FunctionGateway,
) -> None:
    """List FUNCTION's published versions, oldest first."""
    found = functions.numbered_versions(gateway.list_versions(function))
    if as_json:
        echo_json(found)
        return
    for version in found:
        click.echo(
            f"{version['Version']:>4}  {version.get('CodeSha256', '')[:12]}  "
            f"{version.get('LastModified', '')}  {version.get('Description', '')}"
        )


@cli.command("publish-version")
@click.argument("function")
@click.option("--description", default="", help="The new version's description.")
@json_option
@with_gateway
@click.pass_obj
def publish_version(
    reporter: ConsoleReporter,
    function: str,
    description: str,
    as_json: bool,
    gateway: FunctionGateway,
) -> None:
    """Publish FUNCTION's code and configuration; print the version number.

    Waits for an update in progress first. When nothing changed since the
    newest version, that version's number is printed and nothing is published.
    """
    published = functions.publish_version(
        gateway,
        function,
        description=description,
        clock=functions.Clock(),
        reporter=reporter,
    )
    if as_json:
        echo_json({"version": published.version, "reused": published.reused})
    else:
        click.echo(published.version)


# -- alias --------------------------------------------------------------------


def alias_line(alias: dict[str, Any]) -> str:
    """``Prod -> 2 (10% to 3)``."""
    text = f"{alias['Name']} -> {alias['FunctionVersion']}"
    routing = functions.routing_of(alias)
    if routing:
        shares = ", ".join(f"{w:.0%} to {v}" for v, w in routing.items())
        text += f" ({shares})"
    return text


routing_option = click.option(
    "--routing",
    multiple=True,
    metavar="VERSION=WEIGHT",
    help="Send a share (0 < WEIGHT < 1) of the traffic to a second version.",
)


@cli.group()
def alias() -> None:
    """Create, show, change and delete aliases (as the AWS CLI means them)."""


@alias.command("create")
@click.argument("function")
@click.argument("name")
@click.option(
    "-v", "--version", "version", required=True, help="A published version number."
)
@click.option("--description", default="", help="The alias's description.")
@routing_option
@json_option
@with_gateway
def alias_create(
    function: str,
    name: str,
    version: str,
    description: str,
    routing: tuple[str, ...],
    as_json: bool,
    gateway: FunctionGateway,
) -> None:
    """Create alias NAME of FUNCTION pointing to a published version."""
    answer = functions.create_alias(
        gateway,
        function,
        name,
        version=version,
        description=description,
        routing=routing,
    )
    click.echo(json.dumps(answer, indent=2) if as_json else alias_line(answer))


@alias.command("get")
@click.argument("function")
@click.argument("name")
@json_option
@with_gateway
def alias_get(
    function: str,
    name: str,
    as_json: bool,
    gateway: FunctionGateway,
) -> None:
    """Show alias NAME of FUNCTION."""
    answer = functions.get_alias(gateway, function, name)
    click.echo(json.dumps(answer, indent=2) if as_json else alias_line(answer))


@alias.command("update")
@click.argument("function")
@click.argument("name")
@click.option("-v", "--version", "version", help="Point to this published version.")
@click.option("--description", help="A new description.")
@routing_option
@click.option("--no-routing", is_flag=True, help="Stop routing to a second version.")
@json_option
@with_gateway
def alias_update(
    function: str,
    name: str,
    version: str | None,
    description: str | None,
    routing: tuple[str, ...],
    no_routing: bool,
    as_json: bool,
    gateway: FunctionGateway,
) -> None:
    """Change alias NAME of FUNCTION; routing not mentioned is kept."""
    if routing and no_routing:
        msg = "give --routing or --no-routing, not both"
        raise UsageError(msg)
    answer = functions.update_alias(
        gateway,
        function,
        name,
        version=version,
        description=description,
        routing=[] if no_routing else (list(routing) or None),
    )
    click.echo(json.dumps(answer, indent=2) if as_json else alias_line(answer))


@alias.command("delete")
@click.argument("function")
@click.argument("name")
@with_gateway
@click.pass_obj
def alias_delete(
    reporter: ConsoleReporter,
    function: str,
    name: str,
    gateway: FunctionGateway,
) -> None:
    """Delete alias NAME of FUNCTION; its versions stay."""
    functions.get_alias(gateway, function, name)
    gateway.delete_alias(function, name)
    reporter.step(f"deleted alias {name} of {function}")


@alias.command("list")
@click.argument("function")
@json_option
@with_gateway
def alias_list(
    function: str,
    as_json: bool,
    gateway: FunctionGateway,
) -> None:
    """List FUNCTION's aliases."""
    found = gateway.list_aliases(function)
    if as_json:
        echo_json(found)
        return
    for answer in found:
        click.echo(alias_line(answer))


# -- release ------------------------------------------------------------------


@cli.command()
@click.argument("function")
@click.option("--alias", "alias_name", required=True, help="The alias to move.")
@click.option(
    "--canary",
    metavar="PERCENT",
    help="Publish, then route this share of the alias's traffic to the new version.",
)
@click.option(
    "--promote", is_flag=True, help="Move the alias wholly to its routed version."
)
@click.option(
    "--rollback", is_flag=True, help="Stop routing; stay on the alias's version."
)
@click.option(
    "--steps",
    metavar="P1,P2,...",
    help="Publish, then shift traffic in rising percentages (100 = promote).",
)
@click.option(
    "--interval",
    default="5m",
    show_default=True,
    help="Time between --steps (such as 90s, 5m, 1h).",
)
@click.option("--alarm", help="A CloudWatch alarm; ALARM between steps rolls back.")
@click.option("--description", default="", help="The new version's description.")
@json_option
@with_gateway
@click.pass_obj
def release(
    reporter: ConsoleReporter,
    function: str,
    alias_name: str,
    canary: str | None,
    promote: bool,
    rollback: bool,
    steps: str | None,
    interval: str,
    alarm: str | None,
    description: str,
    as_json: bool,
    gateway: FunctionGateway,
) -> None:
    """Release FUNCTION's current code through alias ALIAS.

    --canary publishes a version and routes a share of the traffic to it;
    --promote then moves the alias to it, --rollback stays on the old one.
    --steps does all of it in steps, watching --alarm between them.
    """
    request = functions.ReleaseRequest(
        canary=parse_percent(canary, option="--canary") if canary else None,
        promote=promote,
        rollback=rollback,
        steps=tuple(parse_steps(steps)) if steps else (),
        interval=parse_duration(interval),
        alarm=alarm,
        description=description,
    )
    request.check()
    result = functions.release(
        gateway,
        function,
        alias_name,
        request,
        clock=functions.Clock(),
        reporter=reporter,
    )
    if as_json:
        echo_json(
            {
                "alias": result.alias,
                "old_version": result.old_version,
                "new_version": result.new_version,
                "published": result.published,
                "events": result.events,
            }
        )
    else:
        click.echo(alias_line(result.alias))
