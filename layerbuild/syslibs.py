"""Which shared libraries a layer must carry in ``lib/``.

A layer's ELF files (extension modules, programs in ``bin/``) name the shared
objects they need (``DT_NEEDED``). Lambda finds a layer's own copies through
``LD_LIBRARY_PATH``, which ends in ``/opt/lib``. Whatever the runtime image
already provides must not be shipped: the glibc family would clash with the
runtime's loader, and anything else would only add bytes, because the system's
copy comes first on the search path.

The build copies every library ``ldd`` resolves into ``lib/`` (see
``layerbuild.docker_builder``); ``prune`` then walks ``DT_NEEDED`` from the
layer's own ELF files with pyelftools and keeps only the copies reachable
through libraries the runtime lacks. Everything here reads files on the host.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

ELF_MAGIC = b"\x7fELF"

# The glibc family: always supplied by the runtime's own C library, and never
# safe to ship, since a copy must match the runtime's dynamic loader exactly.
GLIBC_FAMILY = frozenset(
    {
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
        "libc.so.6",
        "libm.so.6",
        "libmvec.so.1",
        "libdl.so.2",
        "libpthread.so.0",
        "librt.so.1",
        "libutil.so.1",
        "libresolv.so.2",
        "libanl.so.1",
        "libnsl.so.1",
        "libBrokenLocale.so.1",
        "libcrypt.so.1",
        "libthread_db.so.1",
        "libc_malloc_debug.so.0",
        "linux-vdso.so.1",
        "linux-gate.so.1",
    }
)

# Name patterns of the glibc family that carry a variable part.
GLIBC_PATTERNS = ("libnss_*.so.*", "libnsl.so.*", "ld-linux*.so.*")

# What every Lambda runtime image of an OS family provides beyond glibc. Kept
# short on purpose: a library left out of this list is only shipped needlessly,
# while one wrongly listed would be missing at run time.
RUNTIME_PROVIDED: dict[str, frozenset[str]] = {
    "al2": frozenset({"libgcc_s.so.1", "libstdc++.so.6"}),
    "al2023": frozenset({"libgcc_s.so.1", "libstdc++.so.6"}),
}


def is_glibc(soname: str) -> bool:
    """True for the C library's own shared objects, which a layer never ships."""
    return soname in GLIBC_FAMILY or any(
        fnmatch.fnmatchcase(soname, pattern) for pattern in GLIBC_PATTERNS
    )


def provided_by(os_family: str, image_sonames: Iterable[str] = ()) -> frozenset[str]:
    """The sonames a runtime supplies: glibc, its OS family's list, and its image's.

    ``image_sonames`` is what the runtime image itself holds (``ldconfig -p``),
    when that image is at hand.
    """
    return (
        GLIBC_FAMILY | RUNTIME_PROVIDED.get(os_family, frozenset()) | set(image_sonames)
    )


def parse_ldconfig(text: str) -> set[str]:
    """The sonames that ``ldconfig -p`` lists (``libz.so.1 (libc6,x86-64) => ...``)."""
    names = set()
    for line in text.splitlines():
        if "=>" in line and line.startswith(("\t", " ")):
            names.add(line.split()[0])
    return names


