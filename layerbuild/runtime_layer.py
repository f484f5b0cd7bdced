"""Custom-runtime layers: a ``bootstrap`` for the OS-only provided.* runtimes.

Lambda starts ``/opt/bootstrap`` when a function on provided.al2 or
provided.al2023 has no bootstrap of its own. ``assemble`` fills a layer tree
from a ``kind = "runtime"`` recipe: the bootstrap at the root (copied from the
recipe, or compiled by the recipe's ``build`` command inside the target's build
image), and the recipe's ``files`` beside it, typically in ``bin/`` (on
``PATH``) and ``lib/`` (on ``LD_LIBRARY_PATH``). It then checks that Lambda
could start the bootstrap at all: it is there, it is executable, a script's
interpreter exists in the layer or the runtime's OS, and a compiled bootstrap
matches the architecture and the OS's glibc.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.segments import InterpSegment

from layerbuild.audit import audit_tree
from layerbuild.containers import BoxSpec, Engine, Mount, check_platform
from layerbuild.elf import is_elf, read_elf, version_text
from layerbuild.errors import AuditError, BuildError, RecipeError
from layerbuild.recipe import Recipe, RuntimeOptions
from layerbuild.report import NullReporter, Reporter
from layerbuild.targets import ARCHITECTURES, Target, glibc_text

BOOTSTRAP = "bootstrap"

_QUIET = NullReporter()

# Where the layer is mounted in the execution environment.
LAYER_ROOT = PurePosixPath("/opt")

# The PATH Lambda gives a provided.* runtime: a ``#!/usr/bin/env NAME`` line
# finds NAME in one of these.
LAMBDA_PATH = ("/usr/local/bin", "/usr/bin", "/bin", "/opt/bin")

# Where a recipe's extra files may go: Lambda puts /opt/bin on PATH and
# /opt/lib on LD_LIBRARY_PATH, and looks nowhere else in /opt for them.
FILE_FOLDERS = ("bin", "lib")

# Modes the layer's files get: readable by all (Lambda runs the bootstrap as an
# unprivileged user), executable where the source was, or where it sits in bin/.
PROGRAM_MODE = 0o755
DATA_MODE = 0o644
DIRECTORY_MODE = 0o755

# Where a recipe's ``build`` command runs inside the build image: a copy of the
# recipe's folder, so the command can read its sources by relative path.
BUILD_WORKDIR = "/build"

# Prints each path given that is an executable file; run in the OS image.
_FIND_EXECUTABLES = (
    'for p in "$@"; do if [ -f "$p" ] && [ -x "$p" ]; then echo "$p"; fi; done'
)


@dataclass(frozen=True)
class BootstrapCheck:
    """What looking at a bootstrap file found, before asking the OS image.

    ``os_paths`` lists what must exist in the runtime's OS image: each entry
    is a group of alternatives (``env python3`` may find python3 in any folder
    of ``PATH``), at least one of which must be an executable file there.
    """

    kind: str  # "script", "elf" or "unknown"
    findings: list[str] = field(default_factory=list)
    os_paths: list[tuple[str, ...]] = field(default_factory=list)


def assemble(
    recipe: Recipe,
    target: Target,
    tree: Path,
    *,
    engine: Engine,
    image: str,
    reporter: Reporter,
    runtime_image: str | None = None,
) -> None:
    """Fill ``tree`` with the runtime layer of ``recipe`` for ``target``.

    ``image`` is the build image a ``build`` command runs in; ``runtime_image``
    the image whose OS must hold a script's interpreter (the build image's OS
    when not given). Raises ``BuildError`` when the build command fails, and
    ``AuditError`` when Lambda could not start the bootstrap or the layer
    audit (modes, layout, machine and glibc of every ELF file) fails.
    """
    options = runtime_options(recipe)
    destinations = _checked_destinations(recipe, options)
    tree.mkdir(parents=True, exist_ok=True)

    if options.build is not None:
        reporter.step(f"{recipe.name}: building the bootstrap in {image}")
        with tempfile.TemporaryDirectory(prefix="layerbuild-runtime-") as scratch:
            built = _build_bootstrap(
                recipe,
                options.build,
                target,
                Path(scratch),
                engine=engine,
                image=image,
                reporter=reporter,
            )
            _place(built, tree / BOOTSTRAP)
    else:
        assert options.bootstrap is not None  # the recipe loader requires one
        _place(recipe.directory / options.bootstrap, tree / BOOTSTRAP)

    for destination, source in destinations.items():
        _place(
            recipe.directory / source,
            tree / destination,
            program=destination.parts[0] == "bin",
        )
    for folder in (tree, *(p for p in tree.rglob("*") if p.is_dir())):
        folder.chmod(DIRECTORY_MODE)  # traversable by Lambda's unprivileged user
    reporter.detail(f"{recipe.name}: layer tree assembled in {tree}")

    findings = check_bootstrap_in_image(
        tree, target, engine=engine, image=runtime_image or image
    )
    hints = [_hint(recipe, options)] if findings else []
    try:
        report = audit_tree(
            tree, [target], size_budget=recipe.build.size_budget, kind="runtime"
        )
    except AuditError as error:
        # The bootstrap's own check already spoke for that file, more precisely.
        others = [line for line in error.findings if not _about_bootstrap(line)]
        findings += others
        if others and error.hint:
            hints.append(error.hint)
    else:
        reporter.detail(f"{recipe.name}: {report.summary()}")
    if findings:
        raise AuditError(findings, hint=" ".join(hints))
    reporter.step(f"{recipe.name}: bootstrap and audit passed for {target.slug}")


def runtime_options(recipe: Recipe) -> RuntimeOptions:
    """The recipe's ``[runtime]`` table; a ``RecipeError`` for other kinds."""
    if recipe.kind != "runtime" or recipe.runtime is None:
        msg = f"{recipe.path}: field 'kind': {recipe.kind!r} is not a runtime layer"
        raise RecipeError(msg, hint='custom-runtime recipes say kind = "runtime"')
    return recipe.runtime


