"""The audit: each rule on a small real tree, zips, and a real numpy + pandas."""

from __future__ import annotations

import os
import shutil
import stat
import time
import zipfile
from pathlib import Path

import pytest

from layerbuild.archive import write_zip
from layerbuild.audit import AuditReport, audit_tree, audit_zip
from layerbuild.elf import is_elf, read_elf
from layerbuild.errors import AuditError, ExitStatus
from layerbuild.limits import MAX_UNZIPPED_BYTES, human_bytes
from layerbuild.targets import Target
from tests.core.conftest import SITE_312, put

PY312 = Target.of("python3.12", "x86_64")
PY311 = Target.of("python3.11", "x86_64")
ARM312 = Target.of("python3.12", "arm64")
EM_AARCH64 = 183  # e_machine of a 64-bit ARM file
E_MACHINE_OFFSET = 18
NEW_GLIBC_FINDING = (
    f"{SITE_312}/pkg/new.so needs GLIBC_2.36; python3.12 (al2023) has glibc 2.34"
)


def findings_of(root: Path, targets: list[Target], **options: object) -> list[str]:
    """The findings the audit raises for ``root``; fails the test if it passes."""
    with pytest.raises(AuditError) as caught:
        audit_tree(root, targets, **options)  # type: ignore[arg-type]
    assert caught.value.exit_status == ExitStatus.LIMIT
    return caught.value.findings


def with_machine(source: Path, destination: Path, machine: int) -> Path:
    """A copy of an ELF file whose header claims another machine."""
    data = bytearray(source.read_bytes())
    data[E_MACHINE_OFFSET : E_MACHINE_OFFSET + 2] = machine.to_bytes(2, "little")
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(bytes(data))
    destination.chmod(0o755)
    return destination


def unix_member(name: str, mode: int) -> zipfile.ZipInfo:
    """A zip entry made on Unix with ``mode`` (type and permission bits)."""
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    info.create_system = 3
    return info


def small_layer(root: Path, shared_objects: dict[str, Path]) -> Path:
    """A layer that passes for python3.11 and python3.12 on x86_64."""
    put(root, f"{SITE_312}/pkg/__init__.py", b"VALUE = 1\n")
    put(
        root, f"{SITE_312}/pkg/_speed.abi3.so", shared_objects["old_glibc"].read_bytes()
    )
    put(root, "lib/libhello.so", shared_objects["old_glibc"].read_bytes(), 0o755)
    put(root, "bin/tool", b"#!/bin/sh\necho hi\n", 0o755)
    (root / "lib/libhello.so.1").symlink_to("libhello.so")
    return root


class TestElf:
    def test_reads_machine_needed_and_versions_of_a_real_object(
        self, shared_objects: dict[str, Path]
    ) -> None:
        """A compiled object's machine, sonames and glibc version are read."""
        info = read_elf(shared_objects["new_glibc"])

        assert info.machine == "EM_X86_64"
        assert "libc.so.6" in info.needed
        assert info.glibc == (2, 36)
        assert info.glibcxx is None

    def test_reads_libstdcxx_versions(self, shared_objects: dict[str, Path]) -> None:
        """A C++ object reports the GLIBCXX and CXXABI versions it binds to."""
        info = read_elf(shared_objects["cxx"])

        assert info.glibcxx is not None
        assert info.glibcxx >= (3, 4)
        assert info.cxxabi is not None
        assert info.cxxabi >= (1, 3)
        assert "libstdc++.so.6" in info.needed

    def test_junk_behind_the_magic_is_a_value_error(self, tmp_path: Path) -> None:
        """A file with the ELF magic and nothing sane after it is refused."""
        junk = put(tmp_path, "junk.so", b"\x7fELF" + b"\x02\x01\x01" + b"\xff" * 60)

        assert is_elf(junk)
        with pytest.raises(ValueError, match="not a readable ELF file"):
            read_elf(junk)

    def test_a_text_file_is_not_elf(self, tmp_path: Path) -> None:
        """The magic check says no to ordinary files and to missing ones."""
        assert not is_elf(put(tmp_path, "a.py", b"print(1)\n"))
        assert not is_elf(tmp_path / "missing")