def is_elf(path: Path) -> bool:
    """True when ``path`` is a regular file that starts with the ELF magic."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with path.open("rb") as handle:
            return handle.read(4) == ELF_MAGIC
    except OSError:
        return False


def elf_files(tree: Path) -> Iterator[Path]:
    """Every ELF file under ``tree``, in a stable order."""
    for folder, dirs, files in os.walk(tree):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder, name)
            if is_elf(path):
                yield path


@dataclass(frozen=True)
class DynamicInfo:
    """The dynamic-linking entries of one ELF file."""

    needed: tuple[str, ...]
    search_paths: tuple[str, ...]  # DT_RPATH and DT_RUNPATH entries, raw


def dynamic_info(path: Path) -> DynamicInfo:
    """Read ``DT_NEEDED``, ``DT_RPATH`` and ``DT_RUNPATH``; empty for a static file."""
    needed: list[str] = []
    paths: list[str] = []
    try:
        with path.open("rb") as handle:
            elf = ELFFile(handle)
            for section in elf.iter_sections():
                if not isinstance(section, DynamicSection):
                    continue
                for tag in section.iter_tags():
                    if tag.entry.d_tag == "DT_NEEDED":
                        needed.append(tag.needed)
                    elif tag.entry.d_tag == "DT_RPATH":
                        paths.extend(tag.rpath.split(":"))
                    elif tag.entry.d_tag == "DT_RUNPATH":
                        paths.extend(tag.runpath.split(":"))
    except (ELFError, OSError):
        # Not a loadable object after all (a truncated or foreign file): it
        # needs nothing we can name, and the audit reports unreadable files.
        return DynamicInfo((), ())
    return DynamicInfo(tuple(needed), tuple(p for p in paths if p))


@dataclass
class Closure:
    """The outcome of walking ``DT_NEEDED`` through a layer."""

    kept: dict[str, list[str]] = field(default_factory=dict)  # lib -> needed by
    removed: list[str] = field(default_factory=list)  # copies nothing needs
    missing: dict[str, list[str]] = field(default_factory=dict)  # soname -> needers


def _expand_origin(entry: str, origin: Path) -> Path:
    return Path(entry.replace("$ORIGIN", str(origin)).replace("${ORIGIN}", str(origin)))


def _find_in_tree(
    soname: str, needer: Path, info: DynamicInfo, tree: Path, lib_dir: Path
) -> Path | None:
    """Where inside the layer ``soname`` resolves for ``needer``, if it does.

    Only ``$ORIGIN``-relative search paths can point inside a layer (wheels
    vendor their libraries that way); absolute ones name build-machine folders.
    """
    for entry in info.search_paths:
        if "$ORIGIN" not in entry and "${ORIGIN}" not in entry:
            continue
        candidate = _expand_origin(entry, needer.parent) / soname
        try:
            inside = candidate.resolve().is_relative_to(tree.resolve())
        except OSError:
            continue
        if inside and candidate.is_file():
            return candidate
    candidate = lib_dir / soname
    return candidate if candidate.is_file() else None


def prune(tree: Path, provided: frozenset[str], candidates: Iterable[str]) -> Closure:
    """Keep in ``tree/lib`` only the candidate libraries the layer really needs.

    ``candidates`` are the file names the build just copied into ``lib/``; any
    other file there was put in by the recipe and is left alone. A library is
    needed when an ELF file of the layer outside ``lib/`` names it, directly or
    through other needed libraries, and the runtime does not provide it.
    """
    lib_dir = tree / "lib"
    candidate_names = set(candidates)
    closure = Closure()
    seen: set[Path] = set()
    queue = [path for path in elf_files(tree) if path.parent != lib_dir]
    queue += [
        lib_dir / name for name in sorted(set(_lib_names(lib_dir)) - candidate_names)
    ]

    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        info = dynamic_info(path)
        label = str(path.relative_to(tree))
        for soname in info.needed:
            if soname in provided or is_glibc(soname):
                continue
            found = _find_in_tree(soname, path, info, tree, lib_dir)
            if found is None:
                closure.missing.setdefault(soname, []).append(label)
                continue
            if found.parent == lib_dir:
                closure.kept.setdefault(soname, []).append(label)
            queue.append(found)

    for name in sorted(candidate_names - set(closure.kept)):
        target = lib_dir / name
        if target.exists() or target.is_symlink():
            target.unlink()
            closure.removed.append(name)
    if lib_dir.is_dir() and not any(lib_dir.iterdir()):
        lib_dir.rmdir()
    return closure


def _lib_names(lib_dir: Path) -> list[str]:
    if not lib_dir.is_dir():
        return []
    return sorted(entry.name for entry in lib_dir.iterdir() if entry.is_file())