def check_bootstrap(tree: Path, target: Target) -> BootstrapCheck:
    """Check the tree's bootstrap from its bytes alone: no container needed.

    Findings name the problem the way Lambda would meet it; what only the OS
    image can answer (does ``/bin/bash`` exist there?) is left in ``os_paths``.
    """
    path = tree / BOOTSTRAP
    if not path.is_file():
        what = "a folder" if path.is_dir() else "missing"
        return BootstrapCheck(
            "unknown",
            [f"bootstrap: {what} at the layer root; Lambda starts /opt/bootstrap"],
        )

    findings = []
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o111 != 0o111:
        findings.append(
            f"bootstrap: not executable (mode {mode:04o}); Lambda runs it as a "
            "program, as an unprivileged user, so it needs mode 0755"
        )
    with path.open("rb") as stream:
        head = stream.read(256)

    if head.startswith(b"#!"):
        findings_, os_paths = _check_shebang(tree, head)
        return BootstrapCheck("script", findings + findings_, os_paths)
    if is_elf(path):
        findings_, os_paths = _check_elf(path, target)
        return BootstrapCheck("elf", findings + findings_, os_paths)
    findings.append(
        "bootstrap: neither a script starting with '#!' nor an ELF executable; "
        "Lambda cannot start it (exec format error)"
    )
    return BootstrapCheck("unknown", findings)


def check_bootstrap_in_image(
    tree: Path, target: Target, *, engine: Engine, image: str
) -> list[str]:
    """Every finding of ``check_bootstrap``, plus what the OS image lacks."""
    check = check_bootstrap(tree, target)
    findings = list(check.findings)
    if check.os_paths:
        missing = missing_in_image(
            check.os_paths,
            engine=engine,
            image=image,
            platform=check_platform(target.arch),
        )
        for alternatives in missing:
            findings.append(
                f"bootstrap: needs {_alternatives_text(alternatives)}, which the "
                f"{target.runtime.name} OS image ({image}) does not have"
            )
    return findings


