"""Fixtures for the function-side tests: a role, functions and layers in moto.

The AWS objects a test needs are made with plain boto3 calls against the moto
server (the test's own setup); what is tested always goes through layerbuild.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from layerbuild.aws import ClientFactory, FunctionGateway
from layerbuild.cli import main

REGION = "us-east-1"


def make_zip(files: dict[str, bytes]) -> bytes:
    """A zip holding ``files`` (path -> content), in memory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


HANDLER_ZIP = make_zip({"app.py": b"def handler(event, context):\n    return 1\n"})


@dataclass
class Stand:
    """The moto account a test works in, with helpers to set it up."""

    env: dict[str, str]
    lam: Any
    iam: Any
    cloudwatch: Any
    roles: dict[str, str] = field(default_factory=dict)

    def role(self, name: str = "layerbuild-test") -> str:
        """An IAM role's ARN; moto wants the role to exist for create_function."""
        if name not in self.roles:
            answer = self.iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=(
                    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
                    '"Principal": {"Service": "lambda.amazonaws.com"}, '
                    '"Action": "sts:AssumeRole"}]}'
                ),
            )
            self.roles[name] = answer["Role"]["Arn"]
        return self.roles[name]

    def function(
        self,
        name: str,
        *,
        runtime: str = "python3.12",
        architecture: str = "x86_64",
        layers: Sequence[str] = (),
        code: bytes = HANDLER_ZIP,
    ) -> dict[str, Any]:
        return dict(
            self.lam.create_function(
                FunctionName=name,
                Runtime=runtime,
                Role=self.role(),
                Handler="app.handler",
                Code={"ZipFile": code},
                Architectures=[architecture],
                Layers=list(layers),
            )
        )

    def layer(
        self,
        name: str,
        *,
        runtimes: Sequence[str] = ("python3.12",),
        architectures: Sequence[str] = ("x86_64",),
        files: dict[str, bytes] | None = None,
    ) -> str:
        """Publish a layer version; its version ARN."""
        content = make_zip(files or {f"python/{name}.py": b"VALUE = 1\n"})
        answer = self.lam.publish_layer_version(
            LayerName=name,
            Content={"ZipFile": content},
            CompatibleRuntimes=list(runtimes),
            CompatibleArchitectures=list(architectures),
        )
        return str(answer["LayerVersionArn"])

    def config(self, function: str, qualifier: str = "$LATEST") -> dict[str, Any]:
        """A version's configuration as AWS answers, without request metadata."""
        answer = dict(
            self.lam.get_function_configuration(
                FunctionName=function, Qualifier=qualifier
            )
        )
        answer.pop("ResponseMetadata", None)
        return answer

    def layer_arns(self, function: str) -> list[str]:
        config = self.lam.get_function_configuration(FunctionName=function)
        return [layer["Arn"] for layer in config.get("Layers", [])]

    def gateway(self) -> FunctionGateway:
        return FunctionGateway(ClientFactory(), REGION)


@pytest.fixture
def stand(aws_env: dict[str, str]) -> Stand:
    """A fresh moto account with boto3 clients for setting it up."""
    return Stand(
        env=aws_env,
        lam=boto3.client("lambda", region_name=REGION),
        iam=boto3.client("iam", region_name=REGION),
        cloudwatch=boto3.client("cloudwatch", region_name=REGION),
    )


@dataclass(frozen=True)
class Run:
    """What one run of the ``layerbuild`` entry point left behind."""

    status: int
    out: str
    err: str


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run ``layerbuild ARGS...`` through its entry point, in this process."""

    def invoke(*args: str) -> Run:
        capsys.readouterr()
        try:
            main(list(args))
            status = 0
        except SystemExit as done:
            status = int(done.code or 0)
        captured = capsys.readouterr()
        return Run(status, captured.out, captured.err)

    return invoke


class FakeClock:
    """A clock that only counts; ``on_sleep`` runs at each sleep, for tests."""

    def __init__(self) -> None:
        self.time = 1000.0
        self.slept: list[float] = []
        self.on_sleep: Callable[[float], None] | None = None

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.time += seconds
        if self.on_sleep is not None:
            self.on_sleep(self.time)