class TestTree:
    def test_a_good_layer_passes_with_its_facts(
        self, tmp_path: Path, shared_objects: dict[str, Path]
    ) -> None:
        """A clean layer yields a report, and the summary states the facts."""
        root = small_layer(tmp_path, shared_objects)

        report = audit_tree(root, [PY312])

        assert report.files == 4
        assert report.elf_files == 2
        assert report.highest_glibc == (2, 2)
        assert report.highest_glibc_file in {
            "lib/libhello.so",
            f"{SITE_312}/pkg/_speed.abi3.so",
        }
        assert report.unzipped_bytes == sum(
            p.stat().st_size
            for p in root.rglob("*")
            if p.is_file() and not p.is_symlink()
        )
        assert report.summary().startswith(
            "audit passed: 4 files, 0.0 MiB unzipped, 2 ELF"
        )
        assert "highest glibc needed 2.2" in report.summary()
        assert report.summary().endswith("<= 2.34")

    def test_glibc_newer_than_the_runtime_is_named(
        self, tmp_path: Path, shared_objects: dict[str, Path]
    ) -> None:
        """An object needing glibc 2.36 fails on AL2023's 2.34, message exact."""
        put(
            tmp_path, f"{SITE_312}/pkg/new.so", shared_objects["new_glibc"].read_bytes()
        )

        findings = findings_of(tmp_path, [PY312])

        assert findings == [NEW_GLIBC_FINDING]

    def test_several_runtimes_check_against_the_oldest_glibc(
        self, tmp_path: Path, shared_objects: dict[str, Path]
    ) -> None:
        """One layer for 3.11 and 3.12 is held to AL2's glibc, in each folder."""
        new = shared_objects["new_glibc"].read_bytes()
        put(tmp_path, "python/lib/python3.11/site-packages/a/x.so", new)
        put(tmp_path, f"{SITE_312}/a/x.so", new)

        findings = findings_of(tmp_path, [PY312, PY311])

        assert len(findings) == 2
        assert all(f.endswith("python3.11 (al2) has glibc 2.26") for f in findings)

    def test_vendored_libraries_are_checked_too(
        self, tmp_path: Path, shared_objects: dict[str, Path]
    ) -> None:
        """A library a wheel vendors in *.libs is held to the same glibc."""
        put(
            tmp_path,
            f"{SITE_312}/pkg.libs/libx-1234.so",
            shared_objects["new_glibc"].read_bytes(),
        )

        assert findings_of(tmp_path, [PY312]) == [
            f"{SITE_312}/pkg.libs/libx-1234.so needs GLIBC_2.36;"
            " python3.12 (al2023) has glibc 2.34"
        ]

    def test_glibcxx_is_reported_not_enforced(
        self, tmp_path: Path, shared_objects: dict[str, Path]
    ) -> None:
        """A C++ object passes; its GLIBCXX is in the report and the summary."""
        put(tmp_path, f"{SITE_312}/pkg/cxx.so", shared_objects["cxx"].read_bytes())

        report = audit_tree(tmp_path, [PY312])

        assert report.highest_glibcxx == read_elf(shared_objects["cxx"]).glibcxx
        assert report.highest_glibcxx_file == f"{SITE_312}/pkg/cxx.so"
        assert "GLIBCXX 3.4." in report.summary()
        assert "(reported, not checked)" in report.summary()

    def test_wrong_machine_is_named_both_ways(
        self, tmp_path: Path, shared_objects: dict[str, Path]
    ) -> None:
        """An aarch64 object fails an x86_64 layer, and an x86_64 one arm64."""
        with_machine(
            shared_objects["old_glibc"], tmp_path / "lib/libarm.so", EM_AARCH64
        )
        put(tmp_path, "lib/libx86.so", shared_objects["old_glibc"].read_bytes())

        x86 = findings_of(tmp_path, [PY312])
        arm = findings_of(tmp_path, [ARM312])

        assert x86 == ["lib/libarm.so: built for EM_AARCH64; x86_64 runs EM_X86_64"]
        assert arm == ["lib/libx86.so: built for EM_X86_64; arm64 runs EM_AARCH64"]

    def test_a_damaged_elf_file_is_a_finding(self, tmp_path: Path) -> None:
        """A truncated shared object is reported, not a crash."""
        put(
            tmp_path,
            "lib/broken.so",
            b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + b"\xff" * 40,
        )

        (finding,) = findings_of(tmp_path, [PY312])

        assert finding.startswith("lib/broken.so: not a readable ELF file")

    def test_layout_allows_only_lambda_folders(self, tmp_path: Path) -> None:
        """Entries beside python/, lib/, bin/ are named; bootstrap only in runtimes."""
        put(tmp_path, "numpy/__init__.py")
        put(tmp_path, "README.txt")
        put(tmp_path, "bootstrap", b"#!/bin/sh\n", 0o755)

        python = findings_of(tmp_path, [PY312])
        runtime = findings_of(
            tmp_path, [Target.of("provided.al2023", "x86_64")], kind="runtime"
        )

        assert [f.split(":")[0] for f in python] == [
            "README.txt",
            "bootstrap",
            "numpy/",
        ]
        assert "only python/, lib/, bin/; Lambda looks nowhere else" in python[0]
        assert [f.split(":")[0] for f in runtime] == ["README.txt", "numpy/"]
        assert "and a bootstrap file" in runtime[0]

    def test_python_folders_must_belong_to_a_target(self, tmp_path: Path) -> None:
        """python3.11 files in a python3.12 layer never reach sys.path."""
        put(tmp_path, "python/lib/python3.11/site-packages/a.py")
        put(tmp_path, f"{SITE_312}/a.py")

        assert findings_of(tmp_path, [PY312]) == [
            "python/lib/python3.11/: no target runs Python 3.11 (targets: python3.12),"
            " so Lambda never puts it on sys.path"
        ]
        assert audit_tree(tmp_path, [PY311, PY312]).files == 2

    def test_modes_must_let_every_user_read(self, tmp_path: Path) -> None:
        """Unreadable files, closed folders and private executables are named."""
        put(tmp_path, "python/secret.py", mode=0o600)
        put(tmp_path, "bin/tool", b"#!/bin/sh\n", mode=0o754)
        put(tmp_path, "python/closed/x.py")
        (tmp_path / "python/closed").chmod(0o700)

        findings = findings_of(tmp_path, [PY312])

        assert findings == [
            "bin/tool: mode 0754 is executable, but not by all (needs o+x)",
            "python/closed/: mode 0700 is not traversable by all (needs o+rx)",
            "python/secret.py: mode 0600 is not readable by all (needs o+r)",
        ]

    def test_links_must_stay_inside_and_resolve(self, tmp_path: Path) -> None:
        """Links out (relative or absolute), dangling links and loops are named."""
        put(tmp_path, "lib/real.so.1")
        (tmp_path / "lib/good.so").symlink_to("real.so.1")
        (tmp_path / "lib/dir").symlink_to(".")
        (tmp_path / "lib/via-dir.so").symlink_to("dir/dir/real.so.1")
        (tmp_path / "lib/out.so").symlink_to("../../etc/passwd")
        (tmp_path / "lib/abs.so").symlink_to("/usr/lib/libc.so.6")
        (tmp_path / "lib/gone.so").symlink_to("missing.so")
        (tmp_path / "lib/loop-a").symlink_to("loop-b")
        (tmp_path / "lib/loop-b").symlink_to("loop-a")

        findings = findings_of(tmp_path, [PY312])

        assert findings == [
            "lib/abs.so -> /usr/lib/libc.so.6: an absolute link leads out of the"
            " layer; use a relative one",
            "lib/gone.so -> missing.so: the target is missing, or the links loop",
            "lib/loop-a -> loop-b: the target is missing, or the links loop",
            "lib/loop-b -> loop-a: the target is missing, or the links loop",
            "lib/out.so -> ../../etc/passwd: leads out of the layer",
        ]

    def test_a_fifo_is_a_finding(self, tmp_path: Path) -> None:
        """Special files cannot be part of a layer."""
        (tmp_path / "lib").mkdir()
        os.mkfifo(tmp_path / "lib/pipe")

        assert findings_of(tmp_path, [PY312]) == [
            "lib/pipe: a device, fifo or socket has no place in a layer"
        ]

    def test_extension_tags_must_match_the_folder_python(
        self, tmp_path: Path, shared_objects: dict[str, Path]
    ) -> None:
        """A cpython-311 or aarch64 module in the 3.12 folder is named; abi3 is fine."""
        so = shared_objects["old_glibc"].read_bytes()
        put(tmp_path, f"{SITE_312}/m/a.cpython-311-x86_64-linux-gnu.so", so)
        put(tmp_path, f"{SITE_312}/m/b.cpython-312-x86_64-linux-gnu.so", so)
        put(tmp_path, f"{SITE_312}/m/c.cpython-312-aarch64-linux-gnu.so", so)
        put(tmp_path, f"{SITE_312}/m/d.abi3.so", so)
        put(tmp_path, f"{SITE_312}/m/e.so", so)
        put(tmp_path, "python/f.cpython-313-x86_64-linux-gnu.so", so)

        findings = findings_of(tmp_path, [PY312])

        assert findings == [
            "python/f.cpython-313-x86_64-linux-gnu.so: built for"
            " cpython-313-x86_64-linux-gnu; python3.12 on x86_64 imports only"
            " .cpython-312-x86_64-linux-gnu.so",
            f"{SITE_312}/m/a.cpython-311-x86_64-linux-gnu.so: built for"
            " cpython-311-x86_64-linux-gnu; python3.12 on x86_64 imports only"
            " .cpython-312-x86_64-linux-gnu.so",
            f"{SITE_312}/m/c.cpython-312-aarch64-linux-gnu.so: built for"
            " cpython-312-aarch64-linux-gnu; python3.12 on x86_64 imports only"
            " .cpython-312-x86_64-linux-gnu.so",
        ]

    def test_size_over_the_budget_gives_both_numbers(self, tmp_path: Path) -> None:
        """The recipe's budget and Lambda's limit are both enforced and quoted."""
        put(tmp_path, "python/data.bin", b"x" * 5000)

        (budget,) = findings_of(tmp_path, [PY312], size_budget=4096)
        with (tmp_path / "python/huge.bin").open("wb") as sparse:
            sparse.truncate(MAX_UNZIPPED_BYTES)
        (limit,) = findings_of(tmp_path, [PY312])

        assert budget == (
            f"the layer is {human_bytes(5000)} unzipped; the recipe's size budget is"
            f" {human_bytes(4096)}"
        )
        assert limit == (
            f"the layer is {human_bytes(MAX_UNZIPPED_BYTES + 5000)} unzipped; Lambda"
            f" allows {human_bytes(MAX_UNZIPPED_BYTES)} for a function and all its"
            " layers"
        )

    def test_all_findings_come_together_with_hints(
        self, tmp_path: Path, shared_objects: dict[str, Path]
    ) -> None:
        """Several broken rules give one error listing each, and each rule's hint."""
        put(tmp_path, "stray.txt")
        put(tmp_path, "lib/new.so", shared_objects["new_glibc"].read_bytes(), 0o600)

        with pytest.raises(AuditError) as caught:
            audit_tree(tmp_path, [PY312])

        assert len(caught.value.findings) == 3
        assert str(caught.value) == "3 audit failures"
        assert caught.value.hint is not None
        assert "python/" in caught.value.hint
        assert "chmod" in caught.value.hint
        assert "glibc" in caught.value.hint