def missing_in_image(
    wanted: Sequence[tuple[str, ...]],
    *,
    engine: Engine,
    image: str,
    platform: str | None,
) -> list[tuple[str, ...]]:
    """The groups of ``wanted`` of which no path is an executable file in ``image``."""
    paths = sorted({path for alternatives in wanted for path in alternatives})
    spec = BoxSpec(image=image, network="none", platform=platform, purpose="check")
    with engine.box(spec) as box:
        found = box.exec(
            ["/bin/sh", "-c", _FIND_EXECUTABLES, "sh", *paths], _QUIET, echo=False
        )
    if not found.ok:
        msg = (
            f"cannot look for {', '.join(paths)} in {image}: /bin/sh exited with "
            f"{found.exit_code}: {found.tail_text()}"
        )
        raise BuildError(msg, hint=f"check that {image} is a Linux image with /bin/sh")
    present = set(found.output.splitlines())
    return [group for group in wanted if not present.intersection(group)]


def _build_bootstrap(
    recipe: Recipe,
    command: str,
    target: Target,
    scratch: Path,
    *,
    engine: Engine,
    image: str,
    reporter: Reporter,
) -> Path:
    """Run the recipe's ``build`` command in the build image; the bootstrap it wrote."""
    workdir = scratch / "src"
    shutil.copytree(
        recipe.directory, workdir, ignore=shutil.ignore_patterns(".*", "__pycache__")
    )
    # A bootstrap already beside the recipe must not pass for the build's output.
    (workdir / BOOTSTRAP).unlink(missing_ok=True)

    spec = BoxSpec(
        image=image,
        mounts=(Mount(workdir, BUILD_WORKDIR, read_only=False),),
        # Built as the invoking user, so every file it writes can be removed.
        user=f"{os.getuid()}:{os.getgid()}",
        platform=check_platform(target.arch),
        purpose="runtime-build",
    )
    with engine.box(spec) as box:
        finished = box.exec(
            ["/bin/sh", "-c", command],
            reporter,
            env={"HOME": "/tmp", "LAYERBUILD_TARGET": target.slug},
            workdir=BUILD_WORKDIR,
        )
    if not finished.ok:
        msg = (
            f"{recipe.path}: runtime.build {command!r} exited with "
            f"{finished.exit_code} in {image}:\n{finished.tail_text()}"
        )
        raise BuildError(msg, hint="run the command in the build image to debug it")
    built = workdir / BOOTSTRAP
    if not built.is_file():
        msg = (
            f"{recipe.path}: runtime.build {command!r} finished but wrote no "
            f"./{BOOTSTRAP} in {image}"
        )
        raise BuildError(msg, hint="the command runs in a copy of the recipe's folder")
    return built


def _check_shebang(tree: Path, head: bytes) -> tuple[list[str], list[tuple[str, ...]]]:
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    words = line.split()
    if not words:
        return ["bootstrap: its '#!' line names no interpreter"], []
    interpreter = words[0]
    if not interpreter.startswith("/"):
        msg = f"bootstrap: its '#!' interpreter {interpreter!r} is not an absolute path"
        return [msg], []

    wanted: list[tuple[str, ...]] = [(interpreter,)]
    if PurePosixPath(interpreter).name == "env":
        program = next((w for w in words[1:] if not w.startswith("-")), None)
        if program is None:
            return ["bootstrap: its '#!/usr/bin/env' line names no program"], []
        if "/" in program:
            wanted.append((program,))
        else:
            wanted.append(tuple(f"{folder}/{program}" for folder in LAMBDA_PATH))

    findings: list[str] = []
    os_paths: list[tuple[str, ...]] = []
    for alternatives in wanted:
        in_layer = [a for a in alternatives if _under_layer(a)]
        if any(_executable(tree, a) for a in in_layer):
            continue
        in_os = tuple(a for a in alternatives if not _under_layer(a))
        if in_os:
            os_paths.append(in_os)
        else:
            findings.append(
                f"bootstrap: its interpreter {_alternatives_text(alternatives)} "
                "is not an executable file in the layer"
            )
    return findings, os_paths


