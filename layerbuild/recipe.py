"""Layer recipes: the TOML files in ``recipes/`` that declare what a layer holds.

A recipe is checked whole when it is loaded. Every mistake becomes one
``RecipeError`` line naming the file, the field, the value and what is allowed,
so nothing downstream has to second-guess its input.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from layerbuild.errors import RecipeError
from layerbuild.limits import (
    MAX_COMPATIBLE_ARCHITECTURES,
    MAX_COMPATIBLE_RUNTIMES,
    MAX_DESCRIPTION_CHARS,
    MAX_LICENSE_CHARS,
    MAX_UNZIPPED_BYTES,
)
from layerbuild.targets import ARCHITECTURES, PYTHON_RUNTIMES, RUNTIMES, Target

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

RECIPE_SUFFIX = ".toml"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SIZE_PATTERN = re.compile(r"(\d+(?:\.\d+)?)\s*(B|kB|KB|KiB|MB|MiB|GB|GiB)?")
SIZE_UNITS = {
    None: 1,
    "B": 1,
    "kB": 1000,
    "KB": 1000,
    "KiB": 1024,
    "MB": 1000**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "GiB": 1024**3,
}
KINDS = ("python", "runtime")


@dataclass(frozen=True)
class BuildOptions:
    """The ``[build]`` table: how the layer is trimmed, bounded and checked."""

    slim: bool = False
    exclude: tuple[str, ...] = ()
    size_budget: int = MAX_UNZIPPED_BYTES
    combine_runtimes: bool = False
    system_packages: tuple[str, ...] = ()
    binaries: tuple[str, ...] = ()
    test: str | None = None

    def key_material(self) -> dict[str, Any]:
        """What of these options changes a build's output, for the content key."""
        return {
            "slim": self.slim,
            "exclude": list(self.exclude),
            "size_budget": self.size_budget,
            "combine_runtimes": self.combine_runtimes,
            "system_packages": list(self.system_packages),
            "binaries": list(self.binaries),
        }


@dataclass(frozen=True)
class RuntimeOptions:
    """The ``[runtime]`` table of a custom-runtime recipe (kind = "runtime")."""

    bootstrap: str | None = None  # a file beside the recipe, copied to /bootstrap
    build: str | None = None  # or a shell command that writes ./bootstrap
    files: dict[str, str] = field(default_factory=dict)  # layer path -> source
    event: str = "{}"  # the test event sent through the local Runtime API
    expect: str | None = None  # a substring the response must contain
    handler: str = "function.handler"  # _HANDLER during the test
    function: str | None = None  # a folder beside the recipe: /var/task in the test


@dataclass(frozen=True)
class Recipe:
    """One validated recipe."""

    path: Path
    name: str
    description: str
    license: str | None
    kind: str
    runtimes: tuple[str, ...]
    architectures: tuple[str, ...]
    requirements: tuple[str, ...]
    requirements_file: Path | None
    build: BuildOptions
    runtime: RuntimeOptions | None

    @property
    def directory(self) -> Path:
        return self.path.parent

    def targets(
        self,
        runtimes: Iterable[str] | None = None,
        architectures: Iterable[str] | None = None,
    ) -> list[Target]:
        """The recipe's targets, narrowed to the runtimes and architectures asked."""
        wanted_runtimes = [r for r in self.runtimes if not runtimes or r in runtimes]
        wanted_arches = [
            a for a in self.architectures if not architectures or a in architectures
        ]
        return [Target.of(r, a) for r in wanted_runtimes for a in wanted_arches]

    def requirement_lines(self) -> list[str]:
        """The requirements as lines for a resolver's input file."""
        if self.requirements_file is not None:
            return self.requirements_file.read_text().splitlines()
        return list(self.requirements)


