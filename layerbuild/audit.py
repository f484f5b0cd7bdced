"""Checks a built layer against what Lambda and its runtimes will accept.

The same rules run over a layer tree (what becomes ``/opt``) and over a layer
zip: both are first turned into a list of entries, so a zip is audited without
extracting anything to disk. Every broken rule becomes one finding that names
the layer-relative file, what it needs and what the target offers; all the
findings are collected and raised together in one ``AuditError``.

The rules:

1. layout: the layer root holds only ``python/``, ``lib/``, ``bin/`` and, in a
   runtime layer, a ``bootstrap`` file; ``python/lib/pythonX.Y/`` folders each
   belong to one of the targets' runtimes;
2. modes: files readable by all, directories traversable by all, executables
   executable by all; links stay inside the layer; no devices, fifos, sockets;
3. every ELF file is built for the targets' machine;
4. no ELF file needs a newer glibc than the oldest among the targets has;
5. extension modules carry the ABI tag of the Python that will import them;
6. the unzipped size fits the recipe's budget and Lambda's limit.
"""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from layerbuild.elf import ELF_MAGIC, ElfInfo, read_elf_stream, version_text
from layerbuild.errors import AuditError, UsageError
from layerbuild.limits import MAX_UNZIPPED_BYTES, human_bytes
from layerbuild.targets import Target, glibc_text

TOP_LEVEL_FOLDERS = ("python", "lib", "bin")
BOOTSTRAP = "bootstrap"

# Linux gives up resolving a path after 40 links; a longer chain is a loop.
MAX_LINK_HOPS = 40

# A symlink's target is stored as the member's content; real ones are short.
MAX_LINK_TARGET_BYTES = 4096

PYTHON_FOLDER = re.compile(r"python/lib/python(\d+)\.(\d+)")
CPYTHON_EXTENSION = re.compile(r"\.cpython-([^./]+)\.so$")
SITE_PACKAGES_PREFIX = re.compile(r"python/lib/python\d+\.\d+/site-packages/")

LAYOUT_HINT = (
    "Install Python packages under python/ (or python/lib/pythonX.Y/site-packages/),"
    " shared libraries under lib/ and programs under bin/."
)
MODES_HINT = (
    "Lambda runs your code as another user: make files readable and directories"
    " traversable by all (chmod -R o+rX), and keep links inside the layer."
)
MACHINE_HINT = "Build the layer for the target architecture's wheels and libraries."
GLIBC_HINT = (
    "Pin releases that publish manylinux wheels for the target's glibc, or target"
    " a runtime on Amazon Linux 2023 (glibc 2.34)."
)
ABI_HINT = "Install each runtime's wheels into its own python/lib/pythonX.Y/ folder."
SIZE_HINT = (
    "Slim the layer (build.slim = true, build.exclude patterns) or split the"
    " packages over several layers."
)


@dataclass(frozen=True)
class AuditReport:
    """What the audit measured in a layer that passed it."""

    files: int
    unzipped_bytes: int
    elf_files: int
    highest_glibc: tuple[int, int] | None
    highest_glibc_file: str | None  # layer-relative path of the file needing it
    highest_glibcxx: tuple[int, ...] | None
    glibc_ceiling: tuple[int, int] | None = None  # the oldest target's glibc
    highest_glibcxx_file: str | None = None

    def summary(self) -> str:
        """One line for the user, such as ``audit passed: 1,234 files, ...``."""
        parts = [
            f"{self.files:,} files",
            f"{self.unzipped_bytes / 2**20:.1f} MiB unzipped",
            f"{self.elf_files:,} ELF files",
        ]
        if self.highest_glibc is not None:
            needed = f"highest glibc needed {glibc_text(self.highest_glibc)}"
            if self.highest_glibc_file is not None:
                needed += f" ({_short(self.highest_glibc_file)})"
            if self.glibc_ceiling is not None:
                needed += f" <= {glibc_text(self.glibc_ceiling)}"
            parts.append(needed)
        if self.highest_glibcxx is not None:
            parts.append(
                f"GLIBCXX {version_text(self.highest_glibcxx)} (reported, not checked)"
            )
        return "audit passed: " + ", ".join(parts)


