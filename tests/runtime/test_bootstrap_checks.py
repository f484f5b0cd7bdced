"""What the bootstrap checks find, from the layer's bytes alone (no Docker)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from layerbuild.runtime_layer import BOOTSTRAP, check_bootstrap
from layerbuild.targets import Target
from tests.runtime.elf_samples import EM_AARCH64, EM_X86_64, static_exit_program

AL2_X86 = Target.of("provided.al2", "x86_64")
AL2023_ARM = Target.of("provided.al2023", "arm64")


def write(tree: Path, relative: str, content: bytes, mode: int = 0o755) -> Path:
    """Put a file into the layer tree with the given mode."""
    path = tree / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(mode)
    return path


class TestScripts:
    def test_a_shell_script_leaves_its_interpreter_to_the_os_image(
        self, tmp_path: Path
    ) -> None:
        """An executable script with ``#!/bin/sh`` asks only for /bin/sh in the OS."""
        write(tmp_path, BOOTSTRAP, b"#!/bin/sh\necho hi\n")

        check = check_bootstrap(tmp_path, AL2_X86)

        assert check.kind == "script"
        assert check.findings == []
        assert check.os_paths == [("/bin/sh",)]

    def test_a_bootstrap_without_its_execute_bit_is_refused(
        self, tmp_path: Path
    ) -> None:
        """Mode 0644 is named, with the mode Lambda needs."""
        write(tmp_path, BOOTSTRAP, b"#!/bin/sh\n", mode=0o644)

        check = check_bootstrap(tmp_path, AL2_X86)

        assert check.findings == [
            "bootstrap: not executable (mode 0644); Lambda runs it as a program, "
            "as an unprivileged user, so it needs mode 0755"
        ]

    def test_executable_by_the_owner_only_is_not_enough(self, tmp_path: Path) -> None:
        """Lambda's user is not the file's owner: 0744 is refused too."""
        write(tmp_path, BOOTSTRAP, b"#!/bin/sh\n", mode=0o744)

        assert (
            "not executable (mode 0744)"
            in check_bootstrap(tmp_path, AL2_X86).findings[0]
        )

    def test_an_interpreter_missing_from_the_layer_is_named(
        self, tmp_path: Path
    ) -> None:
        """``#!/opt/bin/lua`` must be in the layer's bin/ folder."""
        write(tmp_path, BOOTSTRAP, b"#!/opt/bin/lua\nprint(1)\n")

        check = check_bootstrap(tmp_path, AL2_X86)

        assert check.findings == [
            "bootstrap: its interpreter /opt/bin/lua is not an executable file "
            "in the layer"
        ]
        assert check.os_paths == []

    def test_an_interpreter_shipped_in_the_layer_is_found(self, tmp_path: Path) -> None:
        """The same line passes once bin/lua is in the tree and executable."""
        write(tmp_path, BOOTSTRAP, b"#!/opt/bin/lua\nprint(1)\n")
        write(tmp_path, "bin/lua", static_exit_program(EM_X86_64))

        check = check_bootstrap(tmp_path, AL2_X86)

        assert (check.findings, check.os_paths) == ([], [])

    def test_env_looks_for_the_program_on_lambdas_path(self, tmp_path: Path) -> None:
        """``#!/usr/bin/env python3`` needs env, then python3 in any PATH folder."""
        write(tmp_path, BOOTSTRAP, b"#!/usr/bin/env python3\n")

        check = check_bootstrap(tmp_path, AL2_X86)

        assert check.os_paths == [
            ("/usr/bin/env",),
            ("/usr/local/bin/python3", "/usr/bin/python3", "/bin/python3"),
        ]

    def test_env_finds_a_program_the_layer_puts_on_path(self, tmp_path: Path) -> None:
        """A program in the layer's bin/ satisfies env without the OS."""
        write(tmp_path, BOOTSTRAP, b"#!/usr/bin/env -S node --no-warnings\n")
        write(tmp_path, "bin/node", b"#!/bin/sh\n")

        assert check_bootstrap(tmp_path, AL2_X86).os_paths == [("/usr/bin/env",)]

    def test_a_relative_interpreter_is_refused(self, tmp_path: Path) -> None:
        """The kernel resolves ``#!bash`` against the working directory: refused."""
        write(tmp_path, BOOTSTRAP, b"#!bash\n")

        assert "not an absolute path" in check_bootstrap(tmp_path, AL2_X86).findings[0]


class TestCompiled:
    def test_an_elf_for_the_targets_machine_passes(self, tmp_path: Path) -> None:
        """A static x86_64 executable needs nothing from the OS."""
        write(tmp_path, BOOTSTRAP, static_exit_program(EM_X86_64))

        check = check_bootstrap(tmp_path, AL2_X86)

        assert (check.kind, check.findings, check.os_paths) == ("elf", [], [])

    def test_an_elf_for_the_other_architecture_is_refused(self, tmp_path: Path) -> None:
        """An aarch64 bootstrap in an x86_64 layer is named as such."""
        write(tmp_path, BOOTSTRAP, static_exit_program(EM_AARCH64))

        check = check_bootstrap(tmp_path, AL2_X86)

        assert check.findings == [
            "bootstrap: compiled for aarch64 (EM_AARCH64), but the target "
            "provided.al2-x86_64 runs x86_64"
        ]

    def test_the_arm64_target_refuses_an_x86_64_bootstrap(self, tmp_path: Path) -> None:
        """The check runs both ways."""
        write(tmp_path, BOOTSTRAP, static_exit_program(EM_X86_64))

        check = check_bootstrap(tmp_path, AL2023_ARM)

        assert check.findings == [
            "bootstrap: compiled for x86_64 (EM_X86_64), but the target "
            "provided.al2023-arm64 runs aarch64"
        ]

    @pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
    def test_a_dynamic_elf_names_its_loader_and_its_glibc(self, tmp_path: Path) -> None:
        """Built against this machine's glibc (2.34 or later), it is too new for AL2."""
        source = tmp_path / "main.c"
        source.write_text('#include <stdio.h>\nint main(void){puts("hi");return 0;}\n')
        subprocess.run(["cc", "-o", str(tmp_path / BOOTSTRAP), str(source)], check=True)

        al2 = check_bootstrap(tmp_path, AL2_X86)
        al2023 = check_bootstrap(tmp_path, Target.of("provided.al2023", "x86_64"))

        assert al2.findings[0].startswith("bootstrap: needs glibc 2.")
        assert al2.findings[0].endswith("newer than the 2.26 of provided.al2")
        assert al2023.findings == []
        assert al2023.os_paths == [("/lib64/ld-linux-x86-64.so.2",)]


class TestNeither:
    def test_a_missing_bootstrap_is_named(self, tmp_path: Path) -> None:
        """An empty tree has no bootstrap to start."""
        check = check_bootstrap(tmp_path, AL2_X86)

        assert check.findings == [
            "bootstrap: missing at the layer root; Lambda starts /opt/bootstrap"
        ]

    def test_a_file_that_is_neither_script_nor_elf_is_refused(
        self, tmp_path: Path
    ) -> None:
        """Text without ``#!`` cannot be executed by the kernel."""
        write(tmp_path, BOOTSTRAP, b"echo hello\n")

        assert "exec format error" in check_bootstrap(tmp_path, AL2_X86).findings[0]
