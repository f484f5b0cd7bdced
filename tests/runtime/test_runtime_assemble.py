"""Assembling a runtime layer tree from a recipe, where no container is needed.

A static bootstrap for the target's machine needs nothing from the OS image,
so these trees are assembled without Docker; the engine given fails if asked.
"""

from __future__ import annotations

import stat
import textwrap
from pathlib import Path
from typing import Any, cast

import pytest

from layerbuild.containers import Engine
from layerbuild.errors import AuditError, RecipeError
from layerbuild.recipe import Recipe, load_recipe
from layerbuild.report import RecordingReporter
from layerbuild.runtime_layer import assemble
from layerbuild.targets import Target
from tests.runtime.elf_samples import EM_AARCH64, EM_X86_64, static_exit_program

TARGET = Target.of("provided.al2023", "x86_64")


class NoEngine:
    """Stands in for the Docker engine where none may be used."""

    def box(self, spec: Any) -> Any:
        msg = f"no container expected, asked for {spec}"
        raise AssertionError(msg)


def recipe_with(folder: Path, files: str = "", kind: str = "runtime") -> Recipe:
    """A recipe in ``folder`` with a static x86_64 bootstrap and ``files``."""
    (folder / "boot").write_bytes(static_exit_program(EM_X86_64))
    (folder / "boot").chmod(0o700)
    path = folder / "layer.toml"
    runtime_table = (
        f'[runtime]\nbootstrap = "boot"\n{files}' if kind == "runtime" else ""
    )
    runtime = "provided.al2023" if kind == "runtime" else "python3.12"
    path.write_text(
        f'kind = "{kind}"\nruntimes = ["{runtime}"]\n'
        + ('requirements = ["six"]\n' if kind == "python" else "")
        + runtime_table
    )
    return load_recipe(path)


def assemble_here(recipe: Recipe, tree: Path) -> RecordingReporter:
    reporter = RecordingReporter()
    assemble(
        recipe,
        TARGET,
        tree,
        engine=cast(Engine, NoEngine()),
        image="unused",
        reporter=reporter,
    )
    return reporter


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_modes_are_made_usable_by_lambdas_unprivileged_user(tmp_path: Path) -> None:
    """Bootstrap 0755, programs in bin/ 0755, data 0644, folders 0755."""
    (tmp_path / "tool").write_text("#!/bin/sh\n")
    (tmp_path / "tool").chmod(0o600)
    (tmp_path / "share").mkdir()
    (tmp_path / "share" / "a.txt").write_text("a")
    (tmp_path / "share" / "a.txt").chmod(0o600)
    recipe = recipe_with(
        tmp_path,
        textwrap.dedent(
            """\
            [runtime.files]
            "bin/tool" = "tool"
            "lib/data" = "share"
            """
        ),
    )
    tree = tmp_path / "tree"

    reporter = assemble_here(recipe, tree)

    assert mode(tree / "bootstrap") == 0o755
    assert mode(tree / "bin" / "tool") == 0o755
    assert mode(tree / "lib" / "data" / "a.txt") == 0o644
    assert {mode(tree), mode(tree / "bin"), mode(tree / "lib" / "data")} == {0o755}
    assert reporter.steps == [f"layer: bootstrap and audit passed for {TARGET.slug}"]


@pytest.mark.parametrize(
    "destination",
    ["../escape", "/opt/bin/x", "bootstrap", "share/x", "lib/../x", "bin"],
)
def test_a_file_outside_bin_and_lib_is_refused(
    tmp_path: Path, destination: str
) -> None:
    """The error names the recipe file, the field and the value."""
    (tmp_path / "tool").write_text("x")
    recipe = recipe_with(tmp_path, f'files = {{ "{destination}" = "tool" }}\n')

    with pytest.raises(RecipeError) as caught:
        assemble_here(recipe, tmp_path / "tree")

    recipe_file = tmp_path / "layer.toml"
    assert str(caught.value).startswith(
        f"{recipe_file}: field 'runtime.files': {destination!r} is not valid"
    )


def test_a_python_recipe_is_not_a_runtime_layer(tmp_path: Path) -> None:
    """Only kind = "runtime" recipes are assembled here."""
    recipe = recipe_with(tmp_path, kind="python")

    with pytest.raises(RecipeError, match="field 'kind': 'python' is not a runtime"):
        assemble_here(recipe, tmp_path / "tree")


def test_the_layer_audit_runs_over_the_extra_files(tmp_path: Path) -> None:
    """A program in bin/ built for the other machine is caught by the audit."""
    (tmp_path / "tool").write_bytes(static_exit_program(EM_AARCH64))
    recipe = recipe_with(tmp_path, 'files = { "bin/tool" = "tool" }\n')

    with pytest.raises(AuditError) as caught:
        assemble_here(recipe, tmp_path / "tree")

    assert caught.value.findings == [
        "bin/tool: built for EM_AARCH64; x86_64 runs EM_X86_64"
    ]


def test_a_wrong_bootstrap_is_named_once(tmp_path: Path) -> None:
    """The audit's own line about the bootstrap gives way to the bootstrap check's."""
    recipe = recipe_with(tmp_path)
    (tmp_path / "boot").write_bytes(static_exit_program(EM_AARCH64))

    with pytest.raises(AuditError) as caught:
        assemble_here(recipe, tmp_path / "tree")

    assert caught.value.findings == [
        "bootstrap: compiled for aarch64 (EM_AARCH64), but the target "
        "provided.al2023-x86_64 runs x86_64"
    ]
