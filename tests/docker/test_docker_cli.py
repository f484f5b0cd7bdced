"""End to end: ``layerbuild build --builder docker``, then ``layerbuild test ZIP``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from layerbuild.containers import Engine

from .conftest import BOOKWORM, BOOKWORM_BUILD, TRIXIE, TRIXIE_BUILD, write_recipe
from .test_docker_builds import CRCMOD_RECIPE


def _layerbuild(
    *args: str, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "layerbuild", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
def test_a_docker_build_zips_a_layer_that_test_passes_and_313_fails(
    standins: Engine, pip_cache: Path, tmp_path: Path
) -> None:
    write_recipe(tmp_path / "recipes", "crc", CRCMOD_RECIPE)
    env = {
        **os.environ,
        "LAYERBUILD_BUILD_IMAGE": BOOKWORM_BUILD,
        "LAYERBUILD_RUNTIME_IMAGE": BOOKWORM,
        "LAYERBUILD_CACHE_DIR": str(pip_cache),
    }

    built = _layerbuild("build", "crc", "--builder", "docker", env=env, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (zip_path,) = (tmp_path / "dist").glob("crc-*.zip")
    manifest = json.loads(zip_path.with_suffix(".json").read_text())
    assert manifest["packages"] == {"crcmod": "1.7"}
    assert manifest["builder"] == "docker"

    passed = _layerbuild(
        "test", str(zip_path), "--image", BOOKWORM, env=env, cwd=tmp_path
    )
    assert passed.returncode == 0, passed.stderr
    assert f"smoke test passed in {BOOKWORM}: 1 module(s)" in passed.stderr

    failed = _layerbuild(
        "test", str(zip_path), "--runtime", "python3.13", "--image", TRIXIE,
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert failed.returncode == 3, failed.stderr
    assert (
        f"error: smoke test: import crcmod failed in {TRIXIE} (python3.13): "
        "ModuleNotFoundError: No module named 'crcmod'"
    ) in failed.stderr
    assert "Traceback" not in failed.stderr


def test_a_zip_without_manifest_or_runtime_is_a_usage_error(tmp_path: Path) -> None:
    zip_path = tmp_path / "bare.zip"
    zip_path.write_bytes(b"PK\x05\x06" + b"\0" * 18)

    result = _layerbuild("test", str(zip_path), env=dict(os.environ), cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {zip_path}: no manifest beside it names the runtime and "
        "architecture; pass --runtime and --arch"
    ]


@pytest.mark.docker
@pytest.mark.slow
def test_shipped_runtime_recipes_build_and_answer_an_event(
    standins: Engine, tmp_path: Path
) -> None:
    """`layerbuild build` assembles, audits and round-trips both runtime examples."""
    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "recipes", tmp_path / "recipes")
    env = {
        **os.environ,
        "LAYERBUILD_BUILD_IMAGE": TRIXIE_BUILD,
        "LAYERBUILD_RUNTIME_IMAGE": TRIXIE,
        "LAYERBUILD_CACHE_DIR": str(tmp_path / "cache"),
    }

    built = _layerbuild(
        "build", "shell-runtime", "c-runtime", "--runtime", "provided.al2023",
        "--arch", "x86_64", "--builder", "docker", env=env, cwd=tmp_path,
    )  # fmt: skip

    assert built.returncode == 0, built.stderr
    assert built.stderr.count("Sending the test event through the bootstrap") == 2
    for name in ("shell-runtime", "c-runtime"):
        zip_path = tmp_path / "dist" / f"{name}-provided.al2023-x86_64.zip"
        info = zipfile.ZipFile(zip_path).getinfo("bootstrap")
        assert info.external_attr >> 16 & 0o777 == 0o755

    again = _layerbuild(
        "build", "shell-runtime", "--runtime", "provided.al2023", "--arch", "x86_64",
        "--builder", "docker", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert "unchanged" in again.stderr


def test_runtime_recipe_without_docker_names_the_way_out(tmp_path: Path) -> None:
    """The Docker-free builder refuses a custom runtime with a pointer to Docker."""
    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "recipes", tmp_path / "recipes")

    done = _layerbuild(
        "build", "shell-runtime", "--runtime", "provided.al2", "--arch", "x86_64",
        "--builder", "local", env=dict(os.environ), cwd=tmp_path,
    )  # fmt: skip

    assert done.returncode == 1
    assert "needs Docker" in done.stderr
    assert "--builder docker" in done.stderr


@pytest.mark.docker
@pytest.mark.slow
def test_layerbuild_test_sends_the_event_through_a_built_runtime_zip(
    standins: Engine, tmp_path: Path
) -> None:
    """`layerbuild test ZIP` on a provided.* layer round-trips its recipe's event."""
    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "recipes", tmp_path / "recipes")
    env = {
        **os.environ,
        "LAYERBUILD_BUILD_IMAGE": BOOKWORM_BUILD,
        "LAYERBUILD_RUNTIME_IMAGE": BOOKWORM,
        "LAYERBUILD_CACHE_DIR": str(tmp_path / "cache"),
    }
    built = _layerbuild(
        "build", "shell-runtime", "--runtime", "provided.al2", "--arch", "x86_64",
        "--builder", "docker", "--no-test", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr

    tested = _layerbuild(
        "test", "dist/shell-runtime-provided.al2-x86_64.zip", "--image", BOOKWORM,
        env=env, cwd=tmp_path,
    )  # fmt: skip

    assert tested.returncode == 0, tested.stderr
    assert "runtime test passed" in tested.stderr
    assert "hello, layerbuild" in tested.stderr
