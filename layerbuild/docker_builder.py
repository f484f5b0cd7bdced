"""Locking and installing inside the target's build image (Docker).

The build image is the runtime's SAM build image plus pip-tools in a venv of the
target interpreter (``images/python``). Locking runs ``pip-compile`` with that
interpreter, so markers and wheels are judged by the Python the layer will run
on; installing runs ``pip install --require-hashes --no-deps --target``, so
sdists with C code compile against the image's headers and glibc.

Recipes may ask for OS packages (``build.system-packages``, installed in the
build container with its own package manager) and programs (``build.binaries``,
copied into ``bin/``). The shared libraries the layer's ELF files then need are
copied into ``lib/`` and pruned to what the runtime lacks (``layerbuild.syslibs``).

The container reaches the package index with the host's settings: index URLs,
trusted hosts, the CA bundle (mounted read-only) and proxy variables. Paths on
this machine (``file://`` indexes, find-links folders) are not passed on, since
wheels built here may not load on Lambda; folders given as ``find_links`` are.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name

from layerbuild import runtime_api, runtime_layer, smoke, syslibs
from layerbuild.builders import InstallResult, default_cache_dir
from layerbuild.containers import (
    BINFMT_DIR,
    BoxSpec,
    Engine,
    Finished,
    Mount,
    check_platform,
    engine_answers,
    mask_credentials,
)
from layerbuild.errors import BuildError, DockerError, HashMismatchError, LockError
from layerbuild.files import write_atomically
from layerbuild.lock import compile_command
from layerbuild.recipe import Recipe
from layerbuild.report import Reporter
from layerbuild.targets import Target

# The Dockerfiles: images/ in a checkout, layerbuild/images once installed.
_CHECKOUT_IMAGES = Path(__file__).resolve().parent.parent / "images"
IMAGES_DIR = (
    _CHECKOUT_IMAGES
    if _CHECKOUT_IMAGES.is_dir()
    else Path(__file__).resolve().parent / "images"
)
BUILD_IMAGE_REPOSITORY = "layerbuild-build"
TOOLS = "/opt/layerbuild/tools/bin"

# Where things appear inside the build container.
RECIPE_MOUNT = "/layerbuild/recipe"
WORK_MOUNT = "/layerbuild/work"
TREE_MOUNT = "/layerbuild/tree"
LOCK_MOUNT = "/layerbuild/lock/requirements.txt"
CA_MOUNT = "/layerbuild/ca-bundle.pem"
CACHE_MOUNT = "/layerbuild/cache"
LINKS_MOUNT = "/layerbuild/links"

# CA bundles of the common distributions, tried when no variable names one.
SYSTEM_CA_BUNDLES = (
    Path("/etc/ssl/certs/ca-certificates.crt"),
    Path("/etc/pki/tls/certs/ca-bundle.crt"),
    Path("/etc/ssl/cert.pem"),
)
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
)
LOOPBACK_HOSTS = ("localhost", "127.", "::1", "[::1]")


def default_build_base(target: Target) -> str:
    """The public SAM build image of ``target``."""
    return f"public.ecr.aws/sam/build-{target.runtime.name}:latest-{target.arch.name}"


def engine_available(environ: Mapping[str, str] | None = None) -> bool:
    """True when a Docker engine answers (``--builder auto`` picks Docker then)."""
    return engine_answers(environ)


@dataclass(frozen=True)
class PipSettings:
    """The host's package-index settings, as they are handed to a container."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()  # URLs only: host folders are left out
    ca_bundle: Path | None = None
    proxies: Mapping[str, str] = field(default_factory=dict)
    timeout: str | None = None
    left_out: tuple[str, ...] = ()  # host-only sources that were not passed on

    @classmethod
    def from_host(
        cls, environ: Mapping[str, str], config_files: Iterable[Path] | None = None
    ) -> PipSettings:
        """Read pip's config files, then the environment (which wins, as in pip)."""
        config = _read_pip_config(
            _pip_config_files(environ) if config_files is None else config_files
        )

        def setting(name: str, *fallbacks: str) -> str | None:
            for variable in (f"PIP_{name.upper().replace('-', '_')}", *fallbacks):
                if environ.get(variable):
                    return environ[variable]
            return config.get(name)

        index = setting("index-url", "UV_DEFAULT_INDEX", "UV_INDEX_URL")
        extras = (
            setting("extra-index-url", "UV_INDEX", "UV_EXTRA_INDEX_URL") or ""
        ).split()
        links = (setting("find-links", "UV_FIND_LINKS") or "").split()
        trusted = (setting("trusted-host") or "").split()

        left_out = []
        if index and not _is_remote(index):
            left_out.append(index)
            index = None
        remote_extras = []
        for url in extras:
            (remote_extras if _is_remote(url) else left_out).append(url)
        remote_links = []
        for link in links:
            (remote_links if _is_remote(link) else left_out).append(link)

        bundle = None
        for candidate in (
            environ.get("PIP_CERT"),
            config.get("cert"),
            environ.get("REQUESTS_CA_BUNDLE"),
            environ.get("SSL_CERT_FILE"),
            *SYSTEM_CA_BUNDLES,
        ):
            if candidate and Path(candidate).is_file():
                bundle = Path(candidate)
                break

        return cls(
            index_url=index,
            extra_index_urls=tuple(remote_extras),
            trusted_hosts=tuple(trusted),
            find_links=tuple(remote_links),
            ca_bundle=bundle,
            proxies={k: environ[k] for k in PROXY_VARIABLES if environ.get(k)},
            timeout=environ.get("PIP_DEFAULT_TIMEOUT") or config.get("timeout"),
            left_out=tuple(left_out),
        )

    def container_env(self) -> dict[str, str]:
        """pip's variables for a container that mounts the CA bundle at CA_MOUNT."""
        env = {
            # The image's own pip config would quietly add to or undo these.
            "PIP_CONFIG_FILE": "/dev/null",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            **self.proxies,
        }
        if self.index_url:
            env["PIP_INDEX_URL"] = self.index_url
        if self.extra_index_urls:
            env["PIP_EXTRA_INDEX_URL"] = " ".join(self.extra_index_urls)
        if self.trusted_hosts:
            env["PIP_TRUSTED_HOST"] = " ".join(self.trusted_hosts)
        if self.find_links:
            env["PIP_FIND_LINKS"] = " ".join(self.find_links)
        if self.timeout:
            env["PIP_DEFAULT_TIMEOUT"] = self.timeout
        if self.ca_bundle:
            env.update(
                PIP_CERT=CA_MOUNT, REQUESTS_CA_BUNDLE=CA_MOUNT, SSL_CERT_FILE=CA_MOUNT
            )
        return env

    def needs_host_network(self) -> bool:
        """True when an index or proxy is on this machine's loopback address.

        A container on Docker's bridge network cannot reach the host's
        127.0.0.1, so such settings only work on the host's network.
        """
        urls = [self.index_url or "", *self.extra_index_urls, *self.find_links]
        urls += [
            value for key, value in self.proxies.items() if "no_" not in key.lower()
        ]
        for url in urls:
            host = urlsplit(url if "://" in url else f"//{url}").hostname or ""
            if host and host.startswith(LOOPBACK_HOSTS):
                return True
        return False

    def describe(self) -> str:
        """One line for ``-v``, credentials masked."""
        index = self.index_url or "pip's default index"
        parts = [f"index {index}"]
        if self.extra_index_urls:
            parts.append("extra " + " ".join(self.extra_index_urls))
        if self.ca_bundle:
            parts.append(f"CA bundle {self.ca_bundle}")
        if self.proxies:
            parts.append("proxy variables " + ", ".join(sorted(self.proxies)))
        return mask_credentials("; ".join(parts))


