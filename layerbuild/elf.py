"""What a shared object or executable needs from the system it is loaded on.

pyelftools reads the ELF structures; this module only picks out the facts the
audit compares with a Lambda runtime: the machine, the ``DT_NEEDED`` sonames,
and the highest versions of glibc, libstdc++ (``GLIBCXX``) and its C++ ABI
(``CXXABI``) that the file binds to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

ELF_MAGIC = b"\x7fELF"

# A symbol version such as GLIBC_2.2.5 or GLIBCXX_3.4.21. "GLIBC_PRIVATE" and
# other non-numeric versions say nothing about a minimum release: skipped.
VERSION_PATTERN = re.compile(r"(GLIBC|GLIBCXX|CXXABI)_(\d+(?:\.\d+)*)")

# Far above anything a real file holds (libraries a file binds versions from,
# and versions per library); a count past these means a damaged file.
MAX_VERNEED_LIBRARIES = 1024
MAX_VERNEED_VERSIONS = 4096


@dataclass(frozen=True)
class ElfInfo:
    """The facts of one ELF file that decide where it can be loaded."""

    machine: str  # pyelftools' e_machine, e.g. "EM_X86_64", "EM_AARCH64"
    needed: tuple[str, ...]  # DT_NEEDED sonames, in file order
    glibc: tuple[int, int] | None  # highest GLIBC_x.y required
    glibcxx: tuple[int, ...] | None  # highest GLIBCXX_x.y.z required
    cxxabi: tuple[int, ...] | None  # highest CXXABI_x.y.z required


def is_elf(path: Path) -> bool:
    """Whether ``path`` starts with the ELF magic; cheap, reads four bytes."""
    try:
        with path.open("rb") as stream:
            return stream.read(len(ELF_MAGIC)) == ELF_MAGIC
    except OSError:
        return False


def read_elf(path: Path) -> ElfInfo:
    """Read the facts of the ELF file at ``path``.

    Raises ``ValueError`` naming the file when it is not a readable ELF file,
    so callers can turn it into an audit finding.
    """
    with path.open("rb") as stream:
        return read_elf_stream(stream, name=str(path))


def read_elf_stream(stream: BinaryIO, *, name: str) -> ElfInfo:
    """Read the facts of an ELF image from a seekable binary stream.

    ``name`` only labels the ``ValueError`` raised for a damaged file.
    """
    try:
        return _read(ELFFile(stream))
    except Exception as error:
        # A damaged file surfaces from pyelftools and its bundled construct as
        # a zoo of classes (ELFError, construct errors, OverflowError, struct
        # and decoding errors); to the audit they all mean the same thing.
        msg = f"{name}: not a readable ELF file ({type(error).__name__}: {error})"
        raise ValueError(msg) from error


def _read(elf: ELFFile) -> ElfInfo:
    machine = str(elf["e_machine"])
    needed: list[str] = []
    highest: dict[str, tuple[int, ...]] = {}

    # The version-needed section lists, per library, every symbol version the
    # file binds to: a few dozen entries, where walking .dynsym would mean
    # thousands of symbols. A file without section headers (rare, stripped by
    # hand) yields no versions; the machine check still applies to it.
    for section in elf.iter_sections():
        if isinstance(section, GNUVerNeedSection):
            _read_verneed(section, highest)
        elif isinstance(section, DynamicSection):
            needed.extend(
                tag.needed
                for tag in section.iter_tags()
                if tag.entry.d_tag == "DT_NEEDED"
            )

    glibc = highest.get("GLIBC")
    return ElfInfo(
        machine=machine,
        needed=tuple(needed),
        glibc=(glibc[0], glibc[1] if len(glibc) > 1 else 0) if glibc else None,
        glibcxx=highest.get("GLIBCXX"),
        cxxabi=highest.get("CXXABI"),
    )


def _read_verneed(
    section: GNUVerNeedSection, highest: dict[str, tuple[int, ...]]
) -> None:
    # The entry counts come from the file itself; a damaged count can make
    # pyelftools walk the same entry for billions of rounds, so bound them.
    if section.num_versions() > MAX_VERNEED_LIBRARIES:
        msg = f"{section.num_versions()} version-needed entries"
        raise ValueError(msg)

    for library, auxiliaries in section.iter_versions():
        if library["vn_cnt"] > MAX_VERNEED_VERSIONS:
            msg = f"{library['vn_cnt']} versions needed from one library"
            raise ValueError(msg)
        for auxiliary in auxiliaries:
            _note_version(auxiliary.name, highest)


def _note_version(name: str, highest: dict[str, tuple[int, ...]]) -> None:
    match = VERSION_PATTERN.fullmatch(name)
    if match is None:
        return

    family = match.group(1)
    version = tuple(int(part) for part in match.group(2).split("."))
    if version > highest.get(family, ()):
        highest[family] = version


def version_text(version: tuple[int, ...]) -> str:
    """``2.27`` for (2, 27), ``3.4.21`` for (3, 4, 21)."""
    return ".".join(str(part) for part in version)
