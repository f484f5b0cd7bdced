"""Sharing layer versions and pruning old ones, on the moto server."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from layerbuild.errors import UsageError
from layerbuild.publish import share_grants
from tests.aws.conftest import BUCKET_TEMPLATE, layer_versions, run_cli, write_layer

pytestmark = pytest.mark.moto

REGION = "eu-west-1"
NAME = "demo-python312-x86_64"
ACCOUNT = "210987654321"
ORG = "o-abcdefghij"


def policy(boto: Any, version: int = 1) -> list[dict[str, Any]]:
    answer = boto("lambda", REGION).get_layer_version_policy(
        LayerName=NAME, VersionNumber=version
    )
    return list(json.loads(answer["Policy"])["Statement"])


def publish(dist: Path, records: Path, *extra: str) -> int:
    return run_cli(
        "publish", "--bucket", BUCKET_TEMPLATE, "--dist", str(dist),
        "--region", REGION, "--records", str(records), *extra,
    )  # fmt: skip


def grants_everyone(statement: dict[str, Any]) -> bool:
    return statement["Principal"] == "*" and "OrganizationId" not in statement


def test_sharing_with_an_account_and_an_org_is_idempotent_and_never_public(
    dist: Path, tmp_path: Path, buckets: Callable[..., None], boto: Any
) -> None:
    """Two statements, named after their principals; a rerun adds none."""
    buckets(REGION)
    write_layer(dist)
    share = ("--share", ACCOUNT, "--share-org", ORG)

    assert publish(dist, tmp_path / "l.json", *share) == 0
    assert publish(dist, tmp_path / "l.json", *share) == 0

    statements = policy(boto)
    assert sorted(s["Sid"] for s in statements) == [
        f"layerbuild-account-{ACCOUNT}",
        f"layerbuild-org-{ORG}",
    ]
    assert all(s["Action"] == "lambda:GetLayerVersion" for s in statements)
    assert not any(grants_everyone(s) for s in statements)


def test_share_public_is_the_only_way_to_grant_everyone(
    dist: Path, tmp_path: Path, buckets: Callable[..., None], boto: Any
) -> None:
    """--share-public adds the one statement with principal * and no org."""
    buckets(REGION)
    write_layer(dist)

    assert publish(dist, tmp_path / "l.json", "--share-public") == 0

    (statement,) = policy(boto)
    assert statement["Sid"] == "layerbuild-public"
    assert grants_everyone(statement)


@pytest.mark.parametrize(
    ("accounts", "orgs"),
    [((ACCOUNT,), ()), ((), (ORG,)), ((ACCOUNT, "123456789012"), (ORG,))],
)
def test_no_grant_without_public_names_everyone(
    accounts: tuple[str, ...], orgs: tuple[str, ...]
) -> None:
    """Every grant built without public=True is bound to an account or an org."""
    grants = share_grants(accounts, orgs, public=False)

    assert grants
    assert all(not g.public for g in grants)
    assert all(g.principal != "*" or g.organization_id for g in grants)


def test_gateway_refuses_star_without_public(gateways: Any) -> None:
    """Even a direct call cannot grant * by mistake."""
    with pytest.raises(UsageError, match="every AWS account"):
        gateways(REGION).add_layer_version_permission(
            name=NAME, version=1, statement_id="x", principal="*"
        )


@pytest.mark.parametrize(
    ("option", "value"),
    [("--share", "12345"), ("--share", "*"), ("--share-org", "org-1")],
)
def test_bad_principals_are_bad_usage(
    dist: Path, tmp_path: Path, option: str, value: str, capsys: Any
) -> None:
    """Exit 2 with the option and the value, before reading anything."""
    write_layer(dist)

    status = publish(dist, tmp_path / "l.json", option, value)

    assert status == 2
    assert f"{option} {value!r}" in capsys.readouterr().err


def publish_versions(
    dist: Path, records: Path, count: int, buckets: Callable[..., None]
) -> None:
    buckets(REGION)
    for index in range(count):
        write_layer(dist, files={"python/demo.py": f"VALUE = {index}\n".encode()})
        assert publish(dist, records) == 0


def test_prune_keeps_the_newest_and_updates_the_records(
    dist: Path, tmp_path: Path, buckets: Callable[..., None], boto: Any, capsys: Any
) -> None:
    """Four versions, --keep 2: versions 1 and 2 go, from AWS and the records."""
    records = tmp_path / "layers.json"
    publish_versions(dist, records, 4, buckets)
    capsys.readouterr()

    status = run_cli(
        "layers", "prune", NAME, "--keep", "2", "--region", REGION,
        "--records", str(records), "--yes",
    )  # fmt: skip

    assert status == 0
    assert "delete" in capsys.readouterr().err
    assert [v["Version"] for v in layer_versions(boto, REGION, NAME)] == [3, 4]
    assert sorted(r["version"] for r in json.loads(records.read_text())) == [3, 4]


def test_prune_asks_first_and_deletes_nothing_when_declined(
    dist: Path,
    tmp_path: Path,
    buckets: Callable[..., None],
    boto: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> None:
    """Without --yes the plan is shown and 'n' leaves every version."""
    records = tmp_path / "layers.json"
    publish_versions(dist, records, 2, buckets)
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))

    status = run_cli("layers", "prune", NAME, "--keep", "1", "--region", REGION)

    err = capsys.readouterr().err
    assert status == 0
    assert "Delete 1 version(s)?" in err
    assert "nothing deleted" in err
    assert [v["Version"] for v in layer_versions(boto, REGION, NAME)] == [1, 2]


def test_prune_never_deletes_the_newest(capsys: Any, aws_env: dict[str, str]) -> None:
    """--keep 0 is bad usage."""
    status = run_cli("layers", "prune", NAME, "--keep", "0", "--region", REGION)

    assert status == 2
    assert "at least the newest version must be kept" in capsys.readouterr().err


def test_prune_keeps_versions_a_function_uses_unless_forced(
    dist: Path, tmp_path: Path, buckets: Callable[..., None], boto: Any, capsys: Any
) -> None:
    """A version in a function's Layers survives prune; --force deletes it."""
    records = tmp_path / "layers.json"
    publish_versions(dist, records, 3, buckets)
    iam = boto("iam", REGION)
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]
    used_arn = layer_versions(boto, REGION, NAME)[0]["LayerVersionArn"]
    boto("lambda", REGION).create_function(
        FunctionName="uses-layer",
        Runtime="python3.12",
        Role=role["Arn"],
        Handler="app.handler",
        Code={"ZipFile": b"PK\x05\x06" + bytes(18)},
        Layers=[used_arn],
    )
    prune = ["layers", "prune", NAME, "--keep", "1", "--region", REGION, "--yes"]

    assert run_cli(*prune, "--records", str(records)) == 0

    assert "used by" in capsys.readouterr().err
    assert [v["Version"] for v in layer_versions(boto, REGION, NAME)] == [1, 3]

    assert run_cli(*prune, "--records", str(records), "--force") == 0
    assert [v["Version"] for v in layer_versions(boto, REGION, NAME)] == [3]
    assert [r["version"] for r in json.loads(records.read_text())] == [3]


def test_layers_list_and_versions_show_what_is_published(
    dist: Path, tmp_path: Path, buckets: Callable[..., None], capsys: Any
) -> None:
    """list shows the newest per layer; versions shows each with its key."""
    publish_versions(dist, tmp_path / "layers.json", 2, buckets)
    capsys.readouterr()

    assert run_cli("layers", "list", "--region", REGION, "--json") == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["layer_name"], listed["version"]) == (NAME, 2)

    assert run_cli("layers", "versions", NAME, "--region", REGION, "--json") == 0
    versions = json.loads(capsys.readouterr().out)
    assert [v["version"] for v in versions] == [2, 1]
    assert all(v["content_key"] for v in versions)
