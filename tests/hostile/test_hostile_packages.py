"""Hostile wheels, sdists and zips: refused by name, nothing written outside.

The packages come from a local index (no network). uv, left alone, drops
entries that climb out of the tree and turns links and devices into plain
files without a word; layerbuild inspects every file before installing it.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from layerbuild.lock import SOURCE_ONLY_MARK, parse_lock
from tests.cli_runner import CliResult
from tests.hostile.simple_index import (
    IndexServer,
    Member,
    make_sdist,
    make_wheel,
    serve_index,
    sha256_of,
    write_zip_members,
)

pytestmark = pytest.mark.hostile

LINK = stat.S_IFLNK | 0o777
RECIPE = 'runtimes = ["python3.12"]\nrequirements = ["{name}"]\n'
MiB = 2**20


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[IndexServer]:
    """A local index every build in the test resolves and downloads from."""
    with serve_index(tmp_path / "index") as server:
        monkeypatch.setenv("UV_INDEX_URL", server.url)
        monkeypatch.setenv("LAYERBUILD_CACHE_DIR", str(tmp_path / "cache"))
        yield server


def build(run_cli, tmp_path: Path, name: str) -> CliResult:
    """Build a recipe that asks for ``name`` only, for python3.12 on x86_64."""
    recipes = tmp_path / "recipes"
    recipes.mkdir(exist_ok=True)
    (recipes / f"{name}.toml").write_text(RECIPE.format(name=name))
    return run_cli(
        "build", name, "--recipes-dir", str(recipes), "--builder", "local",
        "--dist", str(tmp_path / "dist"),
    )  # fmt: skip


def escapes(tmp_path: Path) -> list[Path]:
    """Files a hostile entry would have written outside the build's folders."""
    found = [p for p in tmp_path.parent.rglob("*escape*") if "index" not in p.parts]
    return found + [p for p in Path("/tmp").glob("*escape*")]


def hostile_wheels(tmp_path: Path) -> list[tuple[str, tuple[Member, ...], str]]:
    """(package, extra members, words naming the offending entry)."""
    absolute = str(tmp_path / "abs-escape.txt")
    zeros = bytes(40 * MiB)
    noise = os.urandom(300 * 1024)  # 40 MiB declared from this stays under 200:1
    return [
        ("dotdot", (Member("../../escape.txt", b"x"),), "'../../escape.txt'"),
        ("deep", (Member("pkg/../../../escape.txt", b"x"),), "climbs out"),
        ("data", (Member("x-1.0.data/purelib/../../escape.txt", b"x"),), "climbs out"),
        ("absolute", (Member(absolute, b"x"),), "is an absolute path"),
        ("backslash", (Member("..\\..\\escape.txt", b"x"),), "absolute path"),
        ("linkabs", (Member("pkg/passwd", b"/etc/passwd", LINK),), "'/etc/passwd'"),
        ("linkup", (Member("pkg/up", b"../../../../etc", LINK),), "link leading out"),
        ("device", (Member("pkg/dev", b"", stat.S_IFCHR | 0o644),), "'pkg/dev' is a"),
        ("fifo", (Member("pkg/fifo", b"", stat.S_IFIFO | 0o644),), "fifo"),
        ("bomb", (Member("pkg/bomb.bin", zeros),), "'pkg/bomb.bin' inflates"),
        (
            "declared",
            (Member("pkg/huge.bin", b"x", declared_size=0xFFFFFFF0),),
            "'pkg/huge.bin' declares",
        ),
        (
            "many",
            tuple(
                Member(f"pkg/{i}.bin", noise, declared_size=40 * MiB) for i in range(8)
            ),
            "more than a layer may hold",
        ),
    ]


@pytest.mark.parametrize("case", range(12))
def test_hostile_wheel_is_refused_by_name(
    run_cli, tmp_path: Path, index: IndexServer, case: int
) -> None:
    """Exit 1, the wheel and its entry named, no zip, nothing outside."""
    name, extra, expected = hostile_wheels(tmp_path)[case]
    wheel = make_wheel(index.folder, f"h{name}", extra=extra)

    result = build(run_cli, tmp_path, f"h{name}")

    assert result.status == 1, result.stderr
    assert "Traceback" not in result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert wheel.name in error
    assert expected in error
    assert not list((tmp_path / "dist").glob("*.zip"))
    assert escapes(tmp_path) == []
    # The refused file is not left where a later install could pick it up.
    assert not (tmp_path / "cache" / "wheels" / wheel.name).exists()


