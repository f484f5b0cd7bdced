"""Benchmark layerbuild's Docker-free build against the obvious alternatives.

For each recipe target, three ways of going from the same lock to a zip:

- pip:        ``pip install --platform ... --target`` then ``zip -qr``
- uv:         ``uv pip install --python-platform ... --target`` then ``zip -qr``
- layerbuild: ``layerbuild build --builder local``

in four situations: cold (every cache empty), warm (caches full, output
removed), one pin changed (a rebuild after re-locking one package at another
version), and no change (the same build again). The machines this runs on are
noisy, so the three are run interleaved, round after round, and figures are
reported as ratios to the baselines measured in the same run.

Run: ``make bench`` (or ``python bench/run.py --help``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from layerbuild.local import uv_executable
from layerbuild.lock import lock_path
from layerbuild.recipe import load_recipe
from layerbuild.targets import Target

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CASES = ["numpy-pandas:python3.12:x86_64", "requests:python3.12:arm64"]
TOOLS = ("pip", "uv", "layerbuild")

# A package whose pin the "one pin changed" case moves back one release.
PIN_TO_MOVE = {"numpy-pandas": "tzdata", "requests": "idna"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*", default=DEFAULT_CASES,
                        help="recipe:runtime:arch (default: %(default)s)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds")
    parser.add_argument(
        "--docker-image",
        metavar="IMAGE",
        help="also time the container build, in this build image (its Python must "
        "be the case's runtime; e.g. a stand-in or a mirrored SAM image)",
    )
    args = parser.parse_args()

    tools = (*TOOLS, "container") if args.docker_image else TOOLS
    for case in args.cases:
        recipe_name, runtime, arch = case.split(":")
        with tempfile.TemporaryDirectory(prefix="layerbuild-bench-") as scratch:
            bench_case(
                Path(scratch),
                recipe_name,
                Target.of(runtime, arch),
                args.rounds,
                tools,
                args.docker_image,
            )


def bench_case(
    scratch: Path,
    recipe_name: str,
    target: Target,
    rounds: int,
    tools: tuple[str, ...],
    docker_image: str | None,
) -> None:
    recipes = scratch / "recipes"
    shutil.copytree(REPO / "recipes", recipes)
    recipe = load_recipe(recipes / f"{recipe_name}.toml")
    lock = lock_path(recipe, target.slug)
    if not lock.exists():
        argv = [layerbuild(), "lock", recipe_name, "--runtime", target.runtime.name]
        run([*argv, "--arch", target.arch.name, "--builder", "local"], cwd=scratch)

    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for situation in ("cold", "warm", "one pin changed", "no change"):
            if situation == "one pin changed":
                move_one_pin(scratch, recipe_name, target, lock)
            for tool in tools:
                elapsed = measure(
                    tool, situation, scratch, recipe_name, target, lock, docker_image
                )
                times.setdefault((situation, tool), []).append(elapsed)
        restore_lock(scratch, lock)

    container = "container" in tools
    print(f"\n{recipe_name} for {target.slug} (median of {rounds} round(s))")
    print(f"{'situation':18} {'pip+zip':>9} {'uv+zip':>9} {'layerbuild':>11}"
          f" {'vs uv':>7} {'pip/lb':>7}"
          + (f" {'container':>10} {'ct/lb':>7}" if container else ""))  # fmt: skip
    for situation in ("cold", "warm", "one pin changed", "no change"):
        pip_s, uv_s, lb_s = (statistics.median(times[(situation, t)]) for t in TOOLS)
        row = (f"{situation:18} {pip_s:8.2f}s {uv_s:8.2f}s {lb_s:10.2f}s"
               f" {lb_s / uv_s:6.2f}x {pip_s / lb_s:6.1f}x")  # fmt: skip
        if container:
            ct_s = statistics.median(times[(situation, "container")])
            row += f" {ct_s:9.2f}s {ct_s / lb_s:6.1f}x"
        print(row)
    print("vs uv: layerbuild's time over uv+zip's (target <= 1.2 cold);"
          " pip/lb: how many times faster than pip+zip (target >= 5 cold)")  # fmt: skip
    if container:
        print("container: layerbuild build --builder docker (no smoke test);"
              " ct/lb: its time over the Docker-free build's")  # fmt: skip


def measure(
    tool: str,
    situation: str,
    scratch: Path,
    recipe: str,
    target: Target,
    lock: Path,
    docker_image: str | None = None,
) -> float:
    caches = scratch / "caches" / tool
    if situation == "cold":
        shutil.rmtree(caches, ignore_errors=True)
    caches.mkdir(parents=True, exist_ok=True)
    out = scratch / "out" / tool
    if tool not in ("layerbuild", "container") or situation != "no change":
        shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    env = clean_env(caches)
    site = out / "tree" / target.runtime.site_packages

    started = time.perf_counter()
    if tool == "pip":
        platforms = [
            arg for tag in target.manylinux_tags for arg in ("--platform", tag)
        ]
        run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
             "--only-binary=:all:", "--require-hashes", "--target", str(site),
             "--python-version", target.runtime.python_version, *platforms,
             "-r", str(lock)], env=env)  # fmt: skip
        run(["zip", "-qr", "-6", str(out / "layer.zip"), "python"], cwd=out / "tree")
    elif tool == "uv":
        run([uv_executable(), "pip", "install", "--quiet", "--no-config", "--no-deps",
             "--require-hashes", "--target", str(site),
             "--python-platform", target.uv_platform,
             "--python-version", target.runtime.python_version,
             "-r", str(lock)], env=env)  # fmt: skip
        run(["zip", "-qr", "-6", str(out / "layer.zip"), "python"], cwd=out / "tree")
    else:
        builder = "local" if tool == "layerbuild" else "docker"
        if docker_image and tool == "container":
            env["LAYERBUILD_BUILD_IMAGE"] = docker_image
        run([layerbuild(), "-q", "build", recipe, "--runtime", target.runtime.name,
             "--arch", target.arch.name, "--builder", builder, "--no-test",
             "--dist", str(out)], cwd=scratch, env=env)  # fmt: skip
    return time.perf_counter() - started


def move_one_pin(scratch: Path, recipe: str, target: Target, lock: Path) -> None:
    """Re-lock with one package held one release back (not timed)."""
    shutil.copy(lock, lock.with_suffix(".orig"))
    package = PIN_TO_MOVE[recipe]
    version = next(
        line.split("==")[1].split()[0]
        for line in lock.read_text().splitlines()
        if line.startswith(f"{package}==")
    )
    recipe_file = scratch / "recipes" / f"{recipe}.toml"
    original = recipe_file.read_text()
    recipe_file.with_suffix(".orig").write_text(original)
    constraint = f'"{package}<{version}"'
    recipe_file.write_text(
        original.replace("requirements = [", f"requirements = [{constraint}, ", 1)
    )
    run([layerbuild(), "-q", "lock", recipe, "--runtime", target.runtime.name,
         "--arch", target.arch.name, "--builder", "local"], cwd=scratch)  # fmt: skip


def restore_lock(scratch: Path, lock: Path) -> None:
    for original in (lock.with_suffix(".orig"), *scratch.glob("recipes/*.orig")):
        if original.exists():
            target = original.with_suffix(
                ".txt" if original.parent == lock.parent else ".toml"
            )
            original.replace(target)


def clean_env(caches: Path) -> dict[str, str]:
    # Each tool gets its own empty or full caches and none of the host's config.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    if "PIP_CERT" in os.environ:
        env["PIP_CERT"] = os.environ["PIP_CERT"]
    env.update(
        PIP_CACHE_DIR=str(caches / "pip"),
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_ROOT_USER_ACTION="ignore",
        UV_CACHE_DIR=str(caches / "uv"),
        LAYERBUILD_CACHE_DIR=str(caches / "layerbuild"),
    )
    return env


def layerbuild() -> str:
    return str(Path(sys.executable).with_name("layerbuild"))


def run(argv: list[str], *, cwd: Path | None = None, env: dict | None = None) -> None:
    """Run a timed command quietly; show its output only if it fails."""
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv[:4])} failed:\n{done.stdout}{done.stderr}")


if __name__ == "__main__":
    main()
