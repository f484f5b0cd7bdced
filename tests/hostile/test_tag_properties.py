"""Property tests across the platform-tag logic of targets.py and index.py.

The index and the targets each read manylinux tags; they must agree, and no
file name an index can list may crash either.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.tags import Tag

from layerbuild.index import DistFile, _parse_filename
from layerbuild.targets import ARCHITECTURES, RUNTIMES, Target, _tag_glibc

pytestmark = pytest.mark.hostile

python_targets = st.builds(
    Target.of,
    st.sampled_from([name for name, rt in RUNTIMES.items() if rt.python]),
    st.sampled_from(list(ARCHITECTURES)),
)


@given(python_targets)
def test_index_and_targets_read_every_tag_to_the_same_glibc(target: Target) -> None:
    """DistFile.min_glibc and the target's own reading never disagree."""
    machine = target.arch.machine
    for platform in target.manylinux_tags:
        wheel = DistFile(
            "x.whl",
            "u",
            None,
            frozenset({Tag("py3", "none", platform)}),
            None,  # type: ignore[arg-type]
        )
        assert wheel.min_glibc() == _tag_glibc(platform, machine)
        assert _tag_glibc(platform, machine) <= target.runtime.glibc


@given(python_targets)
def test_resolver_tags_never_exceed_what_uv_targets(target: Target) -> None:
    """What uv may pick is loadable, and never newer than its platform says."""
    ceiling = target.uv_platform.split("manylinux_", 1)[1].split("_")
    limit = (int(ceiling[0]), int(ceiling[1]))
    assert target.resolver_tags <= set(target.supported_tags)
    for tag in target.resolver_tags:
        if tag.platform != "any":
            assert _tag_glibc(tag.platform, target.arch.machine) <= limit
    assert Tag("py3", "none", "any") in target.resolver_tags


@given(
    python_targets, st.sampled_from(["win_amd64", "macosx_11_0_arm64", "linux_x86_64"])
)
def test_foreign_platforms_are_never_loadable(target: Target, platform: str) -> None:
    """Windows, macOS and untagged linux wheels never count as the target's."""
    assert all(tag.platform != platform for tag in target.supported_tags)
    other = next(a for a in ARCHITECTURES.values() if a != target.arch)
    assert not any(
        tag.platform.endswith(other.machine) for tag in target.supported_tags
    )


@given(
    st.one_of(
        st.text(max_size=80),
        st.builds(
            lambda n, v, rest: f"{n}-{v}-{rest}.whl",
            st.text(max_size=10),
            st.text(max_size=6),
            st.text(max_size=30),
        ),
        st.builds(lambda n: f"{n}.tar.gz", st.text(max_size=20)),
    )
)
def test_any_file_name_an_index_lists_parses_or_is_skipped(filename: str) -> None:
    """A hostile or broken file name is skipped, never a crash."""
    parsed = _parse_filename(filename)
    assert parsed is None or isinstance(parsed[1], frozenset)
