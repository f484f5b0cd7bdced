"""Lambda's rules for layers, versions and aliases, checked without any AWS call.

Lambda (and moto, the test stand-in, even less) accepts some requests it later
regrets: a sixth layer, a canary weight of 1.5, an alias on ``$LATEST``. Every
command on the function side calls these checks first, so a request that breaks
a rule is refused before anything changes. Nothing here talks to AWS or prints.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from layerbuild.errors import LimitError, RuleError, UsageError
from layerbuild.limits import (
    LAYER_NAME_PATTERN,
    MAX_LAYERS_PER_FUNCTION,
    MAX_UNZIPPED_BYTES,
    human_bytes,
)

LATEST = "$LATEST"

# arn:aws:lambda:eu-west-1:123456789012:layer:numpy:3 (the partition may be
# aws-cn or aws-us-gov; the version is what makes it attachable).
LAYER_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):"
    rf"(?P<account>\d{{12}}):layer:(?P<name>{LAYER_NAME_PATTERN})"
    r"(?::(?P<version>\d+))?"
)
NAME_VERSION = re.compile(rf"(?P<name>{LAYER_NAME_PATTERN}):(?P<version>\d+)")
FUNCTION_ARN = re.compile(
    r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+"
    r"(?::(?P<qualifier>[A-Za-z0-9$_-]+))?"
)
VERSION_NUMBER = re.compile(r"[1-9]\d*")
DURATION = re.compile(r"(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>s|m|h)?")
DURATION_UNITS = {None: 1, "s": 1, "m": 60, "h": 3600}

# The settings Lambda requires to be equal on both versions an alias routes to.
ROUTING_MUST_MATCH = {"Role": "execution role", "DeadLetterConfig": "dead-letter queue"}


# -- Layers -------------------------------------------------------------------


@dataclass(frozen=True)
class LayerArn:
    """The parts of a layer ARN."""

    partition: str
    region: str
    account: str
    name: str
    version: int | None

    @property
    def layer_arn(self) -> str:
        """The ARN without the version: the identity of the layer itself."""
        return (
            f"arn:{self.partition}:lambda:{self.region}:{self.account}"
            f":layer:{self.name}"
        )

    @property
    def version_arn(self) -> str:
        """The ARN of this version; only for a versioned ARN."""
        if self.version is None:
            msg = f"{self.layer_arn} has no version"
            raise ValueError(msg)
        return f"{self.layer_arn}:{self.version}"


def parse_layer_arn(text: str) -> LayerArn | None:
    """Split a layer ARN into its parts; ``None`` when ``text`` is not one."""
    match = LAYER_ARN.fullmatch(text)
    if match is None:
        return None
    version = match.group("version")
    return LayerArn(
        partition=match.group("partition"),
        region=match.group("region"),
        account=match.group("account"),
        name=match.group("name"),
        version=int(version) if version else None,
    )


@dataclass(frozen=True)
class LayerRequest:
    """A layer as the user named it on the command line.

    ``kind`` is ``"arn"`` (a versioned layer ARN), ``"name"`` (``name:version``
    in the function's own account and region) or ``"recipe"`` (a layerbuild
    recipe, resolved through the published-layers records).
    """

    text: str
    kind: str
    name: str
    version: int | None = None
    arn: LayerArn | None = None


def parse_layer_request(text: str) -> LayerRequest:
    """Classify one LAYER argument of ``layerbuild attach``."""
    if text.startswith("arn:"):
        arn = parse_layer_arn(text)
        if arn is None:
            msg = (
                f"layer {text!r} is not a layer ARN "
                "(arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)"
            )
            raise UsageError(msg)
        if arn.version is None:
            msg = f"layer {text!r} has no version; a function uses one version"
            raise UsageError(msg, hint=f"give {text}:VERSION")
        return LayerRequest(text, "arn", arn.name, arn.version, arn)
    if ":" in text:
        match = NAME_VERSION.fullmatch(text)
        if match is None:
            msg = f"layer {text!r} is not NAME:VERSION (such as numpy:3)"
            raise UsageError(msg)
        version = int(match.group("version"))
        return LayerRequest(text, "name", match.group("name"), version)
    if not re.fullmatch(LAYER_NAME_PATTERN, text):
        msg = f"layer {text!r} is neither a recipe name, NAME:VERSION nor a layer ARN"
        raise UsageError(msg)
    return LayerRequest(text, "recipe", text)


@dataclass(frozen=True)
class LayerFacts:
    """What is known about one layer version the function would use.

    ``unzipped_bytes`` is ``None`` when it cannot be known; ``size_source`` says
    where a known size came from (the records, a download, ...) or why it is
    unknown. Empty ``runtimes``/``architectures`` mean the layer declares none.
    """

    arn: str  # the version ARN
    label: str  # how the user knows it: a recipe name or NAME:VERSION
    unzipped_bytes: int | None
    size_source: str
    runtimes: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    zipped_bytes: int | None = None
    new: bool = False  # asked for now, rather than already on the function

    @property
    def parts(self) -> LayerArn:
        parsed = parse_layer_arn(self.arn)
        if parsed is None or parsed.version is None:
            msg = f"not a layer version ARN: {self.arn}"
            raise ValueError(msg)
        return parsed

    @property
    def layer_arn(self) -> str:
        """The layer's ARN without the version: two versions share it."""
        return self.parts.layer_arn


