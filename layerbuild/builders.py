"""What a builder does: lock a recipe for a target, and install a lock into a tree.

Two builders implement this: ``layerbuild.local.LocalBuilder`` (no Docker:
cross-platform wheel selection with uv) and ``layerbuild.docker_builder.DockerBuilder``
(inside the target's Amazon Linux build image). The pipeline drives either one
and then slims, audits and zips the tree the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from layerbuild.recipe import Recipe
from layerbuild.targets import Target


def default_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where builders keep their caches: ``$LAYERBUILD_CACHE_DIR``, else
    ``layerbuild`` in the XDG cache folder."""
    configured = environ.get("LAYERBUILD_CACHE_DIR")
    if configured:
        return Path(configured)
    base = environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "layerbuild"


@dataclass(frozen=True)
class InstallResult:
    """What an install put into the layer tree."""

    packages: dict[str, str]  # distribution name -> version
    notices: list[str] = field(default_factory=list)  # e.g. older releases chosen


class Builder(Protocol):
    """Locks and installs recipes for one target at a time."""

    name: str

    def lock(self, recipe: Recipe, target: Target, lock_path: Path) -> list[str]:
        """Resolve ``recipe`` for ``target`` and write a hashed lock atomically.

        Returns notices for the user, such as releases passed over because their
        wheels need a newer glibc than the target has.
        """
        ...

    def install(
        self, recipe: Recipe, target: Target, lock_path: Path, tree: Path
    ) -> InstallResult:
        """Install the lock into ``tree`` as Lambda lays out a layer.

        Python packages go to ``tree / target.runtime.site_packages``; shared
        libraries to ``tree / "lib"`` and programs to ``tree / "bin"``. Hashes
        in the lock are enforced; a mismatch raises ``HashMismatchError``.
        """
        ...

    def check(
        self, tree: Path, recipe: Recipe, target: Target, packages: dict[str, str]
    ) -> None:
        """Prove the installed tree works where it will run, or raise.

        The container builder smoke-tests it in the runtime's image
        (``SmokeTestError``); the Docker-free builder has no image to run.
        """
        ...
