"""The Docker-free builder: glibc-aware cross-platform wheel selection with uv.

uv resolves and installs for a foreign target (``--python-platform``,
``--python-version``) about ten times faster than pip, so a layer for arm64
Python 3.12 builds on an x86_64 laptop running Python 3.11. Only wheels the
target can load are taken. A package with no such wheel is built from its
source distribution only when that is pure Python; one with C (or Cython, Rust,
Fortran) sources is refused, since a host compiler would produce code for the
host, not for Lambda: the container builder compiles it in the right image.
"""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import Version

from layerbuild.builders import InstallResult
from layerbuild.distcheck import check_distribution
from layerbuild.errors import (
    BuildError,
    HashMismatchError,
    LockError,
    NeedsCompilerError,
)
from layerbuild.files import sha256_file, write_atomically
from layerbuild.index import DistFile, PackageIndex, open_url, redact_url
from layerbuild.lock import (
    OLDER_RELEASE_MARK,
    SOURCE_ONLY_MARK,
    Lock,
    LockedPackage,
    compile_command,
    parse_lock,
    read_lock,
)
from layerbuild.recipe import Recipe
from layerbuild.report import Reporter
from layerbuild.runner import Runner
from layerbuild.targets import Target, glibc_text

# Source files that mean a distribution compiles code when it is built.
COMPILED_SOURCE_SUFFIXES = (
    ".c", ".cc", ".cpp", ".cxx", ".h", ".hpp", ".pyx", ".pxd", ".f", ".f90", ".rs",
    ".go",
)  # fmt: skip
COMPILED_SOURCE_FILES = ("Cargo.toml", "CMakeLists.txt", "meson.build")

# A resolution that adds packages the first pass did not see is repeated; real
# dependency trees settle in one or two rounds.
MAX_RESOLUTION_ROUNDS = 4

# Wheels are fetched side by side before installing, so each can be checked.
DOWNLOAD_JOBS = 8
DOWNLOAD_TIMEOUT_SECONDS = 60


def uv_executable() -> str:
    """The uv binary that ships inside the ``uv`` wheel layerbuild depends on."""
    from uv import find_uv_bin  # imported late: only builds need it

    return find_uv_bin()


