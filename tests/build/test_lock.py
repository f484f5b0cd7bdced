"""Locks resolved for each target, from the real package index."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerbuild.errors import LockError
from layerbuild.factory import make_local_builder
from layerbuild.lock import parse_lock, read_lock
from layerbuild.recipe import load_recipe
from layerbuild.report import RecordingReporter
from layerbuild.targets import Target

pytestmark = pytest.mark.network


def _recipe(folder: Path, requirements: list[str], runtimes: str = '["python3.12"]'):
    path = folder / "demo.toml"
    listed = ", ".join(repr(r) for r in requirements)
    path.write_text(
        f'runtimes = {runtimes}\narchitectures = ["x86_64", "arm64"]\n'
        f"requirements = [{listed}]\n"
    )
    return load_recipe(path)


def test_machine_markers_are_evaluated_for_the_target(recipe_dir: Path) -> None:
    """A dependency marked for aarch64 appears in the arm64 lock only."""
    recipe = _recipe(recipe_dir, ["idna", "six; platform_machine == 'aarch64'"])
    builder = make_local_builder(RecordingReporter())

    for target in recipe.targets():
        builder.lock(recipe, target, recipe_dir / f"{target.slug}.txt")

    x86 = read_lock(recipe_dir / "python3.12-x86_64.txt").versions()
    arm = read_lock(recipe_dir / "python3.12-arm64.txt").versions()
    assert "six" not in x86
    assert "six" in arm
    assert "idna" in x86
    assert "idna" in arm


def test_python_version_markers_are_evaluated_for_the_target(recipe_dir: Path) -> None:
    """A backport needed below 3.11 is locked for python3.10, not for 3.12."""
    recipe = _recipe(
        recipe_dir,
        ["tomli; python_version < '3.11'", "idna"],
        '["python3.10", "python3.12"]',
    )
    builder = make_local_builder(RecordingReporter())

    for target in recipe.targets(architectures=["x86_64"]):
        builder.lock(recipe, target, recipe_dir / f"{target.slug}.txt")

    assert "tomli" in read_lock(recipe_dir / "python3.10-x86_64.txt").versions()
    assert "tomli" not in read_lock(recipe_dir / "python3.12-x86_64.txt").versions()


def test_lock_is_hashed_pip_tools_format_without_temporary_paths(
    recipe_dir: Path,
) -> None:
    """Every pin carries sha256 hashes and the header names layerbuild's command."""
    recipe = _recipe(recipe_dir, ["requests"])
    path = recipe_dir / "lock.txt"

    make_local_builder(RecordingReporter()).lock(
        recipe, Target.of("python3.12", "x86_64"), path
    )

    text = path.read_text()
    lock = read_lock(path)
    assert {"requests", "idna", "certifi", "urllib3"} <= set(lock.versions())
    assert all(package.hashes for package in lock.packages)
    assert "layerbuild lock demo --runtime python3.12 --arch x86_64" in text
    assert "/tmp" not in text


def test_older_release_chosen_for_old_glibc_is_reported(recipe_dir: Path) -> None:
    """numpy 2.3+ needs glibc 2.27: python3.11 (glibc 2.26) gets 2.2.x, and says why."""
    recipe = _recipe(recipe_dir, ["numpy<2.4"], '["python3.11", "python3.12"]')
    builder = make_local_builder(RecordingReporter())

    old = builder.lock(
        recipe, Target.of("python3.11", "x86_64"), recipe_dir / "311.txt"
    )
    new = builder.lock(
        recipe, Target.of("python3.12", "x86_64"), recipe_dir / "312.txt"
    )

    assert read_lock(recipe_dir / "311.txt").versions()["numpy"].startswith("2.2.")
    assert read_lock(recipe_dir / "312.txt").versions()["numpy"].startswith("2.3.")
    assert len(old) == 1
    assert old[0].startswith("numpy: took 2.2.")
    assert "need glibc 2.27; python3.11 (al2) has 2.26" in old[0]
    assert new == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("requests>=2\n", "not pinned as name==version"),
        ("requests==2.32.3\n", "has no --hash"),
        ("# only a comment\n", "holds no pinned requirement"),
    ],
)
def test_malformed_lock_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    """A lock must pin and hash every requirement."""
    with pytest.raises(LockError, match=expected):
        parse_lock(tmp_path / "x.txt", text)