class TestZip:
    def test_a_zip_of_a_good_tree_reports_what_the_tree_does(
        self, tmp_path: Path, shared_objects: dict[str, Path]
    ) -> None:
        """The zip audit sees the same files, sizes, ELF facts and links."""
        root = small_layer(tmp_path / "tree", shared_objects)
        zipped = write_zip(root, tmp_path / "layer.zip").path

        from_tree = audit_tree(root, [PY312])
        from_zip = audit_zip(zipped, [PY312])

        assert from_zip == from_tree
        assert isinstance(from_zip, AuditReport)

    def test_modes_come_from_the_external_attributes(self, tmp_path: Path) -> None:
        """A member stored with mode 0600 or as a link out is named."""
        zipped = tmp_path / "layer.zip"
        with zipfile.ZipFile(zipped, "w") as archive:
            private = unix_member("python/secret.py", stat.S_IFREG | 0o600)
            archive.writestr(private, "x = 1\n")
            link = unix_member("lib/out.so", stat.S_IFLNK | 0o777)
            archive.writestr(link, "../../etc/shadow")

        with pytest.raises(AuditError) as caught:
            audit_zip(zipped, [PY312])

        assert caught.value.findings == [
            "lib/out.so -> ../../etc/shadow: leads out of the layer",
            "python/secret.py: mode 0600 is not readable by all (needs o+r)",
        ]

    def test_entries_leading_out_are_named_and_never_written(
        self, tmp_path: Path
    ) -> None:
        """'..' and absolute members are findings; nothing lands on disk."""
        zipped = tmp_path / "evil.zip"
        with zipfile.ZipFile(zipped, "w") as archive:
            archive.writestr("python/ok.py", "")
            archive.writestr("../escaped.txt", "boo")
            archive.writestr("/tmp/absolute.txt", "boo")
            archive.writestr("python/../../up.txt", "boo")
        before = set(tmp_path.parent.iterdir())

        with pytest.raises(AuditError) as caught:
            audit_zip(zipped, [PY312])

        escapes = [f for f in caught.value.findings if f.startswith("zip entry")]
        assert [f.split("'")[1] for f in escapes] == [
            "../escaped.txt",
            "/tmp/absolute.txt",
            "python/../../up.txt",
        ]
        assert all("would be extracted outside the layer" in f for f in escapes)
        assert set(tmp_path.parent.iterdir()) == before
        assert not Path("/tmp/absolute.txt").exists()

    def test_a_member_under_a_link_member_is_named(self, tmp_path: Path) -> None:
        """A link followed by a member inside it would write through the link."""
        zipped = tmp_path / "slip.zip"
        with zipfile.ZipFile(zipped, "w") as archive:
            link = unix_member("lib/escape", stat.S_IFLNK | 0o777)
            archive.writestr(link, "../../../tmp")
            member = unix_member("lib/escape/planted.so", stat.S_IFREG | 0o644)
            archive.writestr(member, "x")

        with pytest.raises(AuditError) as caught:
            audit_zip(zipped, [PY312])

        assert caught.value.findings == [
            "zip entry 'lib/escape/planted.so' lies under 'lib/escape', which is a"
            " link, not a folder",
            "lib/escape -> ../../../tmp: leads out of the layer",
        ]

    def test_elf_members_are_read_from_the_zip(
        self, tmp_path: Path, shared_objects: dict[str, Path]
    ) -> None:
        """An ELF member needing a newer glibc is found without extracting."""
        zipped = tmp_path / "layer.zip"
        with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(shared_objects["new_glibc"], f"{SITE_312}/pkg/new.so")

        with pytest.raises(AuditError) as caught:
            audit_zip(zipped, [PY312])

        assert caught.value.findings == [NEW_GLIBC_FINDING]

    def test_a_file_that_is_not_a_zip_is_a_finding(self, tmp_path: Path) -> None:
        """Garbage in place of a zip is one clear finding."""
        bogus = put(tmp_path, "layer.zip", b"not a zip at all")

        with pytest.raises(AuditError, match=r"layer\.zip: not a readable zip file"):
            audit_zip(bogus, [PY312])