def _is_remote(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _pip_config_files(environ: Mapping[str, str]) -> list[Path]:
    """pip's config files in the order pip reads them (later ones win)."""
    if "PIP_CONFIG_FILE" in environ:
        chosen = environ["PIP_CONFIG_FILE"]
        return [] if chosen == os.devnull else [Path(chosen)]
    home = Path(environ.get("HOME", "/nonexistent"))
    xdg_dirs = environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    xdg_home = Path(environ.get("XDG_CONFIG_HOME", str(home / ".config")))
    files = [Path(folder, "pip", "pip.conf") for folder in reversed(xdg_dirs) if folder]
    files += [Path("/etc/pip.conf"), home / ".pip" / "pip.conf"]
    files += [xdg_home / "pip" / "pip.conf"]
    return files


def _read_pip_config(files: Iterable[Path]) -> dict[str, str]:
    """The ``[global]`` then ``[install]`` settings of pip's config files."""
    settings: dict[str, str] = {}
    for path in files:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            # pip itself refuses such a file; leave its settings out here too.
            continue
        for section in ("global", "install"):
            if parser.has_section(section):
                settings.update(
                    {
                        key: " ".join(value.split())
                        for key, value in parser[section].items()
                    }
                )
    return settings


# Installs OS packages with whichever package manager the build image has.
SYSTEM_PACKAGES_SCRIPT = """\
set -e
if command -v dnf >/dev/null 2>&1; then dnf install -y "$@"
elif command -v yum >/dev/null 2>&1; then yum install -y "$@"
elif command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q --no-install-recommends "$@"
else echo "no dnf, yum or apt-get in this image" >&2; exit 3
fi
"""

# Copies programs from the build image into the layer's bin/.
BINARIES_SCRIPT = """\
set -e
mkdir -p "$LAYER/bin"
for name in "$@"; do
    found=$(command -v "$name") || { echo "program not found: $name" >&2; exit 4; }
    cp -L "$found" "$LAYER/bin/$name"
    chmod 755 "$LAYER/bin/$name"
done
"""

# Runs in the container with the target interpreter: copies into lib/ every
# library ldd resolves for the layer's ELF files, outside glibc and the layer.
# The host then prunes the copies to what the runtime lacks.
LIBRARY_SCRIPT = """\
import json, os, shutil, subprocess, sys
tree, skip = sys.argv[1], set(json.loads(sys.argv[2]))
lib = os.path.join(tree, "lib")
copied, unresolved = [], {}
for folder, _, files in os.walk(tree):
    if folder == lib:
        continue
    for name in files:
        path = os.path.join(folder, name)
        if os.path.islink(path):
            continue
        with open(path, "rb") as handle:
            if handle.read(4) != b"\\x7fELF":
                continue
        run = subprocess.run(["ldd", path], capture_output=True, text=True)
        for line in run.stdout.splitlines():
            parts = line.split()
            if len(parts) < 3 or parts[1] != "=>":
                continue
            soname, found = parts[0], parts[2]
            if soname in skip or soname.startswith("libnss_"):
                continue
            if found == "not":
                unresolved.setdefault(soname, path[len(tree) + 1:])
                continue
            if os.path.realpath(found).startswith(os.path.realpath(tree) + os.sep):
                continue
            destination = os.path.join(lib, soname)
            if not os.path.exists(destination):
                os.makedirs(lib, exist_ok=True)
                shutil.copyfile(found, destination)
                os.chmod(destination, 0o755)
                copied.append(soname)
print("LAYERBUILD-LIBS " + json.dumps({"copied": copied, "unresolved": unresolved}))
"""


class DockerBuilder:
    """Locks and installs recipes inside the target's build image."""

    name = "docker"

    def __init__(
        self,
        reporter: Reporter,
        *,
        engine: Engine | None = None,
        environ: Mapping[str, str] | None = None,
        base_image: str | None = None,
        runtime_image: str | None = None,
        images_dir: Path = IMAGES_DIR,
        cache_dir: Path | None = None,
        user: tuple[int, int] | None = None,
        find_links: Iterable[Path] = (),
        pip: PipSettings | None = None,
        host_machine: str | None = None,
        binfmt_dir: Path = BINFMT_DIR,
    ) -> None:
        """Set up a builder; nothing talks to Docker until the first lock or install.

        ``base_image`` replaces the SAM build image (tests use a stand-in);
        ``runtime_image``, when given, is asked which libraries it already has,
        so ``lib/`` leaves them out. ``user`` is the uid and gid that own what
        the build writes, the invoking user's by default.
        """
        self.reporter = reporter
        self._engine = engine
        self.environ = dict(os.environ if environ is None else environ)
        self.base_image = base_image
        self.runtime_image = runtime_image
        self.images_dir = images_dir
        self.cache_dir = cache_dir
        self.user = user or (os.getuid(), os.getgid())
        self.find_links = tuple(Path(p).resolve() for p in find_links)
        self.pip = pip or PipSettings.from_host(self.environ)
        self.host_machine = host_machine
        self.binfmt_dir = binfmt_dir
        self.smoke_test = True  # whether check() runs the smoke test
        self._images: dict[str, str] = {}
        self._runtime_sonames: dict[str, frozenset[str]] = {}
        for location in self.pip.left_out:
            reporter.detail(
                f"not passing pip source {mask_credentials(location)} to the build "
                "container: it is a path on this machine"
            )

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine.connect(self.environ)
        return self._engine

    # -- images -----------------------------------------------------------------

    def build_image(self, target: Target) -> str:
        """The tag of the build image for ``target``, built when missing."""
        if target.slug in self._images:
            return self._images[target.slug]
        if target.runtime.python is None:
            msg = (
                f"the Docker builder builds Python layers; {target.runtime.name} is not"
            )
            raise DockerError(msg)
        platform = check_platform(target.arch, self.host_machine, self.binfmt_dir)
        base = self.base_image or default_build_base(target)
        self.engine.ensure_image(base, self.reporter, platform)

        folder = self.images_dir / "python"
        if not (folder / "Dockerfile").is_file():
            msg = f"{folder / 'Dockerfile'}: build image definition is missing"
            raise DockerError(msg, hint="reinstall layerbuild from its source tree")
        ca_bytes = self.pip.ca_bundle.read_bytes() if self.pip.ca_bundle else b""
        digest = hashlib.sha256()
        for part in (
            (folder / "Dockerfile").read_bytes(),
            (folder / "install-tools.sh").read_bytes(),
            base.encode(),
            self.engine.client.images.get(base).id.encode(),
            target.runtime.python_version.encode(),
            ca_bytes,
        ):
            digest.update(hashlib.sha256(part).digest())
        tag = f"{BUILD_IMAGE_REPOSITORY}:{target.slug}-{digest.hexdigest()[:12]}"

        if not self.engine.image_exists(tag):
            self.reporter.step(f"building image {tag} from {base}")
            with tempfile.TemporaryDirectory(prefix="layerbuild-image-") as context:
                for name in ("Dockerfile", "install-tools.sh"):
                    shutil.copyfile(folder / name, Path(context, name))
                Path(context, "ca-bundle.pem").write_bytes(ca_bytes)
                args = {
                    "BASE_IMAGE": base,
                    "PYTHON_VERSION": target.runtime.python_version,
                    **{
                        key: value
                        for key, value in self.pip.container_env().items()
                        if key
                        in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST")
                    },
                    **self.pip.proxies,
                }
                self.engine.build_image(
                    Path(context),
                    tag,
                    self.reporter,
                    buildargs=args,
                    network=self._network(),
                    platform=platform,
                )
        self._images[target.slug] = tag
        return tag

    def _network(self) -> str:
        return "host" if self.pip.needs_host_network() else "bridge"

    def _spec(
        self, image: str, target: Target, mounts: list[Mount], purpose: str
    ) -> BoxSpec:
        mounts = list(mounts)
        if self.pip.ca_bundle:
            mounts.append(Mount(self.pip.ca_bundle.resolve(), CA_MOUNT))
        env = self.pip.container_env()
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            self._give(self.cache_dir)
            mounts.append(Mount(self.cache_dir.resolve(), CACHE_MOUNT, read_only=False))
            env["PIP_CACHE_DIR"] = f"{CACHE_MOUNT}/pip"
        else:
            env["PIP_NO_CACHE_DIR"] = "1"
        links = []
        for number, folder in enumerate(self.find_links):
            mounts.append(Mount(folder, f"{LINKS_MOUNT}/{number}"))
            links.append(f"{LINKS_MOUNT}/{number}")
        if links:
            env["PIP_FIND_LINKS"] = " ".join([*self.pip.find_links, *links])
        # A uid without a passwd entry has no home: give tools a writable one.
        env.update(HOME="/tmp", LANG="C.UTF-8")
        return BoxSpec(
            image=image,
            mounts=tuple(mounts),
            env=env,
            user=f"{self.user[0]}:{self.user[1]}",
            network=self._network(),
            platform=check_platform(target.arch, self.host_machine, self.binfmt_dir),
            purpose=purpose,
        )

    def _give(self, path: Path) -> None:
        """Hand a folder made here to the build user, when that is someone else."""
        if (os.getuid(), os.getgid()) != self.user and os.getuid() == 0:
            os.chown(path, *self.user)

    # -- the Builder interface -------------------------------------------------------

    def lock(self, recipe: Recipe, target: Target, lock_path: Path) -> list[str]:
        """Run pip-compile with the target interpreter and write the lock atomically."""
        image = self.build_image(target)
        self.reporter.detail(f"locking {recipe.name} for {target.slug} in {image}")
        self.reporter.detail(self.pip.describe())
        with tempfile.TemporaryDirectory(prefix="layerbuild-lock-") as scratch:
            work = Path(scratch)
            self._give(work)
            if recipe.requirements_file is not None:
                source = recipe.requirements_file
                input_path = f"{RECIPE_MOUNT}/{source.relative_to(recipe.directory)}"
                workdir = str(Path(input_path).parent)
                input_name = source.name
            else:
                (work / "requirements.in").write_text(
                    "\n".join(recipe.requirement_lines()) + "\n", encoding="utf-8"
                )
                workdir, input_name = WORK_MOUNT, "requirements.in"
            mounts = [
                Mount(recipe.directory.resolve(), RECIPE_MOUNT),
                Mount(work, WORK_MOUNT, read_only=False),
            ]
            command = compile_command(recipe, target)
            argv = [
                f"{TOOLS}/pip-compile",
                "--quiet",
                "--generate-hashes",
                "--strip-extras",
                "--allow-unsafe",
                "--no-emit-index-url",
                "--no-emit-trusted-host",
                "--no-emit-find-links",
                "--cache-dir",
                f"{CACHE_MOUNT}/pip-tools" if self.cache_dir else "/tmp/pip-tools",
                "--output-file",
                f"{WORK_MOUNT}/requirements.lock",
                input_name,
            ]
            with self.engine.box(self._spec(image, target, mounts, "lock")) as box:
                done = box.exec(
                    argv,
                    self.reporter,
                    env={"CUSTOM_COMPILE_COMMAND": command},
                    workdir=workdir,
                )
            if not done.ok:
                raise self._lock_failure(recipe, target, done)
            text = (work / "requirements.lock").read_text(encoding="utf-8")

        text = text.replace(f"{WORK_MOUNT}/", "").replace(f"{RECIPE_MOUNT}/", "")
        write_atomically(lock_path, text)
        return []

    def _lock_failure(
        self, recipe: Recipe, target: Target, done: Finished
    ) -> Exception:
        unresolvable = any(
            marker in done.output
            for marker in (
                "ResolutionImpossible",
                "No matching distribution",
                "Could not find a version",
            )
        )
        msg = (
            f"{recipe.path}: locking for {target.slug} failed in the build image "
            f"(pip-compile exit {done.exit_code}):\n{done.tail_text()}"
        )
        if unresolvable:
            hint = "check the requirement names and versions against the index"
            return LockError(msg, hint=hint)
        return BuildError(msg, hint="run with -v to see pip-compile's whole output")

    def install(
        self, recipe: Recipe, target: Target, lock_path: Path, tree: Path
    ) -> InstallResult:
        """Install the lock, OS packages, programs and needed libraries in ``tree``.

        A custom-runtime recipe has no lock: its bootstrap and files are
        assembled (and its build command run) in the provided.* build image.
        """
        if recipe.kind == "runtime":
            runtime_layer.assemble(
                recipe,
                target,
                tree,
                engine=self.engine,
                image=self.base_image or default_build_base(target),
                reporter=self.reporter,
                runtime_image=self.runtime_image or smoke.default_runtime_image(target),
            )
            return InstallResult(packages={})

        image = self.build_image(target)
        site = tree / target.runtime.site_packages
        site.mkdir(parents=True, exist_ok=True)
        for folder in (tree, *site.relative_to(tree).parents):
            self._give(tree / folder)
        self._give(site)

        mounts = [
            Mount(recipe.directory.resolve(), RECIPE_MOUNT),
            Mount(lock_path.resolve(), LOCK_MOUNT),
            Mount(tree.resolve(), TREE_MOUNT, read_only=False),
        ]
        notices: list[str] = []
        with self.engine.box(self._spec(image, target, mounts, "install")) as box:
            if recipe.build.system_packages:
                names = list(recipe.build.system_packages)
                self.reporter.step(f"installing OS packages: {' '.join(names)}")
                done = box.exec(
                    ["sh", "-c", SYSTEM_PACKAGES_SCRIPT, "sh", *names],
                    self.reporter,
                    user="0:0",
                )
                if not done.ok:
                    msg = (
                        f"{recipe.path}: field 'build.system-packages': installing "
                        f"{' '.join(names)} in {image} failed:\n{done.tail_text()}"
                    )
                    raise BuildError(
                        msg, hint="check the package names for the image's OS"
                    )

            self.reporter.detail(f"installing {lock_path} into the layer ({image})")
            done = box.exec(
                [
                    f"{TOOLS}/python",
                    "-m",
                    "pip",
                    "install",
                    "--require-hashes",
                    "--no-deps",
                    "--no-warn-script-location",
                    "--target",
                    f"{TREE_MOUNT}/{target.runtime.site_packages}",
                    "-r",
                    LOCK_MOUNT,
                ],
                self.reporter,
            )
            if not done.ok:
                raise self._install_failure(lock_path, target, done)

            if recipe.build.binaries:
                names = list(recipe.build.binaries)
                self.reporter.step(f"copying programs into bin/: {' '.join(names)}")
                done = box.exec(
                    ["sh", "-c", BINARIES_SCRIPT, "sh", *names],
                    self.reporter,
                    env={"LAYER": TREE_MOUNT},
                )
                if not done.ok:
                    msg = (
                        f"{recipe.path}: field 'build.binaries': {done.tail_text()} "
                        f"in {image}"
                    )
                    raise BuildError(
                        msg, hint="add the package that has it to system-packages"
                    )

            self.reporter.detail("collecting the shared libraries the layer needs")
            skip = sorted(syslibs.GLIBC_FAMILY)
            done = box.exec(
                [f"{TOOLS}/python", "-c", LIBRARY_SCRIPT, TREE_MOUNT, json.dumps(skip)],
                self.reporter,
                echo=False,
            )
            if not done.ok:
                msg = f"collecting libraries failed in {image}:\n{done.tail_text()}"
                raise BuildError(msg)
            found = _marked_json(done.output, "LAYERBUILD-LIBS ")

        provided = syslibs.provided_by(
            target.runtime.os_family, self._image_sonames(target)
        )
        closure = syslibs.prune(tree, provided, found["copied"])
        for soname, needers in sorted(closure.kept.items()):
            self.reporter.detail(f"lib/{soname} (needed by {', '.join(needers[:3])})")
        if closure.removed:
            self.reporter.detail(
                "left out, the runtime provides them: " + ", ".join(closure.removed)
            )
        for soname, needers in sorted(closure.missing.items()):
            notice = (
                f"{soname} is needed by {needers[0]} but was not found in the image"
            )
            self.reporter.warn(notice)
            notices.append(notice)
        return InstallResult(packages=installed_packages(site), notices=notices)

    def _install_failure(
        self, lock_path: Path, target: Target, done: Finished
    ) -> Exception:
        msg = (
            f"{lock_path}: installing for {target.slug} failed "
            f"(pip exit {done.exit_code}):\n{done.tail_text()}"
        )
        if "DO NOT MATCH THE HASHES" in done.output:
            hint = "a file changed on the index since the lock was made: lock again"
            return HashMismatchError(msg, hint=hint)
        return BuildError(msg, hint="run with -v to see the whole build output")

    def check(
        self, tree: Path, recipe: Recipe, target: Target, packages: dict[str, str]
    ) -> None:
        """Smoke-test the tree in the runtime image, unless ``--no-test``."""
        if self.smoke_test:
            self.smoke(tree, recipe, target, packages)

    def smoke(
        self,
        layer: Path,
        recipe: Recipe | None,
        target: Target,
        packages: Mapping[str, str],
        *,
        image: str | None = None,
        with_layer_libraries: bool = True,
    ) -> smoke.SmokeResult | runtime_api.RuntimeTestResult:
        """Smoke-test ``layer`` in the runtime image (this builder's, unless named).

        A custom-runtime layer is tested by a round trip of its recipe's event
        through a local Runtime API instead of imports.
        """
        if recipe is not None and recipe.kind == "runtime":
            return runtime_api.run_recipe_test(
                recipe,
                target,
                layer,
                image=image
                or self.runtime_image
                or smoke.default_runtime_image(target),
                engine=self.engine,
                reporter=self.reporter,
            )
        return smoke.run_smoke_test(
            layer,
            recipe,
            target,
            dict(packages),
            image=image or self.runtime_image,
            engine=self.engine,
            reporter=self.reporter,
            with_layer_libraries=with_layer_libraries,
            user=self.user,
        )

    def _image_sonames(self, target: Target) -> frozenset[str]:
        """The libraries the runtime image already has (when one is named)."""
        image = self.runtime_image
        if image is None:
            return frozenset()
        if image not in self._runtime_sonames:
            platform = check_platform(target.arch, self.host_machine, self.binfmt_dir)
            self.engine.ensure_image(image, self.reporter, platform)
            spec = BoxSpec(
                image=image, network="none", platform=platform, purpose="probe"
            )
            with self.engine.box(spec) as box:
                done = box.exec(["ldconfig", "-p"], self.reporter, echo=False)
            if not done.ok:
                msg = f"cannot list the libraries of {image}: {done.tail_text()}"
                raise DockerError(msg)
            self._runtime_sonames[image] = frozenset(
                syslibs.parse_ldconfig(done.output)
            )
        return self._runtime_sonames[image]


def installed_packages(site_packages: Path) -> dict[str, str]:
    """Distribution name -> version for every ``*.dist-info`` in a folder."""
    packages = {}
    for info in sorted(site_packages.glob("*.dist-info")):
        name = version = None
        metadata = info / "METADATA"
        if not metadata.is_file():
            continue
        for line in metadata.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line:
                break
            if line.startswith("Name:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("Version:"):
                version = line.split(":", 1)[1].strip()
        if name and version:
            packages[str(canonicalize_name(name))] = version
    return packages


def _marked_json(output: str, marker: str) -> dict:
    for line in reversed(output.splitlines()):
        if line.startswith(marker):
            return json.loads(line[len(marker) :])
    msg = f"the build container printed no {marker.strip()} line:\n{output[-2000:]}"
    raise BuildError(msg)


def make_docker_builder(
    reporter: Reporter,
    *,
    smoke_test: bool = True,
    environ: Mapping[str, str] | None = None,
) -> DockerBuilder:
    """The Docker builder as the command line sets it up.

    ``LAYERBUILD_BUILD_IMAGE`` and ``LAYERBUILD_RUNTIME_IMAGE`` replace the SAM
    build image and the Lambda runtime image (for registries that mirror them,
    or local stand-ins); the pip cache lives in the layerbuild cache folder.
    """
    environment = dict(os.environ if environ is None else environ)
    builder = DockerBuilder(
        reporter,
        environ=environment,
        base_image=environment.get("LAYERBUILD_BUILD_IMAGE") or None,
        runtime_image=environment.get("LAYERBUILD_RUNTIME_IMAGE") or None,
        cache_dir=default_cache_dir(environment) / "docker",
    )
    builder.smoke_test = smoke_test
    return builder


def build_and_test(
    recipe: Recipe,
    target: Target,
    reporter: Reporter,
    *,
    image: str | None = None,
    build_image: str | None = None,
) -> smoke.SmokeResult | runtime_api.RuntimeTestResult:
    """Lock (unless a lock exists), install in a scratch tree, and smoke-test it.

    A custom-runtime recipe has no lock: it is assembled, then sent its event.
    """
    from layerbuild.lock import lock_path as recipe_lock_path

    builder = make_docker_builder(reporter)
    if build_image:
        builder.base_image = build_image
    if image:
        builder.runtime_image = image
    with tempfile.TemporaryDirectory(prefix="layerbuild-test-") as scratch:
        lock = recipe_lock_path(recipe, target.slug)
        if recipe.kind == "python" and not lock.is_file():
            lock = Path(scratch, f"{target.slug}.txt")
            builder.lock(recipe, target, lock)
        tree = Path(scratch, "layer")
        tree.mkdir()
        result = builder.install(recipe, target, lock, tree)
        return builder.smoke(tree, recipe, target, result.packages, image=image)
