"""``layerbuild list``, ``lock``, ``build`` and ``audit``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from layerbuild.builders import default_cache_dir
from layerbuild.cli import cli
from layerbuild.cli.console import ConsoleReporter
from layerbuild.cli.options import (
    arch_option,
    builder_option,
    dist_option,
    jobs_option,
    json_option,
    recipes_argument,
    recipes_dir_option,
    runtime_option,
)
from layerbuild.errors import UsageError
from layerbuild.factory import make_builder
from layerbuild.limits import MAX_UNZIPPED_BYTES
from layerbuild.recipe import Recipe, find_recipes, parse_size
from layerbuild.targets import Target


@cli.command("list")
@recipes_dir_option
@json_option
def list_recipes(recipes_dir: Path, as_json: bool) -> None:
    """List the recipes and their targets."""
    recipes = find_recipes([], recipes_dir)
    if as_json:
        rows = [
            {"name": r.name, "runtimes": r.runtimes, "architectures": r.architectures}
            for r in recipes
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    for recipe in recipes:
        targets = ", ".join(t.slug for t in recipe.targets())
        click.echo(f"{recipe.name:24} {targets}")


@cli.command()
@recipes_argument
@recipes_dir_option
@runtime_option
@arch_option
@builder_option
@json_option
@click.pass_obj
def lock(
    reporter: ConsoleReporter,
    recipes: tuple[str, ...],
    recipes_dir: Path,
    runtimes: tuple[str, ...],
    architectures: tuple[str, ...],
    builder: str,
    as_json: bool,
) -> None:
    """Resolve recipes into hashed locks, one per runtime and architecture."""
    chosen = find_recipes(recipes, recipes_dir)
    from layerbuild import pipeline  # the build machinery loads only when used

    active = make_builder(builder, reporter)
    results = []
    for recipe in chosen:
        if recipe.kind == "runtime":
            reporter.detail(
                f"{recipe.name}: a custom-runtime recipe has nothing to lock"
            )
            continue
        for target in _targets(recipe, runtimes, architectures):
            path, notices = pipeline.lock_recipe(recipe, target, active, reporter)
            for notice in notices:
                reporter.warn(notice)
            results.append({"recipe": recipe.name, "target": target.slug,
                            "lock": str(path), "notices": notices})  # fmt: skip
    if as_json:
        click.echo(json.dumps(results, indent=2))


@cli.command()
@recipes_argument
@recipes_dir_option
@runtime_option
@arch_option
@builder_option
@dist_option
@jobs_option
@click.option("--force", is_flag=True, help="Rebuild even when nothing changed.")
@click.option(
    "--no-test", is_flag=True, help="Skip the smoke test of container builds."
)
@json_option
@click.pass_obj
def build(
    reporter: ConsoleReporter,
    recipes: tuple[str, ...],
    recipes_dir: Path,
    runtimes: tuple[str, ...],
    architectures: tuple[str, ...],
    builder: str,
    dist_dir: Path,
    jobs: int,
    force: bool,
    no_test: bool,
    as_json: bool,
) -> None:
    """Lock (when needed), install, audit and zip recipes into dist/."""
    chosen = find_recipes(recipes, recipes_dir)
    from layerbuild import pipeline

    active = make_builder(builder, reporter, smoke_test=not no_test)
    settings = pipeline.BuildSettings(
        dist_dir=dist_dir, cache_dir=default_cache_dir(), jobs=jobs, force=force
    )
    outcomes = []
    for recipe in chosen:
        targets = _targets(recipe, runtimes, architectures)
        for outcome in pipeline.build_recipe(
            recipe, targets, active, settings, reporter
        ):
            for notice in outcome.notices:
                reporter.warn(notice)
            if outcome.largest:
                _size_table(reporter, outcome.largest)
            outcomes.append(outcome)
    if as_json:
        rows = [
            {**o.manifest.to_json(), "path": str(o.zip_path), "reused": o.reused,
             "notices": o.notices}
            for o in outcomes
        ]  # fmt: skip
        click.echo(json.dumps(rows, indent=2))


@cli.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@runtime_option
@arch_option
@click.option("--size-budget", help="Fail above this unzipped size, e.g. 150MB.")
@json_option
@click.pass_obj
def audit(
    reporter: ConsoleReporter,
    path: Path,
    runtimes: tuple[str, ...],
    architectures: tuple[str, ...],
    size_budget: str | None,
    as_json: bool,
) -> None:
    """Check a layer zip or tree against Lambda's rules for its targets.

    The targets come from the manifest beside a zip built by layerbuild, or
    from --runtime and --arch.
    """
    from layerbuild.audit import audit_tree, audit_zip

    targets = _audit_targets(path, runtimes, architectures)
    budget = MAX_UNZIPPED_BYTES
    if size_budget is not None:
        parsed = parse_size(size_budget)
        if parsed is None or parsed <= 0:
            msg = f"--size-budget: {size_budget!r} is not a size such as '150MB'"
            raise UsageError(msg)
        budget = parsed
    kind = "runtime" if targets[0].runtime.python is None else "python"
    check = audit_tree if path.is_dir() else audit_zip
    report = check(path, targets, size_budget=budget, kind=kind)
    reporter.step(report.summary())
    if as_json:
        click.echo(json.dumps({"path": str(path), **asdict(report)}, indent=2))


def _targets(
    recipe: Recipe, runtimes: tuple[str, ...], architectures: tuple[str, ...]
) -> list[Target]:
    targets = recipe.targets(runtimes, architectures)
    if not targets:
        msg = (
            f"{recipe.path}: no target left: the recipe builds "
            f"{', '.join(recipe.runtimes)} on {', '.join(recipe.architectures)}"
        )
        raise UsageError(msg)
    return targets


def _audit_targets(
    path: Path, runtimes: tuple[str, ...], architectures: tuple[str, ...]
) -> list[Target]:
    from layerbuild.manifest import MANIFEST_SUFFIX, Manifest

    manifest = Manifest.read_if_valid(path.with_suffix(MANIFEST_SUFFIX))
    if not runtimes and manifest is not None:
        runtimes = tuple(manifest.runtimes)
    if not architectures and manifest is not None:
        architectures = manifest.architectures[:1]
    if not runtimes or len(architectures) != 1:
        msg = f"{path}: no manifest beside it; give --runtime and one --arch"
        raise UsageError(msg)
    return [Target.of(runtime, architectures[0]) for runtime in runtimes]


def _size_table(reporter: ConsoleReporter, largest: list[tuple[str, int]]) -> None:
    reporter.step("largest parts:")
    for label, size in largest:
        reporter.step(f"  {size / 2**20:9.1f} MiB  {label}")
