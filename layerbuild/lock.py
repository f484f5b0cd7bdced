"""Lock files: pinned, hashed requirements for one recipe on one target.

Locks are in pip-tools' format (``name==version`` with ``--hash=sha256:`` lines),
so pip, pip-sync and uv can all install them. layerbuild adds comment lines of
its own at the top; every installer ignores comments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from layerbuild.errors import LockError
from layerbuild.recipe import Recipe
from layerbuild.targets import Target

LOCKS_DIRNAME = "locks"
SOURCE_ONLY_MARK = "# layerbuild: built from source (no wheel for this target):"
# Why a release older than the newest was locked, kept in the lock so every
# build from it (a fresh clone's too) can say so, not only the lock step.
OLDER_RELEASE_MARK = "# layerbuild: older release:"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class LockedPackage:
    """One pinned distribution and the sha256 of each file it may come from."""

    name: str
    version: str
    hashes: tuple[str, ...]


@dataclass(frozen=True)
class Lock:
    """A parsed lock file."""

    path: Path
    text: str
    packages: tuple[LockedPackage, ...]
    source_only: tuple[str, ...]
    older_releases: tuple[str, ...] = ()

    def versions(self) -> dict[str, str]:
        return {package.name: package.version for package in self.packages}


def lock_path(recipe: Recipe, slug: str) -> Path:
    """Where the lock of ``recipe`` for a target lives: beside the recipe."""
    return recipe.directory / LOCKS_DIRNAME / recipe.name / f"{slug}.txt"


def parse_lock(path: Path, text: str) -> Lock:
    """Read a lock; every requirement must be pinned with ``==`` and hashed."""
    packages: list[LockedPackage] = []
    source_only: tuple[str, ...] = ()
    older_releases: list[str] = []
    logical_lines = text.replace("\\\n", " ").splitlines()
    for number, line in enumerate(logical_lines, start=1):
        stripped = line.strip()
        if stripped.startswith(SOURCE_ONLY_MARK):
            names = stripped[len(SOURCE_ONLY_MARK) :].split()
            source_only = tuple(canonicalize_name(name) for name in names)
            continue
        if stripped.startswith(OLDER_RELEASE_MARK):
            older_releases.append(stripped[len(OLDER_RELEASE_MARK) :].strip())
            continue
        if not stripped or stripped.startswith("#"):
            continue
        requirement = stripped.split(" #", 1)[0]
        match = PIN.match(requirement)
        if not match:
            shown = repr(requirement[:60])
            msg = f"{path}: line {number}: {shown} is not pinned as name==version"
            raise LockError(msg, hint="regenerate it with 'layerbuild lock'")
        hashes = tuple(HASH.findall(requirement))
        if not hashes:
            pin = f"{match.group(1)}=={match.group(3)}"
            msg = f"{path}: line {number}: {pin} has no --hash"
            raise LockError(msg, hint="regenerate it with 'layerbuild lock'")
        name, version = canonicalize_name(match.group(1)), match.group(3)
        try:
            Version(version)
        except InvalidVersion:
            msg = f"{path}: line {number}: {name}: {version!r} is not a version"
            raise LockError(msg, hint="regenerate it with 'layerbuild lock'") from None
        if any(package.name == name for package in packages):
            msg = f"{path}: line {number}: {name} is pinned twice"
            raise LockError(msg, hint="regenerate it with 'layerbuild lock'")
        packages.append(LockedPackage(name, version, hashes))
    if not packages:
        msg = f"{path}: holds no pinned requirement"
        raise LockError(msg, hint="regenerate it with 'layerbuild lock'")
    return Lock(path, text, tuple(packages), source_only, tuple(older_releases))


def read_lock(path: Path) -> Lock:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"{path}: no lock file"
        raise LockError(msg, hint="run 'layerbuild lock' first") from None
    except (OSError, UnicodeDecodeError) as error:
        msg = f"{path}: cannot be read: {error}"
        raise LockError(msg) from None
    return parse_lock(path, text)


def compile_command(recipe: Recipe, target: Target) -> str:
    """The command a lock header names, so a reader knows how to refresh it."""
    runtime, arch = target.runtime.name, target.arch.name
    return f"layerbuild lock {recipe.name} --runtime {runtime} --arch {arch}"
