"""Slimming: caches, test folders and exclude patterns, on small and real trees."""

from __future__ import annotations

import glob
import shutil
import subprocess
from pathlib import Path

import pytest

from layerbuild.errors import ExitStatus, RecipeError
from layerbuild.slim import slim_tree
from tests.core.conftest import SITE_312, put

PKG = f"{SITE_312}/pkg"


def small_tree(root: Path) -> Path:
    """A package with every kind of thing slimming decides about."""
    put(root, f"{PKG}/__init__.py", b"from .sub import helpers\n")
    put(root, f"{PKG}/core.py", b"x = 1\n")
    put(root, f"{PKG}/core.pyi", b"x: int\n")
    put(root, f"{PKG}/__pycache__/core.cpython-312.pyc", b"c" * 100)
    put(root, f"{PKG}/stray.py", b"")
    put(root, f"{PKG}/stray.pyc", b"s" * 10)
    put(root, f"{PKG}/lonely.pyc", b"l" * 20)  # sourceless: the module itself
    put(root, f"{PKG}/tests/__init__.py", b"")
    put(root, f"{PKG}/tests/test_core.py", b"t" * 1000)
    put(root, f"{PKG}/tests/__pycache__/test_core.cpython-312.pyc", b"c" * 30)
    put(root, f"{PKG}/testing/__init__.py", b"def assert_ok(): pass\n")
    # A tests folder that a kept module imports at import time must stay.
    put(root, f"{PKG}/sub/__init__.py", b"from .tests import fixtures as helpers\n")
    put(root, f"{PKG}/sub/tests/__init__.py", b"")
    put(root, f"{PKG}/sub/tests/fixtures.py", b"DATA = 1\n")
    put(root, f"{PKG}/docs/index.txt", b"d" * 40)
    put(root, f"{PKG}/notes/docs", b"n" * 5)
    # Metadata is never touched, whatever matches inside it.
    put(root, f"{SITE_312}/pkg-1.0.dist-info/RECORD", b"r" * 50)
    put(root, f"{SITE_312}/pkg-1.0.dist-info/tests/x.pyi", b"")
    put(root, f"{SITE_312}/pkg-1.0.dist-info/__pycache__/a.pyc", b"")
    # A top-level "tests" package is importable as such: left alone.
    put(root, f"{SITE_312}/tests/__init__.py", b"")
    put(root, "lib/tests/data.bin", b"")
    return root


