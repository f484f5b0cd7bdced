"""Custom-runtime layers built, checked and driven through the Runtime API in Docker."""

from __future__ import annotations

import shutil
import stat
import textwrap
from pathlib import Path

import pytest

from layerbuild.containers import Engine
from layerbuild.errors import AuditError, BuildError, ExitStatus, SmokeTestError
from layerbuild.recipe import Recipe, load_recipe
from layerbuild.report import RecordingReporter
from layerbuild.runtime_api import (
    TEST_TIMEOUT_SECONDS,
    RuntimeTestResult,
    run_recipe_test,
    run_runtime_test,
)
from layerbuild.runtime_layer import assemble
from layerbuild.targets import Target
from tests.runtime.conftest import build_image, runtime_image
from tests.runtime.elf_samples import EM_AARCH64, static_exit_program

pytestmark = pytest.mark.docker

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
X86_RUNTIMES = [
    Target.of(name, "x86_64") for name in ("provided.al2", "provided.al2023")
]


def build(recipe: Recipe, target: Target, tree: Path, engine: Engine) -> None:
    """Assemble ``recipe`` for ``target`` in the stand-in images."""
    assemble(
        recipe,
        target,
        tree,
        engine=engine,
        image=build_image(target.runtime.name),
        runtime_image=runtime_image(target.runtime.name),
        reporter=RecordingReporter(),
    )


def round_trip(
    recipe: Recipe,
    target: Target,
    tree: Path,
    engine: Engine,
    event: str | None = None,
) -> RuntimeTestResult:
    """Send the recipe's event (or ``event``) through the tree's bootstrap."""
    image = runtime_image(target.runtime.name)
    reporter = RecordingReporter()
    return run_recipe_test(
        recipe, target, tree, image=image, engine=engine, reporter=reporter, event=event
    )


def run_tree(
    tree: Path,
    target: Target,
    engine: Engine,
    *,
    handler: str = "function.handler",
    timeout_s: float = TEST_TIMEOUT_SECONDS,
) -> RuntimeTestResult:
    """Send ``{}`` through a hand-made tree's bootstrap, expecting nothing."""
    image = runtime_image(target.runtime.name)
    reporter = RecordingReporter()
    return run_runtime_test(
        tree,
        target,
        "{}",
        None,
        image,
        engine,
        reporter,
        handler=handler,
        timeout_s=timeout_s,
    )


def runtime_test_containers(engine: Engine) -> set[str]:
    """Containers of runtime tests that still exist (other builds may run too)."""
    names = engine.leftover_containers()
    return {name for name in names if name.startswith("layerbuild-runtime-test-")}


def write_recipe(folder: Path, bootstrap: bytes, mode: int = 0o755) -> Recipe:
    """A runtime recipe in ``folder`` whose bootstrap file has these bytes."""
    (folder / "bootstrap.src").write_bytes(bootstrap)
    (folder / "bootstrap.src").chmod(mode)
    path = folder / "custom.toml"
    path.write_text(
        textwrap.dedent(
            """\
            kind = "runtime"
            runtimes = ["provided.al2"]
            [runtime]
            bootstrap = "bootstrap.src"
            """
        )
    )
    return load_recipe(path)


@pytest.mark.parametrize("target", X86_RUNTIMES, ids=lambda t: t.runtime.name)
@pytest.mark.parametrize("name", ["shell-runtime", "c-runtime"])
def test_the_examples_build_pass_the_checks_and_answer_their_event(
    name: str, target: Target, tmp_path: Path, engine: Engine
) -> None:
    """Each example layer builds, and its bootstrap answers with what it expects."""
    recipe = load_recipe(RECIPES / f"{name}.toml")

    build(recipe, target, tmp_path, engine)
    result = round_trip(recipe, target, tmp_path, engine)

    assert stat.S_IMODE((tmp_path / "bootstrap").stat().st_mode) == 0o755
    assert recipe.runtime is not None
    assert recipe.runtime.expect is not None
    assert recipe.runtime.expect in result.response


