"""The publish plan: every rule checked before any AWS call (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from layerbuild.errors import LimitError, UsageError
from layerbuild.limits import MAX_DESCRIPTION_CHARS
from layerbuild.publish import (
    Manifest,
    bucket_for,
    content_key_of,
    find_manifests,
    layer_description,
    plan_publish,
)
from layerbuild.records import LayerRecord, load_records, update_records
from tests.aws.conftest import write_layer

KEY = "ab" * 32


def manifest_with(tmp_path: Path, **fields: object) -> Manifest:
    layer = write_layer(tmp_path / "dist", **fields)  # type: ignore[arg-type]
    return Manifest.from_file(layer)


def test_description_carries_packages_words_and_the_whole_key(tmp_path: Path) -> None:
    """Packages first, then the recipe's words, the content key last."""
    manifest = manifest_with(
        tmp_path, packages={"numpy": "2.4.6", "pandas": "3.1.1"}, content_key=KEY
    )

    text = layer_description(manifest)

    assert (
        text
        == f"numpy 2.4.6, pandas 3.1.1 - A demo layer for the tests. content-key={KEY}"
    )
    assert content_key_of(text) == KEY


@given(
    packages=st.dictionaries(
        st.text("abcdefghij-", min_size=1, max_size=40),
        st.text("0123456789.", min_size=1, max_size=12),
        max_size=30,
    ),
    words=st.text(max_size=600),
)
def test_description_always_fits_and_keeps_the_key(
    packages: dict[str, str], words: str
) -> None:
    """Whatever the packages and words, 256 characters and the key survive."""
    manifest = Manifest(
        path=Path("x.json"), recipe="r", layer_name="r", runtimes=("python3.12",),
        architectures=("x86_64",), packages=packages, description=words,
        license=None, unzipped_bytes=1, zipped_bytes=1, sha256="0" * 64,
        content_key=KEY, zip_name="x.zip", layerbuild_version=None,
    )  # fmt: skip

    text = layer_description(manifest)

    assert len(text) <= MAX_DESCRIPTION_CHARS
    assert content_key_of(text) == KEY


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("layer_name", "has space", "letters, digits"),
        ("runtimes", ["python2.7"], "runtimes among"),
        ("architecture", "sparc", "one of x86_64, arm64"),
        ("content_key", "XYZ", "hex digits"),
        ("unzipped_bytes", -1, "whole number"),
        ("zip", "../elsewhere.zip", "a file name beside it"),
    ],
)
def test_a_bad_manifest_field_is_named_with_its_file(
    tmp_path: Path, field: str, value: object, expected: str
) -> None:
    """One line: the manifest path, the field, the value, what is allowed."""
    path = write_layer(tmp_path / "dist")
    data = json.loads(path.read_text())
    data[field] = value
    path.write_text(json.dumps(data))

    with pytest.raises(UsageError) as caught:
        Manifest.from_file(path)

    assert str(caught.value).startswith(f"{path}: field '{field}': {value!r}")
    assert expected in str(caught.value)


def test_a_zip_that_no_longer_matches_its_manifest_is_refused(tmp_path: Path) -> None:
    """The zip is hashed, not trusted: a changed zip is bad input."""
    path = write_layer(tmp_path / "dist")
    (tmp_path / "dist" / "demo-python312-x86_64.zip").write_bytes(
        b"PK\x05\x06" + bytes(18)
    )

    with pytest.raises(UsageError, match="does not match"):
        plan_publish(
            find_manifests(tmp_path / "dist"),
            regions=["eu-west-1"],
            bucket="b-{region}",
        )
    assert path.exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"runtimes": ["python3.12"] * 16}, "16 compatible runtimes, Lambda allows 15"),
        (
            {"architectures": ["x86_64", "arm64", "x86_64"]},
            "3 architectures, Lambda allows 2",
        ),
        ({"license_text": "x" * 513}, "license is 513 characters, Lambda allows 512"),
        ({"unzipped_bytes": 262_144_001}, "262,144,001 bytes (250.0 MiB), over"),
    ],
)
def test_lambda_limits_are_refused_with_both_numbers(
    tmp_path: Path, fields: dict[str, object], message: str
) -> None:
    """Exit status 3 (LimitError) with the measured value and the limit."""
    write_layer(tmp_path / "dist", **fields)  # type: ignore[arg-type]

    with pytest.raises(
        LimitError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        plan_publish(
            find_manifests(tmp_path / "dist"),
            regions=["eu-west-1"],
            bucket="b-{region}",
        )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("my-{bucket}", "unknown placeholder"),
        ("UPPER-{region}", "not a valid S3 bucket"),
    ],
)
def test_bad_bucket_templates_are_bad_usage(template: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        bucket_for(template, "eu-west-1")


def test_bucket_template_fills_in_the_region() -> None:
    assert bucket_for("my-layers-{region}", "eu-west-1") == "my-layers-eu-west-1"


def test_unknown_recipe_names_the_folder(tmp_path: Path) -> None:
    write_layer(tmp_path / "dist")

    with pytest.raises(UsageError, match="no built layer for recipe"):
        find_manifests(tmp_path / "dist", ["other"])


def test_bad_region_is_bad_usage(tmp_path: Path) -> None:
    write_layer(tmp_path / "dist")

    with pytest.raises(UsageError, match="'moon-1' is not an AWS region"):
        plan_publish(find_manifests(tmp_path / "dist"), regions=["moon-1"], bucket="b")


def record(arn: str, version: int) -> LayerRecord:
    return LayerRecord(
        "r", "l", ("python3.12",), "x86_64", "eu-west-1", arn, version, KEY, 1
    )


def test_records_merge_replace_and_remove(tmp_path: Path) -> None:
    """Same ARN replaces, others are kept, removed ARNs go; the file is valid JSON."""
    path = tmp_path / "layers.json"
    update_records(path, added=[record("arn:1", 1), record("arn:2", 2)])

    update_records(path, added=[record("arn:3", 3)], removed_arns=["arn:1"])

    assert [r.version for r in load_records(path)] == [2, 3]
    assert [p.name for p in tmp_path.iterdir()] == ["layers.json"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_broken_records_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "layers.json"
    path.write_text('[{"recipe": 5}]')

    with pytest.raises(UsageError, match=r"layers.json: entry 0: field 'recipe': 5"):
        load_records(path)
