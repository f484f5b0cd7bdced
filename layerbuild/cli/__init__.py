"""The ``layerbuild`` command line: click commands over the core.

Commands only parse arguments, call one core function and render its result.
Every expected failure is a ``LayerbuildError``; ``main`` turns it into one
``error:`` line (and a ``hint:`` line) on stderr and its documented exit status.
"""

from __future__ import annotations

import importlib
import sys

import click

from layerbuild import __version__
from layerbuild.cli.console import ConsoleReporter
from layerbuild.errors import ExitStatus, LayerbuildError

# Each command's module, imported only when that command runs (or --help lists
# them): a build should not pay for loading boto3, nor a publish for the
# Docker SDK. A module registers its commands on ``cli`` when imported.
COMMAND_MODULES = {
    "list": "build",
    "lock": "build",
    "build": "build",
    "audit": "build",
    "test": "test",
    "publish": "publish",
    "layers": "publish",
    "attach": "function",
    "versions": "function",
    "publish-version": "function",
    "alias": "function",
    "release": "function",
}


class LazyGroup(click.Group):
    """A group whose commands are defined in modules loaded on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(f"layerbuild.cli.{COMMAND_MODULES[cmd_name]}")
        return self.commands.get(cmd_name)


EPILOG = """\
Exit statuses: 0 done, 1 operational failure, 2 bad usage, recipe or lock,
3 a Lambda limit, audit rule or smoke test broken, 130 interrupted.
"""


@click.group(
    cls=LazyGroup,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="layerbuild")
@click.option("-v", "--verbose", count=True, help="Show details and tool output.")
@click.option("-q", "--quiet", is_flag=True, help="Show only warnings and errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Build, check and publish AWS Lambda layers from recipes."""
    if verbose and quiet:
        msg = "-v and -q cannot be combined"
        raise click.UsageError(msg)
    ctx.obj = ConsoleReporter(-1 if quiet else verbose)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command and map errors to exit statuses."""
    reporter = ConsoleReporter()
    try:
        cli.main(args=argv, prog_name="layerbuild", standalone_mode=False)
    except LayerbuildError as error:
        findings = getattr(error, "findings", [])
        if len(findings) > 1:
            for finding in findings:
                reporter.error(finding)
        reporter.error(error.message, error.hint)
        sys.exit(error.exit_status)
    except click.exceptions.Abort:
        reporter.error("interrupted")
        sys.exit(ExitStatus.INTERRUPTED)
    except KeyboardInterrupt:
        reporter.error("interrupted")
        sys.exit(ExitStatus.INTERRUPTED)
    except click.ClickException as error:
        # The same one-line shape as every other error, not click's usage block.
        hint = None
        if isinstance(error, click.UsageError) and error.ctx is not None:
            hint = f"see '{error.ctx.command_path} --help'"
        reporter.error(" ".join(error.format_message().split()), hint)
        sys.exit(error.exit_code)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
