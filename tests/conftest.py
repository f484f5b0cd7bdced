"""Shared test configuration: the moto server plugin for AWS tests."""

pytest_plugins = ["tests.moto_server"]
