"""The smoke test: import a layer's modules in the runtime image, as Lambda would.

The layer is mounted read-only at ``/opt`` in a container of the runtime image,
with the network off and the environment Lambda sets: ``/opt/bin`` last on
``PATH``, ``/opt/lib`` last on ``LD_LIBRARY_PATH``, and the layer's
``python/lib/pythonX.Y/site-packages`` and ``python`` ahead of the runtime's own
packages. Nothing of the host's environment goes in. Every top-level module the
layer's distributions install is imported, then the recipe's ``build.test``
snippet runs. The first failure becomes a ``SmokeTestError`` (exit status 3)
naming the module and carrying its error.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from packaging.utils import canonicalize_name

from layerbuild.containers import BoxSpec, Engine, Mount, check_platform
from layerbuild.errors import SmokeTestError, UsageError
from layerbuild.recipe import Recipe
from layerbuild.report import Reporter
from layerbuild.targets import Target

# The search paths Lambda's Python runtimes set, in Lambda's order.
LAMBDA_PATH = "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin"
LAMBDA_LIBRARY_PATH = (
    "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:"
    "/var/task/lib:/opt/lib"
)
LAYER_MOUNT = "/opt"
RESULT_MARKER = "LAYERBUILD-SMOKE "

# Runs inside the runtime image with the target interpreter: imports each module,
# then runs the test snippet, and prints one JSON line with what happened.
SMOKE_SCRIPT = """\
import importlib, json, sys, traceback

def failure(error):
    text = traceback.format_exception_only(type(error), error)
    return {"ok": False, "error": "".join(text).strip(),
            "traceback": traceback.format_exc()}

modules, snippet = json.loads(sys.argv[1]), sys.argv[2]
results = []
for name in modules:
    try:
        module = importlib.import_module(name)
    except BaseException as error:
        results.append({"module": name, **failure(error)})
        continue
    where = getattr(module, "__file__", None) or ""
    results.append({"module": name, "ok": True, "file": where})
test = None
if snippet and all(r["ok"] for r in results):
    try:
        code = compile(snippet, "build.test", "exec")
        exec(code, {"__name__": "__layerbuild_test__"})
        test = {"ok": True}
    except BaseException as error:
        test = failure(error)