def test_wheel_lying_about_its_size_is_refused_by_the_installer(
    run_cli, tmp_path: Path, index: IndexServer
) -> None:
    """Declared small, inflating large: uv stops at the lie; the entry is named."""
    member = Member("pkg/liar.bin", bytes(4 * MiB), declared_size=10)
    make_wheel(index.folder, "hliar", extra=(member,))

    result = build(run_cli, tmp_path, "hliar")

    assert result.status == 1, result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "pkg/liar.bin" in error
    assert not list((tmp_path / "dist").glob("*.zip"))


HOSTILE_SDIST_MEMBERS = [
    (Member("hsd-1.0/../escape.txt", b"x"), "climbs out", "parent-directory"),
    (Member("/tmp/escape-sdist.txt", b"x"), "absolute path", "is absolute"),
    (Member("hsd-1.0/hsd/link", b"/etc/passwd", LINK), "link leading out", "absolute"),
    (Member("hsd-1.0/hsd/up", b"../../../etc", LINK), "link leading out", "escapes"),
    (Member("hsd-1.0/hsd/dev", b"", stat.S_IFCHR | 0o644), "device", "CharacterDevice"),
]
SDIST_IDS = ["dotdot", "absolute", "linkabs", "linkup", "device"]


@pytest.mark.parametrize(
    ("extra", "_", "uv_words"), HOSTILE_SDIST_MEMBERS, ids=SDIST_IDS
)
def test_hostile_sdist_is_refused_when_locking(
    run_cli, tmp_path: Path, index: IndexServer, extra: Member, _: str, uv_words: str
) -> None:
    """uv unpacks an sdist to read its metadata while resolving, and refuses.

    Resolving is the lock step, so the status is a failed lock's (2).
    """
    make_sdist(index.folder, "hsd", extra=(extra,))

    result = build(run_cli, tmp_path, "hsd")

    assert result.status == 2, result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert uv_words in error
    assert extra.data.decode() in error if extra.mode == LINK else extra.name in error
    assert escapes(tmp_path) == []
    assert not list((tmp_path / "dist").glob("*.zip"))


@pytest.mark.parametrize(
    ("extra", "expected", "_"), HOSTILE_SDIST_MEMBERS, ids=SDIST_IDS
)
def test_hostile_sdist_in_a_lock_is_refused_before_it_is_built(
    run_cli, tmp_path: Path, index: IndexServer, extra: Member, expected: str, _: str
) -> None:
    """A lock naming a hostile sdist by its hash: inspected, refused, exit 1."""
    sdist = make_sdist(index.folder, "hsd", extra=(extra,))
    lock = tmp_path / "recipes" / "locks" / "hsd" / "python3.12-x86_64.txt"
    lock.parent.mkdir(parents=True)
    pin = f"hsd==1.0 --hash=sha256:{sha256_of(sdist)}"
    lock.write_text(f"{SOURCE_ONLY_MARK} hsd\n{pin}\n")

    result = build(run_cli, tmp_path, "hsd")

    assert result.status == 1, result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert sdist.name in error
    assert expected in error
    assert repr(extra.name) in error
    assert escapes(tmp_path) == []
    assert not list((tmp_path / "dist").glob("*.zip"))


# ------------------------------------------------------------ hash integrity


def test_wheel_changed_on_the_index_stops_the_build(
    run_cli, tmp_path: Path, index: IndexServer
) -> None:
    """The same file name with other bytes no longer matches the lock: exit 1.

    A warm cache still holds the locked bytes and builds from them; the swap
    shows once the file must come from the index again.
    """
    make_wheel(index.folder, "hfine")
    assert build(run_cli, tmp_path, "hfine").status == 0
    zip_path = next((tmp_path / "dist").glob("*.zip"))
    zip_path.unlink()

    make_wheel(index.folder, "hfine", module=b"VALUE = 2  # swapped\n")
    assert build(run_cli, tmp_path, "hfine").status == 0
    zip_path.unlink()
    shutil.rmtree(tmp_path / "cache")
    result = build(run_cli, tmp_path, "hfine")

    assert result.status == 1, result.stderr
    assert "hash" in result.stderr
    assert "hfine" in result.stderr
    assert not zip_path.exists()


def test_lock_hash_that_matches_nothing_stops_the_build(
    run_cli, tmp_path: Path, index: IndexServer
) -> None:
    """A lock edited to another sha256 installs nothing, even from a warm cache."""
    make_wheel(index.folder, "hfine")
    assert build(run_cli, tmp_path, "hfine").status == 0
    for path in (tmp_path / "dist").iterdir():
        path.unlink()
    lock = tmp_path / "recipes" / "locks" / "hfine" / "python3.12-x86_64.txt"
    [package] = parse_lock(lock, lock.read_text()).packages
    lock.write_text(lock.read_text().replace(package.hashes[0], "0" * 64))

    result = build(run_cli, tmp_path, "hfine")

    assert result.status == 1, result.stderr
    assert "hash" in result.stderr
    assert not list((tmp_path / "dist").glob("*.zip"))