@dataclass(frozen=True)
class _Entry:
    """One path of the layer, from a tree or a zip, as the rules see it."""

    path: str  # layer-relative, POSIX separators, no trailing slash
    kind: str  # "file", "dir", "link" or "special"
    mode: int  # permission bits only
    size: int = 0  # regular files only
    link: str | None = None  # a link's target, as written


@dataclass
class _Findings:
    """Findings in the order found, and the hint of each rule that failed."""

    lines: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    def add(self, line: str, hint: str) -> None:
        self.lines.append(line)
        if hint not in self.hints:
            self.hints.append(hint)

    def raise_if_any(self) -> None:
        if self.lines:
            raise AuditError(self.lines, hint=" ".join(self.hints))


ElfReader = Callable[[_Entry], "ElfInfo | None"]


def audit_tree(
    root: Path,
    targets: Sequence[Target],
    *,
    size_budget: int = MAX_UNZIPPED_BYTES,
    kind: str = "python",
) -> AuditReport:
    """Audit the layer tree at ``root`` (what Lambda mounts at ``/opt``).

    ``targets`` share one architecture; several mean one layer for several
    runtimes. Raises ``AuditError`` with every finding when a rule is broken.
    """
    if not root.is_dir():
        msg = f"{root}: not a folder, so not a layer tree"
        raise UsageError(msg)

    def read(entry: _Entry) -> ElfInfo | None:
        path = root / entry.path
        # Most files of a layer are not ELF: a raw four-byte read keeps this
        # cheap for the thousands of them.
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            if os.read(descriptor, len(ELF_MAGIC)) != ELF_MAGIC:
                return None
        finally:
            os.close(descriptor)
        with path.open("rb") as stream:
            return read_elf_stream(stream, name=entry.path)

    findings = _Findings()
    entries = sorted(_walk_tree(root, findings), key=lambda entry: entry.path)
    return _audit(entries, targets, read, findings, size_budget, kind)


def audit_zip(
    zip_path: Path,
    targets: Sequence[Target],
    *,
    size_budget: int = MAX_UNZIPPED_BYTES,
    kind: str = "python",
) -> AuditReport:
    """Audit a layer zip as Lambda would extract it, without extracting it.

    Modes come from the members' external attributes; ELF members are read
    into memory one at a time. Raises ``AuditError`` with every finding.
    """
    if not zip_path.is_file():
        msg = f"{zip_path}: no such file"
        raise UsageError(msg)

    findings = _Findings()
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        line = f"{zip_path}: not a readable zip file ({error})"
        raise AuditError([line], hint="Build the layer zip again.") from error

    with archive:
        members: dict[str, zipfile.ZipInfo] = {}
        entries = list(_zip_entries(archive, members, findings))

        def read(entry: _Entry) -> ElfInfo | None:
            info = members[entry.path]
            # A member bigger than Lambda's whole budget is a size finding
            # already; reading it would only risk memory on a hostile zip.
            if info.file_size > MAX_UNZIPPED_BYTES:
                return None
            try:
                with archive.open(info) as stream:
                    head = stream.read(len(ELF_MAGIC))
                    if head != ELF_MAGIC:
                        return None
                    image = io.BytesIO(head + stream.read())
            except (zipfile.BadZipFile, zlib.error, EOFError) as error:
                # A member that inflates past its declared size, or whose
                # data is cut or damaged, is stopped here and named.
                line = f"{entry.path}: cannot be read from the zip ({error})"
                raise AuditError([line], hint="Build the layer zip again.") from None
            return read_elf_stream(image, name=entry.path)

        return _audit(entries, targets, read, findings, size_budget, kind)


def _walk_tree(root: Path, findings: _Findings) -> Iterator[_Entry]:
    """Every path under ``root``, without following links."""
    pending = [""]
    while pending:
        folder = pending.pop()
        with os.scandir(root / folder) as scan:
            children = sorted(scan, key=lambda child: child.name)
        for child in children:
            relative = f"{folder}/{child.name}" if folder else child.name
            info = child.stat(follow_symlinks=False)
            mode = stat.S_IMODE(info.st_mode)
            _check_name(relative, findings)
            if stat.S_ISDIR(info.st_mode):
                pending.append(relative)
                yield _Entry(relative, "dir", mode)
            elif stat.S_ISREG(info.st_mode):
                yield _Entry(relative, "file", mode, info.st_size)
            elif stat.S_ISLNK(info.st_mode):
                yield _Entry(relative, "link", mode, link=os.readlink(child.path))
            else:
                yield _Entry(relative, "special", mode)


