"""A small HTTP proxy on 127.0.0.1 that passes requests to a server, with faults.

It sits between boto3 and the moto server. Each ``Fault`` matches requests by
method and a piece of the path (and query), and fires a bounded number of
times: answer with throttling (Lambda's 429 ``TooManyRequestsException``, a
400 ``ThrottlingException`` or S3's 503 ``SlowDown``), answer with a 500 or a 403, drop
the connection before forwarding, drop it halfway through reading the body
(an upload cut off), or forward the request and then drop the connection so
the client never hears that it went through (the lost answer). The proxy stops
by itself after ``lifetime`` seconds, whatever the test does.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Answers a fault can give, as (status, content type, body).
ANSWERS: dict[str, tuple[int, str, bytes]] = {
    "throttle-lambda": (
        429,
        "application/json",
        json.dumps(
            {
                "Type": "User",
                "message": "Rate exceeded",
                "Reason": "CallerRateLimitExceeded",
            }
        ).encode(),
    ),
    "throttle-400": (
        400,
        "application/json",
        json.dumps(
            {"__type": "ThrottlingException", "message": "Rate exceeded"}
        ).encode(),
    ),
    "slowdown": (
        503,
        "application/xml",
        b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
        b"<Message>Please reduce your request rate.</Message></Error>",
    ),
    "denied-403": (
        403,
        "application/json",
        json.dumps({"__type": "AccessDeniedException", "message": "injected"}).encode(),
    ),
    "error-500": (
        500,
        "application/json",
        json.dumps({"__type": "ServiceException", "message": "injected"}).encode(),
    ),
}
DROPS = ("drop-before", "drop-mid-body", "drop-after")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "expect", "host"}


@dataclass
class Fault:
    """Fire ``action`` on the first ``times`` requests that match."""

    action: str  # a key of ANSWERS, or one of DROPS
    method: str = ""  # "" matches any method
    path_contains: str = ""  # matched against the path with its query
    region: str = ""  # matched against the signature's scope, e.g. "eu-west-1"
    times: int = 1
    fired: int = 0

    def matches(self, method: str, path: str, authorization: str) -> bool:
        return (
            self.fired < self.times
            and (not self.method or self.method == method)
            and self.path_contains in path
            and (not self.region or f"/{self.region}/" in authorization)
        )


@dataclass
class Proxy:
    """A running proxy: ``url`` for clients, and a log of what passed."""

    url: str
    faults: list[Fault]
    log: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, fate

    def fired(self) -> int:
        return sum(fault.fired for fault in self.faults)


def _handler(upstream: str, proxy: Proxy, lock: threading.Lock) -> type:
    target = urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the tests read ``Proxy.log`` instead."""

        def _fault(self) -> Fault | None:
            with lock:
                for fault in proxy.faults:
                    authorization = self.headers.get("Authorization", "")
                    if fault.matches(self.command, self.path, authorization):
                        fault.fired += 1
                        return fault
            return None

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):  # the client may be gone already
                self.connection.shutdown(socket.SHUT_RDWR)

        def _answer(
            self, status: int, headers: list[tuple[str, str]], body: bytes
        ) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self) -> None:
            fault = self._fault()
            action = fault.action if fault else "pass"
            proxy.log.append((self.command, self.path, action))
            length = int(self.headers.get("Content-Length") or 0)
            if action == "drop-before":
                self._drop()
                return
            if action == "drop-mid-body":
                self.rfile.read(length // 2)
                self._drop()
                return
            body = self.rfile.read(length) if length else b""
            if action in ANSWERS:
                status, content_type, payload = ANSWERS[action]
                self._answer(status, [("Content-Type", content_type)], payload)
                return

            headers = {
                name: value
                for name, value in self.headers.items()
                if name.lower() not in HOP_HEADERS
            }
            headers["Host"] = self.headers.get("Host", target.netloc)
            connection = http.client.HTTPConnection(
                target.hostname, target.port, timeout=60
            )
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            finally:
                connection.close()
            if action == "drop-after":
                self._drop()
                return
            # A HEAD answer keeps its Content-Length: it is the object's size.
            head = self.command == "HEAD"
            skipped = HOP_HEADERS | (set() if head else {"content-length"})
            kept = [
                (name, value)
                for name, value in response.getheaders()
                if name.lower() not in skipped
            ]
            self._answer(response.status, kept, payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    return Handler


@contextmanager
def fault_proxy(
    upstream: str, faults: list[Fault], *, lifetime: float = 60.0
) -> Iterator[Proxy]:
    """Run a proxy in front of ``upstream`` for the block (at most ``lifetime`` s)."""
    proxy = Proxy("", faults)
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), _handler(upstream, proxy, threading.Lock())
    )
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # Stops by itself, so a test that hangs cannot keep the port forever.
    timer = threading.Timer(lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    try:
        yield proxy
    finally:
        timer.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
