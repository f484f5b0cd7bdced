"""The one gateway to Docker: images, containers and the commands run in them.

Only this module imports the ``docker`` SDK. It turns every engine failure into a
``DockerError`` that says what to do next, streams container output to the
reporter line by line (credentials in URLs masked) while keeping the last lines
for the error, and removes every container it creates: after success, after a
failure and after Ctrl-C.

A ``Box`` is one container kept alive for a build: commands run in it one after
another (``exec``), each as the user it needs (root for the OS package manager,
the invoking user for everything that writes to the output folder).
"""

from __future__ import annotations

import gc
import io
import os
import re
import tarfile
import uuid
import warnings
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import docker.utils.socket
import requests.exceptions

from layerbuild.errors import DockerError
from layerbuild.report import Reporter
from layerbuild.targets import Architecture

# How many trailing output lines a failed command shows in its error.
TAIL_LINES = 30

# The Docker API version asked for: that of Docker 20.10, the oldest engine
# supported. Naming it spares the SDK a version probe while connecting, which
# leaves a socket open when no engine answers.
API_VERSION = "1.41"

# Seconds to wait for the engine to answer a ping when deciding whether it runs.
PING_TIMEOUT_SECONDS = 5

# Every container layerbuild creates carries this label, so a leftover (after
# the process itself was killed) can be found with ``docker ps -a --filter``.
LABEL = "org.layerbuild.role"
# ...and the id of the process that made it, to tell concurrent runs apart.
PID_LABEL = "org.layerbuild.pid"

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
QEMU_HANDLERS = {"aarch64": "qemu-aarch64", "x86_64": "qemu-x86_64"}

_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def mask_credentials(text: str) -> str:
    """Hide ``user:password@`` in every URL of ``text``."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


@dataclass(frozen=True)
class Mount:
    """A host path bound into a container."""

    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class BoxSpec:
    """How to create a container for a series of commands."""

    image: str
    mounts: tuple[Mount, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None  # "uid:gid"; None keeps the image's user
    network: str = "bridge"  # "bridge", "host" or "none"
    platform: str | None = None  # "linux/arm64" etc.; None for the engine's own
    purpose: str = "build"  # put on the label: what the container was for


@dataclass(frozen=True)
class Finished:
    """A command that ran to its end in a container."""

    exit_code: int
    output: str  # every line, masked
    tail: tuple[str, ...]  # the last TAIL_LINES lines, for an error message

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def tail_text(self) -> str:
        return "\n".join(self.tail)


class _LineSplitter:
    """Turns a stream of byte chunks into masked lines, sent to a reporter."""

    def __init__(self, reporter: Reporter, echo: bool) -> None:
        self.reporter = reporter
        self.echo = echo
        self.pending = b""
        self.lines: list[str] = []
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)

    def feed(self, chunk: bytes) -> None:
        self.pending += chunk
        *complete, self.pending = self.pending.split(b"\n")
        for raw in complete:
            self._emit(raw)

    def close(self) -> None:
        if self.pending:
            self._emit(self.pending)
            self.pending = b""

    def _emit(self, raw: bytes) -> None:
        line = mask_credentials(raw.decode("utf-8", "replace").rstrip("\r"))
        self.lines.append(line)
        self.tail.append(line)
        if self.echo:
            self.reporter.output(line)


class Box:
    """A running container that commands are executed in."""

    def __init__(self, engine: Engine, container: Any, spec: BoxSpec) -> None:
        self.engine = engine
        self.container = container
        self.spec = spec

    def exec(
        self,
        argv: Sequence[str],
        reporter: Reporter,
        *,
        user: str | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        echo: bool = True,
    ) -> Finished:
        """Run ``argv`` in the container and wait for it; output goes to ``reporter``.

        ``echo=False`` keeps the output out of the reporter (for machine-read
        output); it is still returned.
        """
        api = self.engine.client.api
        splitter = _LineSplitter(reporter, echo)
        try:
            created = api.exec_create(
                self.container.id,
                list(argv),
                user=user or self.spec.user or "",
                environment=dict(env or {}),
                workdir=workdir,
            )
            # The raw socket, so that it can be closed: a streamed exec leaves
            # its hijacked connection open otherwise.
            sock = api.exec_start(created["Id"], socket=True)
            try:
                for _, chunk in docker.utils.socket.frames_iter(sock, tty=False):
                    splitter.feed(chunk)
            finally:
                _close_socket(sock)
            splitter.close()
            exit_code = api.exec_inspect(created["Id"])["ExitCode"]
        except (docker.errors.APIError, requests.exceptions.RequestException) as error:
            doing = f"running {argv[0]} in {self.spec.image}"
            raise self.engine.failure(doing, error) from None
        return Finished(int(exit_code), "\n".join(splitter.lines), tuple(splitter.tail))

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write one file into the container (its folder must exist)."""
        folder, name = path.rsplit("/", 1)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            archive.addfile(info, io.BytesIO(data))
        try:
            self.container.put_archive(folder or "/", buffer.getvalue())
        except docker.errors.APIError as error:
            doing = f"copying {path} into {self.spec.image}"
            raise self.engine.failure(doing, error) from None