def merge_layers(
    current: Sequence[LayerFacts], wanted: Sequence[LayerFacts], *, replace: bool
) -> list[LayerFacts]:
    """The function's layers after an attach, in the order Lambda applies them.

    A wanted layer whose name the function already uses takes that layer's
    place (a new version of the same layer); other wanted layers are added at
    the end, in the order given. With ``replace`` only the wanted layers stay.
    """
    seen: dict[str, LayerFacts] = {}
    for layer in wanted:
        earlier = seen.get(layer.layer_arn)
        if earlier is not None:
            msg = (
                f"layers {earlier.label} and {layer.label} are versions of the same "
                f"layer ({layer.layer_arn}); a function can use only one of them"
            )
            raise RuleError(msg)
        seen[layer.layer_arn] = layer
    if replace:
        return list(wanted)

    merged = [seen.pop(layer.layer_arn, layer) for layer in current]
    return merged + [layer for layer in wanted if layer.layer_arn in seen]


def check_layer_count(function: str, layers: Sequence[LayerFacts]) -> None:
    """Refuse more layers than Lambda lets one function use."""
    if len(layers) > MAX_LAYERS_PER_FUNCTION:
        labels = ", ".join(layer.label for layer in layers)
        msg = (
            f"{function} would have {len(layers)} layers ({labels}); Lambda allows at "
            f"most {MAX_LAYERS_PER_FUNCTION} per function (MAX_LAYERS_PER_FUNCTION)"
        )
        raise LimitError(
            msg, hint="combine layers, or use --replace to drop the ones not needed"
        )


def check_compatible(
    function: str, runtime: str | None, architecture: str, layer: LayerFacts
) -> None:
    """Refuse a layer that declares runtimes or architectures excluding the function's.

    A layer that declares none is taken as compatible with every function.
    """
    if runtime is None:
        msg = (
            f"{function} is a container image function; Lambda gives layers only "
            "to .zip functions"
        )
        raise RuleError(msg)
    if layer.runtimes and runtime not in layer.runtimes:
        msg = (
            f"layer {layer.label} is for {', '.join(layer.runtimes)}; "
            f"{function} runs {runtime}"
        )
        raise RuleError(msg, hint=f"publish the layer for {runtime}")
    if layer.architectures and architecture not in layer.architectures:
        msg = (
            f"layer {layer.label} is for {', '.join(layer.architectures)}; "
            f"{function} runs on {architecture}"
        )
        raise RuleError(msg, hint=f"publish the layer for {architecture}")


