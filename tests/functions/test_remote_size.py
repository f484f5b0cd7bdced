"""Reading the unzipped size of a zip behind a URL (Code.Location, Content.Location)."""

from __future__ import annotations

import functools
import http.server
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from layerbuild.functions import SizeUnknown, remote_unzipped_bytes
from tests.functions.conftest import REGION, make_zip


class RecordingOpener:
    """urlopen, keeping the Range header of each request."""

    def __init__(self) -> None:
        self.ranges: list[str | None] = []

    def __call__(self, request: urllib.request.Request, **kwargs: Any) -> Any:
        self.ranges.append(request.get_header("Range"))
        return urllib.request.urlopen(request, **kwargs)


def presigned(aws_env: dict[str, str], content: bytes) -> str:
    """A presigned GET URL for ``content`` in moto's S3, as Lambda hands out."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="code")
    s3.put_object(Bucket="code", Key="fn.zip", Body=content)
    url: str = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "code", "Key": "fn.zip"}, ExpiresIn=600
    )
    return url


@pytest.mark.moto
def test_only_the_end_of_the_zip_is_fetched(aws_env: dict[str, str]) -> None:
    """One range request for the last MiB gives every file's size."""
    files = {"python/big.bin": bytes(3_000_000), "python/small.py": b"x" * 123}
    opener = RecordingOpener()

    size = remote_unzipped_bytes(presigned(aws_env, make_zip(files)), opener=opener)

    assert size == 3_000_123
    assert opener.ranges == ["bytes=-1048576"]


@pytest.mark.moto
def test_a_long_central_directory_is_fetched_from_its_start(
    aws_env: dict[str, str],
) -> None:
    """More than a MiB of file entries: a second request from where they begin."""
    files = {f"python/pkg/{'m' * 80}/{n:05}.py": b"v = 1\n" for n in range(9000)}
    opener = RecordingOpener()

    size = remote_unzipped_bytes(presigned(aws_env, make_zip(files)), opener=opener)

    assert size == 9000 * 6
    assert len(opener.ranges) == 2
    assert opener.ranges[1] is not None
    assert opener.ranges[1].startswith("bytes=")
    assert opener.ranges[1].endswith("-")


@pytest.fixture
def plain_server(tmp_path: Path) -> Iterator[str]:
    """An HTTP server that ignores Range headers (Python's own)."""
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path)
    )
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_without_ranges_sends_the_whole_zip(
    plain_server: str, tmp_path: Path
) -> None:
    """A 200 answer is spooled and read whole."""
    (tmp_path / "layer.zip").write_bytes(make_zip({"a.txt": b"a" * 4096}))

    assert remote_unzipped_bytes(f"{plain_server}/layer.zip") == 4096


def test_something_that_is_not_a_zip_is_unknown(
    plain_server: str, tmp_path: Path
) -> None:
    """An HTML page or any other answer is not guessed at."""
    (tmp_path / "page.html").write_text("<html></html>")

    with pytest.raises(SizeUnknown, match=r"page.html is not a readable zip"):
        remote_unzipped_bytes(f"{plain_server}/page.html")


def test_an_s3_uri_is_unknown_without_a_request() -> None:
    """moto's layer Content.Location is the literal ``s3://``."""
    with pytest.raises(SizeUnknown, match=r"^s3:// is not a downloadable URL$"):
        remote_unzipped_bytes("s3://")


def test_an_unreachable_url_is_unknown_and_keeps_the_signature_out(
    plain_server: str,
) -> None:
    """A 404 (or no network) -> unknown; the query, a signature, is not shown."""
    with pytest.raises(SizeUnknown) as caught:
        remote_unzipped_bytes(f"{plain_server}/missing.zip?X-Amz-Signature=secret")

    assert "secret" not in str(caught.value)
    assert str(caught.value).startswith(f"{plain_server}/missing.zip could not be read")
