"""Run ``layerbuild`` and kill -9 it, with its subprocesses, at a named point.

    python -m tests.hostile.killer POINT -- [layerbuild arguments...]

The points are recognised from the outside, through Python's audit hooks
(``sys.addaudithook``): the file a step opens or renames, the program it
starts. layerbuild itself carries no test hook. When the point is reached,
the whole process group (layerbuild and any uv it started) gets SIGKILL, as
``kill -9 -PGID`` would send it; the parent starts this in a new session so
nothing else is in the group.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _text(args: tuple[Any, ...], index: int) -> str:
    return str(args[index]) if len(args) > index else ""


@dataclass(frozen=True)
class Point:
    """Where to kill: the Nth audit event that matches, plus an optional delay."""

    event: str
    matches: Callable[[tuple[Any, ...]], bool]
    nth: int = 1
    delay: float = 0.0  # seconds after the event, for work inside a subprocess


def _opens(fragment: str, *, raw: bool | None = None) -> Callable[..., bool]:
    """An ``open`` of a path holding ``fragment``; raw: os.open (mode None)."""

    def check(args: tuple[Any, ...]) -> bool:
        if fragment not in _text(args, 0):
            return False
        return raw is None or (args[1] is None) == raw

    return check


def _renames_to(fragment: str) -> Callable[..., bool]:
    return lambda args: fragment in _text(args, 1)


def _runs(word: str) -> Callable[..., bool]:
    return lambda args: word in _text(args, 1)


POINTS: dict[str, Point] = {
    "resolving": Point("subprocess.Popen", _runs("compile"), delay=0.3),
    "lock-write": Point("open", _opens("/locks/", raw=True)),
    "download-start": Point("open", _opens("/partial/")),
    "download-middle": Point("open", _opens("/partial/"), nth=3),
    "download-rename": Point("os.rename", _renames_to("/wheels/"), nth=2),
    "installing": Point("subprocess.Popen", _runs("install"), delay=0.05),
    "audit": Point("open", _opens("/stage/", raw=True), nth=25),
    "zip-compressing": Point("open", _opens("/stage/", raw=False), nth=15),
    "zip-cache-write": Point("os.rename", _renames_to("/deflate/"), nth=10),
    "zip-rename": Point("os.rename", lambda a: _text(a, 1).endswith(".zip")),
    "manifest-write": Point("open", _opens(".json.", raw=True)),
    "manifest-rename": Point("os.rename", lambda a: _text(a, 1).endswith(".json")),
}


def _kill() -> None:
    os.killpg(0, signal.SIGKILL)


def install(point: Point) -> None:
    """Arm the audit hook that kills the process group at ``point``."""
    seen = 0

    def hook(event: str, args: tuple[Any, ...]) -> None:
        nonlocal seen
        if event != point.event or not point.matches(args):
            return
        seen += 1
        if seen != point.nth:
            return
        if point.delay:
            threading.Timer(point.delay, _kill).start()
        else:
            _kill()

    sys.addaudithook(hook)


if __name__ == "__main__":
    name, separator, *argv = sys.argv[1:]
    assert separator == "--", "usage: killer POINT -- ARGS..."
    install(POINTS[name])
    from layerbuild.cli import main

    main(argv)