@dataclass(frozen=True)
class SizePart:
    """One contributor to a function's unzipped size."""

    label: str
    unzipped_bytes: int | None
    source: str  # where the figure came from, or why there is none


def size_table(parts: Sequence[SizePart]) -> list[str]:
    """Lines listing each part and the total, aligned, for messages and plans."""
    width = max(len(part.label) for part in [*parts, SizePart("total", 0, "")])
    lines = []
    for part in parts:
        figure = (
            human_bytes(part.unzipped_bytes)
            if part.unzipped_bytes is not None
            else f"unknown ({part.source})"
        )
        lines.append(f"  {part.label:<{width}}  {figure}")
    known = sum(part.unzipped_bytes or 0 for part in parts)
    unknown = [part for part in parts if part.unzipped_bytes is None]
    total = human_bytes(known)
    if unknown:
        total = f"at least {total}"
    lines.append(f"  {'total':<{width}}  {total}")
    return lines


def check_unzipped_total(function: str, parts: Sequence[SizePart]) -> list[str]:
    """Refuse when the known parts already pass Lambda's unzipped limit.

    Returns warnings naming the parts whose size is unknown: the limit is then
    checked only as far as the known parts go, never guessed.
    """
    known = sum(part.unzipped_bytes or 0 for part in parts)
    unknown = [part.label for part in parts if part.unzipped_bytes is None]
    if known > MAX_UNZIPPED_BYTES:
        lead = "at least " if unknown else ""
        msg = "\n".join(
            [
                f"{function}: function code plus layers would be {lead}"
                f"{human_bytes(known)} unzipped, over Lambda's limit of "
                f"{human_bytes(MAX_UNZIPPED_BYTES)} (MAX_UNZIPPED_BYTES):",
                *size_table(parts),
            ]
        )
        raise LimitError(msg, hint="drop or slim a layer, or split it across functions")
    if not unknown:
        return []
    return [
        f"the unzipped size of {', '.join(unknown)} cannot be known, so the "
        f"{human_bytes(MAX_UNZIPPED_BYTES)} limit is checked only for the rest "
        f"({human_bytes(known)})"
    ]


def find_collisions(
    contents: Sequence[tuple[str, frozenset[str]]],
) -> list[tuple[str, str, list[str]]]:
    """Files that more than one layer puts at the same path under /opt.

    ``contents`` is each layer's label and file paths, in the function's layer
    order. Returns (earlier layer, later layer, paths) for each pair that
    shares files; the later layer's copy is the one the function sees.
    """
    clashes: list[tuple[str, str, list[str]]] = []
    for index, (later, later_files) in enumerate(contents):
        for earlier, earlier_files in contents[:index]:
            shared = sorted(earlier_files & later_files)
            if shared:
                clashes.append((earlier, later, shared))
    return clashes


# -- Versions, aliases and routing ---------------------------------------------


def alias_version(text: str) -> str:
    """The published version number an alias may point to, from ``text``.

    Accepts a number or a function ARN qualified with one. ``$LATEST`` and an
    unqualified ARN are refused: an alias must name a published version, or
    what it runs would change with every update of the function.
    """
    candidate = text
    match = FUNCTION_ARN.fullmatch(text)
    if match is not None:
        qualifier = match.group("qualifier")
        if qualifier is None:
            msg = (
                f"{text} is an unqualified function ARN; an alias points to a "
                "published version"
            )
            raise RuleError(msg, hint="give the version number, such as --version 3")
        candidate = qualifier
    if candidate == LATEST:
        msg = f"an alias cannot point to {LATEST}: it must name a published version"
        raise RuleError(msg, hint="run 'layerbuild publish-version FUNCTION' first")
    if not VERSION_NUMBER.fullmatch(candidate):
        msg = f"{text!r} is not a published version number such as 3"
        raise RuleError(msg)
    return candidate


def _number(text: str, bad: str) -> float:
    """``text`` as a finite number; ``bad`` is the message when it is not one."""
    try:
        value = float(text)
    except ValueError:
        raise UsageError(bad) from None
    if not math.isfinite(value):
        raise UsageError(bad)
    return value


