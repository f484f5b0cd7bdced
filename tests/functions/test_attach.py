"""``layerbuild attach`` against the moto server: merges, limits, nothing changed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from layerbuild import functions
from layerbuild.report import RecordingReporter
from tests.functions.conftest import REGION, FakeClock, Run, Stand, make_zip

pytestmark = pytest.mark.moto


def write_records(path: Path, entries: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


def record(recipe: str, arn: str, unzipped: int, **extra: object) -> dict[str, object]:
    """One records entry as the publish step writes it."""
    return {
        "recipe": recipe,
        "layer_name": arn.split(":")[-2],
        "runtimes": ["python3.12"],
        "architecture": "x86_64",
        "region": REGION,
        "layer_version_arn": arn,
        "version": int(arn.rsplit(":", 1)[1]),
        "content_key": f"key-{recipe}",
        "unzipped_bytes": unzipped,
        **extra,
    }


def test_attach_merges_by_name_and_keeps_order(
    stand: Stand, run: Callable[..., Run], tmp_path: Path
) -> None:
    """A new version of a layer takes its place; a new layer goes last."""
    a1, b1 = stand.layer("a"), stand.layer("b")
    stand.function("MyLambda", layers=[a1, b1])
    a2, c1 = stand.layer("a"), stand.layer("c")

    result = run("attach", "MyLambda", "c:1", a2, "--code-size", "1000")

    assert result.status == 0, result.err
    assert stand.layer_arns("MyLambda") == [a2, b1, c1]
    assert result.out.splitlines() == [a2, b1, c1]


def test_attach_replace_keeps_only_the_given_layers(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """--replace drops the layers not given."""
    a1, b1 = stand.layer("a"), stand.layer("b")
    stand.function("MyLambda", layers=[a1, b1])

    result = run("attach", "MyLambda", "b:1", "--replace", "--code-size", "10")

    assert result.status == 0, result.err
    assert stand.layer_arns("MyLambda") == [b1]


def test_a_recipe_name_resolves_through_the_records(
    stand: Stand, run: Callable[..., Run], tmp_path: Path
) -> None:
    """The newest record of the recipe for the function's runtime and region."""
    old, new = stand.layer("numpy-py312"), stand.layer("numpy-py312")
    other_arch = stand.layer("numpy-arm", architectures=["arm64"])
    records = write_records(
        tmp_path / "layers.json",
        [
            record("numpy", old, 1000),
            record("numpy", new, 2000),
            record("numpy", other_arch, 3000, architecture="arm64"),
        ],
    )
    stand.function("MyLambda")

    result = run(
        "attach", "MyLambda", "numpy", "--records", str(records), "--code-size", "5"
    )

    assert result.status == 0, result.err
    assert stand.layer_arns("MyLambda") == [new]


def test_a_recipe_without_records_in_the_region_is_bad_usage(
    stand: Stand, run: Callable[..., Run], tmp_path: Path
) -> None:
    """Exit status 2 and a hint to publish it."""
    stand.function("MyLambda")

    result = run(
        "attach", "MyLambda", "numpy", "--records", str(tmp_path / "none.json")
    )

    assert result.status == 2
    assert result.err.splitlines() == [
        "error: no published layer of recipe numpy in us-east-1",
        "hint: run 'layerbuild publish numpy --region us-east-1' or pass --records",
    ]