def test_the_shell_runtime_ships_its_api_client_in_lib(
    tmp_path: Path, engine: Engine
) -> None:
    """``files`` puts the client beside the bootstrap, readable by all."""
    recipe = load_recipe(RECIPES / "shell-runtime.toml")

    build(recipe, X86_RUNTIMES[0], tmp_path, engine)

    client = tmp_path / "lib" / "runtime-api.sh"
    assert stat.S_IMODE(client.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bootstrap", "lib"]


def test_a_handler_error_is_reported_with_its_type_and_message(
    tmp_path: Path, engine: Engine
) -> None:
    """The error the bootstrap posts becomes a smoke-test failure, exit status 3."""
    recipe = load_recipe(RECIPES / "shell-runtime.toml")
    build(recipe, X86_RUNTIMES[1], tmp_path, engine)

    with pytest.raises(SmokeTestError) as caught:
        round_trip(recipe, X86_RUNTIMES[1], tmp_path, engine, '{"fail": "on purpose"}')

    assert caught.value.message == (
        "provided.al2023-x86_64: the bootstrap answered the test event with an "
        "error: HandlerError: asked to fail: on purpose"
    )
    assert caught.value.exit_status == ExitStatus.LIMIT


def test_a_response_without_the_expected_text_fails(
    tmp_path: Path, engine: Engine
) -> None:
    """``expect`` is checked against the response the bootstrap posted."""
    recipe = load_recipe(RECIPES / "c-runtime.toml")
    build(recipe, X86_RUNTIMES[0], tmp_path, engine)

    with pytest.raises(SmokeTestError, match="the response does not contain"):
        round_trip(recipe, X86_RUNTIMES[0], tmp_path, engine, '{"message": "pong"}')


def test_a_missing_handler_is_an_init_error(tmp_path: Path, engine: Engine) -> None:
    """The shell bootstrap posts init/error when _HANDLER names no file."""
    recipe = load_recipe(RECIPES / "shell-runtime.toml")
    target = X86_RUNTIMES[0]
    build(recipe, target, tmp_path, engine)

    with pytest.raises(SmokeTestError) as caught:
        run_tree(tmp_path, target, engine, handler="absent.handler")

    assert "could not start: Runtime.ImportModuleError: cannot load " in str(
        caught.value
    )


class TestRefusals:
    def test_a_bootstrap_without_its_execute_bit(
        self, tmp_path: Path, engine: Engine
    ) -> None:
        """A source file in mode 0644 stays 0644 and is refused by name."""
        recipe = write_recipe(tmp_path, b"#!/bin/sh\necho hi\n", mode=0o644)

        with pytest.raises(AuditError) as caught:
            build(recipe, X86_RUNTIMES[0], tmp_path / "tree", engine)

        assert caught.value.findings == [
            "bootstrap: not executable (mode 0644); Lambda runs it as a program, "
            "as an unprivileged user, so it needs mode 0755"
        ]
        assert caught.value.exit_status == ExitStatus.LIMIT

    def test_a_script_whose_interpreter_the_os_lacks(
        self, tmp_path: Path, engine: Engine
    ) -> None:
        """``#!/usr/bin/lua5.4`` is looked for in the runtime image, and missed."""
        recipe = write_recipe(tmp_path, b"#!/usr/bin/lua5.4\nprint('hi')\n")

        with pytest.raises(AuditError) as caught:
            build(recipe, X86_RUNTIMES[0], tmp_path / "tree", engine)

        assert caught.value.findings == [
            "bootstrap: needs /usr/bin/lua5.4, which the provided.al2 OS image "
            "(layerbuild-standin:bookworm) does not have"
        ]

    def test_an_interpreter_the_os_has_passes(
        self, tmp_path: Path, engine: Engine
    ) -> None:
        """The same check finds bash, so it is not refusing everything."""
        recipe = write_recipe(tmp_path, b"#!/usr/bin/env bash\necho hi\n")

        build(recipe, X86_RUNTIMES[0], tmp_path / "tree", engine)

    def test_a_bootstrap_compiled_for_the_other_architecture(
        self, tmp_path: Path, engine: Engine
    ) -> None:
        """An aarch64 executable in an x86_64 layer is refused before any run."""
        recipe = write_recipe(tmp_path, static_exit_program(EM_AARCH64))

        with pytest.raises(AuditError) as caught:
            build(recipe, X86_RUNTIMES[0], tmp_path / "tree", engine)

        assert caught.value.findings == [
            "bootstrap: compiled for aarch64 (EM_AARCH64), but the target "
            "provided.al2-x86_64 runs x86_64"
        ]

    def test_a_build_command_that_fails(self, tmp_path: Path, engine: Engine) -> None:
        """The command's exit status and last output lines are in the error."""
        path = tmp_path / "broken.toml"
        path.write_text(
            'kind = "runtime"\nruntimes = ["provided.al2"]\n'
            '[runtime]\nbuild = "echo compiling; exit 4"\n'
        )

        with pytest.raises(BuildError) as caught:
            build(load_recipe(path), X86_RUNTIMES[0], tmp_path / "tree", engine)

        assert "runtime.build 'echo compiling; exit 4' exited with 4" in str(
            caught.value
        )
        assert str(caught.value).endswith("compiling")


class TestRoundTripFailures:
    def test_a_bootstrap_that_exits_without_answering(
        self, tmp_path: Path, engine: Engine
    ) -> None:
        """Its exit status and output are reported."""
        (tmp_path / "bootstrap").write_text("#!/bin/sh\necho giving up\nexit 3\n")
        (tmp_path / "bootstrap").chmod(0o755)
        target = X86_RUNTIMES[0]

        with pytest.raises(SmokeTestError) as caught:
            run_tree(tmp_path, target, engine)

        assert caught.value.message == (
            "provided.al2-x86_64: the bootstrap exited with 3 before answering "
            "the test event: giving up"
        )

    def test_a_silent_bootstrap_times_out_and_its_container_goes(
        self, tmp_path: Path, engine: Engine
    ) -> None:
        """No answer within the timeout is a failure; the container is removed."""
        (tmp_path / "bootstrap").write_text("#!/bin/sh\nexec sleep 600\n")
        (tmp_path / "bootstrap").chmod(0o755)
        target = X86_RUNTIMES[1]
        before = runtime_test_containers(engine)

        with pytest.raises(
            SmokeTestError, match="did not answer the test event within 2 s"
        ):
            run_tree(tmp_path, target, engine, timeout_s=2)

        assert runtime_test_containers(engine) <= before

    def test_the_bootstrap_runs_as_an_unprivileged_user(
        self, tmp_path: Path, engine: Engine
    ) -> None:
        """A layer file only its owner can read fails here, as it would in Lambda."""
        shutil.copy(RECIPES / "shell-runtime" / "bootstrap", tmp_path / "bootstrap")
        (tmp_path / "bootstrap").chmod(0o700)
        target = X86_RUNTIMES[0]

        with pytest.raises(SmokeTestError, match="exited with 126 before answering"):
            run_tree(tmp_path, target, engine)
