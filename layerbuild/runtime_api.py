"""A local stand-in for the Lambda Runtime API, and the round trip that uses it.

A custom runtime's ``bootstrap`` asks ``AWS_LAMBDA_RUNTIME_API`` for the next
event, runs the handler and posts back a response or an error. ``RuntimeApiServer``
answers those calls on the loopback interface so a layer's bootstrap can be
exercised without AWS; ``run_runtime_test`` runs the bootstrap in the target's
image against it and judges what came back.

Only the 2018-06-01 calls a bootstrap needs are served:

- ``GET  /2018-06-01/runtime/invocation/next``
- ``POST /2018-06-01/runtime/invocation/{request_id}/response``
- ``POST /2018-06-01/runtime/invocation/{request_id}/error``
- ``POST /2018-06-01/runtime/init/error``
"""

from __future__ import annotations

import json
import queue
import re
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from layerbuild.containers import Box, BoxSpec, Engine, Finished, Mount, check_platform
from layerbuild.errors import LayerbuildError, SmokeTestError, UsageError
from layerbuild.recipe import Recipe
from layerbuild.report import NullReporter, Reporter
from layerbuild.runtime_layer import DIRECTORY_MODE, LAMBDA_PATH, runtime_options
from layerbuild.targets import Target

API_VERSION = "2018-06-01"

# Lambda refuses a synchronous response larger than 6 MB; so does this server,
# so a bootstrap that would be cut off there is cut off here too.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024

# A refused body up to this size is read and dropped so the client gets the
# 413 reply; a larger one has its connection closed unread.
MAX_DISCARD_BYTES = 4 * MAX_RESPONSE_BYTES

# How often a blocked ``next`` call looks up from its queue to see whether the
# server is closing; it bounds how long ``close`` waits for those threads.
POLL_SECONDS = 0.1

# How long the round trip may take, container start included. Lambda's own
# default timeout is 3 s; emulating another architecture is far slower.
TEST_TIMEOUT_SECONDS = 60.0

# Lambda runs the bootstrap as an unprivileged user (sbx_user1051); so does the
# test, so a layer file only root can read fails here as it would there.
SANDBOX_USER = "993:990"

# How long a killed bootstrap's exec may take to report its end.
STOP_SECONDS = 10.0

# How much of a response or of the bootstrap's output an error message quotes.
EXCERPT_CHARS = 400

DEFAULT_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:layerbuild-test"

_INVOCATION_PATH = re.compile(
    rf"/{API_VERSION}/runtime/invocation/(?P<request_id>[^/]+)/(?P<verb>response|error)"
)
_NEXT_PATH = f"/{API_VERSION}/runtime/invocation/next"
_INIT_ERROR_PATH = f"/{API_VERSION}/runtime/init/error"


@dataclass(frozen=True)
class Invocation:
    """One event waiting for, or handed to, the bootstrap."""

    request_id: str
    payload: bytes
    deadline_ms: int  # Unix time in milliseconds, as Lambda sends it
    function_arn: str
    trace_id: str


class OutcomeKind(Enum):
    """What the bootstrap posted."""

    RESPONSE = "response"
    ERROR = "error"  # the handler failed for one invocation
    INIT_ERROR = "init error"  # the runtime could not start at all


@dataclass(frozen=True)
class Outcome:
    """A response or an error the bootstrap posted."""

    kind: OutcomeKind
    request_id: str | None  # None for an init error
    body: bytes
    error_type: str | None = None  # Lambda-Runtime-Function-Error-Type, if sent

    def describe_error(self) -> str:
        """``Type: message`` from an error body, however well it is formed."""
        error_type = self.error_type
        message = self.body.decode("utf-8", errors="replace").strip()
        try:
            document = json.loads(self.body)
        except ValueError:
            document = None
        if isinstance(document, dict):
            error_type = str(document.get("errorType") or error_type or "")
            message = str(document.get("errorMessage") or message)
        if error_type:
            return f"{error_type}: {message}" if message else error_type
        return message or "(empty error body)"