class Engine:
    """A connection to a Docker engine (``DOCKER_HOST`` or the local socket)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def connect(cls, environ: Mapping[str, str] | None = None) -> Engine:
        """Connect and check that the engine answers."""
        environment = dict(os.environ if environ is None else environ)
        where = environment.get("DOCKER_HOST", "the local Docker socket")
        client = _answering_client(environment, timeout=None)
        if client is None:
            msg = f"no Docker engine answers at {mask_credentials(where)}"
            hint = (
                "start Docker (or set DOCKER_HOST to a running engine), or build "
                "without Docker: --builder local"
            )
            raise DockerError(msg, hint=hint) from None
        return cls(client)

    def close(self) -> None:
        """Release the connections to the engine."""
        self.client.close()

    def failure(self, doing: str, error: Exception) -> DockerError:
        """A DockerError for an engine call that failed while ``doing``."""
        explanation = getattr(error, "explanation", None) or str(error)
        msg = f"Docker failed {doing}: {mask_credentials(str(explanation))}"
        return DockerError(msg, hint="check 'docker info' and the engine's log")

    def image_exists(self, tag: str) -> bool:
        """True when the engine holds ``tag`` locally."""
        try:
            self.client.images.get(tag)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as error:
            doing = f"looking up image {tag}"
            raise self.failure(doing, error) from None
        return True

    def ensure_image(self, tag: str, reporter: Reporter, platform: str | None) -> None:
        """Pull ``tag`` unless it is already here."""
        if self.image_exists(tag):
            return
        reporter.step(f"pulling {tag}")
        try:
            self.client.images.pull(tag, platform=platform)
        except docker.errors.APIError as error:
            msg = f"cannot pull image {tag}: {mask_credentials(str(error.explanation))}"
            hint = "check the image name and that its registry is reachable"
            raise DockerError(msg, hint=hint) from None

    def build_image(
        self,
        context: Path,
        tag: str,
        reporter: Reporter,
        *,
        buildargs: Mapping[str, str],
        network: str,
        platform: str | None,
    ) -> None:
        """Build ``context/Dockerfile`` as ``tag``, streaming the steps to ``reporter``.

        Intermediate containers are removed whether the build works or not.
        """
        splitter = _LineSplitter(reporter, echo=True)
        try:
            stream = self.client.api.build(
                path=str(context),
                tag=tag,
                buildargs=dict(buildargs),
                network_mode=network,
                platform=platform,
                rm=True,
                forcerm=True,
                decode=True,
            )
            for event in stream:
                if "stream" in event:
                    splitter.feed(event["stream"].encode())
                if "error" in event:
                    splitter.close()
                    msg = (
                        f"building image {tag} failed: "
                        f"{mask_credentials(event['error'].strip())}"
                    )
                    detail = splitter.tail and "\n" + "\n".join(splitter.tail)
                    raise DockerError(
                        msg + (detail or ""),
                        hint="run with -v to see every step of the image build",
                    )
            splitter.close()
        except (docker.errors.APIError, requests.exceptions.RequestException) as error:
            doing = f"building image {tag}"
            raise self.failure(doing, error) from None

    def image_labels(self, tag: str) -> dict[str, str]:
        """The labels of a local image."""
        try:
            return dict(self.client.images.get(tag).labels or {})
        except docker.errors.APIError as error:
            doing = f"reading image {tag}"
            raise self.failure(doing, error) from None

    @contextmanager
    def box(self, spec: BoxSpec) -> Iterator[Box]:
        """A running container for ``spec``, removed however the block ends.

        The container only sleeps; the work happens in ``Box.exec``. Removal is
        forced, so it happens after a failure and after Ctrl-C alike.
        """
        name = f"layerbuild-{spec.purpose}-{uuid.uuid4().hex[:12]}"
        container = None
        try:
            try:
                container = self.client.containers.create(
                    spec.image,
                    entrypoint=["sleep", "infinity"],
                    command=[],
                    name=name,
                    labels={LABEL: spec.purpose, PID_LABEL: str(os.getpid())},
                    mounts=[
                        docker.types.Mount(**_mount_kwargs(m)) for m in spec.mounts
                    ],
                    environment=dict(spec.env),
                    user=spec.user or "",
                    network_mode=spec.network,
                    platform=spec.platform,
                    working_dir="/",
                    detach=True,
                )
                container.start()
            except docker.errors.ImageNotFound:
                msg = f"image {spec.image} is not present"
                raise DockerError(msg, hint="pull or build it first") from None
            except (
                docker.errors.APIError,
                requests.exceptions.RequestException,
            ) as error:
                doing = f"starting a container of {spec.image}"
                raise self.failure(doing, error) from None
            yield Box(self, container, spec)
        finally:
            self._remove(container, name)

    def _remove(self, container: Any, name: str) -> None:
        """Force-remove the container; by name when creation was cut short."""
        try:
            if container is not None:
                container.remove(force=True)
            else:
                self.client.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.APIError, requests.exceptions.RequestException):
            # Removal is best effort on the way out of another error; the label
            # lets `docker ps -a --filter label=org.layerbuild.role` find it.
            pass

    def leftover_containers(self, pid: int | None = None) -> list[str]:
        """Names of containers layerbuild created that still exist.

        With ``pid``, only those made by that process.
        """
        label = LABEL if pid is None else f"{PID_LABEL}={pid}"
        try:
            # The low-level list answers in one call; the high-level one
            # inspects each container after listing, and fails on any that
            # is removed in between, as a container being cleaned up is.
            found = self.client.api.containers(all=True, filters={"label": label})
        except docker.errors.APIError as error:
            doing = "listing containers"
            raise self.failure(doing, error) from None
        return [entry["Names"][0].lstrip("/") for entry in found]


def _close_socket(sock: Any) -> None:
    """Close an exec's raw socket, the response it came from and the OS socket."""
    for part in (getattr(sock, "_response", None), sock, getattr(sock, "_sock", None)):
        if part is not None:
            part.close()


