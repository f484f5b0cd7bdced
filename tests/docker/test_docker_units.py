"""The Docker builder's pure parts: pip settings, masking, platforms, modules."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from layerbuild import syslibs
from layerbuild.containers import check_platform, mask_credentials
from layerbuild.docker_builder import CA_MOUNT, PipSettings, default_build_base
from layerbuild.errors import DockerError, UsageError
from layerbuild.smoke import default_runtime_image, layer_modules, unpack_layer
from layerbuild.targets import ARCHITECTURES, Target


def test_credentials_in_urls_are_masked() -> None:
    text = (
        "Looking in indexes: https://bob:s3cret@pypi.example/simple and http://tok@x/y"
    )
    assert mask_credentials(text) == (
        "Looking in indexes: https://***@pypi.example/simple and http://***@x/y"
    )


def test_pip_settings_come_from_the_environment_over_the_config(tmp_path: Path) -> None:
    config = tmp_path / "pip.conf"
    config.write_text(
        "[global]\nindex-url = https://config.example/simple\n"
        "extra-index-url = file:///opt/pypi/simple\n    https://extra.example/simple\n"
        "find-links = /opt/wheels\ncert = /nonexistent.pem\n"
    )
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    environ = {
        "PIP_INDEX_URL": "https://user:pw@mirror.example/simple",
        "PIP_TRUSTED_HOST": "mirror.example",
        "SSL_CERT_FILE": str(bundle),
        "HTTPS_PROXY": "http://proxy.example:3128",
        "NO_PROXY": "localhost",
    }

    settings = PipSettings.from_host(environ, [config])

    assert settings.index_url == "https://user:pw@mirror.example/simple"
    assert settings.extra_index_urls == ("https://extra.example/simple",)
    assert settings.left_out == ("file:///opt/pypi/simple", "/opt/wheels")
    assert settings.ca_bundle == bundle
    env = settings.container_env()
    assert env["PIP_INDEX_URL"] == "https://user:pw@mirror.example/simple"
    assert env["PIP_TRUSTED_HOST"] == "mirror.example"
    assert env["PIP_CERT"] == env["SSL_CERT_FILE"] == CA_MOUNT
    assert env["HTTPS_PROXY"] == "http://proxy.example:3128"
    assert "PIP_FIND_LINKS" not in env
    assert "pw" not in settings.describe()
    assert not settings.needs_host_network()


def test_an_index_on_the_loopback_address_needs_the_host_network() -> None:
    settings = PipSettings.from_host(
        {
            "PIP_INDEX_URL": "http://127.0.0.1:8080/simple",
            "PIP_CONFIG_FILE": "/dev/null",
        }
    )
    assert settings.needs_host_network()


def test_uv_variables_stand_in_for_pip_ones() -> None:
    settings = PipSettings.from_host(
        {"UV_INDEX_URL": "https://uv.example/simple", "PIP_CONFIG_FILE": "/dev/null"}
    )
    assert settings.index_url == "https://uv.example/simple"


def test_arm64_without_qemu_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(DockerError) as caught:
        check_platform(ARCHITECTURES["arm64"], "x86_64", tmp_path)
    assert str(caught.value) == (
        "arm64 containers on this x86_64 host need QEMU emulation, "
        f"and {tmp_path}/qemu-aarch64 is not registered"
    )
    assert "qemu-user-static" in (caught.value.hint or "")


def test_arm64_with_qemu_registered_runs_emulated(tmp_path: Path) -> None:
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu\n")
    assert check_platform(ARCHITECTURES["arm64"], "x86_64", tmp_path) == "linux/arm64"
    assert check_platform(ARCHITECTURES["x86_64"], "x86_64", tmp_path) is None


def test_default_images_are_the_public_sam_and_lambda_ones() -> None:
    target = Target.of("python3.12", "arm64")
    assert (
        default_build_base(target) == "public.ecr.aws/sam/build-python3.12:latest-arm64"
    )
    assert default_runtime_image(target) == "public.ecr.aws/lambda/python:3.12-arm64"


def _dist(
    site: Path, name: str, files: list[str], top_level: str | None = None
) -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))
    if top_level is not None:
        (info / "top_level.txt").write_text(top_level)


def test_layer_modules_read_top_level_then_record(tmp_path: Path) -> None:
    site = tmp_path / "python/lib/python3.12/site-packages"
    _dist(site, "PyYAML", [], top_level="_yaml\nyaml\n")
    _dist(site, "six", ["six.py", "six-1.0.dist-info/RECORD", "__pycache__/six.pyc"])
    _dist(site, "ext", ["fast.cpython-312-x86_64-linux-gnu.so", "../../bin/tool"])
    _dist(site, "other", ["other/__init__.py"])

    assert layer_modules(tmp_path, {}) == ["_yaml", "fast", "other", "six", "yaml"]
    assert layer_modules(tmp_path, {"pyyaml": "6.0"}) == ["_yaml", "yaml"]


def test_unpacking_keeps_modes_and_refuses_escapes(tmp_path: Path) -> None:
    archive = tmp_path / "layer.zip"
    with zipfile.ZipFile(archive, "w") as layer:
        info = zipfile.ZipInfo("bin/tool")
        info.external_attr = 0o100755 << 16
        layer.writestr(info, "#!/bin/sh\n")
    unpack_layer(archive, tmp_path / "out")
    assert (tmp_path / "out/bin/tool").stat().st_mode & 0o777 == 0o755

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as layer:
        layer.writestr("../escaped", "x")
    with pytest.raises(UsageError, match="points outside the layer"):
        unpack_layer(evil, tmp_path / "evil")


def test_ldconfig_listing_and_glibc_names() -> None:
    listing = (
        "3 libs found in cache `/etc/ld.so.cache'\n"
        "\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1\n"
        "\tlibc.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/libc.so.6\n"
    )
    assert syslibs.parse_ldconfig(listing) == {"libz.so.1", "libc.so.6"}
    assert syslibs.is_glibc("libnss_files.so.2")
    assert not syslibs.is_glibc("libpq.so.5")
    provided = syslibs.provided_by("al2023", ["libz.so.1"])
    assert {"libstdc++.so.6", "libz.so.1", "libm.so.6"} <= provided


def test_prune_keeps_only_what_the_layer_needs(tmp_path: Path) -> None:
    """Real ELF files from this machine: libcrypt needs only glibc, so it goes."""
    python = Path("/proc/self/exe").resolve()
    needed = syslibs.dynamic_info(python).needed
    assert "libc.so.6" in needed
    lib = tmp_path / "lib"
    (tmp_path / "bin").mkdir()
    lib.mkdir()
    (tmp_path / "bin/python").write_bytes(python.read_bytes())
    (lib / "libunused.so.1").write_bytes(python.read_bytes())
    (lib / "libc.so.6").write_bytes(b"\x7fELF not really")

    closure = syslibs.prune(
        tmp_path, syslibs.provided_by("al2023"), ["libunused.so.1", "libc.so.6"]
    )

    assert sorted(closure.removed) == ["libc.so.6", "libunused.so.1"]
    assert not lib.exists()
