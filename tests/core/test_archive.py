"""The zip writer: determinism, what other tools make of it, cache and limits."""

from __future__ import annotations

import os
import random
import shutil
import stat
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from layerbuild.archive import (
    CHUNK_BYTES,
    MAX_ENTRIES,
    MAX_ZIP32,
    ZipResult,
    write_zip,
)
from layerbuild.errors import BuildError, ExitStatus, LimitError
from tests.core.conftest import SITE_312, put

WORDS = [
    f"{word}{n}".encode()
    for word in ("layer", "numpy ", "def ", "\n")
    for n in range(250)
]


def text(size: int, seed: int) -> bytes:
    """Compressible bytes (about 3:1), different for each seed."""
    words = random.Random(seed).choices(WORDS, k=size // 4)
    return b"".join(words)[:size].ljust(size, b".")


def sample_tree(root: Path) -> Path:
    """Files of several kinds, modes, sizes and names, a link, an empty folder."""
    put(root, f"{SITE_312}/pkg/__init__.py", b"from .core import run\n")
    put(root, f"{SITE_312}/pkg/core.py", text(50_000, 1))
    put(root, f"{SITE_312}/pkg/big.bin", text(3 * CHUNK_BYTES + 12_345, 2))
    put(root, f"{SITE_312}/pkg/noise.bin", random.Random(3).randbytes(70_000))
    put(root, f"{SITE_312}/pkg/empty.txt", b"")
    put(root, f"{SITE_312}/pkg/données.txt", "é".encode())
    put(root, "bin/tool", b"#!/bin/sh\necho hi\n", 0o755)
    put(root, "lib/libx.so.1", text(10_000, 4))
    (root / "lib/libx.so").symlink_to("libx.so.1")
    (root / "python/empty").mkdir(parents=True)
    return root


def copy_with_other_metadata(source: Path, destination: Path) -> None:
    """The same content under other mtimes and permission bits."""
    shutil.copytree(source, destination, symlinks=True)
    for path in sorted(destination.rglob("*"), reverse=True):
        if path.is_symlink():
            continue
        os.utime(path, (1_700_000_000, 1_700_000_000))
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            path.chmod(0o700)
        elif mode & 0o111:
            path.chmod(0o744)
        else:
            path.chmod(0o600)


class TestDeterminism:
    def test_two_writes_are_byte_identical(self, tmp_path: Path) -> None:
        """The same tree zipped twice gives the same bytes and the same sha256."""
        root = sample_tree(tmp_path / "tree")

        first = write_zip(root, tmp_path / "one.zip")
        second = write_zip(root, tmp_path / "two.zip", jobs=1)

        assert first.path.read_bytes() == second.path.read_bytes()
        assert first.sha256 == second.sha256
        assert first.zipped_bytes == first.path.stat().st_size

    def test_other_mtimes_and_modes_give_the_same_zip(
        self, tmp_path: Path, umask_027: None
    ) -> None:
        """A copy with new mtimes, a tight umask and private modes zips the same."""
        root = sample_tree(tmp_path / "tree")
        copy_with_other_metadata(root, tmp_path / "elsewhere" / "copy")

        original = write_zip(root, tmp_path / "a.zip")
        copied = write_zip(tmp_path / "elsewhere" / "copy", tmp_path / "b.zip", jobs=3)

        assert copied.sha256 == original.sha256

    def test_a_changed_byte_changes_the_zip(self, tmp_path: Path) -> None:
        """The hash follows content: one byte more and it differs."""
        root = sample_tree(tmp_path / "tree")
        before = write_zip(root, tmp_path / "a.zip")

        with (root / "bin/tool").open("ab") as tool:
            tool.write(b"#")
        after = write_zip(root, tmp_path / "b.zip")

        assert after.sha256 != before.sha256


class TestFormat:
    def test_zipfile_reads_every_member_back(self, tmp_path: Path) -> None:
        """Python's zipfile finds sorted names, fixed dates and the same bytes."""
        root = sample_tree(tmp_path / "tree")

        result = write_zip(root, tmp_path / "layer.zip")

        with zipfile.ZipFile(result.path) as archive:
            assert archive.testzip() is None
            infos = archive.infolist()
            names = [info.filename for info in infos]
            assert names == sorted(names)
            assert "python/empty/" in names
            assert "python/" in names
            assert result.entries == len(infos)
            for info in infos:
                assert info.date_time == (1980, 1, 1, 0, 0, 0)
                assert info.extra == b""
                assert info.comment == b""
                assert info.flag_bits & 0x800
                path = root / info.filename
                if path.is_file() and not path.is_symlink():
                    assert archive.read(info) == path.read_bytes()
            assert archive.comment == b""
        assert result.unzipped_bytes == sum(
            p.stat().st_size
            for p in root.rglob("*")
            if p.is_file() and not p.is_symlink()
        )

    def test_unzip_accepts_it(self, tmp_path: Path) -> None:
        """Info-ZIP's unzip tests every member without a warning."""
        if shutil.which("unzip") is None:
            pytest.skip("needs the unzip program (apt package unzip)")
        result = write_zip(sample_tree(tmp_path / "tree"), tmp_path / "layer.zip")

        checked = subprocess.run(
            ["unzip", "-t", result.path], capture_output=True, text=True, check=False
        )

        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "No errors detected" in checked.stdout

    def test_modes_and_links_round_trip_through_unzip(self, tmp_path: Path) -> None:
        """Extracted by unzip: 0644 files, 0755 programs and folders, the link."""
        if shutil.which("unzip") is None:
            pytest.skip("needs the unzip program (apt package unzip)")
        root = sample_tree(tmp_path / "tree")
        (root / "lib/libx.so.1").chmod(0o600)
        (root / "bin/tool").chmod(0o700)
        result = write_zip(root, tmp_path / "layer.zip")
        out = tmp_path / "out"

        subprocess.run(["unzip", "-q", result.path, "-d", out], check=True)

        assert stat.S_IMODE((out / "lib/libx.so.1").stat().st_mode) == 0o644
        assert stat.S_IMODE((out / "bin/tool").stat().st_mode) == 0o755
        assert stat.S_IMODE((out / "python/empty").stat().st_mode) == 0o755
        assert os.readlink(out / "lib/libx.so") == "libx.so.1"
        assert (out / "lib/libx.so").read_bytes() == (
            root / "lib/libx.so.1"
        ).read_bytes()

    def test_external_attributes_hold_normalised_modes(self, tmp_path: Path) -> None:
        """Each entry's st_mode says file, folder or link, with a fixed mode."""
        root = sample_tree(tmp_path / "tree")

        result = write_zip(root, tmp_path / "layer.zip")

        with zipfile.ZipFile(result.path) as archive:
            modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
            assert modes["bin/tool"] == stat.S_IFREG | 0o755
            assert modes[f"{SITE_312}/pkg/core.py"] == stat.S_IFREG | 0o644
            assert modes["python/empty/"] == stat.S_IFDIR | 0o755
            assert modes["lib/libx.so"] == stat.S_IFLNK | 0o777
            assert archive.read("lib/libx.so") == b"libx.so.1"

    def test_incompressible_and_empty_files_are_stored(self, tmp_path: Path) -> None:
        """Random bytes and empty files use method 0; text is deflated."""
        result = write_zip(sample_tree(tmp_path / "tree"), tmp_path / "layer.zip")

        with zipfile.ZipFile(result.path) as archive:
            assert archive.getinfo(f"{SITE_312}/pkg/noise.bin").compress_type == 0
            assert archive.getinfo(f"{SITE_312}/pkg/empty.txt").compress_type == 0
            big = archive.getinfo(f"{SITE_312}/pkg/big.bin")
            assert big.compress_type == zipfile.ZIP_DEFLATED
            assert big.compress_size < big.file_size / 2


class TestCache:
    def test_a_warm_cache_is_faster_and_identical(self, tmp_path: Path) -> None:
        """The second write reuses every member, is quicker, and matches exactly."""
        root = tmp_path / "tree"
        for index in range(4):
            put(root, f"python/m{index}.bin", text(2 * CHUNK_BYTES, index))
        cache = tmp_path / "cache"
        plain = write_zip(root, tmp_path / "plain.zip")

        started = time.perf_counter()
        cold = write_zip(root, tmp_path / "cold.zip", cache_dir=cache)
        cold_time = time.perf_counter() - started
        started = time.perf_counter()
        warm = write_zip(root, tmp_path / "warm.zip", cache_dir=cache)
        warm_time = time.perf_counter() - started

        assert cold.reused == 0
        assert warm.reused == 4
        assert plain.sha256 == cold.sha256 == warm.sha256
        assert warm_time < cold_time

    def test_a_damaged_cache_entry_is_compressed_again(self, tmp_path: Path) -> None:
        """A truncated or altered entry is ignored, then rewritten whole."""
        root = sample_tree(tmp_path / "tree")
        cache = tmp_path / "cache"
        first = write_zip(root, tmp_path / "a.zip", cache_dir=cache)
        entries = sorted(p for p in cache.rglob("*") if p.is_file())
        entries[0].write_bytes(entries[0].read_bytes()[:-1])
        damaged = bytearray(entries[1].read_bytes())
        damaged[-1] ^= 0xFF
        entries[1].write_bytes(bytes(damaged))

        second = write_zip(root, tmp_path / "b.zip", cache_dir=cache)
        third = write_zip(root, tmp_path / "c.zip", cache_dir=cache)

        assert second.sha256 == first.sha256 == third.sha256
        assert first.reused == 0
        assert second.reused == len(entries) - 2
        assert third.reused == len(entries)
        assert not [p for p in cache.rglob("*.tmp")]

    def test_levels_do_not_share_entries(self, tmp_path: Path) -> None:
        """A level-1 cache entry is not reused for a level-9 zip."""
        root = sample_tree(tmp_path / "tree")
        cache = tmp_path / "cache"
        write_zip(root, tmp_path / "fast.zip", cache_dir=cache, level=1)

        strong = write_zip(root, tmp_path / "strong.zip", cache_dir=cache, level=9)

        assert strong.reused == 0
        assert strong.sha256 == write_zip(root, tmp_path / "s2.zip", level=9).sha256


class TestRefusals:
    def test_a_link_out_of_the_tree_is_refused(self, tmp_path: Path) -> None:
        """A link to a host file would leak it; the zip is not written."""
        root = sample_tree(tmp_path / "tree")
        (root / "lib/passwd").symlink_to("../../../../../../etc/passwd")

        with pytest.raises(BuildError, match="leading out of the layer"):
            write_zip(root, tmp_path / "layer.zip")

        assert not (tmp_path / "layer.zip").exists()

    def test_a_failure_leaves_no_temporary_file_and_the_old_zip(
        self, tmp_path: Path
    ) -> None:
        """An earlier zip survives a failed write, and no temp file remains."""
        root = sample_tree(tmp_path / "tree")
        out = tmp_path / "out"
        earlier = write_zip(root, out / "layer.zip")
        os.mkfifo(root / "lib/pipe")

        with pytest.raises(BuildError, match="device, fifo or socket"):
            write_zip(root, out / "layer.zip")

        assert sorted(p.name for p in out.iterdir()) == ["layer.zip"]
        assert (out / "layer.zip").read_bytes() == earlier.path.read_bytes()

    def test_links_inside_are_kept_as_links(self, tmp_path: Path) -> None:
        """Links to folders and dangling links inside the tree stay links."""
        root = sample_tree(tmp_path / "tree")
        (root / "lib/dangling").symlink_to("missing.so")
        (root / "python/dir-link").symlink_to("empty")

        result = write_zip(root, tmp_path / "out" / "layer.zip")

        with zipfile.ZipFile(result.path) as archive:
            assert archive.read("python/dir-link") == b"empty"
            assert archive.read("lib/dangling") == b"missing.so"
            assert (archive.getinfo("python/dir-link").external_attr >> 16) == (
                stat.S_IFLNK | 0o777
            )

    def test_a_file_too_big_for_a_plain_zip_is_refused_unread(
        self, tmp_path: Path
    ) -> None:
        """A 4 GiB (sparse) file needs ZIP64: refused before being read."""
        root = sample_tree(tmp_path / "tree")
        with (root / "python/huge.bin").open("wb") as sparse:
            sparse.truncate(MAX_ZIP32 + 1)

        with pytest.raises(LimitError) as caught:
            write_zip(root, tmp_path / "layer.zip")

        assert caught.value.exit_status == ExitStatus.LIMIT
        assert "python/huge.bin is 4,294,967,295 bytes" in str(caught.value)
        assert "no Lambda layer could either" in str(caught.value)
        assert not list(tmp_path.glob("*.zip")) + list(tmp_path.glob(".*.tmp"))

    @pytest.mark.slow
    def test_more_entries_than_a_plain_zip_holds_are_refused(
        self, fast_tmp: Path
    ) -> None:
        """65,536 entries need ZIP64; the message says so and why it cannot matter."""
        root = fast_tmp / "tree"
        folder = root / "python"
        folder.mkdir(parents=True)
        for index in range(MAX_ENTRIES):
            (folder / f"{index}").touch()

        with pytest.raises(LimitError) as caught:
            write_zip(root, fast_tmp / "layer.zip")

        assert f"{MAX_ENTRIES + 1:,} files and folders" in str(caught.value)
        assert "at most 65,535" in str(caught.value)
        assert not (fast_tmp / "layer.zip").exists()


@pytest.mark.network
@pytest.mark.slow
def test_numpy_pandas_against_zip_and_with_a_cache(
    numpy_pandas: Path, tmp_path: Path
) -> None:
    """The real tree: valid, deterministic, and the warm cache is the fastest."""
    cache = tmp_path / "cache"
    timings: dict[str, float] = {}
    results: dict[str, ZipResult] = {}
    for label in ("cold", "warm"):
        started = time.perf_counter()
        results[label] = write_zip(
            numpy_pandas, tmp_path / f"{label}.zip", cache_dir=cache
        )
        timings[label] = time.perf_counter() - started
    if shutil.which("zip"):
        started = time.perf_counter()
        subprocess.run(
            ["zip", "-qr", "-6", tmp_path / "info-zip.zip", "."],
            cwd=numpy_pandas,
            check=True,
        )
        timings["zip -qr -6"] = time.perf_counter() - started

    assert results["cold"].sha256 == results["warm"].sha256
    assert results["warm"].reused > 1000
    assert timings["warm"] < timings["cold"]
    with zipfile.ZipFile(results["cold"].path) as archive:
        assert archive.testzip() is None
    print(
        "numpy + pandas:",
        ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items()),
        f"({results['cold'].zipped_bytes:,} bytes zipped)",
    )
