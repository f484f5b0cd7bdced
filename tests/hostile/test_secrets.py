"""Secrets never reach output or files, whether a command works or fails.

Sentinel values stand in for an index password, AWS keys in the environment
and AWS keys in a shared credentials file. Every command runs with ``-v``, so
the most talkative output is the one searched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.aws.conftest import BUCKET_TEMPLATE, boto, buckets, write_layer
from tests.cli_runner import CliResult
from tests.hostile.faultproxy import Fault, fault_proxy
from tests.hostile.simple_index import IndexServer, Member, make_wheel, serve_index

pytestmark = pytest.mark.hostile

__all__ = ["boto", "buckets"]  # fixtures used by name below

INDEX_PASSWORD = "SENTINELindexPW7781"
SECRET_KEY = "SENTINELsecretKEY4242"
SESSION_TOKEN = "SENTINELsessionTOKEN9090"
PROFILE_SECRET = "SENTINELprofileSECRET5150"
SENTINELS = (INDEX_PASSWORD, SECRET_KEY, SESSION_TOKEN, PROFILE_SECRET)
REGION = "eu-west-1"
CREDENTIALS = "credentials"


def assert_clean(result: CliResult, *folders: Path) -> None:
    """No sentinel in the output, nor in any file under ``folders``."""
    for sentinel in SENTINELS:
        assert sentinel not in result.stdout
        assert sentinel not in result.stderr
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            # The credentials file the test wrote is where the secret belongs.
            if path.is_file() and not path.is_symlink() and path.name != CREDENTIALS:
                data = path.read_bytes()
                for sentinel in SENTINELS:
                    assert sentinel.encode() not in data, path


# -------------------------------------------------------- index credentials


@pytest.fixture
def private_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[IndexServer]:
    """An index that wants a password, given to layerbuild inside its URL."""
    with serve_index(
        tmp_path / "index", user="builder", password=INDEX_PASSWORD
    ) as server:
        assert INDEX_PASSWORD in server.url
        monkeypatch.setenv("UV_INDEX_URL", server.url)
        monkeypatch.setenv("LAYERBUILD_CACHE_DIR", str(tmp_path / "cache"))
        yield server


def _recipe(tmp_path: Path, requirement: str) -> Path:
    recipes = tmp_path / "recipes"
    recipes.mkdir(exist_ok=True)
    (recipes / "secret.toml").write_text(
        f'runtimes = ["python3.12"]\nrequirements = ["{requirement}"]\n'
    )
    return recipes


def test_index_password_stays_out_of_lock_build_and_output(
    run_cli, tmp_path: Path, private_index: IndexServer
) -> None:
    """A working lock and build behind a password: nothing shows it."""
    make_wheel(private_index.folder, "privpkg")
    recipes = _recipe(tmp_path, "privpkg")
    common = ["--recipes-dir", str(recipes), "--builder", "local"]

    locked = run_cli("-v", "lock", "secret", *common)
    built = run_cli("-v", "build", "secret", *common, "--dist", str(tmp_path / "dist"))

    assert locked.status == 0, locked.stderr
    assert built.status == 0, built.stderr
    for result in (locked, built):
        assert_clean(result, recipes, tmp_path / "dist", tmp_path / "cache")


@pytest.mark.parametrize(
    "requirement", ["absentpkg", "privpkg>=9", "hostilepkg"], ids=str
)
def test_index_password_stays_out_of_failures(
    run_cli, tmp_path: Path, private_index: IndexServer, requirement: str
) -> None:
    """Missing packages, impossible versions and refused wheels name no password."""
    make_wheel(private_index.folder, "privpkg")
    make_wheel(
        private_index.folder, "hostilepkg", extra=(Member("../../escape.txt", b"x"),)
    )
    recipes = _recipe(tmp_path, requirement)

    result = run_cli(
        "-v", "build", "secret", "--recipes-dir", str(recipes), "--builder", "local",
        "--dist", str(tmp_path / "dist"),
    )  # fmt: skip

    assert result.status in (1, 2), result.stderr
    assert "error:" in result.stderr
    assert_clean(result, recipes, tmp_path / "cache")


def test_wrong_index_password_is_reported_without_it(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused password is not echoed back in the error."""
    with serve_index(tmp_path / "index", user="builder", password="other") as server:
        url = server.url.replace("other", INDEX_PASSWORD)
        monkeypatch.setenv("UV_INDEX_URL", url)
        monkeypatch.setenv("LAYERBUILD_CACHE_DIR", str(tmp_path / "cache"))
        recipes = _recipe(tmp_path, "privpkg")

        result = run_cli(
            "-v", "lock", "secret", "--recipes-dir", str(recipes), "--builder", "local"
        )

    assert result.status in (1, 2)
    assert_clean(result, recipes, tmp_path / "cache")


