"""Fixtures that run the real ``layerbuild`` entry point in-process.

Loaded for every test folder by ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from layerbuild.cli import main


@dataclass(frozen=True)
class CliResult:
    """What one run of the entry point left: exit status and both streams."""

    status: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., CliResult]:
    """Run the real ``layerbuild`` entry point in-process, as a user would."""

    def run(*argv: str, cwd: Path | None = None) -> CliResult:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            main(list(argv))
            status = 0
        except SystemExit as done:
            status = int(done.code or 0)
        captured = capsys.readouterr()
        return CliResult(status, captured.out, captured.err)

    return run


@pytest.fixture
def recipe_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "recipes"
    folder.mkdir()
    return folder
