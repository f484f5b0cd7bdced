"""kill -9 a real ``layerbuild build --builder local`` at twelve points.

After each kill: ``dist/`` holds no partial zip and no manifest that disagrees
with its zip; the next build from the same (interrupted) cache succeeds and
gives the same sha256 as a build from a clean cache. Two builds of the same
recipe at once do not corrupt each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.hostile.killer import POINTS

pytestmark = [pytest.mark.hostile, pytest.mark.network]

REPO = Path(__file__).resolve().parents[2]
RECIPE = """\
runtimes = ["python3.12"]
requirements = ["requests==2.32.3"]

[build]
slim = true
"""
NAME = "interrupted"
OUTPUT = f"{NAME}-python3.12-x86_64"
BUILD_TIMEOUT_SECONDS = 180


@dataclass(frozen=True)
class Workspace:
    root: Path
    recipes: Path  # with the lock already made
    reference_sha256: str  # of a build from a clean cache


def _env(cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "LAYERBUILD_CACHE_DIR": str(cache),
        "PYTHONPATH": str(REPO),
        "NO_COLOR": "1",
    }


def _build_argv(recipes: Path, dist: Path) -> list[str]:
    return [
        "build", NAME, "--recipes-dir", str(recipes), "--builder", "local",
        "--dist", str(dist),
    ]  # fmt: skip


def _layerbuild(*argv: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "layerbuild", *argv],
        env=_env(cache),
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        check=False,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_dist_consistent(dist: Path) -> None:
    """No partial zip; every manifest describes the zip beside it."""
    if not dist.exists():
        return
    for zip_path in dist.glob("*.zip"):
        with zipfile.ZipFile(zip_path) as archive:
            assert archive.testzip() is None
    for manifest in dist.glob("*.json"):
        data = json.loads(manifest.read_text())
        zip_path = manifest.with_suffix(".zip")
        assert zip_path.exists(), f"{manifest} without its zip"
        assert data["sha256"] == _sha256(zip_path), f"{manifest} disagrees"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A locked recipe and the sha256 its zip has when built from a clean cache."""
    root = tmp_path_factory.mktemp("interrupt")
    recipes = root / "recipes"
    recipes.mkdir()
    (recipes / f"{NAME}.toml").write_text(RECIPE)
    clean = _layerbuild(*_build_argv(recipes, root / "dist"), cache=root / "clean")
    assert clean.returncode == 0, clean.stderr
    reference = _sha256(root / "dist" / f"{OUTPUT}.zip")
    return Workspace(root, recipes, reference)


@pytest.mark.parametrize("point", list(POINTS))
def test_kill_at_any_point_leaves_dist_and_cache_sound(
    workspace: Workspace, tmp_path: Path, point: str
) -> None:
    """Killed at ``point``: dist stays whole; the next build matches a clean one."""
    recipes = tmp_path / "recipes"
    shutil.copytree(workspace.recipes, recipes)
    if point in ("resolving", "lock-write"):
        shutil.rmtree(recipes / "locks")
    cache, dist = tmp_path / "cache", tmp_path / "dist"

    killed = subprocess.run(
        [sys.executable, "-m", "tests.hostile.killer", point, "--",
         *_build_argv(recipes, dist)],
        env=_env(cache), capture_output=True, text=True, cwd=REPO,
        start_new_session=True, timeout=BUILD_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip

    assert killed.returncode == -signal.SIGKILL, f"{point} not reached: {killed.stderr}"
    assert_dist_consistent(dist)

    again = _layerbuild(*_build_argv(recipes, dist), cache=cache)

    assert again.returncode == 0, again.stderr
    assert_dist_consistent(dist)
    assert _sha256(dist / f"{OUTPUT}.zip") == workspace.reference_sha256
    leftovers = {p.name for p in dist.iterdir()} - {
        f"{OUTPUT}.zip",
        f"{OUTPUT}.json",
        f".{OUTPUT}.lock",
    }
    assert leftovers == set()
    assert [p.name for p in (cache / "stage").iterdir()] == [f".{OUTPUT}.lock"]


def test_two_builds_of_one_recipe_at_once_agree(
    workspace: Workspace, tmp_path: Path
) -> None:
    """Two processes, one output: they take turns, and the result is whole."""
    recipes = tmp_path / "recipes"
    shutil.copytree(workspace.recipes, recipes)
    cache, dist = tmp_path / "cache", tmp_path / "dist"
    argv = [sys.executable, "-m", "layerbuild", *_build_argv(recipes, dist), "--force"]

    processes = [
        subprocess.Popen(
            argv, env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=BUILD_TIMEOUT_SECONDS) for p in processes]

    assert [p.returncode for p in processes] == [0, 0], results
    assert_dist_consistent(dist)
    assert _sha256(dist / f"{OUTPUT}.zip") == workspace.reference_sha256
