"""A pytest plugin: one moto server for the whole test run, reset between tests.

The server stands in for S3 and Lambda on 127.0.0.1. It starts on first use,
so runs that select no ``moto`` test never pay for it. Fixtures:

- ``moto_endpoint``: the server's URL, with moto's state reset for this test;
- ``aws_env``: environment variables that point boto3 and the AWS CLI at it,
  with fake credentials; also applied to ``os.environ`` for the test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT_SECONDS = 30
POLL_SECONDS = 0.1
DEFAULT_REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _post(url: str) -> None:
    request = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@pytest.fixture(scope="session")
def _moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``moto_server`` once; yield its URL; stop it at the end."""
    executable = shutil.which("moto_server")
    if executable is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path: Path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    env = {
        **os.environ,
        **FAKE_CREDENTIALS,
        # moto would run Lambda functions in the local Docker engine if it
        # found one; the layer and function APIs it serves here need none.
        "DOCKER_HOST": "unix:///nonexistent",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [executable, "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _answers(f"{url}/moto-api/data.json"):
            if process.poll() is not None or time.monotonic() > deadline:
                output = log_path.read_text(errors="replace")[-2000:]
                pytest.fail(f"moto_server did not start on {url}:\n{output}")
            time.sleep(POLL_SECONDS)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def moto_endpoint(_moto_server: str) -> str:
    """The moto server's URL, its state emptied before this test."""
    _post(f"{_moto_server}/moto-api/reset")
    return _moto_server


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment variables pointing boto3 and the AWS CLI at the moto server.

    They are also set in ``os.environ`` for the duration of the test, so code
    that uses the standard credential chain finds the fake credentials and
    never a real account's.
    """
    env = {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_DEFAULT_REGION": DEFAULT_REGION,
        # Keep any shared config or credentials on this machine out of the test.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