class _Fields:
    """Reads one TOML table, turning every mistake into a one-line RecipeError."""

    def __init__(self, path: Path, table: dict[str, Any], prefix: str = "") -> None:
        self.path = path
        self.table = table
        self.prefix = prefix
        self.seen: set[str] = set()

    def fail(self, key: str, value: Any, allowed: str) -> RecipeError:
        return RecipeError(
            f"{self.path}: field '{self.prefix}{key}': {value!r} is not valid; "
            f"expected {allowed}"
        )

    def get(self, key: str, kind: type, allowed: str, default: Any = None) -> Any:
        self.seen.add(key)
        if key not in self.table:
            return default
        value = self.table[key]
        if kind is int and isinstance(value, bool):
            raise self.fail(key, value, allowed)
        if not isinstance(value, kind):
            raise self.fail(key, value, allowed)
        return value

    def require(self, key: str, kind: type, allowed: str) -> Any:
        if key not in self.table:
            field_name = f"{self.prefix}{key}"
            msg = f"{self.path}: field '{field_name}' is missing; expected {allowed}"
            raise RecipeError(msg)
        return self.get(key, kind, allowed)

    def strings(
        self,
        key: str,
        allowed: str,
        *,
        check: Callable[[str], bool] = lambda _: True,
        default: tuple[str, ...] = (),
    ) -> tuple[str, ...]:
        values = self.get(key, list, allowed, list(default))
        for value in values:
            if not isinstance(value, str) or not check(value):
                raise self.fail(key, value, allowed)
        if len(set(values)) != len(values):
            raise self.fail(key, values, f"{allowed}, each once")
        return tuple(values)

    def reject_unknown(self) -> None:
        unknown = sorted(set(self.table) - self.seen)
        if unknown:
            known = ", ".join(sorted(self.seen))
            msg = (
                f"{self.path}: unknown field '{self.prefix}{unknown[0]}'; "
                f"known fields: {known}"
            )
            raise RecipeError(msg)


def parse_size(text: str) -> int | None:
    """``"150MB"`` -> 150000000; ``None`` when the text is not a size."""
    match = SIZE_PATTERN.fullmatch(text.strip())
    if not match:
        return None
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2)])


def _valid_requirement(text: str) -> bool:
    try:
        Requirement(text)
    except InvalidRequirement:
        return False
    return True


