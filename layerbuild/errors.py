"""Every failure layerbuild expects, named after the situation.

Each class carries the exit status the command line returns for it, so the one
handler in ``layerbuild.cli`` can turn any of them into a single line on stderr.
A message says what happened; ``hint`` says what the user can do next.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """The documented exit statuses of every ``layerbuild`` command."""

    OK = 0
    FAILED = 1  # an operational failure: network, Docker, AWS, a build step
    BAD_INPUT = 2  # a bad command line, recipe or lock file
    LIMIT = 3  # a Lambda limit, an audit rule or a smoke test broken
    INTERRUPTED = 130


class LayerbuildError(Exception):
    """Root of the errors layerbuild reports without a traceback."""

    exit_status: ExitStatus = ExitStatus.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class RecipeError(LayerbuildError):
    """A recipe file is missing, unreadable or breaks the recipe schema."""

    exit_status = ExitStatus.BAD_INPUT


class LockError(LayerbuildError):
    """A lock file is malformed, stale, or could not be resolved."""

    exit_status = ExitStatus.BAD_INPUT


class UsageError(LayerbuildError):
    """The command line asks for something that cannot be done as asked."""

    exit_status = ExitStatus.BAD_INPUT


class BuildError(LayerbuildError):
    """A build step failed: resolving, downloading, installing or zipping."""


class HashMismatchError(BuildError):
    """A downloaded file does not match the sha256 recorded in the lock."""


class NeedsCompilerError(BuildError):
    """A package has no wheel for the target and must be compiled."""


class LimitError(LayerbuildError):
    """A Lambda limit or a recipe's own budget would be exceeded."""

    exit_status = ExitStatus.LIMIT


class AuditError(LayerbuildError):
    """A built layer breaks a rule Lambda or the runtime imposes."""

    exit_status = ExitStatus.LIMIT

    def __init__(self, findings: list[str], *, hint: str | None = None) -> None:
        self.findings = findings
        count = len(findings)
        summary = findings[0] if count == 1 else f"{count} audit failures"
        super().__init__(summary, hint=hint)


class SmokeTestError(LayerbuildError):
    """Importing the layer's modules in the runtime image failed."""

    exit_status = ExitStatus.LIMIT


class DockerError(LayerbuildError):
    """The Docker engine is missing, refused a request, or a container failed."""


class AwsError(LayerbuildError):
    """An AWS call failed; the message names the operation and the resource."""


class RuleError(LayerbuildError):
    """A Lambda rule checked before any AWS call (aliases, weights, layers)."""

    exit_status = ExitStatus.LIMIT


class RolledBackError(LayerbuildError):
    """A stepped release met its alarm and moved all traffic back."""
