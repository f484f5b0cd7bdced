"""From a recipe to a checked, reproducible layer zip in ``dist/``.

The stages, for each recipe and target (or group of targets sharing one zip):

1. lock: resolve the recipe for the target, unless its lock already exists;
2. key: a content key over the lock, the target, its allowed wheel tags, the
   build options, the builder and layerbuild's version. When ``dist/`` already
   holds a zip built under that key, the build stops here and reuses it;
3. install the lock into a fresh staging tree (the builder's job);
4. slim, then audit the tree; an audit failure stops before any zip exists;
5. zip deterministically, then write the manifest beside the zip.

``dist/`` never holds a zip whose manifest describes something else: the old
manifest is removed before its zip is replaced, and the new manifest is written
only after the new zip is in place. A zip without a manifest is not a build.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from layerbuild import __version__
from layerbuild.builders import Builder
from layerbuild.files import move_atomically, sha256_file
from layerbuild.lock import lock_path, read_lock
from layerbuild.manifest import MANIFEST_SUFFIX, Manifest
from layerbuild.recipe import Recipe
from layerbuild.report import Reporter
from layerbuild.targets import Target

if TYPE_CHECKING:
    from layerbuild.audit import AuditReport
    from layerbuild.slim import SlimResult

SIZE_TABLE_ROWS = 8


@dataclass(frozen=True)
class BuildOutcome:
    """The result of building one zip."""

    manifest: Manifest
    zip_path: Path
    reused: bool
    audit: AuditReport | None = None
    slim: SlimResult | None = None
    notices: list[str] = field(default_factory=list)
    largest: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class BuildSettings:
    """Where builds read and write, and how hard they work."""

    dist_dir: Path
    cache_dir: Path
    jobs: int = os.cpu_count() or 1
    force: bool = False


def target_groups(recipe: Recipe, targets: Sequence[Target]) -> list[list[Target]]:
    """Targets that share one zip: all runtimes of an architecture when combined."""
    if not recipe.build.combine_runtimes:
        return [[target] for target in targets]
    by_arch: dict[str, list[Target]] = {}
    for target in targets:
        by_arch.setdefault(target.arch.name, []).append(target)
    return list(by_arch.values())


def output_name(recipe: Recipe, group: Sequence[Target]) -> str:
    """``numpy-pandas-python3.12-x86_64``; several runtimes joined by ``+``."""
    runtimes = "+".join(target.runtime.name for target in group)
    return f"{recipe.name}-{runtimes}-{group[0].arch.name}"


def layer_name(recipe: Recipe, group: Sequence[Target]) -> str:
    """A name Lambda accepts for the layer: ``numpy-pandas-py312-x86_64``."""
    runtimes = "-".join(
        target.runtime.name.replace("python", "py").replace(".", "") for target in group
    )
    return f"{recipe.name}-{runtimes}-{group[0].arch.name}"


def lock_recipe(
    recipe: Recipe, target: Target, builder: Builder, reporter: Reporter
) -> tuple[Path, list[str]]:
    """Write the lock of ``recipe`` for ``target``; returns its path and notices.

    The notices (older releases taken, and why) are also kept in the lock, so
    a build from it repeats them; the caller decides whether to show them now.
    """
    path = lock_path(recipe, target.slug)
    reporter.step(f"locking {recipe.name} for {target.slug} ({builder.name})")
    notices = builder.lock(recipe, target, path)
    reporter.detail(f"wrote {path}")
    return path, notices


def content_key(recipe: Recipe, group: Sequence[Target], builder: Builder) -> str:
    """A digest of everything that decides the bytes of the zip.

    For a Python layer that is the lock of each target; a custom-runtime layer
    has no lock, so the recipe file and every file beside it in its own folder
    (``recipes/<name>/``: bootstrap, sources, build script) stand in for it.
    """
    material = {
        "layerbuild": __version__,
        "builder": builder.name,
        "kind": recipe.kind,
        "options": recipe.build.key_material(),
        "targets": [
            {
                "target": target.slug,
                "tags": list(target.manylinux_tags),
                "inputs": _inputs(recipe, target),
            }
            for target in group
        ],
    }
    encoded = json.dumps(material, sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()


def _inputs(recipe: Recipe, target: Target) -> dict[str, str]:
    """The text (or digest) of every input file of one target's build."""
    if recipe.kind == "python":
        return {"lock": read_lock(lock_path(recipe, target.slug)).text}
    inputs = {"recipe": recipe.path.read_text(encoding="utf-8")}
    folder = recipe.directory / recipe.name
    files = (
        sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    )
    for path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        inputs[path.relative_to(folder).as_posix()] = (
            f"{digest} {path.stat().st_mode:o}"
        )
    return inputs