def parse_weight(text: str, *, version: str) -> float:
    """A routing weight: a number strictly between 0 and 1."""
    bad = f"weight {text!r} for version {version} is not a number between 0 and 1"
    weight = _number(text, bad)
    if not 0.0 < weight < 1.0:
        msg = (
            f"weight {text} for version {version} must be strictly between 0 and 1 "
            "(a share of the alias's traffic)"
        )
        raise RuleError(msg, hint="to move all traffic, point the alias at the version")
    return weight


def parse_routing(items: Sequence[str]) -> dict[str, float]:
    """``["3=0.1"]`` -> ``{"3": 0.1}``, with each rule of routing checked."""
    routing: dict[str, float] = {}
    for item in items:
        version_text, sep, weight_text = item.partition("=")
        if not sep:
            msg = f"--routing {item!r} is not VERSION=WEIGHT, such as 3=0.1"
            raise UsageError(msg)
        version = alias_version(version_text.strip())
        routing[version] = parse_weight(weight_text.strip(), version=version)
    _check_one_more(routing)
    return routing


def _check_one_more(routing: Mapping[str, float]) -> None:
    if len(routing) > 1:
        listed = ", ".join(sorted(routing))
        msg = (
            f"routing to versions {listed}: an alias can route to at most one "
            "additional version"
        )
        raise RuleError(msg)


def check_routing(primary: str, routing: Mapping[str, float]) -> None:
    """Refuse routing Lambda does not allow, given the alias's main version."""
    alias_version(primary)
    _check_one_more(routing)
    for version, weight in routing.items():
        alias_version(version)
        parse_weight(str(weight), version=version)
        if version == primary:
            msg = f"version {version} is already the alias's main version"
            raise RuleError(msg)


def check_same_settings(
    function: str,
    primary: Mapping[str, object],
    routed: Mapping[str, object],
) -> None:
    """Refuse routing between versions whose role or dead-letter queue differ.

    ``primary`` and ``routed`` are the two versions' configurations as
    GetFunctionConfiguration returns them.
    """
    for key, meaning in ROUTING_MUST_MATCH.items():
        left, right = primary.get(key) or None, routed.get(key) or None
        if left != right:
            msg = (
                f"{function} versions {primary.get('Version')} and "
                f"{routed.get('Version')} have different {meaning}s ({left} and "
                f"{right}); an alias can route only between versions that share them"
            )
            raise RuleError(msg)


def parse_percent(text: str, *, option: str) -> float:
    """A share of traffic in percent, strictly between 0 and 100."""
    percent = _number(text, f"{option} {text!r} is not a percentage such as 10")
    if not 0.0 < percent < 100.0:
        msg = f"{option} {text} must be strictly between 0 and 100 percent"
        raise RuleError(msg, hint="use --promote to move all traffic")
    return percent


def parse_steps(text: str) -> list[float]:
    """``"10,50,100"`` -> ``[10.0, 50.0, 100.0]``: rising percentages, up to 100."""
    steps: list[float] = []
    for item in text.split(","):
        step = _number(item, f"--steps {text!r}: {item!r} is not a percentage")
        if not 0.0 < step <= 100.0:
            msg = f"--steps {text!r}: each step must be above 0 and at most 100 percent"
            raise RuleError(msg)
        if steps and step <= steps[-1]:
            msg = f"--steps {text!r}: steps must rise ({step:g} follows {steps[-1]:g})"
            raise UsageError(msg)
        steps.append(step)
    return steps


def parse_duration(text: str) -> float:
    """``"5m"`` -> 300.0 seconds; plain numbers are seconds."""
    match = DURATION.fullmatch(text.strip())
    if match is None:
        msg = f"--interval {text!r} is not a duration such as 90s, 5m or 1h"
        raise UsageError(msg)
    return float(match.group("amount")) * DURATION_UNITS[match.group("unit")]