def _check_elf(path: Path, target: Target) -> tuple[list[str], list[tuple[str, ...]]]:
    try:
        info = read_elf(path)
    except ValueError as error:
        return [f"bootstrap: {error}"], []

    findings = []
    if info.machine != target.arch.elf_machine:
        built_for = next(
            (
                a.machine
                for a in ARCHITECTURES.values()
                if a.elf_machine == info.machine
            ),
            info.machine,
        )
        findings.append(
            f"bootstrap: compiled for {built_for} ({info.machine}), but the target "
            f"{target.slug} runs {target.arch.machine}"
        )
    if info.glibc is not None and info.glibc > target.runtime.glibc:
        findings.append(
            f"bootstrap: needs glibc {version_text(info.glibc)}, newer than the "
            f"{glibc_text(target.runtime.glibc)} of {target.runtime.name}"
        )

    interpreter = _program_interpreter(path)
    os_paths: list[tuple[str, ...]] = []
    if interpreter is not None and not findings:
        if not _under_layer(interpreter):
            os_paths.append((interpreter,))
        elif not _executable(path.parent, interpreter):
            findings.append(
                f"bootstrap: its program interpreter {interpreter} is not in the layer"
            )
    return findings, os_paths


def _program_interpreter(path: Path) -> str | None:
    """The dynamic loader an ELF executable names (PT_INTERP); None if static."""
    try:
        with path.open("rb") as stream:
            for segment in ELFFile(stream).iter_segments():
                if isinstance(segment, InterpSegment):
                    return str(segment.get_interp_name())
    except (ELFError, ValueError, OSError):
        return None
    return None


def _under_layer(path: str) -> bool:
    return PurePosixPath(path).is_relative_to(LAYER_ROOT)


def _executable(tree: Path, absolute: str) -> bool:
    """Whether ``/opt/...`` names an executable file in the layer tree."""
    inside = tree / PurePosixPath(absolute).relative_to(LAYER_ROOT)
    return inside.is_file() and os.access(inside, os.X_OK)


def _alternatives_text(alternatives: Sequence[str]) -> str:
    if len(alternatives) == 1:
        return alternatives[0]
    return " or ".join(alternatives)


def _checked_destinations(
    recipe: Recipe, options: RuntimeOptions
) -> dict[PurePosixPath, str]:
    """The ``files`` table with each layer path checked to stay inside the layer."""
    checked = {}
    for destination, source in options.files.items():
        relative = PurePosixPath(destination)
        if (
            relative.is_absolute()
            or len(relative.parts) < 2
            or relative.parts[0] not in FILE_FOLDERS
            or ".." in relative.parts
        ):
            msg = (
                f"{recipe.path}: field 'runtime.files': {destination!r} is not "
                "valid; expected a path in the layer's bin/ or lib/ folder, such "
                "as 'bin/tool' or 'lib/libx.so'"
            )
            raise RecipeError(msg)
        checked[relative] = source
    return checked


def _place(source: Path, destination: Path, *, program: bool = False) -> None:
    """Copy a file or folder into the tree with modes Lambda can use.

    Everything becomes readable by all; a file is executable by all when its
    source had an execute bit or it goes to ``bin/``. A source without one
    keeps mode 0644, so a bootstrap missing its execute bit is caught by the
    check rather than hidden.
    """
    if source.is_dir():
        for inner in sorted(source.rglob("*")):
            if inner.is_file():
                _place(inner, destination / inner.relative_to(source), program=program)
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    executable = program or bool(stat.S_IMODE(source.stat().st_mode) & 0o111)
    destination.chmod(PROGRAM_MODE if executable else DATA_MODE)


def _about_bootstrap(finding: str) -> bool:
    """Whether an audit finding is about the bootstrap file (it names it first)."""
    return finding == BOOTSTRAP or finding.startswith(
        (f"{BOOTSTRAP}:", f"{BOOTSTRAP} ")
    )


def _hint(recipe: Recipe, options: RuntimeOptions) -> str:
    if options.bootstrap is not None:
        source = recipe.directory / options.bootstrap
        return f"fix {source} (for a script: a '#!' line and chmod 755)"
    return f"check the output of runtime.build in {recipe.path} (run with -v)"
