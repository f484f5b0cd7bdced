"""No combination of publish options shares a layer with everyone by accident.

Only ``--share-public`` may put ``*`` (without an organization) in a layer
version's policy. Every other combination of ``--share``, ``--share-org``,
``--dry-run``, ``--json`` and repeats is tried against moto and the policy read
back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.aws.conftest import BUCKET_TEMPLATE, boto, layer_versions, write_layer
from tests.moto_server import _post

pytestmark = [pytest.mark.hostile, pytest.mark.moto]

__all__ = ["boto"]  # a fixture used by name below

REGION = "eu-west-1"
LAYER = "demo-python312-x86_64"

accounts = st.one_of(
    st.from_regex(r"\d{12}", fullmatch=True),
    st.sampled_from(
        ["*", "", "12345", "o-abcdefghij", "arn:aws:iam::123456789012:root"]
    ),
)
organizations = st.one_of(
    st.from_regex(r"o-[a-z0-9]{10}", fullmatch=True),
    st.sampled_from(["*", "o-", "123456789012", "o-SHOUTING00"]),
)


def _public_statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """Statements that let every AWS account in, organization or not."""
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    public = []
    for statement in statements:
        principal = statement.get("Principal")
        if isinstance(principal, dict):
            principal = principal.get("AWS")
        # AWS scopes an organization grant with a condition; moto keeps the id.
        condition = json.dumps(statement.get("Condition", {}))
        scoped = "PrincipalOrgID" in condition or statement.get("OrganizationId")
        if principal == "*" and not scoped:
            public.append(statement)
    return public


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    shares=st.lists(accounts, max_size=3),
    orgs=st.lists(organizations, max_size=2),
    public=st.booleans(),
    dry_run=st.booleans(),
    as_json=st.booleans(),
)
def test_only_share_public_grants_everyone(
    run_cli,
    tmp_path_factory: pytest.TempPathFactory,
    moto_endpoint: str,
    aws_env: dict[str, str],
    boto: Callable[[str, str], Any],
    shares: list[str],
    orgs: list[str],
    public: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Whatever else is passed, ``*`` appears only with --share-public."""
    _post(f"{moto_endpoint}/moto-api/reset")
    boto("s3", REGION).create_bucket(
        Bucket=BUCKET_TEMPLATE.format(region=REGION),
        CreateBucketConfiguration={"LocationConstraint": REGION},
    )
    folder = tmp_path_factory.mktemp("share")
    write_layer(folder / "dist")
    argv = [
        "publish", "--dist", str(folder / "dist"), "--bucket", BUCKET_TEMPLATE,
        "--region", REGION, "--records", str(folder / "layers.json"),
    ]  # fmt: skip
    for account in shares:
        argv += ["--share", account]
    for organization in orgs:
        argv += ["--share-org", organization]
    argv += ["--share-public"] * public + ["--dry-run"] * dry_run + ["--json"] * as_json

    result = run_cli(*argv)

    assert "Traceback" not in result.stderr
    assert result.status in (0, 2), result.stderr
    mentions_everyone = "every AWS account" in result.stderr + result.stdout
    assert not mentions_everyone or public
    versions = layer_versions(boto, REGION, LAYER)
    if dry_run or result.status == 2:
        assert versions == []
        return
    [version] = versions
    try:
        answer = boto("lambda", REGION).get_layer_version_policy(
            LayerName=LAYER, VersionNumber=version["Version"]
        )
        policy = json.loads(answer["Policy"])
    except boto("lambda", REGION).exceptions.ResourceNotFoundException:
        policy = {}
    assert bool(_public_statements(policy)) == public


def test_gateway_refuses_everyone_without_the_flag(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    """Below the command line too: the gateway will not grant ``*`` unasked."""
    from layerbuild.aws import AwsSettings, ClientFactory, LayerGateway
    from layerbuild.errors import UsageError

    gateway = LayerGateway(
        ClientFactory(AwsSettings(endpoint_url=aws_env["AWS_ENDPOINT_URL"])), REGION
    )

    with pytest.raises(UsageError, match="every AWS account"):
        gateway.add_layer_version_permission(
            name=LAYER, version=1, statement_id="x", principal="*"
        )