def python312() -> str | None:
    """A working Python 3.12 on this machine: on PATH, or installed by pyenv."""
    candidates = [shutil.which("python3.12")]
    candidates += sorted(
        glob.glob(str(Path.home() / ".pyenv/versions/3.12*/bin/python"))
    )
    for candidate in filter(None, candidates):
        probe = [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"]
        if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
            return candidate
    return None


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


class TestSmallTree:
    def test_slim_removes_caches_and_package_tests_only(self, tmp_path: Path) -> None:
        """Caches and package tests go; sources, testing, metadata and imported
        tests stay; the bytes per rule are exact."""
        root = small_tree(tmp_path)

        result = slim_tree(root, slim=True, exclude=[])

        assert result.saved == {"__pycache__": 100, "*.pyc": 10, "tests": 1030}
        assert result.files_removed == 5
        assert result.kept == (f"{PKG}/sub/tests",)
        left = files(root)
        assert f"{PKG}/lonely.pyc" in left
        assert f"{PKG}/stray.py" in left
        assert f"{PKG}/testing/__init__.py" in left
        assert f"{PKG}/sub/tests/fixtures.py" in left
        assert f"{SITE_312}/pkg-1.0.dist-info/__pycache__/a.pyc" in left
        assert f"{SITE_312}/tests/__init__.py" in left
        assert "lib/tests/data.bin" in left
        assert not (root / PKG / "tests").exists()
        assert not (root / PKG / "__pycache__").exists()

    def test_excludes_apply_without_slim_and_spare_metadata(
        self, tmp_path: Path
    ) -> None:
        """Patterns work with slim off; '**' spans folders; dist-info is skipped."""
        root = small_tree(tmp_path)

        result = slim_tree(root, slim=False, exclude=["**/*.pyi", "**/RECORD"])

        assert result.saved == {"exclude:**/*.pyi": 7, "exclude:**/RECORD": 0}
        assert result.unmatched == ("**/RECORD",)
        assert result.files_removed == 1
        assert f"{SITE_312}/pkg-1.0.dist-info/tests/x.pyi" in files(root)
        assert f"{PKG}/__pycache__/core.cpython-312.pyc" in files(root)

    def test_a_trailing_slash_matches_folders_only(self, tmp_path: Path) -> None:
        """'**/docs/' takes the docs folder, not a file named docs."""
        root = small_tree(tmp_path)

        result = slim_tree(root, slim=False, exclude=["**/docs/"])

        assert result.saved == {"exclude:**/docs/": 40}
        assert not (root / PKG / "docs").exists()
        assert (root / PKG / "notes/docs").is_file()

    def test_single_star_stays_in_one_folder(self, tmp_path: Path) -> None:
        """'python/*.pyi' matches nothing deeper; character classes work."""
        root = small_tree(tmp_path)

        result = slim_tree(
            root, slim=False, exclude=["python/*.pyi", f"{PKG}/[cd]o*.p?i"]
        )

        assert result.unmatched == ("python/*.pyi",)
        assert result.saved[f"exclude:{PKG}/[cd]o*.p?i"] == 7

    def test_a_folder_holding_metadata_keeps_it(self, tmp_path: Path) -> None:
        """Excluding a whole site-packages still leaves every *.dist-info."""
        root = small_tree(tmp_path)

        slim_tree(root, slim=False, exclude=[f"{SITE_312}/"])

        assert files(root) >= {f"{SITE_312}/pkg-1.0.dist-info/RECORD"}
        assert not (root / PKG).exists()

    @pytest.mark.parametrize("pattern", ["../x", "/etc/*", "a/../../b", "", "[!]"])
    def test_bad_patterns_name_the_field(self, tmp_path: Path, pattern: str) -> None:
        """A pattern that leaves the layer or cannot compile is a recipe error."""
        with pytest.raises(RecipeError) as caught:
            slim_tree(small_tree(tmp_path), slim=True, exclude=[pattern])

        assert caught.value.exit_status == ExitStatus.BAD_INPUT
        assert str(caught.value).startswith(f"field 'build.exclude': {pattern!r}")
        assert (tmp_path / PKG / "tests").exists()  # nothing removed

    def test_links_are_removed_not_followed(self, tmp_path: Path) -> None:
        """A link named tests to a kept folder is removed; its target stays."""
        root = small_tree(tmp_path)
        (root / PKG / "other").mkdir()
        (root / PKG / "other/tests").symlink_to("../testing")

        slim_tree(root, slim=False, exclude=["**/tests"])

        assert (root / PKG / "testing/__init__.py").is_file()
        assert not (root / PKG / "other/tests").is_symlink()


@pytest.mark.network
def test_numpy_pandas_slimmed_still_import(numpy_pandas_copy: Path) -> None:
    """The real tree loses its tests folders, keeps numpy.testing and
    pandas._testing, and still imports under Python 3.12."""
    root = numpy_pandas_copy
    site = root / SITE_312

    result = slim_tree(root, slim=True, exclude=["**/*.pyi"])

    assert result.saved["tests"] > 10 * 2**20
    assert result.kept == ()
    assert not list(site.glob("**/tests"))
    assert (site / "numpy/testing/__init__.py").is_file()
    assert (site / "pandas/_testing/__init__.py").is_file()
    assert list(site.glob("numpy-*.dist-info/RECORD"))
    python = python312()
    if python is None:
        pytest.skip("needs a Python 3.12 interpreter to import the tree")
    checked = subprocess.run(
        [
            python,
            "-c",
            "import numpy, numpy.testing, pandas, pandas.testing;"
            "print(pandas.DataFrame({'a': numpy.arange(3)}).a.sum())",
        ],
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "3"
