"""Malformed locks, command lines, manifests and recipes: one line, status 2.

Every case runs the real entry point and checks the whole contract: the
documented exit status, exactly one ``error:`` line carrying the expected
words, no traceback, and nothing on stdout.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerbuild.errors import RecipeError
from layerbuild.recipe import load_recipe
from tests.aws.conftest import write_layer
from tests.build.test_recipe_errors import BROKEN_RECIPES, VALID
from tests.cli_runner import CliResult

pytestmark = pytest.mark.hostile

GOOD_HASH = "a" * 64
PIN = f"requests==2.32.3 \\\n    --hash=sha256:{GOOD_HASH}\n"


def assert_one_error(result: CliResult, expected: str, status: int = 2) -> None:
    """The contract every bad input is held to."""
    assert result.status == status, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert expected in errors[0], errors[0]
    assert result.stdout == ""


# ------------------------------------------------------------------- locks

# (lock file bytes, words the error line must contain)
BROKEN_LOCKS: list[tuple[bytes, str]] = [
    (b"", "holds no pinned requirement"),
    (b"# only a comment\n\n", "holds no pinned requirement"),
    (PIN.encode()[:30], "has no --hash"),
    (PIN.encode()[:5], "is not pinned"),
    (b"requests\n", "is not pinned"),
    (b"requests>=2.0 --hash=sha256:" + GOOD_HASH.encode() + b"\n", "is not pinned"),
    (b"requests==2.32.3\n", "has no --hash"),
    (b"requests==2.32.3 --hash=md5:" + b"a" * 32 + b"\n", "has no --hash"),
    (b"requests==2.32.3 --hash=sha256:abc\n", "has no --hash"),
    (b"\x00\x01\xfe\xff\x89PNG\r\n\x1a\n" * 8, "cannot be read"),
    (PIN.encode("utf-16"), "cannot be read"),
    (b"-e git+https://example.com/requests.git#egg=requests\n", "is not pinned"),
    (
        b"requests @ https://example.com/requests-2.32.3-py3-none-any.whl "
        b"--hash=sha256:" + GOOD_HASH.encode() + b"\n",
        "is not pinned",
    ),
    (b"--index-url https://example.com/simple\n" + PIN.encode(), "is not pinned"),
    (b"requests===2.32.3 --hash=sha256:" + GOOD_HASH.encode() + b"\n", "version"),
    (b"requests==2.32.3.x --hash=sha256:" + GOOD_HASH.encode() + b"\n", "version"),
    ((PIN + PIN.replace("2.32.3", "2.31.0")).encode(), "pinned twice"),
]


@pytest.mark.parametrize(("data", "expected"), BROKEN_LOCKS)
def test_broken_lock_stops_build_with_one_line(
    run_cli, recipe_dir: Path, data: bytes, expected: str
) -> None:
    """A lock beside the recipe is checked before anything is installed."""
    (recipe_dir / "demo.toml").write_text(VALID)
    lock = recipe_dir / "locks" / "demo" / "python3.12-x86_64.txt"
    lock.parent.mkdir(parents=True)
    lock.write_bytes(data)

    result = run_cli(
        "build", "demo", "--recipes-dir", str(recipe_dir), "--builder", "local",
        "--dist", str(recipe_dir.parent / "dist"),
    )  # fmt: skip

    assert_one_error(result, expected)
    assert str(lock) in result.stderr
    assert not list((recipe_dir.parent / "dist").glob("*.zip"))


# ----------------------------------------------------------- command lines


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A recipe, a built layer and a plain file to misuse, in one folder."""
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "demo.toml").write_text(VALID)
    write_layer(tmp_path / "dist")
    (tmp_path / "plain.txt").write_text("not a folder\n")
    (tmp_path / "notazip.zip").write_text("not a zip\n")
    return tmp_path


PUBLISH = ["publish", "--dist", "{w}/dist", "--records", "{w}/layers.json"]
AUDIT = ["audit", "{w}/dist/demo-python312-x86_64.zip", "--runtime", "python3.12"]
BUILD = ["build", "demo", "--recipes-dir", "{w}/recipes", "--builder", "local"]