def _zip_entries(
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    findings: _Findings,
) -> Iterator[_Entry]:
    """The entries Lambda would extract from ``archive``, and their parents."""
    explicit: dict[str, _Entry] = {}
    for info in archive.infolist():
        name = info.filename
        path = name.rstrip("/")
        parts = path.split("/")
        if name.startswith("/") or "\\" in name or ".." in parts or not path:
            findings.add(
                f"zip entry {name!r} would be extracted outside the layer"
                " (absolute path, backslash or '..')",
                LAYOUT_HINT,
            )
            continue
        if path in explicit:
            findings.add(f"zip entry {name!r} appears more than once", LAYOUT_HINT)
            continue
        _check_name(path, findings)

        entry = _zip_entry(archive, info, path, findings)
        explicit[path] = entry
        members[path] = info

    # Extractors create the folders a member lies in even without an entry of
    # their own; such a folder gets the mode most extractors give it.
    implied: dict[str, _Entry] = {}
    for path in explicit:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            entry = explicit.get(parent)
            if entry is None:
                implied.setdefault(parent, _Entry(parent, "dir", 0o755))
            elif entry.kind != "dir":
                findings.add(
                    f"zip entry {path!r} lies under {parent!r}, which is a"
                    f" {entry.kind}, not a folder",
                    LAYOUT_HINT,
                )
                break

    everything = {**implied, **explicit}
    for path in sorted(everything):
        yield everything[path]


def _zip_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, findings: _Findings
) -> _Entry:
    unix_mode = info.external_attr >> 16
    if info.create_system != 3 or unix_mode == 0:
        # Archivers outside Unix record no modes; extractors then apply their
        # defaults, so the entry is judged by the usual ones.
        kind = "dir" if info.is_dir() else "file"
        return _Entry(path, kind, 0o755 if kind == "dir" else 0o644, info.file_size)

    mode = stat.S_IMODE(unix_mode)
    if stat.S_ISLNK(unix_mode):
        if info.file_size > MAX_LINK_TARGET_BYTES:
            findings.add(f"{path}: a link whose target is implausibly long", MODES_HINT)
            return _Entry(path, "special", mode)
        target = archive.read(info).decode("utf-8", errors="replace")
        return _Entry(path, "link", mode, link=target)
    if stat.S_ISDIR(unix_mode) or info.is_dir():
        return _Entry(path, "dir", mode)
    # Some writers (Python's zipfile among them) record permissions without
    # a file type; extractors make those regular files.
    if stat.S_ISREG(unix_mode) or stat.S_IFMT(unix_mode) == 0:
        return _Entry(path, "file", mode, info.file_size)
    return _Entry(path, "special", mode)


def _check_name(path: str, findings: _Findings) -> None:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        findings.add(
            f"{path!r}: the name is not valid UTF-8, so a zip cannot carry it",
            LAYOUT_HINT,
        )


def _audit(
    entries: list[_Entry],
    targets: Sequence[Target],
    read: ElfReader,
    findings: _Findings,
    size_budget: int,
    kind: str,
) -> AuditReport:
    if not targets:
        msg = "an audit needs at least one target"
        raise ValueError(msg)
    machines = {target.arch.name for target in targets}
    if len(machines) > 1:
        msg = f"one layer serves one architecture, not {sorted(machines)}"
        raise ValueError(msg)

    by_path = {entry.path: entry for entry in entries}
    _check_layout(entries, targets, kind, findings)
    for entry in entries:
        _check_modes(entry, by_path, findings)
    _check_extension_tags(entries, targets, findings)
    elf_files, glibc, glibcxx = _check_elf(entries, targets, read, findings)
    unzipped = _check_size(entries, size_budget, findings)

    findings.raise_if_any()
    return AuditReport(
        files=sum(1 for entry in entries if entry.kind == "file"),
        unzipped_bytes=unzipped,
        elf_files=elf_files,
        highest_glibc=glibc[0] if glibc else None,
        highest_glibc_file=glibc[1] if glibc else None,
        highest_glibcxx=glibcxx[0] if glibcxx else None,
        glibc_ceiling=_oldest(targets).runtime.glibc,
        highest_glibcxx_file=glibcxx[1] if glibcxx else None,
    )