# ---------------------------------------------------------- AWS credentials


@pytest.fixture
def secret_env(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    """Sentinel keys in the environment and in a shared credentials file."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    credentials = tmp_path / CREDENTIALS
    credentials.write_text(
        "[sentinel]\naws_access_key_id = AKIASENTINEL\n"
        f"aws_secret_access_key = {PROFILE_SECRET}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    return credentials


def _publish(run_cli, tmp_path: Path, *extra: str) -> CliResult:
    return run_cli(
        "-v", "publish", "--dist", str(tmp_path / "dist"), "--bucket", BUCKET_TEMPLATE,
        "--region", REGION, "--records", str(tmp_path / "layers.json"), *extra,
    )  # fmt: skip


@pytest.mark.moto
@pytest.mark.parametrize("profile", [None, "sentinel"], ids=["env", "profile"])
def test_aws_keys_stay_out_of_publish(
    run_cli,
    tmp_path: Path,
    secret_env: Path,
    buckets: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    profile: str | None,
) -> None:
    """Publishing, then publishing again: keys in no output and no file."""
    buckets(REGION)
    write_layer(tmp_path / "dist")
    extra = ("--profile", profile) if profile else ()
    if profile:
        # The profile's keys only count if the environment's are not in the way.
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)

    first = _publish(run_cli, tmp_path, *extra)
    again = _publish(run_cli, tmp_path, *extra, "--json")

    assert first.status == 0, first.stderr
    assert again.status == 0, again.stderr
    for result in (first, again):
        assert_clean(result, tmp_path / "dist")
    assert_clean(again, tmp_path / "layers.json")


@pytest.mark.moto
@pytest.mark.parametrize(
    "extra",
    [
        ("--endpoint-url", "{denied}"),
        ("--profile", "missing"),
        ("--bucket", "no-such-bucket-anywhere"),
        ("--share", "123456789012", "--share-public", "--dry-run"),
    ],
    ids=["denied", "no-profile", "no-bucket", "dry-run"],
)
def test_aws_keys_stay_out_of_publish_failures(
    run_cli,
    tmp_path: Path,
    secret_env: Path,
    moto_endpoint: str,
    extra: tuple[str, ...],
) -> None:
    """Failures (and a dry run) print no key, even with -v."""
    write_layer(tmp_path / "dist")
    refuse_all = Fault("denied-403", times=1000)

    with fault_proxy(moto_endpoint, [refuse_all]) as proxy:
        args = [arg.replace("{denied}", proxy.url) for arg in extra]
        result = _publish(run_cli, tmp_path, *args)

    assert "Traceback" not in result.stderr
    assert result.status == 0 if "--dry-run" in extra else result.status in (1, 2)
    assert_clean(result, tmp_path)


def test_secret_env_reaches_no_build_output(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS keys in the environment of a build (as in CI) show up nowhere."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    with serve_index(tmp_path / "index") as server:
        monkeypatch.setenv("UV_INDEX_URL", server.url)
        monkeypatch.setenv("LAYERBUILD_CACHE_DIR", str(tmp_path / "cache"))
        make_wheel(server.folder, "plainpkg")
        recipes = _recipe(tmp_path, "plainpkg")

        result = run_cli(
            "-v", "build", "secret", "--recipes-dir", str(recipes), "--builder",
            "local", "--dist", str(tmp_path / "dist"),
        )  # fmt: skip

    assert result.status == 0, result.stderr
    assert_clean(result, tmp_path / "dist", recipes)
