"""Running subprocesses, behind an interface tests can replace.

Output is captured and handed to the reporter line by line (shown live with
``-v``); on failure the caller gets the whole output to put in its error.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from layerbuild.report import Reporter


@dataclass(frozen=True)
class Completed:
    """What a finished subprocess left behind."""

    argv: tuple[str, ...]
    returncode: int
    output: str  # stdout and stderr, interleaved as they came


class Runner(Protocol):
    def __call__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Completed: ...


@dataclass
class SubprocessRunner:
    """Runs commands for real, streaming their output to a reporter."""

    reporter: Reporter

    def __call__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Completed:
        merged_env = {**os.environ, **(env or {})}
        lines: list[str] = []
        with subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=merged_env,
            cwd=cwd,
            text=True,
            errors="replace",
        ) as process:
            assert process.stdout is not None  # PIPE was asked for
            for line in process.stdout:
                stripped = line.rstrip("\n")
                lines.append(stripped)
                self.reporter.output(stripped)
        return Completed(tuple(argv), process.returncode, "\n".join(lines))
