"""Docker-free builds from the shipped recipes and small ones, end to end."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from layerbuild.elf import is_elf, read_elf

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.network


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_recipe(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(body)
    return path


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of layerbuild's own; uv's downloads are shared to save time."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LAYERBUILD_CACHE_DIR", str(cache))
    return cache


@pytest.mark.slow
def test_numpy_pandas_for_python312_x86_64(run_cli, tmp_path: Path) -> None:
    """The shipped recipe builds; the zip holds numpy; the audit states the glibc."""
    shutil.copytree(REPO / "recipes", tmp_path / "recipes")

    result = run_cli(
        "build", "numpy-pandas", "--runtime", "python3.12", "--arch", "x86_64",
        "--builder", "local", cwd=tmp_path,
    )  # fmt: skip

    assert result.status == 0, result.stderr
    zip_path = tmp_path / "dist" / "numpy-pandas-python3.12-x86_64.zip"
    names = zipfile.ZipFile(zip_path).namelist()
    assert "python/lib/python3.12/site-packages/numpy/__init__.py" in names
    assert not any("__pycache__" in name for name in names)
    assert "highest glibc" in result.stderr
    manifest = json.loads(zip_path.with_suffix(".json").read_text())
    assert manifest["sha256"] == _sha256(zip_path)
    assert manifest["runtimes"] == ["python3.12"]
    assert "numpy" in manifest["packages"]

    again = run_cli(
        "build", "numpy-pandas", "--runtime", "python3.12", "--arch", "x86_64",
        "--builder", "local", cwd=tmp_path,
    )  # fmt: skip
    assert again.status == 0
    assert "unchanged" in again.stderr


def test_arm64_build_holds_only_aarch64_elf_files(
    run_cli, tmp_path: Path, isolated_cache: Path
) -> None:
    """A layer for arm64 built on x86_64 carries no x86_64 code."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    _write_recipe(recipes, "fastjson", (
        'runtimes = ["python3.12"]\narchitectures = ["arm64"]\n'
        'requirements = ["orjson", "markupsafe"]\n'
    ))  # fmt: skip

    result = run_cli("build", "fastjson", "--builder", "local", cwd=tmp_path)

    assert result.status == 0, result.stderr
    tree = tmp_path / "tree"
    zipfile.ZipFile(tmp_path / "dist" / "fastjson-python3.12-arm64.zip").extractall(
        tree
    )
    elf_files = [p for p in tree.rglob("*") if p.is_file() and is_elf(p)]
    assert len(elf_files) >= 2
    assert {read_elf(p).machine for p in elf_files} == {"EM_AARCH64"}


def test_two_clones_give_the_same_zip(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The committed lock, built in two clean clones with their own caches,
    at different times and thread counts, gives byte-identical zips."""
    digests = []
    for clone, jobs in (("one", "2"), ("two", "1")):
        folder = tmp_path / clone
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(folder)], check=True)
        monkeypatch.setenv("LAYERBUILD_CACHE_DIR", str(tmp_path / f"cache-{clone}"))
        result = run_cli(
            "build", "requests", "--runtime", "python3.12", "--arch", "x86_64",
            "--builder", "local", "--jobs", jobs, cwd=folder,
        )  # fmt: skip
        assert result.status == 0, result.stderr
        digests.append(_sha256(folder / "dist" / "requests-python3.12-x86_64.zip"))

    assert digests[0] == digests[1]


def test_compiled_sdist_is_refused_by_name(
    run_cli, tmp_path: Path, isolated_cache: Path
) -> None:
    """crcmod exists only as a source distribution with C code: refused, by name."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    _write_recipe(
        recipes, "crc", 'runtimes = ["python3.12"]\nrequirements = ["crcmod"]\n'
    )

    result = run_cli("build", "crc", "--builder", "local", cwd=tmp_path)

    assert result.status == 1
    assert "crcmod==" in result.stderr
    assert "must be compiled" in result.stderr
    assert "--builder docker" in result.stderr
    assert not (tmp_path / "dist" / "crc-python3.12-x86_64.zip").exists()