def _mount_kwargs(mount: Mount) -> dict[str, Any]:
    return {
        "target": mount.target,
        "source": str(mount.source),
        "type": "bind",
        "read_only": mount.read_only,
    }


def engine_answers(environ: Mapping[str, str] | None = None) -> bool:
    """True when a Docker engine answers a ping within PING_TIMEOUT_SECONDS."""
    environment = dict(os.environ if environ is None else environ)
    client = _answering_client(environment, timeout=PING_TIMEOUT_SECONDS)
    if client is None:
        return False
    client.close()
    return True


def _answering_client(environment: Mapping[str, str], timeout: int | None) -> Any:
    """A client whose engine answered a ping, or None.

    When nothing listens on a Unix socket, the SDK's connection attempt drops
    its socket unclosed; the ResourceWarning that follows is silenced here,
    where the failure is already being reported.
    """
    options: dict[str, Any] = {"environment": dict(environment), "version": API_VERSION}
    if timeout is not None:
        options["timeout"] = timeout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        client = None
        try:
            client = docker.from_env(**options)
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            if client is not None:
                client.close()
            client = None
        gc.collect()
    return client


def check_platform(
    arch: Architecture, host_machine: str | None = None, binfmt_dir: Path = BINFMT_DIR
) -> str | None:
    """The Docker platform to ask for, after checking this host can run it.

    Returns None for the host's own architecture. A foreign one runs through
    QEMU user emulation, which the kernel must have registered with binfmt_misc.
    """
    machine = host_machine or os.uname().machine
    if machine in ("arm64", "aarch64") and arch.machine == "aarch64":
        return None
    if machine == arch.machine:
        return None
    handler = binfmt_dir / QEMU_HANDLERS.get(arch.machine, f"qemu-{arch.machine}")
    try:
        enabled = handler.read_text().splitlines()[0].strip() == "enabled"
    except (OSError, IndexError):
        enabled = False
    if not enabled:
        msg = (
            f"{arch.name} containers on this {machine} host need QEMU emulation, "
            f"and {handler} is not registered"
        )
        hint = (
            "install qemu-user-static and binfmt-support (Debian/Ubuntu), or run "
            "'docker run --privileged --rm tonistiigi/binfmt --install arm64'; "
            "or build on an arm64 machine"
        )
        raise DockerError(msg, hint=hint)
    return arch.docker_platform