def load_recipe(path: Path) -> Recipe:
    """Read and validate one recipe file."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"{path}: no such recipe file"
        raise RecipeError(
            msg, hint="run 'layerbuild list' to see the recipes"
        ) from None
    except UnicodeDecodeError as error:
        msg = f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
        raise RecipeError(msg) from None
    except tomllib.TOMLDecodeError as error:
        msg = f"{path}: not valid TOML: {error}"
        raise RecipeError(msg) from None
    except OSError as error:
        msg = f"{path}: cannot be read: {error.strerror}"
        raise RecipeError(msg) from None

    top = _Fields(path, raw)
    name = top.get("name", str, "a name of letters, digits, '-' and '_'", path.stem)
    if not NAME_PATTERN.fullmatch(name):
        raise top.fail("name", name, "1-64 letters, digits, '-' or '_'")
    description = top.get(
        "description", str, f"text of at most {MAX_DESCRIPTION_CHARS} characters", ""
    )
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise top.fail("description", description[:40] + "...", "at most 256 chars")
    license_ = top.get("license", str, f"at most {MAX_LICENSE_CHARS} characters")
    if license_ is not None and len(license_) > MAX_LICENSE_CHARS:
        raise top.fail("license", license_[:40] + "...", "at most 512 characters")
    kind = top.get("kind", str, "one of: " + ", ".join(KINDS), "python")
    if kind not in KINDS:
        raise top.fail("kind", kind, "one of: " + ", ".join(KINDS))

    runtime_names = RUNTIMES if kind == "runtime" else PYTHON_RUNTIMES
    runtimes_allowed = "a list of: " + ", ".join(runtime_names)
    if "runtimes" not in raw:
        raise RecipeError(
            f"{path}: field 'runtimes' is missing; expected {runtimes_allowed}"
        )
    runtimes = top.strings(
        "runtimes", runtimes_allowed, check=lambda r: r in runtime_names
    )
    if not runtimes or len(runtimes) > MAX_COMPATIBLE_RUNTIMES:
        raise top.fail(
            "runtimes", list(runtimes), f"1 to {MAX_COMPATIBLE_RUNTIMES} runtimes"
        )
    arches_allowed = "a list of: " + ", ".join(ARCHITECTURES)
    architectures = top.strings(
        "architectures",
        arches_allowed,
        check=lambda a: a in ARCHITECTURES,
        default=("x86_64",),
    )
    if not architectures or len(architectures) > MAX_COMPATIBLE_ARCHITECTURES:
        raise top.fail("architectures", list(architectures), arches_allowed)

    requirements = top.strings(
        "requirements",
        "a list of PEP 508 requirements such as 'requests>=2.31'",
        check=_valid_requirement,
    )
    requirements_file = _requirements_file(top, path)
    if requirements and requirements_file:
        msg = f"{path}: give either 'requirements' or 'requirements-file', not both"
        raise RecipeError(msg)
    if kind == "python" and not requirements and requirements_file is None:
        msg = (
            f"{path}: field 'requirements' is missing; expected a list of PEP 508 "
            "requirements, or 'requirements-file' naming a file beside the recipe"
        )
        raise RecipeError(msg)

    build = _build_options(path, top.get("build", dict, "a table [build]", {}))
    runtime = None
    if kind == "runtime":
        runtime = _runtime_options(
            path, top.get("runtime", dict, "a table [runtime]", {})
        )
    elif "runtime" in raw:
        raise top.fail(
            "runtime", "[runtime]", "a [runtime] table only with kind = 'runtime'"
        )
    top.reject_unknown()

    return Recipe(
        path=path,
        name=name,
        description=description,
        license=license_,
        kind=kind,
        runtimes=runtimes,
        architectures=architectures,
        requirements=requirements,
        requirements_file=requirements_file,
        build=build,
        runtime=runtime,
    )


def _requirements_file(top: _Fields, path: Path) -> Path | None:
    relative = top.get("requirements-file", str, "a file name beside the recipe")
    if relative is None:
        return None
    resolved = (path.parent / relative).resolve()
    if not resolved.is_file():
        raise top.fail(
            "requirements-file", relative, "an existing file beside the recipe"
        )
    for number, line in enumerate(resolved.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if text and not text.startswith("-") and not _valid_requirement(text):
            msg = f"{resolved}:{number}: {text!r} is not a valid PEP 508 requirement"
            raise RecipeError(msg)
    return resolved


def _build_options(path: Path, table: dict[str, Any]) -> BuildOptions:
    fields = _Fields(path, table, "build.")
    size_allowed = (
        f"a size such as '150MB' or a byte count, at most {MAX_UNZIPPED_BYTES}"
    )
    raw_budget = fields.get("size-budget", (int, str), size_allowed, MAX_UNZIPPED_BYTES)
    budget = parse_size(raw_budget) if isinstance(raw_budget, str) else raw_budget
    if (
        isinstance(raw_budget, bool)
        or budget is None
        or not 0 < budget <= MAX_UNZIPPED_BYTES
    ):
        raise fields.fail("size-budget", raw_budget, size_allowed)
    options = BuildOptions(
        slim=fields.get("slim", bool, "true or false", False),
        exclude=fields.strings("exclude", "a list of glob patterns such as '**/tests'"),
        size_budget=budget,
        combine_runtimes=fields.get("combine-runtimes", bool, "true or false", False),
        system_packages=fields.strings("system-packages", "a list of OS package names"),
        binaries=fields.strings("binaries", "a list of program names"),
        test=fields.get("test", str, "Python source run after the imports"),
    )
    fields.reject_unknown()
    return options


def _runtime_options(path: Path, table: dict[str, Any]) -> RuntimeOptions:
    fields = _Fields(path, table, "runtime.")
    bootstrap = fields.get("bootstrap", str, "a file beside the recipe")
    build = fields.get("build", str, "a shell command that writes ./bootstrap")
    if (bootstrap is None) == (build is None):
        msg = f"{path}: give exactly one of 'runtime.bootstrap' and 'runtime.build'"
        raise RecipeError(msg)
    if bootstrap is not None and not (path.parent / bootstrap).is_file():
        raise fields.fail("bootstrap", bootstrap, "an existing file beside the recipe")
    files = fields.get("files", dict, "a table of layer path = source file", {})
    for destination, source in files.items():
        if not isinstance(source, str) or not (path.parent / source).exists():
            raise fields.fail(f"files.{destination}", source, "an existing file")
    options = RuntimeOptions(
        bootstrap=bootstrap,
        build=build,
        files=dict(files),
        event=fields.get("event", str, "a JSON document", "{}"),
        expect=fields.get("expect", str, "text the response must contain"),
        handler=fields.get("handler", str, "a handler name", "function.handler"),
        function=fields.get("function", str, "a folder beside the recipe"),
    )
    if options.function is not None and not (path.parent / options.function).is_dir():
        raise fields.fail("function", options.function, "a folder beside the recipe")
    fields.reject_unknown()
    return options


def find_recipes(names: Iterable[str], recipes_dir: Path) -> list[Recipe]:
    """Resolve recipe names or paths; every recipe in ``recipes_dir`` when none."""
    names = list(names)
    if not names:
        paths = sorted(recipes_dir.glob(f"*{RECIPE_SUFFIX}"))
        if not paths:
            msg = f"{recipes_dir}: no recipes found (*{RECIPE_SUFFIX})"
            raise RecipeError(msg)
        return [load_recipe(p) for p in paths]
    recipes = []
    for name in names:
        candidate = Path(name)
        if candidate.suffix != RECIPE_SUFFIX:
            candidate = recipes_dir / f"{name}{RECIPE_SUFFIX}"
        recipes.append(load_recipe(candidate))
    return recipes