# (arguments, words the error line must contain); {w} is the workspace.
BAD_COMMAND_LINES: list[tuple[list[str], str]] = [
    (["frobnicate"], "No such command"),
    (["build", "--frobnicate"], "No such option"),
    ([*BUILD, "--runtime", "python2.7"], "'python2.7' is not one of"),
    ([*BUILD, "--runtime", ""], "--runtime"),
    ([*BUILD, "--arch", "sparc"], "'sparc' is not one of"),
    ([*BUILD, "--arch", "x86-64"], "'x86-64' is not one of"),
    ([*BUILD, "--jobs", "0"], "0 is not in the range"),
    ([*BUILD, "--jobs", "-3"], "--jobs"),
    ([*BUILD, "--jobs", "many"], "'many' is not a valid integer"),
    ([*BUILD, "--builder", "podman"], "'podman' is not one of"),
    ([*BUILD, "--dist", "{w}/plain.txt"], "is a file"),
    (["build", "demo", "--recipes-dir", "{w}/plain.txt"], "is a file"),
    (["build", "nope", "--recipes-dir", "{w}/recipes"], "no such recipe file"),
    ([*BUILD, "--runtime", "python3.11"], "no target left"),
    ([*BUILD, "--arch", "arm64"], "no target left"),
    (["lock", "demo", "--recipes-dir", "{w}/recipes", "--arch", "arm64"], "no target"),
    (["-v", "-q", "list"], "cannot be combined"),
    (["list", "--recipes-dir", "{w}/plain.txt"], "is a file"),
    (["audit", "{w}/missing.zip"], "does not exist"),
    (["audit", "{w}/notazip.zip"], "no manifest beside it"),
    ([*AUDIT, "--arch", "x86_64", "--size-budget", "huge"], "'huge' is not a size"),
    ([*AUDIT, "--arch", "x86_64", "--size-budget", "0"], "'0' is not a size"),
    (["audit", "{w}/dist", "--arch", "x86_64"], "no manifest beside it"),
    ([*PUBLISH, "--region", "eu-west-1"], "Missing option '--bucket'"),
    ([*PUBLISH, "--bucket", "Bad_Bucket", "--region", "eu-west-1"], "'Bad_Bucket'"),
    ([*PUBLISH, "--bucket", "ab", "--region", "eu-west-1"], "not a valid S3 bucket"),
    ([*PUBLISH, "--bucket", "x..y", "--region", "eu-west-1"], "not a valid S3 bucket"),
    ([*PUBLISH, "--bucket", "l-{account}", "--region", "eu-west-1"], "placeholder"),
    ([*PUBLISH, "--bucket", "l-{region", "--region", "eu-west-1"], "--bucket"),
    ([*PUBLISH, "--bucket", "layers", "--region", "nowhere"], "'nowhere'"),
    ([*PUBLISH, "--bucket", "layers", "--region", "EU-WEST-1"], "'EU-WEST-1'"),
    (
        [*PUBLISH, "--bucket", "layers", "--region", "eu-west-1", "--share", "123"],
        "123",
    ),
    (
        [*PUBLISH, "--bucket", "l", "--region", "eu-west-1", "--share", "*"],
        "'*' is not an AWS account id",
    ),
    (
        [*PUBLISH, "--bucket", "layers", "--region", "eu-west-1", "--share-org", "org"],
        "'org' is not an organization id",
    ),
    (
        [
            "publish",
            "--dist",
            "{w}/plain.txt",
            "--bucket",
            "b",
            "--region",
            "eu-west-1",
        ],
        "is a file",
    ),
    (
        [
            "publish",
            "--dist",
            "{w}/none",
            "--bucket",
            "layers",
            "--region",
            "eu-west-1",
        ],
        "no such folder",
    ),
    (
        [*PUBLISH, "absent", "--bucket", "layers", "--region", "eu-west-1"],
        "no built layer for recipe(s) absent",
    ),
    (
        [*PUBLISH, "--bucket", "layers", "--region", "eu-west-1", "--records", "{w}"],
        "is a directory",
    ),
    (["layers", "prune", "demo", "--keep", "0", "--region", "eu-west-1"], "--keep 0"),
    (["layers", "prune", "demo", "--keep", "all"], "'all' is not a valid integer"),
    (["layers", "prune", "bad name!", "--keep", "1"], "'bad name!'"),
    (["layers", "versions", "x" * 141, "--region", "eu-west-1"], "is not valid"),
]


@pytest.mark.parametrize(("argv", "expected"), BAD_COMMAND_LINES)
def test_bad_command_line_is_one_line_and_status_2(
    run_cli, workspace: Path, monkeypatch: pytest.MonkeyPatch, argv: list, expected: str
) -> None:
    """Options, values and paths that cannot work are refused before any work."""
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("LAYERBUILD_CACHE_DIR", str(workspace / "cache"))
    args = [arg.replace("{w}", str(workspace)) for arg in argv]

    result = run_cli(*args, cwd=workspace)

    assert_one_error(result, expected)
    assert not (workspace / "layers.json").exists()


# ------------------------------------------------------ manifests beside zips


def _manifest_cases() -> list[tuple[str, object, str]]:
    """(field, value or a whole replacement, words the error must contain)."""
    return [
        ("", "{not json", "not valid JSON"),
        ("", "[1, 2]", "not a JSON object"),
        ("", "\udcff", "not valid JSON"),
        ("sha256", "abc", "field 'sha256'"),
        ("sha256", "b" * 64, "does not match"),
        ("zip", "../elsewhere.zip", "field 'zip'"),
        ("zip", "/etc/passwd", "field 'zip'"),
        ("runtimes", ["python2.7"], "field 'runtimes'"),
        ("runtimes", [], "field 'runtimes'"),
        ("architecture", "sparc", "field 'architecture'"),
        ("layer_name", "bad name", "field 'layer_name'"),
        ("layer_name", "x" * 141, "field 'layer_name'"),
        ("content_key", "XYZ", "field 'content_key'"),
        ("unzipped_bytes", -1, "field 'unzipped_bytes'"),
        ("unzipped_bytes", True, "field 'unzipped_bytes'"),
        ("packages", ["requests"], "field 'packages'"),
        ("recipe", "", "field 'recipe'"),
    ]


