"""`layerbuild audit` on planted defects: the message and exit status 3."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from layerbuild.cli import main

from .conftest import SITE_312, put


def audit(
    tree: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    """Run the real entry point on ``tree`` for python3.12 x86_64."""
    argv = ["audit", str(tree), "--runtime", "python3.12", "--arch", "x86_64", *extra]
    try:
        main(argv)
        status = 0
    except SystemExit as done:
        status = int(done.code or 0)
    return status, capsys.readouterr().err


def good_tree(root: Path, shared: dict[str, Path]) -> Path:
    put(root, f"{SITE_312}/pkg/__init__.py", b"x = 1\n")
    put(root, f"{SITE_312}/pkg/_speed.so", shared["old_glibc"].read_bytes(), 0o755)
    return root


def test_a_good_tree_passes_and_states_the_glibc(
    tmp_path: Path, shared_objects: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The summary line names the highest glibc version the layer needs."""
    status, err = audit(good_tree(tmp_path, shared_objects), capsys)

    assert status == 0, err
    assert "audit passed" in err
    assert "highest glibc needed 2.2 (pkg/_speed.so) <= 2.34" in err


def _mode_0600(root: Path, shared: dict[str, Path]) -> str:
    put(root, f"{SITE_312}/pkg/secret.py", b"", 0o600)
    return f"{SITE_312}/pkg/secret.py"


def _other_machine(root: Path, shared: dict[str, Path]) -> str:
    data = bytearray(shared["old_glibc"].read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # e_machine = EM_AARCH64
    put(root, "lib/libother.so", bytes(data), 0o755)
    return "lib/libother.so: built for EM_AARCH64; x86_64 runs EM_X86_64"


def _glibc_238(root: Path, shared: dict[str, Path]) -> str:
    # The object really binds to GLIBC_2.36 (arc4random); renaming the version
    # string in place makes it ask for 2.38, newer than the host can build.
    data = shared["new_glibc"].read_bytes().replace(b"GLIBC_2.36", b"GLIBC_2.38")
    put(root, "lib/libnew.so", data, 0o755)
    return "lib/libnew.so needs GLIBC_2.38; python3.12 (al2023) has glibc 2.34"


def _outside(root: Path, shared: dict[str, Path]) -> str:
    put(root, "nodejs/index.js", b"")
    return "nodejs"


def _over_budget(root: Path, shared: dict[str, Path]) -> str:
    put(root, f"{SITE_312}/pkg/blob.bin", b"x" * 20_000)
    return "the recipe's size budget is"


@pytest.mark.parametrize(
    "plant", [_mode_0600, _other_machine, _glibc_238, _outside, _over_budget]
)
def test_each_planted_defect_exits_3_with_its_message(
    tmp_path: Path,
    shared_objects: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    plant: Callable[[Path, dict[str, Path]], str],
) -> None:
    """A tree that passes, plus one defect, fails with that defect named."""
    tree = good_tree(tmp_path, shared_objects)
    expected = plant(tree, shared_objects)

    status, err = audit(tree, capsys, "--size-budget", "16kB")

    assert status == 3
    assert expected in err
    assert "Traceback" not in err


def test_a_zip_is_audited_like_its_tree(
    tmp_path: Path, shared_objects: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The same defect inside a zip is caught with the same message."""
    tree = good_tree(tmp_path / "tree", shared_objects)
    expected = _glibc_238(tree, shared_objects)
    layer = tmp_path / "layer.zip"
    with zipfile.ZipFile(layer, "w") as archive:
        for path in sorted(p for p in tree.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(tree).as_posix())
            info.external_attr = (0o100000 | path.stat().st_mode & 0o777) << 16
            archive.writestr(info, path.read_bytes())

    status, err = audit(layer, capsys)

    assert status == 3
    assert expected in err
