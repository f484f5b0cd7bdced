"""Fixtures for the Docker builder's tests: the engine, the stand-in images, recipes.

Without an engine these tests are skipped, saying why; under CI (``CI=true``) a
missing engine or stand-in image fails them instead, since CI must run them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from layerbuild.containers import Engine
from layerbuild.docker_builder import DockerBuilder, engine_available
from layerbuild.recipe import Recipe, load_recipe
from layerbuild.report import RecordingReporter

# The stand-ins `.ci/standin-images` makes: build images with compilers and
# headers, runtime images with only python3.
BOOKWORM_BUILD = "layerbuild-standin:bookworm-build"  # python3.11
BOOKWORM = "layerbuild-standin:bookworm"
TRIXIE = "layerbuild-standin:trixie"  # python3.13
TRIXIE_BUILD = "layerbuild-standin:trixie-build"

IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """A connected engine, or a skip (a failure under CI) naming what is missing."""
    if not engine_available():
        _unavailable("no Docker engine answers (start dockerd or set DOCKER_HOST)")
    connected = Engine.connect()
    yield connected
    connected.close()


@pytest.fixture(scope="session")
def standins(engine: Engine) -> Engine:
    """The engine, once the stand-in images are known to be there."""
    missing = [
        tag
        for tag in (BOOKWORM_BUILD, BOOKWORM, TRIXIE)
        if not engine.image_exists(tag)
    ]
    if missing:
        _unavailable(
            f"stand-in images missing: {', '.join(missing)} (run .ci/standin-images)"
        )
    return engine


@pytest.fixture(scope="session")
def pip_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pip cache for the session's builds, so each sdist compiles once."""
    return tmp_path_factory.mktemp("docker-cache")


def write_recipe(folder: Path, name: str, body: str) -> Recipe:
    """Write ``<folder>/<name>.toml`` and load it as the command line would."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(body, encoding="utf-8")
    return load_recipe(path)


def make_builder(
    engine: Engine, cache: Path | None, **options: object
) -> tuple[DockerBuilder, RecordingReporter]:
    reporter = RecordingReporter()
    builder = DockerBuilder(
        reporter,
        engine=engine,
        base_image=BOOKWORM_BUILD,
        runtime_image=BOOKWORM,
        cache_dir=cache,
        **options,  # type: ignore[arg-type]
    )
    return builder, reporter


@pytest.fixture
def no_leftovers(engine: Engine) -> Iterator[None]:
    """Fails the test when it leaves a layerbuild container behind."""
    yield
    left = engine.leftover_containers(os.getpid())
    assert not left, f"containers left behind: {sorted(left)}"
