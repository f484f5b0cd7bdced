"""The local Runtime API, driven by a plain Python client as a bootstrap would."""

from __future__ import annotations

import http.client
import itertools
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from layerbuild.containers import Engine
from layerbuild.errors import ExitStatus, UsageError
from layerbuild.report import NullReporter
from layerbuild.runtime_api import (
    API_VERSION,
    MAX_RESPONSE_BYTES,
    Outcome,
    OutcomeKind,
    RuntimeApiServer,
    run_runtime_test,
)
from layerbuild.targets import Target

NEXT = f"/{API_VERSION}/runtime/invocation/next"


def request(
    server: RuntimeApiServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP call to the server: status, headers, body."""
    host, port = server.address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        reply = connection.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        connection.close()


def take_event(server: RuntimeApiServer, verb: str) -> str:
    """Queue an event, fetch it as a bootstrap would; the path to answer it on."""
    invocation = server.invoke(b"{}", timeout_s=3)
    request(server, "GET", NEXT)
    return f"/{API_VERSION}/runtime/invocation/{invocation.request_id}/{verb}"


@pytest.fixture
def server() -> Iterator[RuntimeApiServer]:
    """A started server with a fixed clock and request ids req-0, req-1, ..."""
    ids = (f"req-{n}" for n in itertools.count())
    with RuntimeApiServer(
        clock=lambda: 1_700_000_000.0, new_request_id=ids.__next__
    ) as api:
        yield api


def test_next_hands_out_the_event_with_lambdas_headers(
    server: RuntimeApiServer,
) -> None:
    """``next`` returns the queued payload with request id, deadline, ARN and trace."""
    server.invoke(b'{"name": "world"}', timeout_s=3)

    status, headers, body = request(server, "GET", NEXT)

    assert status == 200
    assert body == b'{"name": "world"}'
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-0"
    assert headers["Lambda-Runtime-Deadline-Ms"] == "1700000003000"
    assert headers["Lambda-Runtime-Invoked-Function-Arn"].startswith("arn:aws:lambda:")
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")


def test_a_response_is_accepted_and_recorded(server: RuntimeApiServer) -> None:
    """Posting a response gets 202 and lands in ``outcomes`` under its id."""
    path = take_event(server, "response")

    status, _, body = request(server, "POST", path, b'{"ok": true}')

    assert status == 202
    assert json.loads(body) == {"status": "OK"}
    assert server.outcomes.get(timeout=1) == Outcome(
        OutcomeKind.RESPONSE, "req-0", b'{"ok": true}'
    )


def test_an_invocation_error_keeps_its_type_and_message(
    server: RuntimeApiServer,
) -> None:
    """An error post is recorded with the error-type header and the JSON body."""
    path = take_event(server, "error")
    error = {"errorMessage": "division by zero", "errorType": "ZeroDivisionError"}

    status, _, _ = request(
        server,
        "POST",
        path,
        json.dumps(error).encode(),
        {"Lambda-Runtime-Function-Error-Type": "Unhandled"},
    )

    assert status == 202
    outcome = server.outcomes.get(timeout=1)
    assert outcome.kind is OutcomeKind.ERROR
    assert outcome.error_type == "Unhandled"
    assert outcome.describe_error() == "ZeroDivisionError: division by zero"


def test_an_init_error_is_recorded_without_a_request_id(
    server: RuntimeApiServer,
) -> None:
    """``init/error`` needs no invocation and is kept as an init error."""
    status, _, _ = request(
        server,
        "POST",
        f"/{API_VERSION}/runtime/init/error",
        b"handler not found",
        {"Lambda-Runtime-Function-Error-Type": "Runtime.NoSuchHandler"},
    )

    assert status == 202
    outcome = server.outcomes.get(timeout=1)
    assert outcome.kind is OutcomeKind.INIT_ERROR
    assert outcome.request_id is None
    assert outcome.describe_error() == "Runtime.NoSuchHandler: handler not found"


def test_an_unknown_or_repeated_request_id_is_refused(
    server: RuntimeApiServer,
) -> None:
    """Only an invocation handed out and not yet answered can be answered."""
    invocation = server.invoke(b"{}", timeout_s=3)
    path = f"/{API_VERSION}/runtime/invocation/{invocation.request_id}/response"

    before, _, body = request(server, "POST", path, b"early")
    request(server, "GET", NEXT)
    first, _, _ = request(server, "POST", path, b"first")
    again, _, _ = request(server, "POST", path, b"again")

    assert (before, first, again) == (400, 202, 400)
    assert json.loads(body)["errorType"] == "InvalidRequestID"
    assert server.outcomes.get(timeout=1).body == b"first"
    assert server.outcomes.empty()


def test_a_response_over_lambdas_limit_fails_the_invocation(
    server: RuntimeApiServer,
) -> None:
    """A body over 6 MiB is refused with 413 and recorded as the invocation's error."""
    path = take_event(server, "response")

    status, _, _ = request(server, "POST", path, b"x" * (MAX_RESPONSE_BYTES + 1))

    assert status == 413
    outcome = server.outcomes.get(timeout=1)
    assert outcome.kind is OutcomeKind.ERROR
    assert outcome.error_type == "Function.ResponseSizeTooLarge"


def test_unknown_paths_get_404(server: RuntimeApiServer) -> None:
    """Paths outside the four calls are not found, with a JSON error."""
    status, _, body = request(server, "GET", "/2018-06-01/runtime/other")

    assert status == 404
    assert json.loads(body)["errorType"] == "NotFound"


def test_next_waits_for_an_event_and_close_ends_the_wait() -> None:
    """A ``next`` call blocks until an event is queued; closing releases it."""
    api = RuntimeApiServer().start()
    results: list[int] = []

    def call_next() -> None:
        results.append(request(api, "GET", NEXT)[0])

    waiter = threading.Thread(target=call_next)
    waiter.start()
    waiter.join(timeout=0.5)
    assert waiter.is_alive()  # nothing queued yet

    api.invoke(b"{}", timeout_s=3)
    waiter.join(timeout=5)
    assert results == [200]

    ended: list[str] = []

    def call_next_until_closed() -> None:
        with pytest.raises(http.client.RemoteDisconnected):
            request(api, "GET", NEXT)
        ended.append("disconnected")

    idle = threading.Thread(target=call_next_until_closed)
    idle.start()
    idle.join(timeout=0.3)
    api.close()
    idle.join(timeout=5)
    assert ended == ["disconnected"]


def test_an_event_that_is_not_json_is_bad_input(tmp_path: Path) -> None:
    """The round trip refuses it before any container starts, with exit status 2."""
    target = Target.of("provided.al2", "x86_64")
    no_engine = cast(Engine, object())  # any use of it would fail

    with pytest.raises(UsageError) as caught:
        run_runtime_test(
            tmp_path, target, "{name: 1}", None, "unused", no_engine, NullReporter()
        )

    assert caught.value.message.startswith("the test event is not a JSON document")
    assert caught.value.exit_status == ExitStatus.BAD_INPUT


def test_a_layer_that_is_not_a_folder_is_bad_input(tmp_path: Path) -> None:
    """A zip or a missing path is named, before any container starts."""
    target = Target.of("provided.al2", "x86_64")
    no_engine = cast(Engine, object())
    missing = tmp_path / "layer.zip"

    with pytest.raises(UsageError, match=r"layer\.zip: not a folder"):
        run_runtime_test(
            missing, target, "{}", None, "unused", no_engine, NullReporter()
        )
