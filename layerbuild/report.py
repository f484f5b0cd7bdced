"""How the core tells the user what it is doing, without ever printing.

Core modules take a ``Reporter`` and call it; the command line supplies one that
writes to stderr according to ``-v``/``-q``, tests supply ``RecordingReporter``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class Reporter(Protocol):
    """Receives what the core has to say, by kind."""

    def step(self, message: str) -> None:
        """A build step starting or finishing: shown unless ``-q``."""

    def detail(self, message: str) -> None:
        """Supporting detail: shown with ``-v``."""

    def warn(self, message: str) -> None:
        """Something the user should know: shown even with ``-q``."""

    def output(self, line: str) -> None:
        """A line from a subprocess or container: streamed with ``-v``."""


class NullReporter:
    """Says nothing; for callers that only want the return value."""

    def step(self, message: str) -> None:
        pass

    def detail(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def output(self, line: str) -> None:
        pass


@dataclass
class RecordingReporter:
    """Keeps every message, by kind, for tests to assert on."""

    steps: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def step(self, message: str) -> None:
        self.steps.append(message)

    def detail(self, message: str) -> None:
        self.details.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def output(self, line: str) -> None:
        self.lines.append(line)