print("LAYERBUILD-SMOKE " + json.dumps({"imports": results, "test": test}))
"""


@dataclass(frozen=True)
class SmokeResult:
    """A smoke test that passed."""

    image: str
    modules: tuple[str, ...]  # imported, in order
    outside_layer: tuple[str, ...]  # imported, but from the runtime, not /opt
    test_ran: bool
    seconds: float
    notes: list[str] = field(default_factory=list)


def default_runtime_image(target: Target) -> str:
    """The public Lambda base image of ``target``."""
    runtime = target.runtime
    if runtime.python is None:
        family = runtime.name.replace(".", ":", 1)  # provided.al2023 -> provided:al2023
        return f"public.ecr.aws/lambda/{family}-{target.arch.name}"
    return f"public.ecr.aws/lambda/python:{runtime.python_version}-{target.arch.name}"


def run_smoke_test(
    layer: Path,
    recipe: Recipe | None,
    target: Target,
    packages: Mapping[str, str],
    *,
    image: str | None,
    engine: Engine | None,
    reporter: Reporter,
    with_layer_libraries: bool = True,
    user: tuple[int, int] | None = None,
) -> SmokeResult:
    """Import the layer's modules in the runtime image; SmokeTestError if one fails.

    ``layer`` is a zip or an unpacked layer tree. ``packages`` (name -> version)
    narrows the imports to those distributions; empty means every distribution
    in the layer. ``with_layer_libraries=False`` leaves ``/opt/lib`` off the
    library path, to show which imports depend on the layer's own libraries.
    """
    if target.runtime.python is None:
        msg = f"the smoke test imports Python modules; {target.runtime.name} has none"
        raise UsageError(msg)
    image = image or default_runtime_image(target)
    own_engine = engine is None
    engine = engine or Engine.connect()
    try:
        return _smoke(
            layer, recipe, target, packages, image, engine, reporter,
            with_layer_libraries, user,
        )  # fmt: skip
    finally:
        if own_engine:
            engine.close()


def _smoke(
    layer: Path,
    recipe: Recipe | None,
    target: Target,
    packages: Mapping[str, str],
    image: str,
    engine: Engine,
    reporter: Reporter,
    with_layer_libraries: bool,
    user: tuple[int, int] | None,
) -> SmokeResult:
    platform = check_platform(target.arch)
    engine.ensure_image(image, reporter, platform)
    started = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="layerbuild-smoke-") as scratch:
        tree = layer
        if layer.is_file():
            tree = Path(scratch, "opt")
            unpack_layer(layer, tree)
        elif not layer.is_dir():
            msg = f"{layer}: no such layer zip or folder"
            raise UsageError(msg)
        modules = layer_modules(tree, packages)
        layouts = sorted(
            str(path.relative_to(tree))
            for path in tree.glob("python/lib/python*/site-packages")
        )
        snippet = (recipe.build.test if recipe else None) or ""
        reporter.step(
            f"smoke test in {image}: importing {len(modules)} module(s)"
            + (" and running build.test" if snippet else "")
        )
        result = _run(
            engine,
            image,
            platform,
            tree,
            target,
            modules,
            snippet,
            reporter,
            with_layer_libraries,
            user,
        )

    failures = [entry for entry in result["imports"] if not entry["ok"]]
    for entry in failures:
        for line in entry["traceback"].splitlines():
            reporter.output(line)
    if failures:
        first = failures[0]
        also = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        msg = (
            f"smoke test: import {first['module']} failed in {image} "
            f"({target.runtime.name}){also}: {_one_line(first['error'])}"
        )
        raise SmokeTestError(msg, hint=_hint(layouts, target, first["error"]))
    test = result["test"]
    if test is not None and not test["ok"]:
        for line in test["traceback"].splitlines():
            reporter.output(line)
        where = f"{recipe.path}: " if recipe else ""
        msg = f"{where}build.test failed in {image}: {_one_line(test['error'])}"
        raise SmokeTestError(msg, hint="run with -v to see the traceback")

    imported = tuple(entry["module"] for entry in result["imports"])
    outside = tuple(
        entry["module"]
        for entry in result["imports"]
        if entry["file"] and not entry["file"].startswith(f"{LAYER_MOUNT}/")
    )
    for name in outside:
        reporter.warn(f"{name} was imported from the runtime image, not from the layer")
    return SmokeResult(
        image=image,
        modules=imported,
        outside_layer=outside,
        test_ran=test is not None,
        seconds=time.monotonic() - started,
    )


def _run(
    engine: Engine,
    image: str,
    platform: str | None,
    tree: Path,
    target: Target,
    modules: list[str],
    snippet: str,
    reporter: Reporter,
    with_layer_libraries: bool,
    user: tuple[int, int] | None,
) -> dict:
    version = target.runtime.python_version
    library_path = LAMBDA_LIBRARY_PATH
    if not with_layer_libraries:
        library_path = library_path.removesuffix(":/opt/lib")
    env = {
        "PATH": LAMBDA_PATH,
        "LD_LIBRARY_PATH": library_path,
        "PYTHONPATH": f"/opt/python/lib/python{version}/site-packages:/opt/python",
        # /opt is read-only on Lambda: nothing may be written next to the modules.
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
    }
    uid, gid = user or (os.getuid(), os.getgid())
    spec = BoxSpec(
        image=image,
        mounts=(Mount(tree.resolve(), LAYER_MOUNT),),
        env=env,
        user=f"{uid}:{gid}",
        network="none",
        platform=platform,
        purpose="smoke",
    )
    interpreter = f"python{version}"
    with engine.box(spec) as box:
        done = box.exec(
            [interpreter, "-c", SMOKE_SCRIPT, json.dumps(modules), snippet],
            reporter,
            echo=False,
        )
    if done.exit_code in (126, 127) and RESULT_MARKER not in done.output:
        msg = f"image {image} has no {interpreter} for {target.runtime.name}"
        raise UsageError(msg, hint="pass --image with the runtime image of that Python")
    for line in reversed(done.output.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    msg = f"smoke test: {interpreter} in {image} stopped early:\n{done.tail_text()}"
    raise SmokeTestError(msg, hint="run with -v to see its output")


def _one_line(error: str) -> str:
    return " ".join(error.split())


def _hint(layouts: list[str], target: Target, error: str) -> str:
    if layouts and target.runtime.site_packages not in layouts:
        return (
            f"the layer holds {', '.join(layouts)}, not "
            f"{target.runtime.site_packages}: build it for {target.runtime.name}"
        )
    if "cannot open shared object file" in error:
        return (
            "a shared library is missing: add the OS package to build.system-packages "
            "so lib/ carries it"
        )
    return "run with -v to see the traceback"


def layer_modules(tree: Path, packages: Mapping[str, str]) -> list[str]:
    """The top-level modules the layer's distributions install, sorted.

    Read from each ``*.dist-info``: ``top_level.txt`` when present, else the
    files listed in ``RECORD``. ``packages`` narrows the distributions.
    """
    wanted = {canonicalize_name(name) for name in packages}
    folders = [*tree.glob("python/lib/python*/site-packages"), tree / "python"]
    modules: set[str] = set()
    for folder in folders:
        for info in folder.glob("*.dist-info"):
            name = canonicalize_name(
                info.name.removesuffix(".dist-info").rsplit("-", 1)[0]
            )
            if wanted and name not in wanted:
                continue
            modules.update(_dist_modules(info))
    return sorted(modules)


def _dist_modules(info: Path) -> set[str]:
    top_level = info / "top_level.txt"
    if top_level.is_file():
        names = top_level.read_text(encoding="utf-8").split()
        return {name for name in names if name.isidentifier()}
    modules = set()
    record = info / "RECORD"
    if not record.is_file():
        return modules
    for line in record.read_text(encoding="utf-8").splitlines():
        path = PurePosixPath(line.split(",", 1)[0])
        if not path.parts or path.parts[0] in ("..", "__pycache__"):
            continue
        head = path.parts[0]
        if head.endswith((".dist-info", ".data")) or head == "bin":
            continue
        if len(path.parts) > 1:
            candidate = head
        elif head.endswith(".py"):
            candidate = head.removesuffix(".py")
        elif head.endswith(".so"):
            candidate = head.split(".", 1)[0]
        else:
            continue
        if candidate.isidentifier():
            modules.add(candidate)
    return modules


def unpack_layer(archive: Path, destination: Path) -> None:
    """Unpack a layer zip with its files' modes, refusing paths that leave it."""
    destination.mkdir(parents=True)
    root = destination.resolve()
    with zipfile.ZipFile(archive) as layer_zip:
        for member in layer_zip.infolist():
            target = (destination / member.filename).resolve()
            if not target.is_relative_to(root):
                msg = f"{archive}: member {member.filename!r} points outside the layer"
                raise UsageError(msg)
            mode = member.external_attr >> 16
            if stat.S_ISLNK(mode):
                target.parent.mkdir(parents=True, exist_ok=True)
                link = layer_zip.read(member).decode()
                target.symlink_to(link)
                continue
            layer_zip.extract(member, destination)
            if mode and not member.is_dir():
                os.chmod(target, stat.S_IMODE(mode))