def test_pure_python_sdist_is_built_into_the_layer(
    run_cli, tmp_path: Path, isolated_cache: Path
) -> None:
    """docopt has only a source distribution, in pure Python: it is built and kept."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    _write_recipe(
        recipes, "cli", 'runtimes = ["python3.13"]\nrequirements = ["docopt"]\n'
    )

    result = run_cli("build", "cli", "--builder", "local", cwd=tmp_path)

    assert result.status == 0, result.stderr
    names = zipfile.ZipFile(tmp_path / "dist" / "cli-python3.13-x86_64.zip").namelist()
    assert "python/lib/python3.13/site-packages/docopt.py" in names


def test_tampered_hash_stops_the_build(
    run_cli, tmp_path: Path, isolated_cache: Path
) -> None:
    """A lock whose hash does not match the download stops the build, exit 1."""
    shutil.copytree(REPO / "recipes", tmp_path / "recipes")
    lock = tmp_path / "recipes/locks/requests/python3.12-x86_64.txt"
    text = lock.read_text()
    start = text.index("idna==")
    digest_at = text.index("sha256:", start) + len("sha256:")
    tampered = text[:digest_at] + "0" * 64 + text[digest_at + 64 :]
    # Leave idna with one hash only, the wrong one.
    lines = tampered[start:].split("\n")
    block_end = next(
        i for i, line in enumerate(lines[1:], 1) if not line.startswith(" ")
    )
    idna = [lines[0], lines[1].rstrip(" \\")]
    lock.write_text(tampered[:start] + "\n".join(idna + lines[block_end:]))

    result = run_cli(
        "build", "requests", "--runtime", "python3.12", "--arch", "x86_64",
        "--builder", "local", cwd=tmp_path,
    )  # fmt: skip

    assert result.status == 1
    assert "hash" in result.stderr
    assert not (tmp_path / "dist" / "requests-python3.12-x86_64.zip").exists()


def test_combined_runtimes_make_one_zip_with_a_site_packages_each(
    run_cli, tmp_path: Path, isolated_cache: Path
) -> None:
    """pydantic-orjson serves python3.12 and 3.13 from one zip per architecture."""
    shutil.copytree(REPO / "recipes", tmp_path / "recipes")

    result = run_cli(
        "build",
        "pydantic-orjson",
        "--arch",
        "x86_64",
        "--builder",
        "local",
        cwd=tmp_path,
    )

    assert result.status == 0, result.stderr
    zip_path = tmp_path / "dist" / "pydantic-orjson-python3.12+python3.13-x86_64.zip"
    names = zipfile.ZipFile(zip_path).namelist()
    assert any(
        n.startswith("python/lib/python3.12/site-packages/orjson/") for n in names
    )
    assert any(
        n.startswith("python/lib/python3.13/site-packages/orjson/") for n in names
    )
    manifest = json.loads(zip_path.with_suffix(".json").read_text())
    assert manifest["runtimes"] == ["python3.12", "python3.13"]


def test_zip_passes_unzip_t(run_cli, tmp_path: Path, isolated_cache: Path) -> None:
    """Info-ZIP's own test accepts layerbuild's zips."""
    shutil.copytree(REPO / "recipes", tmp_path / "recipes")
    assert run_cli(
        "build", "requests", "--runtime", "python3.13", "--arch", "arm64",
        "--builder", "local", cwd=tmp_path,
    ).status == 0  # fmt: skip

    checked = subprocess.run(
        ["unzip", "-tq", str(tmp_path / "dist/requests-python3.13-arm64.zip")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout


@pytest.mark.slow
def test_python311_build_says_where_glibc_meant_an_older_release(
    run_cli, tmp_path: Path
) -> None:
    """From the shipped lock: only glibc 2.26 wheels, and the output says why."""
    shutil.copytree(REPO / "recipes", tmp_path / "recipes")

    result = run_cli(
        "build", "numpy-pandas", "--runtime", "python3.11", "--arch", "x86_64",
        "--builder", "local", cwd=tmp_path,
    )  # fmt: skip

    assert result.status == 0, result.stderr
    assert "warning: numpy: took 2.2." in result.stderr
    assert "its wheels need glibc 2.27; python3.11 (al2) has 2.26" in result.stderr
    assert "<= 2.26" in result.stderr  # the audit's glibc ceiling for python3.11


def test_audit_failure_leaves_no_zip_in_dist(
    run_cli, tmp_path: Path, isolated_cache: Path
) -> None:
    """A layer over its recipe's budget exits 3, and dist/ gets no zip."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    _write_recipe(
        recipes,
        "tight",
        'runtimes = ["python3.12"]\nrequirements = ["idna"]\n'
        '[build]\nsize-budget = "10kB"\n',
    )

    result = run_cli("build", "tight", "--builder", "local", cwd=tmp_path)

    assert result.status == 3, result.stderr
    assert "the recipe's size budget is" in result.stderr
    assert not list((tmp_path / "dist").glob("*.zip"))
    assert not list((tmp_path / "dist").glob("*.json"))