def _check_layout(
    entries: list[_Entry], targets: Sequence[Target], kind: str, findings: _Findings
) -> None:
    allowed = ", ".join(f"{name}/" for name in TOP_LEVEL_FOLDERS)
    if kind == "runtime":
        allowed += f" and a {BOOTSTRAP} file"
    for entry in entries:
        if "/" in entry.path:
            continue
        if entry.path in TOP_LEVEL_FOLDERS and entry.kind == "dir":
            continue
        if entry.path == BOOTSTRAP and entry.kind == "file" and kind == "runtime":
            continue
        shown = entry.path + ("/" if entry.kind == "dir" else "")
        findings.add(
            f"{shown}: the layer root may hold only {allowed}; Lambda looks"
            f" nowhere else in /opt",
            LAYOUT_HINT,
        )

    versions = {target.runtime.python for target in targets if target.runtime.python}
    if not versions:
        return  # an OS-only runtime has no Python to find these folders
    names = ", ".join(sorted({target.runtime.name for target in targets}))
    for entry in entries:
        match = PYTHON_FOLDER.fullmatch(entry.path)
        if match is None:
            continue
        version = (int(match.group(1)), int(match.group(2)))
        if version not in versions:
            findings.add(
                f"{entry.path}/: no target runs Python {version[0]}.{version[1]}"
                f" (targets: {names}), so Lambda never puts it on sys.path",
                ABI_HINT,
            )


def _check_modes(
    entry: _Entry, by_path: dict[str, _Entry], findings: _Findings
) -> None:
    mode = f"{entry.mode:04o}"
    if entry.kind == "file":
        if not entry.mode & stat.S_IROTH:
            findings.add(
                f"{entry.path}: mode {mode} is not readable by all (needs o+r)",
                MODES_HINT,
            )
        if entry.mode & 0o111 and not entry.mode & stat.S_IXOTH:
            findings.add(
                f"{entry.path}: mode {mode} is executable, but not by all (needs o+x)",
                MODES_HINT,
            )
    elif entry.kind == "dir":
        if entry.mode & 0o005 != 0o005:
            findings.add(
                f"{entry.path}/: mode {mode} is not traversable by all (needs o+rx)",
                MODES_HINT,
            )
    elif entry.kind == "special":
        findings.add(
            f"{entry.path}: a device, fifo or socket has no place in a layer",
            MODES_HINT,
        )
    elif entry.kind == "link":
        _check_link(entry, by_path, findings)


def _check_link(entry: _Entry, by_path: dict[str, _Entry], findings: _Findings) -> None:
    target = entry.link or ""
    if target.startswith("/"):
        findings.add(
            f"{entry.path} -> {target}: an absolute link leads out of the layer;"
            " use a relative one",
            MODES_HINT,
        )
        return

    parent = entry.path.rpartition("/")[0]
    resolved = _resolve(f"{parent}/{target}" if parent else target, by_path)
    if resolved is None:
        findings.add(f"{entry.path} -> {target}: leads out of the layer", MODES_HINT)
    elif resolved != "" and resolved not in by_path:
        findings.add(
            f"{entry.path} -> {target}: the target is missing, or the links loop",
            MODES_HINT,
        )


def _resolve(path: str, by_path: dict[str, _Entry]) -> str | None:
    """The layer path ``path`` leads to, following links; None if it leaves.

    Resolves by name against the entries, as the kernel would once the layer
    is extracted at ``/opt``. A loop yields a path that is not an entry.
    """
    pending = deque(path.split("/"))
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue

        candidate = "/".join([*resolved, part])
        entry = by_path.get(candidate)
        if entry is not None and entry.kind == "link":
            hops += 1
            target = entry.link or ""
            if target.startswith("/"):
                return None
            if hops > MAX_LINK_HOPS:
                return "\0loop"
            pending.extendleft(reversed(target.split("/")))
            continue
        resolved.append(part)
    return "/".join(resolved)