def test_sdist_changed_on_the_index_stops_the_build(
    run_cli, tmp_path: Path, index: IndexServer
) -> None:
    """A source-only package is held to its hash too."""
    make_sdist(index.folder, "hsrc")
    assert build(run_cli, tmp_path, "hsrc").status == 0
    for path in (tmp_path / "dist").iterdir():
        path.unlink()
    (tmp_path / "cache" / "sdists" / "hsrc-1.0.tar.gz").unlink()

    make_sdist(index.folder, "hsrc", extra=(Member("hsrc-1.0/extra.txt", b"new"),))
    result = build(run_cli, tmp_path, "hsrc")

    assert result.status == 1, result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "hsrc-1.0.tar.gz" in error
    assert "which the lock does not list" in error
    assert not list((tmp_path / "dist").glob("*.zip"))


def test_corrupt_cached_wheel_is_fetched_again(
    run_cli, tmp_path: Path, index: IndexServer
) -> None:
    """A cached file whose bytes changed is not trusted: same zip as before."""
    make_wheel(index.folder, "hfine")
    assert build(run_cli, tmp_path, "hfine").status == 0
    first = next((tmp_path / "dist").glob("*.zip")).read_bytes()
    for path in (tmp_path / "dist").iterdir():
        path.unlink()
    cached = tmp_path / "cache" / "wheels" / "hfine-1.0-py3-none-any.whl"
    cached.write_bytes(cached.read_bytes()[:100])

    assert build(run_cli, tmp_path, "hfine").status == 0

    assert next((tmp_path / "dist").glob("*.zip")).read_bytes() == first


# ------------------------------------------------------- layerbuild audit ZIP


def hostile_zips() -> list[tuple[list[Member], str]]:
    """(layer zip members, words of the finding that names the entry)."""
    ok = Member("python/ok.py", b"x = 1\n")
    return [
        ([ok, Member("../escape.py", b"x")], "'../escape.py' would be extracted"),
        ([ok, Member("python/../../escape.py", b"x")], "would be extracted outside"),
        ([ok, Member("/tmp/escape.py", b"x")], "'/tmp/escape.py' would be extracted"),
        ([ok, Member("python/passwd", b"/etc/passwd", LINK)], "python/passwd"),
        ([ok, Member("python/up", b"../../../etc", LINK)], "python/up"),
        ([ok, Member("python/dev", b"", stat.S_IFCHR | 0o644)], "python/dev: a device"),
        ([ok, Member("python/fifo", b"", stat.S_IFIFO | 0o644)], "python/fifo"),
        (
            [ok, Member("python/huge.bin", b"x", declared_size=0xFFFFFFF0)],
            "unzipped; Lambda allows",
        ),
        (
            [
                ok,
                *(
                    Member(f"python/{i}.bin", b"x", declared_size=40 * MiB)
                    for i in range(7)
                ),
            ],
            "unzipped; Lambda allows",
        ),
    ]


@pytest.mark.parametrize("case", range(9))
def test_audit_refuses_hostile_zip_without_extracting(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: int
) -> None:
    """Exit 3, the entry named; the zip is read, never unpacked."""
    members, expected = hostile_zips()[case]
    zip_path = tmp_path / "layer.zip"
    write_zip_members(zip_path, members)
    before = sorted(tmp_path.rglob("*"))

    result = run_cli(
        "audit", str(zip_path), "--runtime", "python3.12", "--arch", "x86_64",
        cwd=tmp_path,
    )  # fmt: skip

    assert result.status == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert expected in result.stderr
    assert sorted(tmp_path.rglob("*")) == before
    assert escapes(tmp_path) == []


def test_audit_of_an_elf_member_lying_about_its_size_is_one_line(
    run_cli, tmp_path: Path
) -> None:
    """An ELF-looking member that inflates past its declared size is not a crash."""
    payload = b"\x7fELF" + bytes(8 * MiB)
    zip_path = tmp_path / "layer.zip"
    member = Member("python/fake.so", payload, declared_size=64)
    write_zip_members(zip_path, [member])

    result = run_cli(
        "audit", str(zip_path), "--runtime", "python3.12", "--arch", "x86_64"
    )

    assert result.status in (1, 3), result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "python/fake.so" in errors[0]
