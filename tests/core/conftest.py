"""Real trees for the audit, zip and slim tests.

Shared objects are compiled here with the host's gcc, so their glibc symbol
versions are real ones; the numpy + pandas tree is installed from PyPI by uv
for a foreign target, exactly as a build does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SITE_312 = "python/lib/python3.12/site-packages"

# A C source per shared object: which glibc symbol version each one binds to
# is decided by the one libc function it calls.
C_SOURCES = {
    # puts has been in glibc since the first x86_64 release: GLIBC_2.2.5.
    "old_glibc": '#include <stdio.h>\nint hello(void) { return puts("hi"); }\n',
    # arc4random arrived in glibc 2.36: newer than any Lambda runtime has.
    "new_glibc": (
        "#include <stdlib.h>\nunsigned int draw(void) { return arc4random(); }\n"
    ),
}
CXX_SOURCE = (
    "#include <sstream>\n#include <string>\n"
    "std::string text(int x) { std::ostringstream s; s << x; return s.str(); }\n"
)


def put(root: Path, relative: str, data: bytes = b"", mode: int = 0o644) -> Path:
    """Write a file under ``root`` with exactly ``mode``, creating its folders."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.fixture(scope="session")
def shared_objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny x86_64 shared objects built by the host's compilers."""
    if shutil.which("gcc") is None or shutil.which("g++") is None:
        pytest.skip("needs gcc and g++ to build real shared objects")
    folder = tmp_path_factory.mktemp("elf")
    built: dict[str, Path] = {}
    for name, source in C_SOURCES.items():
        (folder / f"{name}.c").write_text(source)
        built[name] = folder / f"{name}.so"
        subprocess.run(
            ["gcc", "-shared", "-fPIC", "-o", built[name], folder / f"{name}.c"],
            check=True,
        )
    (folder / "cxx.cc").write_text(CXX_SOURCE)
    built["cxx"] = folder / "cxx.so"
    subprocess.run(
        ["g++", "-shared", "-fPIC", "-o", built["cxx"], folder / "cxx.cc"], check=True
    )
    return built


@pytest.fixture(scope="session")
def numpy_pandas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A layer tree with numpy and pandas for python3.12 on x86_64, from PyPI.

    Tests that use it must be marked ``network``; they must not change it.
    """
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    root = tmp_path_factory.mktemp("numpy-pandas")
    subprocess.run(
        [
            uv, "pip", "install", "--quiet",
            "--target", root / SITE_312,
            "--python-platform", "x86_64-manylinux_2_34",
            "--python-version", "3.12",
            "--only-binary", ":all:",
            "numpy", "pandas",
        ],
        check=True,
    )  # fmt: skip
    return root


@pytest.fixture
def numpy_pandas_copy(numpy_pandas: Path, tmp_path: Path) -> Path:
    """A copy of the numpy + pandas tree that a test may change."""
    copy = tmp_path / "layer"
    shutil.copytree(numpy_pandas, copy, symlinks=True)
    return copy


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A folder in memory when the machine has one: for tens of thousands of files."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="layerbuild-test-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def umask_027() -> Iterator[None]:
    """Run a test under a restrictive umask, as some build machines do."""
    previous = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(previous)