def build_recipe(
    recipe: Recipe,
    targets: Sequence[Target],
    builder: Builder,
    settings: BuildSettings,
    reporter: Reporter,
) -> list[BuildOutcome]:
    """Build every zip ``recipe`` asks for on ``targets``."""
    outcomes = []
    for group in target_groups(recipe, targets):
        for target in group:
            if recipe.kind == "python" and not lock_path(recipe, target.slug).exists():
                lock_recipe(recipe, target, builder, reporter)
        name = output_name(recipe, group)
        # The output's lock in dist/, then in the cache's staging folder: a
        # build that holds both owns every leftover of this output in either.
        with (
            _exclusive(settings.dist_dir, name),
            _exclusive(_stage_root(settings), name),
        ):
            _remove_leftovers(settings, name)
            outcome = _build_group(recipe, group, builder, settings, reporter)
        outcomes.append(outcome)
    return outcomes


@contextmanager
def _exclusive(dist_dir: Path, name: str) -> Iterator[None]:
    """Hold a lock on one output, so two builds of it wait for each other."""
    dist_dir.mkdir(parents=True, exist_ok=True)
    with open(dist_dir / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_leftovers(settings: BuildSettings, name: str) -> None:
    """Delete what a killed build of this output left behind.

    That is its staging tree and the temporary zip or manifest it was writing.
    Only called under the output's locks, so no running build owns them.
    """
    stage = re.compile(re.escape(name) + r"\.[a-z0-9_]{8}")
    temporary = r"\.(zip|json)\.[a-z0-9_]{8}(\.tmp)?"
    partial = re.compile(r"\." + re.escape(name) + temporary)
    for entry in _stage_root(settings).iterdir():
        if stage.fullmatch(entry.name):
            shutil.rmtree(entry, ignore_errors=True)
    for entry in settings.dist_dir.iterdir():
        if partial.fullmatch(entry.name):
            entry.unlink(missing_ok=True)


def _build_group(
    recipe: Recipe,
    group: Sequence[Target],
    builder: Builder,
    settings: BuildSettings,
    reporter: Reporter,
) -> BuildOutcome:
    name = output_name(recipe, group)
    zip_path = settings.dist_dir / f"{name}.zip"
    manifest_path = settings.dist_dir / f"{name}{MANIFEST_SUFFIX}"
    key = content_key(recipe, group, builder)

    existing = Manifest.read_if_valid(manifest_path)
    if not settings.force and _still_valid(existing, key, zip_path):
        assert existing is not None  # _still_valid says so
        reporter.step(f"{name}: unchanged (content key {key[:12]}), reusing {zip_path}")
        return BuildOutcome(existing, zip_path, reused=True)

    # Loaded here, not at the top: a rebuild that reuses its zip (above) should
    # not pay for the ELF reader and the compressor.
    from layerbuild.archive import write_zip
    from layerbuild.audit import audit_tree
    from layerbuild.slim import slim_tree

    reporter.step(f"building {name} ({builder.name})")
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=_stage_root(settings)))
    try:
        tree = stage / "layer"
        tree.mkdir()
        packages: dict[str, str] = {}
        notices: list[str] = []
        for target in group:
            lock = lock_path(recipe, target.slug)
            result = builder.install(recipe, target, lock, tree)
            packages.update(result.packages)
            notices += result.notices
        reporter.detail(f"installed {len(packages)} distributions")

        slimmed = slim_tree(tree, slim=recipe.build.slim, exclude=recipe.build.exclude)
        if slimmed.saved:
            rules = ", ".join(
                f"{rule} {saved / 2**20:.1f} MiB"
                for rule, saved in slimmed.saved.items()
                if saved
            )
            reporter.step(
                f"slim: removed {slimmed.files_removed:,} files, "
                f"{slimmed.bytes_removed / 2**20:.1f} MiB ({rules})"
            )
        for pattern in slimmed.unmatched:
            reporter.warn(f"{recipe.path}: build.exclude {pattern!r} matched nothing")

        # The audit only reads the tree, as compression does, so the two run
        # side by side; the zip is written in the staging folder and reaches
        # dist/ only once the audit (and any smoke test) has passed.
        pending = stage / "layer.zip"
        with ThreadPoolExecutor(max_workers=1) as pool:
            audit_run = pool.submit(
                audit_tree,
                tree,
                group,
                size_budget=recipe.build.size_budget,
                kind=recipe.kind,
            )
            zipped = write_zip(
                tree,
                pending,
                jobs=settings.jobs,
                cache_dir=settings.cache_dir / "deflate",
            )
            audit = audit_run.result()
        reporter.step(audit.summary())
        largest = _largest_packages(tree)

        for target in group:
            builder.check(tree, recipe, target, packages)

        manifest_path.unlink(missing_ok=True)
        move_atomically(pending, zip_path)
        manifest = Manifest(
            path=manifest_path,
            recipe=recipe.name,
            layer_name=layer_name(recipe, group),
            runtimes=tuple(target.runtime.name for target in group),
            architectures=(group[0].arch.name,),
            packages=dict(sorted(packages.items())),
            description=recipe.description,
            license=recipe.license,
            unzipped_bytes=zipped.unzipped_bytes,
            zipped_bytes=zipped.zipped_bytes,
            sha256=zipped.sha256,
            content_key=key,
            zip_name=zip_path.name,
            layerbuild_version=__version__,
            builder=builder.name,
            highest_glibc=(
                ".".join(map(str, audit.highest_glibc)) if audit.highest_glibc else None
            ),
        )
        manifest.write()
        reporter.step(
            f"wrote {zip_path} ({zipped.zipped_bytes:,} bytes zipped, "
            f"{zipped.unzipped_bytes:,} unzipped, sha256 {zipped.sha256[:12]})"
        )
        return BuildOutcome(manifest, zip_path, False, audit, slimmed, notices, largest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _still_valid(existing: Manifest | None, key: str, zip_path: Path) -> bool:
    """Whether a manifest was built under ``key`` and still describes its zip."""
    return (
        existing is not None
        and existing.content_key == key
        and zip_path.exists()
        and sha256_file(zip_path) == existing.sha256
    )


def _stage_root(settings: BuildSettings) -> Path:
    root = settings.cache_dir / "stage"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _largest_packages(tree: Path) -> list[tuple[str, int]]:
    """Top-level entries of each site-packages and of lib/ and bin/, by size."""
    sizes: dict[str, int] = {}
    roots = [*tree.glob("python/lib/python*/site-packages"), tree / "lib", tree / "bin"]
    for root in roots:
        if not root.is_dir():
            continue
        for entry in root.iterdir():
            if entry.name.endswith(".dist-info"):
                continue
            label = str(entry.relative_to(tree))
            files = [entry] if entry.is_file() else entry.rglob("*")
            sizes[label] = sum(f.stat().st_size for f in files if f.is_file())
    ranked = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:SIZE_TABLE_ROWS]