def _check_extension_tags(
    entries: list[_Entry], targets: Sequence[Target], findings: _Findings
) -> None:
    machine = targets[0].arch.machine
    pythons = sorted({t.runtime.python for t in targets if t.runtime.python})
    if not pythons:
        return

    for entry in entries:
        if entry.kind not in ("file", "link") or not entry.path.startswith("python/"):
            continue
        match = CPYTHON_EXTENSION.search(entry.path)
        if match is None:
            continue

        folder = PYTHON_FOLDER.match(entry.path)
        if folder is not None:
            version = (int(folder.group(1)), int(folder.group(2)))
            if version not in pythons:
                continue  # the folder itself is a finding already
            wanted = [version]
        else:
            # python/ is on every Python runtime's path: any target may load it.
            wanted = pythons
        tags = [f"{v[0]}{v[1]}-{machine}-linux-gnu" for v in wanted]
        if match.group(1) not in tags:
            runtimes = " or ".join(f"python{v[0]}.{v[1]}" for v in wanted)
            findings.add(
                f"{entry.path}: built for cpython-{match.group(1)}; {runtimes} on"
                f" {machine} imports only"
                f" {' or '.join(f'.cpython-{tag}.so' for tag in tags)}",
                ABI_HINT,
            )


def _check_elf(
    entries: list[_Entry],
    targets: Sequence[Target],
    read: ElfReader,
    findings: _Findings,
) -> tuple[int, tuple[tuple[int, int], str] | None, tuple[tuple[int, ...], str] | None]:
    oldest = _oldest(targets)
    ceiling = oldest.runtime.glibc
    arch = oldest.arch
    elf_files = 0
    highest_glibc: tuple[tuple[int, int], str] | None = None
    highest_glibcxx: tuple[tuple[int, ...], str] | None = None

    for entry in entries:
        if entry.kind != "file" or entry.size < len(ELF_MAGIC):
            continue
        try:
            info = read(entry)
        except ValueError as error:
            findings.add(str(error), MACHINE_HINT)
            continue
        except OSError as error:
            findings.add(f"{entry.path}: cannot be read ({error.strerror})", MODES_HINT)
            continue
        if info is None:
            continue
        elf_files += 1

        if info.machine != arch.elf_machine:
            findings.add(
                f"{entry.path}: built for {info.machine}; {arch.name} runs"
                f" {arch.elf_machine}",
                MACHINE_HINT,
            )
        if info.glibc is not None:
            if highest_glibc is None or info.glibc > highest_glibc[0]:
                highest_glibc = (info.glibc, entry.path)
            if info.glibc > ceiling:
                findings.add(
                    f"{entry.path} needs GLIBC_{glibc_text(info.glibc)};"
                    f" {oldest.runtime.name} ({oldest.runtime.os_family}) has"
                    f" glibc {glibc_text(ceiling)}",
                    GLIBC_HINT,
                )
        # GLIBCXX is reported, never enforced: which libstdc++ each runtime's
        # image ships has not been confirmed in an image (only inferred from
        # each distribution's system GCC), and wheels that vendor their own
        # libstdc++ in a *.libs folder are not bound by the system's anyway.
        # Enforce it once the runtime images' libstdc++ has been measured.
        if info.glibcxx is not None and (
            highest_glibcxx is None or info.glibcxx > highest_glibcxx[0]
        ):
            highest_glibcxx = (info.glibcxx, entry.path)

    return elf_files, highest_glibc, highest_glibcxx


def _check_size(entries: list[_Entry], size_budget: int, findings: _Findings) -> int:
    unzipped = sum(entry.size for entry in entries if entry.kind == "file")
    if unzipped > size_budget and size_budget < MAX_UNZIPPED_BYTES:
        findings.add(
            f"the layer is {human_bytes(unzipped)} unzipped; the recipe's size"
            f" budget is {human_bytes(size_budget)}",
            SIZE_HINT,
        )
    if unzipped > MAX_UNZIPPED_BYTES:
        findings.add(
            f"the layer is {human_bytes(unzipped)} unzipped; Lambda allows"
            f" {human_bytes(MAX_UNZIPPED_BYTES)} for a function and all its layers",
            SIZE_HINT,
        )
    return unzipped


def _oldest(targets: Sequence[Target]) -> Target:
    """The target with the lowest glibc, which every ELF file must suit."""
    return min(targets, key=lambda target: target.runtime.glibc)


def _short(path: str) -> str:
    """A layer path without its site-packages prefix, for one-line summaries."""
    return SITE_PACKAGES_PREFIX.sub("", path, count=1)
