"""Shared test configuration: the moto server, and the in-process CLI runner."""

pytest_plugins = ["tests.moto_server", "tests.cli_runner"]