def test_a_sixth_layer_is_refused_and_nothing_changes(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """Exit status 3 naming the limit; the function keeps its five layers."""
    five = [stand.layer(f"l{i}") for i in range(5)]
    stand.function("MyLambda", layers=five)
    stand.layer("sixth")
    before = stand.config("MyLambda")

    result = run("attach", "MyLambda", "sixth:1", "--code-size", "10")

    assert result.status == 3
    assert result.err.splitlines()[0] == (
        "error: MyLambda would have 6 layers (l0:1, l1:1, l2:1, l3:1, l4:1, sixth:1); "
        "Lambda allows at most 5 per function (MAX_LAYERS_PER_FUNCTION)"
    )
    assert stand.config("MyLambda") == before


def test_over_250_mb_is_refused_listing_the_parts_and_nothing_changes(
    stand: Stand, run: Callable[..., Run], tmp_path: Path
) -> None:
    """The records give each layerbuild layer's unzipped size; the code is given."""
    big, more = stand.layer("big"), stand.layer("more")
    records = write_records(
        tmp_path / "layers.json",
        [record("big", big, 200_000_000), record("more", more, 60_000_000)],
    )
    stand.function("MyLambda", layers=[big])
    before = stand.config("MyLambda")

    result = run(
        "attach",
        "MyLambda",
        "more",
        "--records",
        str(records),
        "--code-size",
        "3000000",
    )

    assert result.status == 3
    assert result.err.splitlines() == [
        "error: MyLambda: function code plus layers would be 263,000,000 bytes "
        "(250.8 MiB) unzipped, over Lambda's limit of 262,144,000 bytes (250.0 MiB) "
        "(MAX_UNZIPPED_BYTES):",
        "  function code  3,000,000 bytes (2.9 MiB)",
        "  layer big:1    200,000,000 bytes (190.7 MiB)",
        "  layer more:1   60,000,000 bytes (57.2 MiB)",
        "  total          263,000,000 bytes (250.8 MiB)",
        "hint: drop or slim a layer, or split it across functions",
    ]
    assert stand.config("MyLambda") == before


def test_the_function_code_size_is_unknown_on_moto_and_said_so(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """moto's Code.Location cannot be downloaded: a warning, not a guess."""
    stand.function("MyLambda")
    stand.layer("a")

    result = run("attach", "MyLambda", "a:1", "--dry-run")

    assert result.status == 0, result.err
    assert "warning: the unzipped size of function code, layer a:1 cannot be known" in (
        result.err
    )
    assert "  function code  unknown (https://awslambda-us-east-1-tasks" in result.out
    assert "give --code-size or --code-zip)" in result.out
    assert "  total          at least 0 bytes (0.0 MiB)" in result.out


def test_a_local_code_zip_gives_the_code_size(
    stand: Stand, run: Callable[..., Run], tmp_path: Path
) -> None:
    """--code-zip sums the sizes of the zip's files; a zip that differs is flagged."""
    code = make_zip({"app.py": b"x" * 5000, "lib/data.bin": b"y" * 7000})
    stand.function("MyLambda", code=code)
    other = tmp_path / "other.zip"
    other.write_bytes(make_zip({"app.py": b"z" * 10}))
    mine = tmp_path / "mine.zip"
    mine.write_bytes(code)
    stand.layer("a")

    same = run("attach", "MyLambda", "a:1", "--dry-run", "--code-zip", str(mine))
    differs = run("attach", "MyLambda", "a:1", "--dry-run", "--code-zip", str(other))

    assert "  function code  12,000 bytes (0.0 MiB)" in same.out
    assert "is not the code MyLambda runs" not in same.err
    assert f"warning: {other} is not the code MyLambda runs" in differs.err


def test_dry_run_shows_the_plan_and_changes_nothing(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """The plan lists each layer's fate; the function keeps its revision."""
    a1 = stand.layer("a")
    stand.function("MyLambda", layers=[a1])
    a2, b1 = stand.layer("a"), stand.layer("b")
    before = stand.config("MyLambda")

    result = run("attach", "MyLambda", "a:2", "b:1", "--dry-run", "--code-size", "7")

    assert result.status == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "MyLambda (us-east-1, python3.12, x86_64): 1 layers now, 2 after"
    assert lines[1:3] == [f"  1. {a2} (replaces a:1)", f"  2. {b1} (added)"]
    assert stand.config("MyLambda") == before
    assert stand.layer_arns("MyLambda") == [a1]


def test_a_layer_for_another_runtime_is_refused(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """Exit status 3; the layer's runtimes and the function's are named."""
    stand.function("MyLambda", runtime="python3.12")
    stand.layer("old", runtimes=["python3.9", "python3.10"])

    result = run("attach", "MyLambda", "old:1", "--code-size", "1")

    assert result.status == 3
    assert result.err.splitlines()[0] == (
        "error: layer old:1 is for python3.9, python3.10; MyLambda runs python3.12"
    )
    assert stand.layer_arns("MyLambda") == []


def test_a_layer_for_another_architecture_is_refused(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """An arm64 layer on an x86_64 function."""
    stand.function("MyLambda")
    stand.layer("armonly", architectures=["arm64"])

    result = run("attach", "MyLambda", "armonly:1", "--code-size", "1")

    assert result.status == 3
    assert "layer armonly:1 is for arm64; MyLambda runs on x86_64" in result.err


def test_a_missing_layer_version_is_an_aws_failure(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """Exit status 1, naming the layer version asked for."""
    stand.function("MyLambda")
    stand.layer("a")

    result = run("attach", "MyLambda", "a:9", "--code-size", "1")

    assert result.status == 1
    assert result.err.startswith("error: get layer version a:9 (us-east-1) failed:")


def test_file_collisions_between_layerbuild_zips_are_warned(
    stand: Stand, run: Callable[..., Run], tmp_path: Path
) -> None:
    """Zips in dist are matched to records by content key and looked into."""
    a1, b1 = stand.layer("a"), stand.layer("b")
    dist = tmp_path / "dist"
    dist.mkdir()
    for name, files in {
        "a": {"python/six.py": b"1", "python/a.py": b"a"},
        "b": {"python/six.py": b"2", "python/b.py": b"b"},
    }.items():
        (dist / f"{name}.zip").write_bytes(make_zip(files))
        manifest = {"content_key": f"key-{name}", "zip": f"{name}.zip"}
        (dist / f"{name}.json").write_text(json.dumps(manifest))
    records = write_records(
        tmp_path / "layers.json", [record("a", a1, 2), record("b", b1, 2)]
    )
    stand.function("MyLambda")

    result = run(
        "attach", "MyLambda", "a", "b", "--records", str(records),
        "--dist", str(dist), "--code-size", "1",
    )  # fmt: skip

    assert result.status == 0, result.err
    assert (
        "warning: layers a:1 and b:1 both hold 1 file(s) (python/six.py); "
        "the function sees b:1's copies"
    ) in result.err


def test_apply_waits_and_uses_the_revision_it_checked(stand: Stand) -> None:
    """The core passes the checked revision, so a change in between is refused."""
    a1 = stand.layer("a")
    stand.function("MyLambda")
    gateway = stand.gateway()
    plan = functions.plan_attach(gateway, "MyLambda", ["a:1"], code_size=1)
    reporter = RecordingReporter()

    functions.apply_attach(gateway, plan, clock=FakeClock(), reporter=reporter)

    assert stand.layer_arns("MyLambda") == [a1]
    assert reporter.steps == [
        "updating the layers of MyLambda",
        "MyLambda now has 1 layer(s)",
    ]


def test_code_size_takes_units_and_refuses_nonsense(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """``--code-size 3MB`` is 3,000,000 bytes; ``--code-size lots`` is bad usage."""
    stand.function("MyLambda")
    stand.layer("a")

    sized = run("attach", "MyLambda", "a:1", "--dry-run", "--code-size", "3MB")
    bad = run("attach", "MyLambda", "a:1", "--dry-run", "--code-size", "lots")

    assert "  function code  3,000,000 bytes (2.9 MiB)" in sized.out
    assert bad.status == 2
    assert bad.err.splitlines() == [
        "error: --code-size 'lots' is not a size such as 12000000 or 12MB"
    ]
