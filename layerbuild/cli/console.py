"""The terminal side of the ``Reporter``: what each kind of message looks like.

Everything goes to stderr, so stdout carries only results (``--json``). Styling
is used only when stderr is a terminal and ``NO_COLOR`` is unset.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

import click


class ConsoleReporter:
    """Writes the core's messages to stderr according to the verbosity.

    ``verbosity`` is 0 by default, 1 or more with ``-v``, -1 with ``-q``.
    """

    def __init__(self, verbosity: int = 0, stream: TextIO | None = None) -> None:
        self.verbosity = verbosity
        self.stream = stream or sys.stderr
        self.styled = self.stream.isatty() and "NO_COLOR" not in os.environ

    def _write(self, text: str, **style: object) -> None:
        if self.styled and style:
            text = click.style(text, **style)  # type: ignore[arg-type]
        click.echo(text, file=self.stream)

    def step(self, message: str) -> None:
        if self.verbosity >= 0:
            self._write(message, bold=True)

    def detail(self, message: str) -> None:
        if self.verbosity >= 1:
            self._write(f"  {message}")

    def warn(self, message: str) -> None:
        self._write(f"warning: {message}", fg="yellow")

    def output(self, line: str) -> None:
        if self.verbosity >= 1:
            self._write(f"  | {line}", dim=True)

    def error(self, message: str, hint: str | None = None) -> None:
        self._write(f"error: {message}", fg="red", bold=True)
        if hint:
            self._write(f"hint: {hint}", fg="cyan")