class RuntimeApiServer:
    """Serves the Runtime API on 127.0.0.1 for events queued with ``invoke``.

    The server runs on its own threads; use it as a context manager so it is
    always closed. ``next`` calls block until an event is queued, as Lambda's
    do, and every response or error lands in ``outcomes`` in the order posted.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        function_arn: str = DEFAULT_FUNCTION_ARN,
        clock: Callable[[], float] = time.time,
        new_request_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        log: Callable[[str], None] = lambda _message: None,
    ) -> None:
        self.function_arn = function_arn
        self.clock = clock
        self.new_request_id = new_request_id
        self.log = log
        self.outcomes: queue.Queue[Outcome] = queue.Queue()
        self._pending: queue.Queue[Invocation] = queue.Queue()
        self._open: dict[str, Invocation] = {}  # handed out, not yet answered
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd = _Httpd((host, port), _Handler, self)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """``host:port``, the value ``AWS_LAMBDA_RUNTIME_API`` takes."""
        host, port = self._httpd.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> RuntimeApiServer:
        """Start answering on a background thread."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": POLL_SECONDS},
            name="runtime-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop answering and release the port; blocked ``next`` calls end."""
        self._closing.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def __enter__(self) -> RuntimeApiServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def invoke(self, payload: bytes, *, timeout_s: float) -> Invocation:
        """Queue one event; the bootstrap gets it on its next ``next`` call."""
        invocation = Invocation(
            request_id=self.new_request_id(),
            payload=payload,
            deadline_ms=int((self.clock() + timeout_s) * 1000),
            function_arn=self.function_arn,
            trace_id=_trace_id(self.clock()),
        )
        self._pending.put(invocation)
        return invocation

    # The methods below run on the server's request threads.

    def _take_next(self) -> Invocation | None:
        while not self._closing.is_set():
            try:
                invocation = self._pending.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            with self._lock:
                self._open[invocation.request_id] = invocation
            return invocation
        return None

    def _settle(self, request_id: str) -> bool:
        """Close an open invocation; False when none has that id."""
        with self._lock:
            return self._open.pop(request_id, None) is not None


