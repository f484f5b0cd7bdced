"""Fixtures for the tests that try to break layerbuild."""

from __future__ import annotations

from tests.build.conftest import CliResult, recipe_dir, run_cli

__all__ = ["CliResult", "recipe_dir", "run_cli"]
