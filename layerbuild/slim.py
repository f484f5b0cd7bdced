"""Removes what a layer does not need at run time.

``slim`` takes out bytecode caches and the ``tests`` folders packages ship:
for numpy and pandas these are about 70% of the installed bytes. A recipe's
``exclude`` patterns apply whether or not ``slim`` is on.

Two rules hold whatever the patterns say. Nothing inside a ``*.dist-info`` (or
``*.egg-info``) folder is removed: it is a small share of a layer, and code
that reads package metadata at import time (``importlib.metadata``, entry
points) breaks without it. And a ``tests`` folder that any kept module imports
stays (``SlimResult.kept`` names it); test helpers that run at import time,
such as ``numpy.testing`` or ``pandas._testing``, are not named ``tests`` and
are never touched by ``slim``.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from layerbuild.errors import RecipeError

PYCACHE_RULE = "__pycache__"
PYC_RULE = "*.pyc"
TESTS_RULE = "tests"
EXCLUDE_PREFIX = "exclude:"
METADATA_SUFFIXES = (".dist-info", ".egg-info")
TESTS_FOLDER = "tests"

# Folders Python imports from in a layer: python/ for every runtime, and each
# runtime's own site-packages.
IMPORT_ROOT = re.compile(r"python(/lib/python\d+\.\d+/site-packages)?")

# A relative import, "from ..pkg import a, b" or "from . import (a, b)".
RELATIVE_IMPORT = re.compile(
    r"^\s*from\s+(\.+)([\w.]*)\s+import\s+(\([^)]*\)|[^\n#;]+)", re.MULTILINE
)


@dataclass(frozen=True)
class SlimResult:
    """What slimming removed, by rule, and what it chose to keep."""

    saved: dict[str, int]  # rule -> bytes removed, such as {"tests": 456}
    files_removed: int
    kept: tuple[str, ...] = ()  # tests folders kept because a module imports them
    unmatched: tuple[str, ...] = ()  # exclude patterns that matched nothing

    @property
    def bytes_removed(self) -> int:
        """All the bytes removed, whatever the rule."""
        return sum(self.saved.values())


def slim_tree(root: Path, *, slim: bool, exclude: Sequence[str]) -> SlimResult:
    """Remove caches, test folders (with ``slim``) and ``exclude`` matches.

    ``exclude`` holds glob patterns relative to the layer root, where ``*``
    stays within one folder and ``**`` spans any number of them; a pattern
    ending in ``/`` matches folders only. A matched folder goes with all it
    holds. Raises ``RecipeError`` for a pattern that could never match.
    """
    patterns = [(pattern, _compile(pattern)) for pattern in exclude]
    rules: dict[str, list[str]] = {}  # rule -> the paths it removes
    if slim:
        rules.update({PYCACHE_RULE: [], PYC_RULE: [], TESTS_RULE: []})
    rules.update({EXCLUDE_PREFIX + pattern: [] for pattern, _ in patterns})

    tests_folders: list[str] = []
    for relative, is_dir, prune in _walk(root):
        name = relative.rpartition("/")[2]
        if slim and is_dir and name == TESTS_FOLDER and _in_package(relative):
            # Decided once every module has been read; walked on meanwhile,
            # so that caches and exclude matches inside a kept one still go.
            tests_folders.append(relative)
            continue
        rule = _rule_for(root, relative, is_dir, slim=slim, patterns=patterns)
        if rule is not None:
            rules[rule].append(relative)
            prune()

    kept = _imported_tests(root, tests_folders)
    if slim:
        removed = [path for path in tests_folders if path not in kept]
        rules[TESTS_RULE] = removed
        inside = tuple(path + "/" for path in removed)
        for rule, paths in rules.items():
            if rule != TESTS_RULE:
                rules[rule] = [path for path in paths if not path.startswith(inside)]

    saved: dict[str, int] = {}
    files_removed = 0
    for rule, paths in rules.items():
        saved[rule] = 0
        for path in paths:
            size, count = _remove(root, path)
            saved[rule] += size
            files_removed += count

    matched = {rule for rule, paths in rules.items() if paths}
    return SlimResult(
        saved=saved,
        files_removed=files_removed,
        kept=tuple(sorted(kept)),
        unmatched=tuple(
            pattern
            for pattern, _ in patterns
            if EXCLUDE_PREFIX + pattern not in matched
        ),
    )


def _rule_for(
    root: Path,
    relative: str,
    is_dir: bool,
    *,
    slim: bool,
    patterns: list[tuple[str, re.Pattern[str]]],
) -> str | None:
    """The first rule that removes ``relative``, if any."""
    name = relative.rpartition("/")[2]
    if slim and is_dir and name == "__pycache__":
        return PYCACHE_RULE
    if slim and not is_dir and _stray_pyc(root, relative):
        return PYC_RULE
    for pattern, regex in patterns:
        if regex.fullmatch(relative) and (is_dir or not pattern.endswith("/")):
            return EXCLUDE_PREFIX + pattern
    return None


def _walk(root: Path) -> Iterator[tuple[str, bool, Callable[[], None]]]:
    """Layer-relative paths, top-down, each with a call that skips its insides.

    Metadata folders are neither yielded nor entered. Links are yielded as
    files: removing one removes the link, never what it points to.
    """
    pending = [""]
    while pending:
        folder = pending.pop()
        with os.scandir(root / folder) as scan:
            children = sorted(scan, key=lambda child: child.name, reverse=True)
        for child in children:
            relative = f"{folder}/{child.name}" if folder else child.name
            is_dir = child.is_dir(follow_symlinks=False)
            if is_dir and child.name.endswith(METADATA_SUFFIXES):
                continue
            if not is_dir:
                yield relative, False, _nothing
                continue
            # The consumer prunes before asking for the next path, so the
            # folder just pushed is still on top of the stack to take back.
            pending.append(relative)
            yield relative, True, pending.pop


def _nothing() -> None:
    pass


def _in_package(relative: str) -> bool:
    """Whether the folder ``relative`` lies inside an importable package.

    A top-level ``tests`` package that a sloppy distribution installed is
    importable as ``tests`` and left alone; so is anything outside python/.
    """
    dotted = _dotted(relative)
    return dotted is not None and "." in dotted


def _dotted(relative: str) -> str | None:
    """The module name of a layer path under an import root, if it has one."""
    parts = relative.split("/")
    for depth in range(len(parts) - 1, 0, -1):
        if IMPORT_ROOT.fullmatch("/".join(parts[:depth])):
            return ".".join(parts[depth:])
    return None


def _stray_pyc(root: Path, relative: str) -> bool:
    """A ``.pyc`` outside ``__pycache__`` that is only a cache of its ``.py``.

    Python imports a lone ``x.pyc`` when ``x.py`` is missing ("sourceless"
    distributions); such a file is the module itself and stays.
    """
    if not relative.endswith(".pyc"):
        return False
    return (root / (relative[: -len(".pyc")] + ".py")).is_file()


def _imported_tests(root: Path, tests_folders: list[str]) -> set[str]:
    """The ``tests`` folders some module outside them imports, absolutely or not.

    Reads the source of every other module of the same import root; a folder
    whose dotted name appears there (an import, or a name handed to
    ``importlib``) or that a relative import reaches is kept.
    """
    if not tests_folders:
        return set()
    names = {folder: _dotted(folder) or "" for folder in tests_folders}
    skip = tuple(folder + "/" for folder in tests_folders)
    kept: set[str] = set()

    for relative, is_dir, _ in _walk(root):
        if is_dir or not relative.endswith(".py") or relative.startswith(skip):
            continue
        if relative.endswith("/conftest.py"):
            continue  # read by pytest only, never at import time
        module = _dotted(relative[: -len(".py")])
        if module is None:
            continue
        try:
            text = (root / relative).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if TESTS_FOLDER not in text:
            continue

        imported = _relative_imports(module, text) if "from ." in text else []
        for folder, dotted in names.items():
            if folder in kept:
                continue
            absolute = dotted in text and re.search(
                rf"(?<![\w.]){re.escape(dotted)}(?!\w)", text
            )
            reached = any(
                name == dotted or name.startswith(dotted + ".") for name in imported
            )
            if absolute or reached:
                kept.add(folder)
    return kept


def _relative_imports(module: str, text: str) -> list[str]:
    """Absolute names of what the relative imports in ``text`` bring in."""
    # For pkg/__init__.py ("pkg.__init__") and pkg/mod.py ("pkg.mod") alike,
    # the package relative imports start from is "pkg".
    package = module.split(".")[:-1]

    names: list[str] = []
    for match in RELATIVE_IMPORT.finditer(text):
        dots, rest, imported = match.groups()
        levels = len(dots) - 1
        if levels > len(package):
            continue
        base = package[: len(package) - levels] if levels else package
        origin = ".".join([*base, *([rest] if rest else [])])
        names.append(origin)
        for item in imported.strip("()").split(","):
            name = item.split(" as ")[0].strip()
            if name and name != "*":
                names.append(f"{origin}.{name}")
    return names


def _remove(root: Path, relative: str) -> tuple[int, int]:
    """Remove a file, link or folder; return the bytes and files it held.

    Metadata folders inside a removed folder stay, with their parents.
    """
    path = root / relative
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        path.unlink()
        return (info.st_size if stat.S_ISREG(info.st_mode) else 0), 1

    size = 0
    count = 0
    protected = False
    with os.scandir(path) as scan:
        children = list(scan)
    for child in children:
        if child.is_dir(follow_symlinks=False) and child.name.endswith(
            METADATA_SUFFIXES
        ):
            protected = True
            continue
        child_size, child_count = _remove(root, f"{relative}/{child.name}")
        size += child_size
        count += child_count
    if not protected and not any(path.iterdir()):
        path.rmdir()
    return size, count


def _compile(pattern: str) -> re.Pattern[str]:
    """A regular expression for one exclude glob, checked first."""
    body = pattern.rstrip("/")
    parts = body.split("/")
    if not body or body.startswith("/") or ".." in parts or "\\" in body:
        msg = (
            f"field 'build.exclude': {pattern!r} is not valid; expected a glob"
            " relative to the layer root, without '..' or a leading '/'"
        )
        raise RecipeError(msg)

    out: list[str] = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]+/)*")
            continue
        out.append(_translate(part) + ("" if last else "/"))
    try:
        return re.compile("".join(out))
    except re.error as error:
        msg = (
            f"field 'build.exclude': {pattern!r} is not a valid glob ({error.msg});"
            " check its [...] ranges"
        )
        raise RecipeError(msg) from None


def _translate(part: str) -> str:
    """One path component of a glob: ``*``, ``?`` and ``[...]`` within it."""
    out: list[str] = []
    index = 0
    while index < len(part):
        char = part[index]
        close = part.find("]", index + 2) if char == "[" else -1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif close != -1:
            body = part[index + 1 : close].replace("\\", "\\\\")
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            index = close
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)