@pytest.mark.network
class TestRealPackages:
    def test_numpy_pandas_pass_on_312_and_fail_on_311(self, numpy_pandas: Path) -> None:
        """numpy + pandas need GLIBC_2.27: fine on AL2023, named on AL2."""
        started = time.perf_counter()
        report = audit_tree(numpy_pandas, [PY312])
        elapsed = time.perf_counter() - started

        assert report.highest_glibc == (2, 27)
        assert report.elf_files > 40
        assert report.unzipped_bytes > 50 * 2**20
        print(f"audit of numpy + pandas: {elapsed:.2f} s; {report.summary()}")

        shutil.move(
            numpy_pandas / "python/lib/python3.12",
            numpy_pandas / "python/lib/python3.11",
        )
        try:
            with pytest.raises(AuditError) as caught:
                audit_tree(numpy_pandas, [PY311])
        finally:
            shutil.move(
                numpy_pandas / "python/lib/python3.11",
                numpy_pandas / "python/lib/python3.12",
            )
        glibc = [f for f in caught.value.findings if "needs GLIBC_2.27" in f]
        assert glibc
        assert all(f.endswith("python3.11 (al2) has glibc 2.26") for f in glibc)

    def test_an_arm64_wheel_fails_an_x86_64_layer(self, tmp_path: Path) -> None:
        """A real aarch64 extension module passes arm64 and is named on x86_64."""
        import subprocess
        import sys

        uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
        subprocess.run(
            [
                uv, "pip", "install", "--quiet", "--target", tmp_path / SITE_312,
                "--python-platform", "aarch64-manylinux_2_28",
                "--python-version", "3.12", "--only-binary", ":all:", "markupsafe",
            ],
            check=True,
        )  # fmt: skip

        assert audit_tree(tmp_path, [ARM312]).elf_files >= 1
        findings = findings_of(tmp_path, [PY312])
        assert any("built for EM_AARCH64; x86_64 runs EM_X86_64" in f for f in findings)
        assert any("cpython-312-aarch64-linux-gnu" in f for f in findings)