def _trace_id(now: float) -> str:
    """An X-Ray trace header value: epoch seconds in hex and 96 random bits."""
    return f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]};Sampled=0"


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        api: RuntimeApiServer,
    ) -> None:
        self.api = api
        super().__init__(address, handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # The base class prints a traceback; a client that hangs up early (a
        # container stopped once its answer arrived) is routine here.
        error = sys.exc_info()[1]
        self.api.log(f"connection from {client_address} ended: {error!r}")


class _Refused(Exception):
    """A request the server answers with an error status instead of serving."""

    def __init__(self, status: HTTPStatus, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


class _Handler(BaseHTTPRequestHandler):
    server: _Httpd
    # One request per connection keeps clients that read to end-of-stream
    # (a shell bootstrap over /dev/tcp, a small C client) simple and correct.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        # The base class writes to stderr; route it to the caller's log instead.
        self.server.api.log(format % args)

    def do_GET(self) -> None:
        if self.path != _NEXT_PATH:
            self._reply(HTTPStatus.NOT_FOUND, "NotFound", f"no such path {self.path}")
            return
        invocation = self.server.api._take_next()
        if invocation is None:  # closing: end the call without an event
            self.close_connection = True
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(invocation.payload)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", invocation.request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", invocation.function_arn)
        self.send_header("Lambda-Runtime-Trace-Id", invocation.trace_id)
        self.end_headers()
        self.wfile.write(invocation.payload)

    def do_POST(self) -> None:
        api = self.server.api
        if self.path == _INIT_ERROR_PATH:
            body = self._read_body_or_refuse()
            if body is not None:
                api.outcomes.put(
                    Outcome(OutcomeKind.INIT_ERROR, None, body, self._error_type())
                )
                self._accepted()
            return

        match = _INVOCATION_PATH.fullmatch(self.path)
        if match is None:
            self._reply(HTTPStatus.NOT_FOUND, "NotFound", f"no such path {self.path}")
            return
        request_id, verb = match.group("request_id"), match.group("verb")
        with api._lock:
            is_open = request_id in api._open
        if not is_open:
            self._reply(
                HTTPStatus.BAD_REQUEST,
                "InvalidRequestID",
                f"no open invocation has request id {request_id!r}",
            )
            return
        try:
            body = self._read_body()
        except _Refused as refusal:
            self._reply(refusal.status, refusal.error_type, refusal.message)
            if refusal.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
                # Lambda fails the invocation itself when its response is too big.
                api._settle(request_id)
                api.outcomes.put(
                    Outcome(
                        OutcomeKind.ERROR,
                        request_id,
                        refusal.message.encode(),
                        "Function.ResponseSizeTooLarge",
                    )
                )
            return
        if not api._settle(request_id):  # answered twice, at the same time
            self._reply(
                HTTPStatus.BAD_REQUEST,
                "InvalidRequestID",
                f"invocation {request_id!r} was already answered",
            )
            return
        if verb == "response":
            api.outcomes.put(Outcome(OutcomeKind.RESPONSE, request_id, body))
        else:
            api.outcomes.put(
                Outcome(OutcomeKind.ERROR, request_id, body, self._error_type())
            )
        self._accepted()

    def _error_type(self) -> str | None:
        return self.headers.get("Lambda-Runtime-Function-Error-Type")

    def _read_body_or_refuse(self) -> bytes | None:
        """The request body; None after replying with the reason it was refused."""
        try:
            return self._read_body()
        except _Refused as refusal:
            self._reply(refusal.status, refusal.error_type, refusal.message)
            return None

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise _Refused(
                HTTPStatus.LENGTH_REQUIRED, "LengthRequired", "send a Content-Length"
            )
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            raise _Refused(
                HTTPStatus.BAD_REQUEST, "InvalidContentLength", "bad Content-Length"
            )
        if length > MAX_RESPONSE_BYTES:
            self._discard(length)
            raise _Refused(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "RequestEntityTooLarge",
                f"the response is {length:,} bytes, over Lambda's "
                f"{MAX_RESPONSE_BYTES:,}-byte limit",
            )
        return self.rfile.read(length)

    def _discard(self, length: int) -> None:
        """Read and drop a refused body, so the client sees the reply, not a reset.

        Past ``MAX_DISCARD_BYTES`` the connection is closed instead of read on.
        """
        remaining = min(length, MAX_DISCARD_BYTES)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                break
            remaining -= len(chunk)
        self.close_connection = True

    def _accepted(self) -> None:
        self._send_json(HTTPStatus.ACCEPTED, {"status": "OK"})

    def _reply(self, status: HTTPStatus, error_type: str, message: str) -> None:
        self._send_json(status, {"errorMessage": message, "errorType": error_type})

    def _send_json(self, status: HTTPStatus, document: dict[str, str]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@dataclass(frozen=True)
class RuntimeTestResult:
    """A round trip that ended with the expected response."""

    response: str
    seconds: float


def lambda_environment(api_address: str, handler: str) -> dict[str, str]:
    """The variables Lambda sets for a provided.* bootstrap, for a local run."""
    return {
        "AWS_LAMBDA_RUNTIME_API": api_address,
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_LAMBDA_FUNCTION_NAME": DEFAULT_FUNCTION_ARN.rsplit(":", 1)[1],
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": ":".join(LAMBDA_PATH),
        "LD_LIBRARY_PATH": "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
        "/var/task:/var/task/lib:/opt/lib",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
    }


def run_runtime_test(
    layer: Path,
    target: Target,
    event: str,
    expect: str | None,
    image: str,
    engine: Engine,
    reporter: Reporter,
    *,
    handler: str = "function.handler",
    function: Path | None = None,
    timeout_s: float = TEST_TIMEOUT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> RuntimeTestResult:
    """Send ``event`` through the layer's bootstrap and check what it answers.

    The bootstrap runs in ``image`` with the layer tree at /opt (read-only), the
    function's code from ``function`` at /var/task (an empty folder when None),
    as an unprivileged user, on the host's network so it reaches the Runtime
    API served on 127.0.0.1 (so the engine must run on this machine). The
    container is removed however the test ends.
    Raises ``SmokeTestError`` when the bootstrap posts an error, answers
    without ``expect``, exits, or says nothing within ``timeout_s``.
    """
    try:
        json.loads(event)
    except ValueError as error:
        msg = f"the test event is not a JSON document: {error}"
        raise UsageError(msg, hint="set runtime.event to JSON, such as '{}'") from None

    if not layer.is_dir():
        msg = f"{layer}: not a folder; the round trip takes an unzipped layer tree"
        raise UsageError(msg, hint="unzip the layer, or pass the tree it was built in")

    # Lambda makes /opt itself; whatever mode the folder holding the layer has
    # here (a fresh temporary folder is 0700) must not stop the bootstrap's user.
    layer.chmod(layer.stat().st_mode | DIRECTORY_MODE)

    with RuntimeApiServer(log=reporter.detail) as api, _task_root(function) as task:
        spec = BoxSpec(
            image=image,
            mounts=(Mount(layer, "/opt"), Mount(task, "/var/task")),
            env=lambda_environment(api.address, handler),
            user=SANDBOX_USER,
            network="host",
            platform=check_platform(target.arch),
            purpose="runtime-test",
        )
        reporter.step(f"Sending the test event through the bootstrap ({target.slug})")
        started = clock()
        with engine.box(spec) as box:
            bootstrap = _Bootstrap(box, reporter)
            api.invoke(event.encode(), timeout_s=timeout_s)
            bootstrap.start()
            try:
                outcome = _await_outcome(
                    api, bootstrap, target, timeout_s=timeout_s, clock=clock
                )
            finally:
                _stop(box, bootstrap)
        seconds = clock() - started

    return _judge(outcome, bootstrap, target, expect, seconds)


def run_recipe_test(
    recipe: Recipe,
    target: Target,
    layer: Path,
    *,
    image: str,
    engine: Engine,
    reporter: Reporter,
    event: str | None = None,
    timeout_s: float = TEST_TIMEOUT_SECONDS,
) -> RuntimeTestResult:
    """``run_runtime_test`` with the event, expectation, handler and function
    code a runtime recipe declares; ``event`` replaces the recipe's."""
    options = runtime_options(recipe)
    function = recipe.directory / options.function if options.function else None
    return run_runtime_test(
        layer,
        target,
        options.event if event is None else event,
        options.expect,
        image,
        engine,
        reporter,
        handler=options.handler,
        function=function,
        timeout_s=timeout_s,
    )


class _Bootstrap(threading.Thread):
    """Runs /opt/bootstrap in the container until it exits or is removed."""

    def __init__(self, box: Box, reporter: Reporter) -> None:
        super().__init__(name="bootstrap", daemon=True)
        self.box = box
        self.reporter = reporter
        self.finished: Finished | None = None
        self.error: LayerbuildError | None = None

    def run(self) -> None:
        try:
            self.finished = self.box.exec(
                ["/opt/bootstrap"], self.reporter, workdir="/var/task"
            )
        except LayerbuildError as error:  # the container went away under it
            self.error = error


def _stop(box: Box, bootstrap: _Bootstrap) -> None:
    """End the bootstrap, which would otherwise wait for events forever.

    Killing every process of the sandbox user but the container's first one
    lets the bootstrap's exec end as any finished command does, rather than
    being cut off by removing the container under it.
    """
    if bootstrap.is_alive():
        # Should that fail, removing the container ends the bootstrap anyway.
        with suppress(LayerbuildError):
            box.exec(["/bin/sh", "-c", "kill -KILL -1"], _QUIET, echo=False)
    bootstrap.join(timeout=STOP_SECONDS)


@contextmanager
def _task_root(function: Path | None) -> Iterator[Path]:
    """The function's code folder, or an empty one, for /var/task."""
    if function is not None:
        yield function.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="layerbuild-task-") as scratch:
        # The bootstrap's user must be able to enter its working folder.
        Path(scratch).chmod(DIRECTORY_MODE)
        yield Path(scratch)


def _await_outcome(
    api: RuntimeApiServer,
    bootstrap: _Bootstrap,
    target: Target,
    *,
    timeout_s: float,
    clock: Callable[[], float],
) -> Outcome | None:
    """The first thing the bootstrap posted; None when it exited without a word."""
    deadline = clock() + timeout_s
    while True:
        try:
            return api.outcomes.get(timeout=POLL_SECONDS)
        except queue.Empty:
            pass
        if not bootstrap.is_alive():
            # It may have posted just before it exited.
            try:
                return api.outcomes.get(timeout=POLL_SECONDS)
            except queue.Empty:
                return None
        if clock() >= deadline:
            msg = (
                f"{target.slug}: the bootstrap did not answer the test event within "
                f"{timeout_s:g} s"
            )
            raise SmokeTestError(msg, hint=_SEE_OUTPUT)


_QUIET = NullReporter()
_SEE_OUTPUT = "run with -v to see the bootstrap's output"


def _judge(
    outcome: Outcome | None,
    bootstrap: _Bootstrap,
    target: Target,
    expect: str | None,
    seconds: float,
) -> RuntimeTestResult:
    if outcome is None:
        finished = bootstrap.finished
        status = finished.exit_code if finished else "an unknown status"
        tail = _excerpt(finished.tail_text()) if finished else str(bootstrap.error)
        msg = (
            f"{target.slug}: the bootstrap exited with {status} before answering "
            f"the test event: {tail}"
        )
        raise SmokeTestError(msg, hint=_SEE_OUTPUT)
    if outcome.kind is OutcomeKind.INIT_ERROR:
        msg = (
            f"{target.slug}: the bootstrap could not start: {outcome.describe_error()}"
        )
        raise SmokeTestError(msg, hint=_SEE_OUTPUT)
    if outcome.kind is OutcomeKind.ERROR:
        msg = (
            f"{target.slug}: the bootstrap answered the test event with an error: "
            f"{_excerpt(outcome.describe_error())}"
        )
        raise SmokeTestError(msg, hint=_SEE_OUTPUT)

    response = outcome.body.decode("utf-8", errors="replace")
    if expect is not None and expect not in response:
        msg = (
            f"{target.slug}: the response does not contain {expect!r}: "
            f"{_excerpt(response)}"
        )
        raise SmokeTestError(msg, hint="compare runtime.expect with the response")
    return RuntimeTestResult(response=response, seconds=seconds)


def _excerpt(text: str) -> str:
    text = text.strip()
    if len(text) <= EXCERPT_CHARS:
        return text
    return text[:EXCERPT_CHARS] + f"... ({len(text):,} characters)"