@pytest.mark.parametrize(("field", "value", "expected"), _manifest_cases())
def test_broken_manifest_beside_zip_refuses_publish(
    run_cli, tmp_path: Path, field: str, value: object, expected: str
) -> None:
    """publish checks each manifest, and its zip against it, before any AWS call."""
    manifest = write_layer(tmp_path / "dist")
    if field:
        data = json.loads(manifest.read_text())
        data[field] = value
        manifest.write_text(json.dumps(data))
    else:
        manifest.write_text(str(value), errors="surrogateescape")

    result = run_cli(
        "publish", "--dist", str(tmp_path / "dist"), "--bucket", "layers",
        "--region", "eu-west-1", "--records", str(tmp_path / "layers.json"),
        "--endpoint-url", "http://127.0.0.1:9",
    )  # fmt: skip

    assert_one_error(result, expected)
    assert str(manifest) in result.stderr


def test_zip_that_is_not_a_zip_refuses_publish(run_cli, tmp_path: Path) -> None:
    """A manifest whose zip was overwritten with junk is caught by its hash."""
    manifest = write_layer(tmp_path / "dist")
    manifest.with_suffix(".zip").write_bytes(b"PK\x03\x04 junk")

    result = run_cli(
        "publish", "--dist", str(tmp_path / "dist"), "--bucket", "layers",
        "--region", "eu-west-1", "--endpoint-url", "http://127.0.0.1:9",
    )  # fmt: skip

    assert_one_error(result, "not a zip file")


# ----------------------------------------------- recipes through the command


@pytest.mark.parametrize(("text", "expected"), BROKEN_RECIPES)
def test_broken_recipe_stops_build_with_one_line(
    run_cli, recipe_dir: Path, text: str, expected: str
) -> None:
    """`layerbuild build` answers every broken recipe the way `lock` does."""
    (recipe_dir / "demo.toml").write_text(text)

    result = run_cli(
        "build", "demo", "--recipes-dir", str(recipe_dir), "--builder", "local"
    )

    assert_one_error(result, expected)


# ------------------------------------------------------------ property tests

toml_keys = st.sampled_from(
    [
        "name", "description", "license", "runtimes", "architectures",
        "requirements", "requirements-file", "kind", "build", "runtime", "x",
    ]
)  # fmt: skip
build_keys = st.sampled_from(
    ["slim", "exclude", "size-budget", "combine-runtimes", "system-packages",
     "binaries", "test", "strip"]
)  # fmt: skip
scalars = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["python3.12", "x86_64", "arm64", "requests", "150MB", "0", "-1"]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is JSON's, escapes included
    assert isinstance(value, list)
    return "[" + ", ".join(_toml_value(item) for item in value) + "]"


def _toml(document: dict[str, object], table: dict[str, object]) -> str:
    lines = [f"{json.dumps(key)} = {_toml_value(v)}" for key, v in document.items()]
    if table:
        lines.append("[build]")
        lines += [f"{json.dumps(key)} = {_toml_value(v)}" for key, v in table.items()]
    return "\n".join(lines) + "\n"


def assert_loads_or_one_line(path: Path) -> None:
    """The recipe loads, or a RecipeError names the file on a single line."""
    try:
        load_recipe(path)
    except RecipeError as error:
        message = error.message
    else:
        return
    assert str(path) in message
    assert "\n" not in message


@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    document=st.dictionaries(toml_keys, values, max_size=8),
    table=st.dictionaries(build_keys, values, max_size=5),
)
def test_random_recipe_documents_raise_nothing_but_recipe_error(
    tmp_path: Path, document: dict[str, object], table: dict[str, object]
) -> None:
    """Any TOML document either loads or is refused with one RecipeError line."""
    path = tmp_path / "random.toml"
    path.write_text(_toml(document, table), encoding="utf-8")

    assert_loads_or_one_line(path)


@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.binary(max_size=200),
        st.text(alphabet=string.printable, max_size=200).map(str.encode),
        st.sampled_from([VALID.encode()]).map(lambda v: v + b"\x00\xff"),
    )
)
def test_random_bytes_as_recipe_raise_nothing_but_recipe_error(
    tmp_path: Path, data: bytes
) -> None:
    """Junk of any kind in a recipe file is a RecipeError, never a crash."""
    path = tmp_path / "random.toml"
    path.write_bytes(data)

    assert_loads_or_one_line(path)
