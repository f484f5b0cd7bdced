"""Wiring: the one place that builds real objects from command-line choices."""

from __future__ import annotations

from layerbuild.builders import Builder, default_cache_dir
from layerbuild.errors import DockerError
from layerbuild.index import PackageIndex, index_url_from_environment
from layerbuild.local import LocalBuilder
from layerbuild.report import Reporter
from layerbuild.runner import SubprocessRunner


def make_local_builder(reporter: Reporter) -> LocalBuilder:
    return LocalBuilder(
        runner=SubprocessRunner(reporter),
        reporter=reporter,
        index=PackageIndex(index_url_from_environment()),
        cache_dir=default_cache_dir(),
    )


def make_builder(
    choice: str, reporter: Reporter, *, smoke_test: bool = True
) -> Builder:
    """The builder for ``--builder docker|local|auto``."""
    if choice == "local":
        return make_local_builder(reporter)
    try:
        from layerbuild import docker_builder
    except ImportError as error:  # the docker SDK is a dependency; this is defensive
        if choice == "docker":
            msg = f"the Docker builder is unavailable: {error}"
            raise DockerError(msg) from None
        return make_local_builder(reporter)
    if choice == "docker":
        return docker_builder.make_docker_builder(reporter, smoke_test=smoke_test)
    if docker_builder.engine_available():
        reporter.step("builder: Docker engine found, building in containers")
        return docker_builder.make_docker_builder(reporter, smoke_test=smoke_test)
    reporter.step("builder: no Docker engine answered, building without Docker")
    return make_local_builder(reporter)
