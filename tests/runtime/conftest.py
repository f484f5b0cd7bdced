"""Fixtures for the custom-runtime tests: the Docker engine and stand-in images."""

from __future__ import annotations

import pytest

from layerbuild.containers import Engine, engine_answers

# The Debian stand-ins for the Amazon Linux images (see .ci/standin-images):
# bookworm plays provided.al2, trixie provided.al2023.
STANDIN_SUITES = {"provided.al2": "bookworm", "provided.al2023": "trixie"}


def runtime_image(runtime: str) -> str:
    """The stand-in for a runtime's own image (what Lambda runs)."""
    return f"layerbuild-standin:{STANDIN_SUITES[runtime]}"


def build_image(runtime: str) -> str:
    """The stand-in for a runtime's build image (compilers and headers)."""
    return f"layerbuild-standin:{STANDIN_SUITES[runtime]}-build"


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The local Docker engine, with every stand-in image present."""
    if not engine_answers():
        pytest.skip("no Docker engine answers")
    connected = Engine.connect()
    missing = [
        image
        for runtime in STANDIN_SUITES
        for image in (runtime_image(runtime), build_image(runtime))
        if not connected.image_exists(image)
    ]
    if missing:
        pytest.fail(f"stand-in images missing: {missing}; run .ci/standin-images")
    return connected
