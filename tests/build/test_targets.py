"""The wheel tags each Lambda target can load."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.tags import Tag

from layerbuild.targets import ARCHITECTURES, PYTHON_RUNTIMES, RUNTIMES, Target

targets = st.builds(
    Target.of, st.sampled_from(PYTHON_RUNTIMES), st.sampled_from(list(ARCHITECTURES))
)


def _glibc_of(platform: str) -> tuple[int, int] | None:
    if not platform.startswith("manylinux_"):
        return None
    major, minor = platform.split("_")[1:3]
    return int(major), int(minor)


@given(targets)
def test_no_tag_asks_for_a_newer_glibc_than_the_runtime_has(target: Target) -> None:
    """Every manylinux_X_Y tag offered is at most the runtime's glibc."""
    for tag in target.supported_tags:
        glibc = _glibc_of(tag.platform)
        assert glibc is None or glibc <= target.runtime.glibc


@given(targets)
def test_every_glibc_minor_up_to_the_runtimes_is_listed(target: Target) -> None:
    """pip matches tags literally, so no minor version may be skipped."""
    minors = {
        glibc[1]
        for platform in target.manylinux_tags
        if (glibc := _glibc_of(platform)) is not None
    }
    oldest = 5 if target.arch.machine == "x86_64" else 17
    assert minors == set(range(oldest, target.runtime.glibc[1] + 1))


@given(targets)
def test_tags_name_only_the_targets_machine_and_python(target: Target) -> None:
    """No tag of another machine, or of another CPython's ABI, slips in."""
    python = f"cp{target.runtime.python[0]}{target.runtime.python[1]}"
    for tag in target.supported_tags:
        assert tag.platform == "any" or tag.platform.endswith(target.arch.machine)
        assert tag.abi in {python, "abi3", "none"}


@given(targets)
def test_uv_platform_never_overshoots_the_runtime(target: Target) -> None:
    """The resolver's platform is at most the runtime's glibc."""
    ceiling = target.uv_platform.split("manylinux_")[1].split("_")
    assert (int(ceiling[0]), int(ceiling[1])) <= target.runtime.glibc
    assert target.resolver_tags <= set(target.supported_tags)


@pytest.mark.parametrize(
    ("runtime", "arch", "loads", "refuses"),
    [
        (
            "python3.11",
            "x86_64",
            "cp311-cp311-manylinux_2_17_x86_64",
            "cp311-cp311-manylinux_2_28_x86_64",
        ),
        (
            "python3.12",
            "arm64",
            "cp312-cp312-manylinux_2_34_aarch64",
            "cp312-cp312-manylinux_2_35_aarch64",
        ),
        (
            "python3.12",
            "x86_64",
            "cp39-abi3-manylinux2014_x86_64",
            "cp313-cp313-manylinux1_x86_64",
        ),
        ("python3.9", "x86_64", "py3-none-any", "cp39-cp39-musllinux_1_2_x86_64"),
        (
            "python3.13",
            "arm64",
            "cp313-cp313-manylinux_2_17_aarch64",
            "cp313-cp313-manylinux_2_17_x86_64",
        ),
    ],
)
def test_known_wheels(runtime: str, arch: str, loads: str, refuses: str) -> None:
    """Real wheel tags land on the right side."""
    target = Target.of(runtime, arch)

    assert Tag(*loads.split("-")) in target.supported_tags
    assert Tag(*refuses.split("-")) not in target.supported_tags


def test_runtime_table_matches_amazon_linux() -> None:
    """python3.9-3.11 and provided.al2 run on glibc 2.26; the rest on 2.34."""
    al2 = {name for name, rt in RUNTIMES.items() if rt.glibc == (2, 26)}

    assert al2 == {"python3.9", "python3.10", "python3.11", "provided.al2"}
