"""Versions, aliases and releases against the moto server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from layerbuild import functions
from layerbuild.errors import RolledBackError, RuleError
from layerbuild.report import RecordingReporter
from tests.functions.conftest import REGION, FakeClock, Run, Stand

pytestmark = pytest.mark.moto


def with_versions(stand: Stand, name: str = "MyLambda", count: int = 3) -> None:
    """A function with versions 1..count, its memory size changed between them."""
    stand.function(name)
    for number in range(1, count + 1):
        if number > 1:
            stand.lam.update_function_configuration(
                FunctionName=name, MemorySize=128 + 64 * number
            )
        stand.lam.publish_version(FunctionName=name)


def entry_point(stand: Stand, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``layerbuild`` program, as a user would."""
    program = shutil.which("layerbuild")
    assert program is not None, "layerbuild is not installed (pip install -e .)"
    return subprocess.run(
        [program, *args],
        env={**os.environ, **stand.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def aws_cli_alias(stand: Stand, function: str, alias: str) -> dict[str, Any]:
    """The alias as the AWS CLI sees it."""
    aws = shutil.which("aws")
    assert aws is not None, "the AWS CLI is not installed"
    done = subprocess.run(
        [
            aws, "lambda", "get-alias", "--function-name", function, "--name", alias,
            "--endpoint-url", stand.env["AWS_ENDPOINT_URL"], "--region", REGION,
            "--output", "json",
        ],
        env={**os.environ, **stand.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )  # fmt: skip
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def weights(alias: dict[str, Any]) -> dict[str, float]:
    return dict((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights", {}))


def test_canary_then_promote_as_the_aws_cli_sees_it(stand: Stand) -> None:
    """Prod on 2, a 10% canary to 3, then Prod wholly on 3 with no routing."""
    with_versions(stand)

    created = entry_point(
        stand, "alias", "create", "MyLambda", "Prod", "--version", "2"
    )
    canary = entry_point(
        stand, "release", "MyLambda", "--alias", "Prod", "--canary", "10"
    )
    during = aws_cli_alias(stand, "MyLambda", "Prod")
    promoted = entry_point(stand, "release", "MyLambda", "--alias", "Prod", "--promote")
    after = aws_cli_alias(stand, "MyLambda", "Prod")

    assert (created.returncode, created.stdout) == (0, "Prod -> 2\n"), created.stderr
    assert canary.returncode == 0, canary.stderr
    assert canary.stdout == "Prod -> 2 (10% to 3)\n"
    assert "MyLambda: nothing changed since version 3; reusing it" in canary.stderr
    assert during["FunctionVersion"] == "2"
    assert during["RoutingConfig"]["AdditionalVersionWeights"] == {"3": 0.1}
    assert (promoted.returncode, promoted.stdout) == (0, "Prod -> 3\n")
    assert after["FunctionVersion"] == "3"
    assert weights(after) == {}


def test_alias_update_with_routing_matches_the_aws_cli(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """``alias update --routing 3=0.1`` routes 10% to version 3."""
    with_versions(stand)
    run("alias", "create", "MyLambda", "Prod", "--version", "2")

    result = run("alias", "update", "MyLambda", "Prod", "--routing", "3=0.1")

    assert (result.status, result.out) == (0, "Prod -> 2 (10% to 3)\n"), result.err
    seen = aws_cli_alias(stand, "MyLambda", "Prod")
    assert seen["FunctionVersion"] == "2"
    assert weights(seen) == {"3": 0.1}


def test_rollback_clears_routing_and_stays_on_the_old_version(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """--rollback: no routing, the alias's version unchanged."""
    with_versions(stand)
    run("alias", "create", "MyLambda", "Prod", "--version", "2", "--routing", "3=0.2")

    result = run("release", "MyLambda", "--alias", "Prod", "--rollback")

    assert (result.status, result.out) == (0, "Prod -> 2\n"), result.err
    alias = stand.lam.get_alias(FunctionName="MyLambda", Name="Prod")
    assert alias["FunctionVersion"] == "2"
    assert weights(alias) == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["alias", "create", "MyLambda", "Prod", "--version", "$LATEST"],
            "error: an alias cannot point to $LATEST: it must name a published version",
        ),
        (
            ["alias", "create", "MyLambda", "Prod", "--version",
             "arn:aws:lambda:us-east-1:123456789012:function:MyLambda"],
            "error: arn:aws:lambda:us-east-1:123456789012:function:MyLambda is an "
            "unqualified function ARN; an alias points to a published version",
        ),
        (
            ["alias", "create", "MyLambda", "Prod", "--version", "2",
             "--routing", "3=1.5"],
            "error: weight 1.5 for version 3 must be strictly between 0 and 1 "
            "(a share of the alias's traffic)",
        ),
        (
            ["alias", "create", "MyLambda", "Prod", "--version", "1",
             "--routing", "2=0.1", "--routing", "3=0.1"],
            "error: routing to versions 2, 3: an alias can route to at most one "
            "additional version",
        ),
    ],
)  # fmt: skip
def test_broken_alias_rules_are_refused_before_any_change(
    stand: Stand, run: Callable[..., Run], args: list[str], message: str
) -> None:
    """Exit status 3 with one clear line; no alias is made."""
    with_versions(stand)

    result = run(*args)

    assert result.status == 3
    assert result.err.splitlines()[0] == message
    assert stand.lam.list_aliases(FunctionName="MyLambda")["Aliases"] == []


def test_a_canary_on_a_routed_alias_would_be_a_third_version(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """A release while another is under way is refused; the alias keeps its routing."""
    with_versions(stand)
    run("alias", "create", "MyLambda", "Prod", "--version", "1", "--routing", "2=0.1")
    stand.lam.update_function_configuration(FunctionName="MyLambda", Timeout=30)
    versions_before = stand.lam.list_versions_by_function(FunctionName="MyLambda")

    result = run("release", "MyLambda", "--alias", "Prod", "--canary", "10")

    assert result.status == 3
    assert result.err.splitlines() == [
        "error: alias Prod already routes 10% to version 2; a new release would "
        "route to a third version",
        "hint: finish that release first: --promote or --rollback",
    ]
    assert weights(stand.lam.get_alias(FunctionName="MyLambda", Name="Prod")) == {
        "2": 0.1
    }
    after = stand.lam.list_versions_by_function(FunctionName="MyLambda")
    assert len(after["Versions"]) == len(versions_before["Versions"])


def test_versions_with_different_roles_are_not_routed_together(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """Version 4 runs with another role: routing Prod (on 3) to it is refused."""
    with_versions(stand)
    run("alias", "create", "MyLambda", "Prod", "--version", "3")
    stand.lam.update_function_configuration(
        FunctionName="MyLambda", Role=stand.role("other-role")
    )
    stand.lam.publish_version(FunctionName="MyLambda")

    by_update = run("alias", "update", "MyLambda", "Prod", "--routing", "4=0.1")
    by_release = run("release", "MyLambda", "--alias", "Prod", "--canary", "5")

    assert by_update.status == 3
    assert by_update.err.splitlines()[0] == (
        "error: MyLambda versions 3 and 4 have different execution roles "
        "(arn:aws:iam::123456789012:role/layerbuild-test and "
        "arn:aws:iam::123456789012:role/other-role); an alias can route only "
        "between versions that share them"
    )
    assert by_release.status == 3
    assert "have different execution roles" in by_release.err
    alias = stand.lam.get_alias(FunctionName="MyLambda", Name="Prod")
    assert (alias["FunctionVersion"], weights(alias)) == ("3", {})


def test_an_alias_to_a_version_that_does_not_exist_fails(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """The version is looked up first: AWS says it is not there (exit status 1)."""
    with_versions(stand)

    result = run("alias", "create", "MyLambda", "Prod", "--version", "9")

    assert result.status == 1
    assert result.err.startswith(
        "error: get configuration of MyLambda:9 (us-east-1) failed:"
    )


def test_alias_create_twice_says_it_exists(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """moto's ConflictException reads like AWS's ResourceConflictException."""
    with_versions(stand)
    run("alias", "create", "MyLambda", "Prod", "--version", "2")

    again = run("alias", "create", "MyLambda", "Prod", "--version", "3")

    assert again.status == 1
    assert again.err.splitlines()[0] == (
        "error: create alias MyLambda:Prod (us-east-1) failed: alias Prod already "
        "exists; use 'layerbuild alias update'"
    )


def test_alias_get_list_and_delete(stand: Stand, run: Callable[..., Run]) -> None:
    """The rest of the alias commands, as the AWS CLI means them."""
    with_versions(stand)
    run("alias", "create", "MyLambda", "Prod", "--version", "2")
    run("alias", "create", "MyLambda", "Beta", "--version", "3")

    got = run("alias", "get", "MyLambda", "Prod")
    listed = run("alias", "list", "MyLambda")
    deleted = run("alias", "delete", "MyLambda", "Beta")
    missing = run("alias", "get", "MyLambda", "Beta")

    assert got.out == "Prod -> 2\n"
    assert sorted(listed.out.splitlines()) == ["Beta -> 3", "Prod -> 2"]
    assert deleted.status == 0
    assert missing.status == 2
    assert (
        missing.err.splitlines()[0] == "error: MyLambda has no alias Beta in us-east-1"
    )


def test_publish_version_reuses_an_unchanged_version(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """Nothing changed -> the newest number; a change -> a new one."""
    with_versions(stand)

    same = run("publish-version", "MyLambda")
    stand.lam.update_function_configuration(
        FunctionName="MyLambda", Environment={"Variables": {"MODE": "fast"}}
    )
    changed = run("publish-version", "MyLambda")
    listed = run("versions", "MyLambda")

    assert (same.status, same.out) == (0, "3\n"), same.err
    assert (changed.status, changed.out) == (0, "4\n"), changed.err
    assert [line.split()[0] for line in listed.out.splitlines()] == ["1", "2", "3", "4"]


class TestSteppedRelease:
    """--steps with an alarm, on a fake clock."""

    def setup(self, stand: Stand) -> None:
        with_versions(stand)
        stand.lam.create_alias(
            FunctionName="MyLambda", Name="Prod", FunctionVersion="3"
        )
        stand.lam.update_function_configuration(FunctionName="MyLambda", Timeout=60)
        stand.cloudwatch.put_metric_alarm(
            AlarmName="MyLambda-errors",
            MetricName="Errors",
            Namespace="AWS/Lambda",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        stand.cloudwatch.set_alarm_state(
            AlarmName="MyLambda-errors", StateValue="OK", StateReason="test"
        )

    def request(self) -> functions.ReleaseRequest:
        return functions.ReleaseRequest(
            steps=(10.0, 50.0, 100.0), interval=300.0, alarm="MyLambda-errors"
        )

    def test_quiet_alarm_shifts_every_step_then_promotes(self, stand: Stand) -> None:
        """10%, wait, 50%, wait, then all on the new version."""
        self.setup(stand)
        clock = FakeClock()
        reporter = RecordingReporter()

        result = functions.release(
            stand.gateway(), "MyLambda", "Prod", self.request(),
            clock=functions.Clock(sleep=clock.sleep, now=clock.now), reporter=reporter,
        )  # fmt: skip

        assert result.events == [
            "alias Prod: 10% to version 4",
            "alias Prod: 50% to version 4",
            "alias Prod: all traffic to version 4",
        ]
        assert sum(clock.slept) == 600.0
        alias = stand.lam.get_alias(FunctionName="MyLambda", Name="Prod")
        assert (alias["FunctionVersion"], weights(alias)) == ("4", {})

    def test_alarm_firing_rolls_back_to_the_old_version(self, stand: Stand) -> None:
        """ALARM during the 50% step: everything back on version 3."""
        self.setup(stand)
        clock = FakeClock()
        start = clock.time

        def fire(now: float) -> None:
            if now - start > 400:  # in the wait after the 50% step
                stand.cloudwatch.set_alarm_state(
                    AlarmName="MyLambda-errors", StateValue="ALARM", StateReason="t"
                )

        clock.on_sleep = fire

        with pytest.raises(RolledBackError) as caught:
            functions.release(
                stand.gateway(), "MyLambda", "Prod", self.request(),
                clock=functions.Clock(sleep=clock.sleep, now=clock.now),
                reporter=RecordingReporter(),
            )  # fmt: skip

        assert str(caught.value) == (
            "release of MyLambda version 4 rolled back at 50%: alarm "
            "MyLambda-errors is in ALARM; alias Prod is on version 3"
        )
        alias = stand.lam.get_alias(FunctionName="MyLambda", Name="Prod")
        assert (alias["FunctionVersion"], weights(alias)) == ("3", {})
        assert sum(clock.slept) < 600

    def test_an_alarm_already_firing_stops_the_release_before_publishing(
        self, stand: Stand
    ) -> None:
        """Nothing is published while the alarm is in ALARM."""
        self.setup(stand)
        stand.cloudwatch.set_alarm_state(
            AlarmName="MyLambda-errors", StateValue="ALARM", StateReason="test"
        )

        with pytest.raises(RuleError, match="is in ALARM already"):
            functions.release(
                stand.gateway(), "MyLambda", "Prod", self.request(),
                clock=functions.Clock(), reporter=RecordingReporter(),
            )  # fmt: skip

        versions = stand.lam.list_versions_by_function(FunctionName="MyLambda")
        assert [v["Version"] for v in versions["Versions"]] == [
            "$LATEST",
            "1",
            "2",
            "3",
        ]


def test_a_release_with_nothing_new_changes_nothing(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """$LATEST is what the alias runs already: a warning, exit status 0."""
    with_versions(stand)
    run("alias", "create", "MyLambda", "Prod", "--version", "3")

    result = run("release", "MyLambda", "--alias", "Prod", "--canary", "10")

    assert (result.status, result.out) == (0, "Prod -> 3\n"), result.err
    assert "warning: alias Prod is on version 3 already; nothing to release" in (
        result.err
    )
    alias = stand.lam.get_alias(FunctionName="MyLambda", Name="Prod")
    assert (alias["FunctionVersion"], weights(alias)) == ("3", {})


def test_promote_without_a_canary_is_bad_usage(
    stand: Stand, run: Callable[..., Run]
) -> None:
    """Nothing is routed, so there is nothing to promote (exit status 2)."""
    with_versions(stand)
    run("alias", "create", "MyLambda", "Prod", "--version", "2")

    result = run("release", "MyLambda", "--alias", "Prod", "--promote")

    assert result.status == 2
    assert result.err.splitlines() == [
        "error: alias Prod routes to no second version; nothing to promote",
        "hint: start a release with --canary PERCENT",
    ]


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (
            ["--canary", "100"],
            3,
            "error: --canary 100 must be strictly between 0 and 100 percent",
        ),
        (
            ["--canary", "10", "--promote"],
            2,
            "error: choose exactly one of --canary, --promote, --rollback and --steps",
        ),
        (
            ["--canary", "10", "--alarm", "A"],
            2,
            "error: --alarm is watched only between --steps",
        ),
    ],
)
def test_release_options_are_checked_before_any_call(
    run: Callable[..., Run], args: list[str], status: int, message: str
) -> None:
    """No AWS is needed to refuse these (the endpoint does not even exist)."""
    result = run(
        "release", "MyLambda", "--alias", "Prod", *args,
        "--region", REGION, "--endpoint-url", "http://127.0.0.1:9",
    )  # fmt: skip

    assert result.status == status
    assert result.err.splitlines()[0] == message
