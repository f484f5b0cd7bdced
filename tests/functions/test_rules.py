"""Lambda's rules, checked without AWS: what is refused, and how it is said."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from layerbuild.errors import ExitStatus, LimitError, RuleError, UsageError
from layerbuild.limits import MAX_UNZIPPED_BYTES
from layerbuild.rules import (
    LayerFacts,
    SizePart,
    alias_version,
    check_compatible,
    check_layer_count,
    check_routing,
    check_same_settings,
    check_unzipped_total,
    find_collisions,
    merge_layers,
    parse_duration,
    parse_layer_request,
    parse_routing,
    parse_steps,
    parse_weight,
)

ARN = "arn:aws:lambda:us-east-1:123456789012:layer"


def layer(name: str, version: int = 1, size: int | None = 1000) -> LayerFacts:
    return LayerFacts(
        arn=f"{ARN}:{name}:{version}",
        label=f"{name}:{version}",
        unzipped_bytes=size,
        size_source="records" if size is not None else "s3:// cannot be read",
    )


class TestLayerRequests:
    def test_a_versioned_arn_is_taken_as_it_is(self) -> None:
        """An ARN keeps its account and region; its version is read."""
        request = parse_layer_request(f"{ARN}:numpy:7")

        assert request.kind == "arn"
        assert request.version == 7
        assert request.arn is not None
        assert request.arn.layer_arn == f"{ARN}:numpy"

    def test_name_and_version_and_recipe_are_told_apart(self) -> None:
        """NAME:VERSION names a layer version; a bare name is a recipe."""
        assert parse_layer_request("numpy:3").kind == "name"
        assert parse_layer_request("numpy-pandas").kind == "recipe"

    def test_an_arn_without_version_is_refused(self) -> None:
        """A function uses one version of a layer, so the ARN must carry one."""
        with pytest.raises(UsageError, match="has no version"):
            parse_layer_request(f"{ARN}:numpy")

    def test_a_garbled_name_version_is_refused(self) -> None:
        """``numpy:latest`` is not a version."""
        with pytest.raises(UsageError, match=r"is not NAME:VERSION"):
            parse_layer_request("numpy:latest")


class TestMerge:
    def test_a_new_version_takes_the_old_ones_place(self) -> None:
        """Same layer name -> replaced where it was; new layers go last."""
        current = [layer("a", 1), layer("b", 1), layer("c", 1)]

        merged = merge_layers(current, [layer("d", 1), layer("b", 2)], replace=False)

        assert [m.label for m in merged] == ["a:1", "b:2", "c:1", "d:1"]

    def test_replace_keeps_only_the_given_layers_in_order(self) -> None:
        """--replace drops what the function had."""
        merged = merge_layers([layer("a")], [layer("c"), layer("b")], replace=True)

        assert [m.label for m in merged] == ["c:1", "b:1"]

    def test_two_versions_of_one_layer_are_refused(self) -> None:
        """A function can use only one version of a layer."""
        with pytest.raises(RuleError, match="versions of the same layer"):
            merge_layers([], [layer("a", 1), layer("a", 2)], replace=False)


class TestLimits:
    def test_six_layers_are_refused_naming_the_limit(self) -> None:
        """The message counts the layers and names MAX_LAYERS_PER_FUNCTION."""
        layers = [layer(f"l{i}") for i in range(6)]

        with pytest.raises(LimitError) as caught:
            check_layer_count("MyLambda", layers)

        assert caught.value.exit_status == ExitStatus.LIMIT
        assert str(caught.value).startswith(
            "MyLambda would have 6 layers (l0:1, l1:1, l2:1, l3:1, l4:1, l5:1); "
            "Lambda allows at most 5 per function (MAX_LAYERS_PER_FUNCTION)"
        )

    def test_five_layers_pass(self) -> None:
        """Five is the limit, not over it."""
        check_layer_count("MyLambda", [layer(f"l{i}") for i in range(5)])

    def test_over_the_unzipped_limit_lists_every_part_and_the_total(self) -> None:
        """Each part is listed with its size, then the total."""
        parts = [
            SizePart("function code", 2_144_000, "--code-size"),
            SizePart("layer big:1", 200_000_000, "records"),
            SizePart("layer more:1", 60_000_001, "records"),
        ]

        with pytest.raises(LimitError) as caught:
            check_unzipped_total("MyLambda", parts)

        lines = str(caught.value).splitlines()
        assert lines[0] == (
            "MyLambda: function code plus layers would be 262,144,001 bytes "
            "(250.0 MiB) unzipped, over Lambda's limit of 262,144,000 bytes "
            "(250.0 MiB) (MAX_UNZIPPED_BYTES):"
        )
        assert lines[1:] == [
            "  function code  2,144,000 bytes (2.0 MiB)",
            "  layer big:1    200,000,000 bytes (190.7 MiB)",
            "  layer more:1   60,000,001 bytes (57.2 MiB)",
            "  total          262,144,001 bytes (250.0 MiB)",
        ]

    def test_exactly_the_limit_passes(self) -> None:
        """262,144,000 bytes is allowed."""
        parts = [SizePart("function code", MAX_UNZIPPED_BYTES, "--code-size")]

        assert check_unzipped_total("MyLambda", parts) == []

    def test_an_unknown_part_is_named_not_guessed(self) -> None:
        """Under the limit with a part unknown: a warning that says which."""
        parts = [
            SizePart("function code", None, "s3:// is not a downloadable URL"),
            SizePart("layer a:1", 1000, "records"),
        ]

        warnings = check_unzipped_total("MyLambda", parts)

        assert warnings == [
            "the unzipped size of function code cannot be known, so the "
            "262,144,000 bytes (250.0 MiB) limit is checked only for the rest "
            "(1,000 bytes (0.0 MiB))"
        ]

    def test_known_parts_alone_over_the_limit_are_refused(self) -> None:
        """An unknown part cannot make a total that is already over smaller."""
        parts = [
            SizePart("function code", None, "unknown"),
            SizePart("layer big:1", MAX_UNZIPPED_BYTES + 1, "records"),
        ]

        with pytest.raises(LimitError, match="would be at least 262,144,001 bytes"):
            check_unzipped_total("MyLambda", parts)


class TestCompatibility:
    def test_a_layer_for_another_runtime_is_refused(self) -> None:
        """The message names the layer's runtimes and the function's."""
        facts = LayerFacts(f"{ARN}:a:1", "a:1", 1, "records", ("python3.11",))

        with pytest.raises(RuleError) as caught:
            check_compatible("MyLambda", "python3.12", "x86_64", facts)

        assert (
            str(caught.value) == "layer a:1 is for python3.11; MyLambda runs python3.12"
        )

    def test_a_layer_for_another_architecture_is_refused(self) -> None:
        """arm64 layers do not go on x86_64 functions."""
        facts = LayerFacts(f"{ARN}:a:1", "a:1", 1, "records", (), ("arm64",))

        with pytest.raises(RuleError, match="layer a:1 is for arm64; MyLambda runs on"):
            check_compatible("MyLambda", "python3.12", "x86_64", facts)

    def test_a_layer_that_declares_nothing_fits_any_function(self) -> None:
        """No declared runtimes or architectures: nothing to hold against it."""
        check_compatible("MyLambda", "python3.12", "arm64", layer("a"))

    def test_container_image_functions_take_no_layers(self) -> None:
        """Lambda gives layers only to .zip functions."""
        with pytest.raises(RuleError, match="container image function"):
            check_compatible("MyLambda", None, "x86_64", layer("a"))


class TestCollisions:
    def test_shared_paths_are_reported_with_the_winner_last(self) -> None:
        """Pairs in layer order; the later layer is the one the function sees."""
        contents = [
            ("a:1", frozenset({"python/six.py", "python/a.py"})),
            ("b:1", frozenset({"python/b.py"})),
            ("c:1", frozenset({"python/six.py", "python/c.py"})),
        ]

        assert find_collisions(contents) == [("a:1", "c:1", ["python/six.py"])]


class TestAliases:
    @pytest.mark.parametrize(
        "text",
        ["$LATEST", "arn:aws:lambda:us-east-1:123456789012:function:MyLambda:$LATEST"],
    )
    def test_latest_is_refused(self, text: str) -> None:
        """An alias must name a published version, never $LATEST."""
        with pytest.raises(RuleError) as caught:
            alias_version(text)

        assert str(caught.value) == (
            "an alias cannot point to $LATEST: it must name a published version"
        )
        assert caught.value.exit_status == ExitStatus.LIMIT

    def test_an_unqualified_function_arn_is_refused(self) -> None:
        """Without a qualifier the ARN means whatever $LATEST is."""
        arn = "arn:aws:lambda:us-east-1:123456789012:function:MyLambda"

        with pytest.raises(RuleError, match="unqualified function ARN"):
            alias_version(arn)

    def test_a_qualified_arn_gives_its_version(self) -> None:
        """``...:MyLambda:4`` -> ``4``."""
        arn = "arn:aws:lambda:us-east-1:123456789012:function:MyLambda:4"

        assert alias_version(arn) == "4"

    @pytest.mark.parametrize("weight", ["1.5", "1", "0", "-0.1", "nan", "inf"])
    def test_weights_outside_zero_to_one_are_refused(self, weight: str) -> None:
        """A weight is a share strictly between 0 and 1."""
        with pytest.raises((RuleError, UsageError), match="between 0 and 1"):
            parse_routing([f"3={weight}"])

    def test_a_weight_of_one_and_a_half_is_a_rule_broken(self) -> None:
        """1.5 parses as a number, so it is Lambda's rule that refuses it."""
        with pytest.raises(RuleError) as caught:
            parse_routing(["3=1.5"])

        assert str(caught.value) == (
            "weight 1.5 for version 3 must be strictly between 0 and 1 "
            "(a share of the alias's traffic)"
        )

    def test_a_third_version_is_refused(self) -> None:
        """At most one version besides the alias's own."""
        with pytest.raises(RuleError) as caught:
            parse_routing(["3=0.1", "4=0.1"])

        assert str(caught.value) == (
            "routing to versions 3, 4: an alias can route to at most one "
            "additional version"
        )

    def test_routing_to_the_main_version_is_refused(self) -> None:
        """Routing to the alias's own version means nothing."""
        with pytest.raises(RuleError, match="already the alias's main version"):
            check_routing("3", {"3": 0.1})

    def test_versions_with_different_roles_cannot_share_an_alias(self) -> None:
        """Lambda requires the same execution role on both versions."""
        primary = {"Version": "2", "Role": "arn:aws:iam::1:role/a"}
        routed = {"Version": "3", "Role": "arn:aws:iam::1:role/b"}

        with pytest.raises(RuleError, match="different execution roles"):
            check_same_settings("MyLambda", primary, routed)

    def test_versions_with_different_dead_letter_queues_cannot(self) -> None:
        """... and the same dead-letter configuration; absent equals empty."""
        primary = {"Version": "2", "Role": "r", "DeadLetterConfig": {}}
        same = {"Version": "3", "Role": "r"}
        other = {"Version": "4", "Role": "r", "DeadLetterConfig": {"TargetArn": "q"}}

        check_same_settings("MyLambda", primary, same)
        with pytest.raises(RuleError, match="different dead-letter queues"):
            check_same_settings("MyLambda", primary, other)

    @given(st.floats(min_value=0, max_value=2, allow_nan=False))
    def test_any_weight_is_either_refused_or_strictly_inside(
        self, weight: float
    ) -> None:
        """No weight outside (0, 1) ever gets through."""
        try:
            parsed = parse_weight(repr(weight), version="3")
        except RuleError:
            assert not 0 < weight < 1
        else:
            assert 0 < parsed < 1


class TestReleaseOptions:
    def test_steps_must_rise_and_stay_within_100(self) -> None:
        """``10,50,100`` reads; falling or over 100 is refused."""
        assert parse_steps("10,50,100") == [10.0, 50.0, 100.0]
        with pytest.raises(UsageError, match="steps must rise"):
            parse_steps("50,10")
        with pytest.raises(RuleError, match="at most 100 percent"):
            parse_steps("10,150")

    def test_intervals_read_in_seconds_minutes_and_hours(self) -> None:
        """``5m`` is 300 seconds."""
        assert parse_duration("5m") == 300
        assert parse_duration("90s") == 90
        assert parse_duration("1h") == 3600
        with pytest.raises(UsageError, match="not a duration"):
            parse_duration("soon")
