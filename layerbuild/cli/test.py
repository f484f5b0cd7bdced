"""``layerbuild test RECIPE|ZIP``: import a layer's modules in its runtime image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from layerbuild.cli import cli
from layerbuild.cli.console import ConsoleReporter
from layerbuild.cli.options import recipes_dir_option
from layerbuild.errors import UsageError
from layerbuild.recipe import find_recipes
from layerbuild.targets import ARCHITECTURES, RUNTIMES, Target

if TYPE_CHECKING:
    from layerbuild.runtime_api import RuntimeTestResult
    from layerbuild.smoke import SmokeResult


@cli.command("test")
@click.argument("layer", metavar="RECIPE|ZIP")
@click.option(
    "--runtime",
    type=click.Choice(list(RUNTIMES)),
    help="Runtime to test in (default: the manifest's or the recipe's).",
)
@click.option(
    "--arch",
    type=click.Choice(list(ARCHITECTURES)),
    help="Architecture (default: the manifest's or the recipe's first).",
)
@click.option(
    "--image", help="Runtime image to test in (default: the public Lambda image)."
)
@click.option(
    "--build-image", help="Build image for a RECIPE (default: the SAM image)."
)
@recipes_dir_option
@click.pass_obj
def test_layer(
    reporter: ConsoleReporter,
    layer: str,
    runtime: str | None,
    arch: str | None,
    image: str | None,
    build_image: str | None,
    recipes_dir: Path,
) -> None:
    """Smoke-test a layer zip, or a recipe built in its build image.

    For a ZIP, the runtimes and architecture come from the manifest beside it
    (<zip>.json or <name>.json) unless --runtime/--arch are given. A RECIPE is
    locked (unless its lock exists) and installed in a container first.
    A custom-runtime layer (provided.*) gets its recipe's event through a
    local Runtime API instead of imports.
    Exit status 3 when an import, the recipe's build.test or the event fails.
    """
    from layerbuild import smoke
    from layerbuild.containers import Engine

    path = Path(layer)
    if path.suffix == ".zip":
        targets, packages, recipe = _zip_targets(path, runtime, arch), {}, None
        manifest = _manifest(path)
        if manifest:
            packages = dict(manifest.get("packages") or {})
        if targets[0].runtime.python is None:
            _test_runtime_zip(path, targets, manifest, recipes_dir, image, reporter)
            return
        engine = Engine.connect()
        try:
            for target in targets:
                result = smoke.run_smoke_test(
                    path,
                    recipe,
                    target,
                    packages,
                    image=image,
                    engine=engine,
                    reporter=reporter,
                )
                reporter.step(_passed(result))
        finally:
            engine.close()
        return

    from layerbuild.docker_builder import build_and_test

    recipe = find_recipes([layer], recipes_dir)[0]
    targets = recipe.targets([runtime] if runtime else None, [arch] if arch else None)
    if not targets:
        msg = f"{recipe.path}: has no target {runtime or ''} {arch or ''}".rstrip()
        raise UsageError(msg)
    for target in targets:
        result = build_and_test(
            recipe, target, reporter, image=image, build_image=build_image
        )
        reporter.step(_passed(result))


def _test_runtime_zip(
    path: Path,
    targets: list[Target],
    manifest: dict | None,
    recipes_dir: Path,
    image: str | None,
    reporter: ConsoleReporter,
) -> None:
    """Send a runtime layer's recipe event through its bootstrap, per target."""
    import tempfile

    from layerbuild.containers import Engine
    from layerbuild.runtime_api import run_recipe_test
    from layerbuild.smoke import default_runtime_image, unpack_layer

    name = (manifest or {}).get("recipe")
    if not isinstance(name, str):
        msg = f"{path}: a runtime layer's manifest must name its recipe (the event)"
        raise UsageError(msg)
    recipe = find_recipes([name], recipes_dir)[0]
    engine = Engine.connect()
    try:
        with tempfile.TemporaryDirectory(prefix="layerbuild-test-") as scratch:
            tree = Path(scratch, "layer")
            unpack_layer(path, tree)
            for target in targets:
                result = run_recipe_test(
                    recipe,
                    target,
                    tree,
                    image=image or default_runtime_image(target),
                    engine=engine,
                    reporter=reporter,
                )
                reporter.step(_passed(result))
    finally:
        engine.close()


def _passed(result: SmokeResult | RuntimeTestResult) -> str:
    if not hasattr(result, "modules"):
        return f"runtime test passed in {result.seconds:.1f} s: {result.response[:80]}"
    return (
        f"smoke test passed in {result.image}: {len(result.modules)} module(s) "
        f"imported in {result.seconds:.1f} s"
    )


def _manifest(zip_path: Path) -> dict | None:
    for candidate in (
        zip_path.with_name(zip_path.name + ".json"),
        zip_path.with_suffix(".json"),
    ):
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                msg = f"{candidate}: not a readable layer manifest ({error})"
                raise UsageError(msg) from None
            if not isinstance(data, dict):
                msg = f"{candidate}: not a layer manifest (expected a JSON object)"
                raise UsageError(msg)
            return data
    return None


def _zip_targets(zip_path: Path, runtime: str | None, arch: str | None) -> list[Target]:
    if not zip_path.is_file():
        msg = f"{zip_path}: no such layer zip"
        raise UsageError(msg)
    manifest = _manifest(zip_path) or {}
    runtimes = [runtime] if runtime else list(manifest.get("runtimes") or [])
    architecture = arch or manifest.get("architecture")
    if not runtimes or not architecture:
        msg = (
            f"{zip_path}: no manifest beside it names the runtime and architecture; "
            "pass --runtime and --arch"
        )
        raise UsageError(msg)
    targets = []
    for name in runtimes:
        if name not in RUNTIMES or architecture not in ARCHITECTURES:
            msg = f"{zip_path}: {name!r} on {architecture!r} is not a Lambda target"
            raise UsageError(msg, hint="pass --runtime and --arch")
        targets.append(Target.of(name, architecture))
    return targets
