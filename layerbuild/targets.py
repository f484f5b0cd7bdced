"""Lambda runtimes and architectures, and the wheels each can load.

A *target* is one runtime on one architecture. Everything that must agree with
what Lambda runs (the glibc ceiling, the wheel tags, the ELF machine, the build
image) is derived here from two tables, so no other module hard-codes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from packaging.tags import Tag, compatible_tags, cpython_tags

# glibc of each runtime's OS. Amazon Linux 2 ships 2.26, Amazon Linux 2023 2.34.
AL2_GLIBC = (2, 26)
AL2023_GLIBC = (2, 34)

# The oldest glibc a manylinux wheel may target on each machine: manylinux1
# (glibc 2.5) for x86_64, manylinux2014 (2.17) for aarch64, where older
# policies never existed.
OLDEST_GLIBC_BY_MACHINE = {"x86_64": (2, 5), "aarch64": (2, 17)}

# Legacy names that PEP 600 maps onto manylinux_X_Y tags.
LEGACY_MANYLINUX = {
    (2, 17): "manylinux2014",
    (2, 12): "manylinux2010",
    (2, 5): "manylinux1",
}


@dataclass(frozen=True)
class Runtime:
    """One Lambda runtime identifier and what it implies."""

    name: str
    os_family: str  # "al2" or "al2023"
    glibc: tuple[int, int]
    python: tuple[int, int] | None  # None for the OS-only provided.* runtimes

    @property
    def python_version(self) -> str:
        """``3.12`` for python3.12; only meaningful for Python runtimes."""
        if self.python is None:
            msg = f"{self.name} has no Python"
            raise ValueError(msg)
        return f"{self.python[0]}.{self.python[1]}"

    @property
    def site_packages(self) -> str:
        """The layer-relative folder Lambda puts on ``sys.path``."""
        return f"python/lib/python{self.python_version}/site-packages"


RUNTIMES: dict[str, Runtime] = {
    runtime.name: runtime
    for runtime in (
        Runtime("python3.9", "al2", AL2_GLIBC, (3, 9)),
        Runtime("python3.10", "al2", AL2_GLIBC, (3, 10)),
        Runtime("python3.11", "al2", AL2_GLIBC, (3, 11)),
        Runtime("python3.12", "al2023", AL2023_GLIBC, (3, 12)),
        Runtime("python3.13", "al2023", AL2023_GLIBC, (3, 13)),
        Runtime("python3.14", "al2023", AL2023_GLIBC, (3, 14)),
        Runtime("provided.al2", "al2", AL2_GLIBC, None),
        Runtime("provided.al2023", "al2023", AL2023_GLIBC, None),
    )
}
PYTHON_RUNTIMES = tuple(name for name, rt in RUNTIMES.items() if rt.python)
PROVIDED_RUNTIMES = tuple(name for name, rt in RUNTIMES.items() if not rt.python)


@dataclass(frozen=True)
class Architecture:
    """A Lambda architecture and its names elsewhere."""

    name: str  # as Lambda spells it
    machine: str  # as uname, wheel tags and markers spell it
    elf_machine: str  # as pyelftools reports e_machine
    docker_platform: str


ARCHITECTURES: dict[str, Architecture] = {
    "x86_64": Architecture("x86_64", "x86_64", "EM_X86_64", "linux/amd64"),
    "arm64": Architecture("arm64", "aarch64", "EM_AARCH64", "linux/arm64"),
}


def glibc_text(version: tuple[int, int]) -> str:
    """``2.26`` for (2, 26)."""
    return f"{version[0]}.{version[1]}"


@dataclass(frozen=True)
class Target:
    """One runtime on one architecture: the unit a lock and a build are made for."""

    runtime: Runtime
    arch: Architecture

    @classmethod
    def of(cls, runtime: str, arch: str) -> Target:
        """Look up a target by the names Lambda uses."""
        return cls(RUNTIMES[runtime], ARCHITECTURES[arch])

    @property
    def slug(self) -> str:
        """A file-name-safe label, such as ``python3.12-x86_64``."""
        return f"{self.runtime.name}-{self.arch.name}"

    @cached_property
    def manylinux_tags(self) -> tuple[str, ...]:
        """Every manylinux platform tag the target loads, newest first.

        pip compares ``manylinux_X_Y`` tags literally, so each glibc minor up
        to the runtime's must be listed, plus the legacy aliases it covers.
        """
        machine = self.arch.machine
        oldest = OLDEST_GLIBC_BY_MACHINE[machine]
        newest = self.runtime.glibc
        tags = [
            f"manylinux_{newest[0]}_{minor}_{machine}"
            for minor in range(newest[1], oldest[1] - 1, -1)
        ]
        tags += [
            f"{alias}_{machine}"
            for glibc, alias in LEGACY_MANYLINUX.items()
            if oldest <= glibc <= newest
        ]
        return tuple(tags)

    @cached_property
    def supported_tags(self) -> tuple[Tag, ...]:
        """Every wheel tag the target can load, most preferred first."""
        if self.runtime.python is None:
            return ()
        interpreter = f"cp{self.runtime.python[0]}{self.runtime.python[1]}"
        return (
            *cpython_tags(
                self.runtime.python, abis=[interpreter], platforms=self.manylinux_tags
            ),
            *compatible_tags(
                self.runtime.python,
                interpreter=interpreter,
                platforms=self.manylinux_tags,
            ),
        )

    @cached_property
    def resolver_tags(self) -> frozenset[Tag]:
        """The wheel tags uv accepts for ``uv_platform``: a subset of ours."""
        if self.runtime.python is None:
            return frozenset()
        machine = self.arch.machine
        ceiling = "manylinux_" + self.uv_platform.split("-manylinux_", 1)[1]
        major, minor = (int(part) for part in ceiling.split("_")[1:3])
        return frozenset(
            tag
            for tag in self.supported_tags
            if tag.platform == "any"
            or _tag_glibc(tag.platform, machine) <= (major, minor)
        )

    @property
    def uv_platform(self) -> str:
        """The ``--python-platform`` uv resolves and installs for.

        uv names manylinux_2_17 and then jumps to manylinux_2_28, so for an
        Amazon Linux 2 runtime (glibc 2.26) the nearest target it offers that
        does not overshoot is manylinux_2_17. That passes over the rare wheels
        tagged only manylinux_2_24 to 2_26; they would be chosen once uv accepts
        an arbitrary manylinux_2_Y here.
        """
        glibc = self.runtime.glibc
        if glibc >= (2, 28):
            return f"{self.arch.machine}-manylinux_{glibc[0]}_{glibc[1]}"
        return f"{self.arch.machine}-manylinux_2_17"

    def extension_suffixes(self) -> tuple[str, ...]:
        """File endings of extension modules the target's interpreter imports."""
        if self.runtime.python is None:
            return ()
        major, minor = self.runtime.python
        machine = self.arch.machine
        return (f".cpython-{major}{minor}-{machine}-linux-gnu.so", ".abi3.so", ".so")


def _tag_glibc(platform: str, machine: str) -> tuple[int, int]:
    """The glibc a manylinux platform tag asks for: ``manylinux2014_x86_64`` -> 2.17."""
    for glibc, alias in LEGACY_MANYLINUX.items():
        if platform == f"{alias}_{machine}":
            return glibc
    _, major, minor = platform.removesuffix(f"_{machine}").split("_")
    return int(major), int(minor)