@dataclass
class LocalBuilder:
    """Locks and installs with uv, for any target, on the host."""

    runner: Runner
    reporter: Reporter
    index: PackageIndex
    cache_dir: Path
    uv: str = field(default_factory=uv_executable)
    name: str = "local"

    # Locking.

    def lock(self, recipe: Recipe, target: Target, lock_path: Path) -> list[str]:
        requirements = recipe.requirement_lines()
        with tempfile.TemporaryDirectory(prefix="layerbuild-lock-") as workdir:
            folder = Path(workdir)
            (folder / "requirements.in").write_text("\n".join(requirements) + "\n")
            header_command = compile_command(recipe, target)
            specifiers = _direct_specifiers(requirements)
            newest = self._pins(
                self._compile(folder, target, None, header_command, hashes=False)
            )

            binary: set[str] = set()
            source_only: set[str] = set()
            pins = newest
            for _ in range(MAX_RESOLUTION_ROUNDS):
                unseen = set(pins) - binary - source_only
                if not unseen:
                    break
                self.index.prefetch(unseen)
                for name in unseen:
                    if self._has_wheel(name, target, specifiers.get(name)):
                        binary.add(name)
                    else:
                        source_only.add(name)
                text = self._compile(
                    folder, target, binary, header_command, hashes=True
                )
                pins = self._pins(text)

        notices = self._passed_over(newest, pins, target)
        header = "".join(f"{OLDER_RELEASE_MARK} {notice}\n" for notice in notices)
        if source_only & set(pins):
            names = " ".join(sorted(source_only & set(pins)))
            header += f"{SOURCE_ONLY_MARK} {names}\n"
        parse_lock(lock_path, header + text)  # refuse to write what we cannot read
        write_atomically(lock_path, header + text)
        return notices

    def _compile(
        self,
        folder: Path,
        target: Target,
        binary: set[str] | None,
        header_command: str,
        *,
        hashes: bool,
    ) -> str:
        """Run ``uv pip compile`` in ``folder`` and return the lock it wrote."""
        output = folder / "requirements.txt"
        output.unlink(missing_ok=True)
        argv = [
            self.uv, "pip", "compile", "requirements.in", "--quiet", "--no-config",
            "--output-file", output.name,
            "--python-platform", target.uv_platform,
            "--python-version", target.runtime.python_version,
            "--custom-compile-command", header_command,
        ]  # fmt: skip
        if hashes:
            argv.append("--generate-hashes")
        for name in sorted(binary or ()):
            argv += ["--only-binary", name]
        argv += ["--index-url", self.index.url]
        completed = self.runner(argv, cwd=folder, env=self._uv_env())
        if completed.returncode != 0:
            msg = f"resolving for {target.slug} failed: {_last_lines(completed.output)}"
            raise LockError(msg, hint="check the requirements and the index")
        return output.read_text(encoding="utf-8")

    @staticmethod
    def _pins(text: str) -> dict[str, Version]:
        pins = {}
        for line in text.splitlines():
            if "==" in line and not line.lstrip().startswith("#"):
                name, _, rest = line.partition("==")
                version = rest.split()[0].rstrip("\\").strip()
                pins[canonicalize_name(name.split("[")[0].strip())] = Version(version)
        return pins

    def _has_wheel(
        self, name: str, target: Target, specifier: SpecifierSet | None
    ) -> bool:
        """Whether any release the recipe allows has a wheel the target loads."""
        tags = target.resolver_tags
        return any(
            f.wheel_tags & tags
            for f in self.index.files(name)
            if specifier is None or specifier.contains(f.version, prereleases=True)
        )

    def _passed_over(
        self, newest: dict[str, Version], chosen: dict[str, Version], target: Target
    ) -> list[str]:
        notices = []
        for name, version in sorted(chosen.items()):
            latest = newest.get(name)
            if latest is None or version >= latest:
                continue
            reason = self._why_not(name, latest, target)
            notices.append(
                f"{name}: took {version}, not {latest}, for {target.slug}: {reason}"
            )
        return notices

    def _why_not(self, name: str, version: Version, target: Target) -> str:
        files = [f for f in self.index.files(name) if f.version == version]
        runtime = target.runtime
        ours = [f for f in files if _fits_except_glibc(f, target)]
        if not ours:
            return f"{version} has no wheel for {runtime.name} on {target.arch.name}"
        needed = min(g for f in ours if (g := f.min_glibc()) is not None)
        if needed > runtime.glibc:
            return (
                f"its wheels need glibc {glibc_text(needed)}; {runtime.name} "
                f"({runtime.os_family}) has {glibc_text(runtime.glibc)}"
            )
        return (
            f"its wheels are tagged manylinux_{needed[0]}_{needed[1]}, which uv "
            f"cannot select for glibc {glibc_text(runtime.glibc)} (it targets "
            f"{target.uv_platform})"
        )

    def _uv_env(self) -> dict[str, str]:
        # uv would otherwise try to download a CPython of the target's version
        # to build source distributions with, and wait out DNS failures on
        # offline or proxied machines. The host interpreter builds them; what it
        # may build is only pure Python (see _refuse_compiled_source).
        return {
            "UV_CACHE_DIR": str(self.cache_dir / "uv"),
            "UV_NO_PROGRESS": "1",
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_PYTHON": sys.executable,
        }

    # Installing.

    def install(
        self, recipe: Recipe, target: Target, lock_path: Path, tree: Path
    ) -> InstallResult:
        if recipe.kind == "runtime":
            msg = (
                f"{recipe.path}: a custom-runtime layer is assembled and checked in "
                "the provided.* image, which needs Docker"
            )
            raise BuildError(msg, hint="use --builder docker, or start a Docker engine")
        lock = read_lock(lock_path)
        for name in lock.source_only:
            self._refuse_compiled_source(lock, name, target)
        # uv would drop entries that climb out of the tree and flatten links
        # and devices without a word; every file is fetched (or found in the
        # cache), hash-checked and inspected first, then uv installs only those.
        binary = [p for p in lock.packages if p.name not in lock.source_only]
        missing = [p for p in binary if self._cached_wheel(p, target) is None]
        self.index.prefetch(p.name for p in missing)
        with ThreadPoolExecutor(max_workers=DOWNLOAD_JOBS) as pool:
            list(pool.map(lambda p: self._checked_wheel(p, target), missing))

        site_packages = tree / target.runtime.site_packages
        site_packages.mkdir(parents=True, exist_ok=True)
        argv = [
            self.uv, "pip", "install", "--quiet", "--no-config",
            "--target", str(site_packages),
            "--python-platform", target.uv_platform,
            "--python-version", target.runtime.python_version,
            "--require-hashes", "--no-deps",
            "--find-links", str(self._folder("wheels")),
            "--find-links", str(self._folder("sdists")),
            "-r", str(lock_path),
        ]  # fmt: skip
        # Every file uv installs is already here, checked. The index is only
        # needed for the build tools of source-only packages; otherwise asking
        # it about every package costs uv a round trip each.
        if lock.source_only:
            argv += ["--index-url", self.index.url]
        else:
            argv.append("--no-index")
        for package in lock.packages:
            if package.name not in lock.source_only:
                argv += ["--only-binary", package.name]
        completed = self.runner(argv, env=self._uv_env())
        if completed.returncode != 0:
            raise _install_error(completed.output, lock_path)

        # Console scripts carry the host interpreter's path in their shebang;
        # they cannot run on Lambda, so they are not part of the layer. Nor is
        # the lock file uv leaves in a --target folder.
        shutil.rmtree(site_packages / "bin", ignore_errors=True)
        (site_packages / ".lock").unlink(missing_ok=True)
        _drop_uv_cache_records(site_packages)
        return InstallResult(lock.versions(), notices=list(lock.older_releases))

    def check(
        self, tree: Path, recipe: Recipe, target: Target, packages: dict[str, str]
    ) -> None:
        """Nothing to run: without Docker there is no runtime image to import in."""

    def _folder(self, name: str) -> Path:
        folder = self.cache_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _cached_wheel(self, package: LockedPackage, target: Target) -> Path | None:
        """A wheel for ``package`` already fetched and inspected, if any.

        The cache holds only files that passed inspection, and each is hashed
        again here, so a warm build needs no network at all.
        """
        for path in self._folder("wheels").glob("*.whl"):
            try:
                name, version, _, tags = parse_wheel_filename(path.name)
            except InvalidWheelFilename:
                continue
            if (
                name == package.name
                and str(version) == package.version
                and tags & target.resolver_tags
                and sha256_file(path) in package.hashes
            ):
                return path
        return None

    def _checked_wheel(self, package: LockedPackage, target: Target) -> Path:
        """The wheel uv will install for ``package``: fetched, hashed, inspected."""
        candidates = [
            f
            for f in self.index.files(package.name)
            if f.is_wheel
            and str(f.version) == package.version
            and f.wheel_tags & target.resolver_tags
            and (f.sha256 is None or f.sha256 in package.hashes)
        ]
        if not candidates:
            msg = (
                f"{package.name}=={package.version}: the index lists no wheel for "
                f"{target.slug} with a hash the lock allows"
            )
            raise HashMismatchError(msg, hint="the index changed: re-lock")
        ranking = {tag: rank for rank, tag in enumerate(target.supported_tags)}
        best = min(
            candidates,
            key=lambda f: min(ranking.get(t, len(ranking)) for t in f.wheel_tags),
        )
        path = self._download(best, package.hashes, self._folder("wheels"))
        _check_or_remove(path)
        return path

    def _download(self, dist: DistFile, allowed: Iterable[str], folder: Path) -> Path:
        """``dist`` in ``folder``, whole and with a hash the lock allows.

        A cached copy is hashed again on every use, and a download lands under
        a temporary name first, so an interrupted fetch never leaves a file
        that a later build would take for a good one.
        """
        path = folder / dist.filename
        if path.exists() and sha256_file(path) in set(allowed):
            return path
        partial = self._folder("partial")
        handle, temporary = tempfile.mkstemp(dir=partial, suffix=".part")
        try:
            with (
                os.fdopen(handle, "wb") as stream,
                open_url(dist.url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response,
            ):
                shutil.copyfileobj(response, stream)
            digest = sha256_file(Path(temporary))
            if digest not in set(allowed):
                msg = (
                    f"{dist.filename} from {redact_url(dist.url)} has sha256 "
                    f"{digest}, which the lock does not list"
                )
                raise HashMismatchError(
                    msg, hint="the file changed on the index: re-lock"
                )
            os.replace(temporary, path)
        except OSError as error:
            where = redact_url(dist.url)
            msg = f"cannot download {dist.filename} from {where}: {error}"
            raise BuildError(msg, hint="check the network or the index URL") from None
        finally:
            Path(temporary).unlink(missing_ok=True)
        return path

    def _refuse_compiled_source(self, lock: Lock, name: str, target: Target) -> None:
        package = next(p for p in lock.packages if p.name == name)
        sdists = [
            f
            for f in self.index.files(name)
            if not f.is_wheel and str(f.version) == package.version
        ]
        if not sdists:
            msg = (
                f"{name}=={package.version} has no wheel for {target.slug} "
                "and no source distribution"
            )
            raise NeedsCompilerError(msg, hint="pin a release that has wheels")
        sdist = sdists[0]
        members = self._sdist_members(sdist, package.hashes)
        compiled = [m for m in members if _is_compiled_source(m)]
        if compiled:
            msg = (
                f"{name}=={package.version} has no wheel for {target.slug} and must "
                f"be compiled (its source holds {compiled[0]})"
            )
            raise NeedsCompilerError(
                msg, hint="build it inside the runtime's image: --builder docker"
            )

    def _sdist_members(self, sdist: DistFile, allowed: Iterable[str]) -> list[str]:
        path = self._download(sdist, allowed, self._folder("sdists"))
        _check_or_remove(path)
        if sdist.filename.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                return archive.namelist()
        with tarfile.open(path) as archive:
            return archive.getnames()


def _check_or_remove(path: Path) -> None:
    """Inspect a fetched file; one refused is removed, so nothing installs it."""
    try:
        check_distribution(path)
    except BuildError:
        path.unlink(missing_ok=True)
        raise


def _direct_specifiers(lines: Iterable[str]) -> dict[str, SpecifierSet]:
    """Version ranges the recipe sets on its direct requirements, by name."""
    specifiers: dict[str, SpecifierSet] = {}
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        specifiers[name] = specifiers.get(name, SpecifierSet()) & requirement.specifier
    return specifiers


def _fits_except_glibc(dist: DistFile, target: Target) -> bool:
    """Whether a wheel suits the target's Python and machine, whatever its glibc."""
    machine = target.arch.machine
    interpreters = {tag.interpreter for tag in target.supported_tags}
    abis = {tag.abi for tag in target.supported_tags}
    return any(
        tag.interpreter in interpreters
        and tag.abi in abis
        and tag.platform.startswith("manylinux")
        and tag.platform.endswith(machine)
        for tag in dist.wheel_tags
    )


def _is_compiled_source(member: str) -> bool:
    path = PurePosixPath(member)
    return path.suffix in COMPILED_SOURCE_SUFFIXES or path.name in COMPILED_SOURCE_FILES


def _drop_uv_cache_records(site_packages: Path) -> None:
    """Remove the ``uv_cache.json`` uv leaves in each dist-info, and its RECORD row.

    uv writes it, with the time of the install, for wheels taken from a local
    folder; left in, it would make every build's zip differ.
    """
    for marker in site_packages.glob("*.dist-info/uv_cache.json"):
        marker.unlink()
        record = marker.with_name("RECORD")
        if record.is_file():
            row = f"{marker.parent.name}/{marker.name},"
            lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
            kept = [line for line in lines if not line.startswith(row)]
            # A new file, not a rewrite: installed files may be hard links
            # into uv's cache, which must stay as it was.
            write_atomically(record, "".join(kept))


def _last_lines(output: str, count: int = 6) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "no output"


def _install_error(output: str, lock_path: Path) -> BuildError:
    if "hash" in output.lower() and "mismatch" in output.lower():
        msg = (
            f"a download does not match the hash in {lock_path}: {_last_lines(output)}"
        )
        return HashMismatchError(msg, hint="re-lock if the index changed the file")
    msg = f"installing {lock_path.name} failed: {_last_lines(output)}"
    return BuildError(msg)
