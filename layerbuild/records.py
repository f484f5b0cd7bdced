"""The records file: a JSON list of the layer versions layerbuild published.

Other tooling (infrastructure code, deploy scripts) reads it to find the ARN of
each layer in each region. It only ever lists versions Lambda confirmed: a
record is added after the publish succeeded (or after an unchanged version was
found), and removed when ``layers prune`` deletes the version. Writes merge with
what the file already holds and replace it atomically, so a reader never sees
half a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from layerbuild.errors import UsageError
from layerbuild.files import write_atomically

DEFAULT_RECORDS_FILE = "layers.json"
# mkstemp makes owner-only files; a records file is meant to be read by others.
NEW_FILE_MODE = 0o644


@dataclass(frozen=True)
class LayerRecord:
    """One published layer version in one region."""

    recipe: str
    layer_name: str
    runtimes: tuple[str, ...]
    architecture: str
    region: str
    layer_version_arn: str
    version: int
    content_key: str
    unzipped_bytes: int

    def to_json(self) -> dict[str, Any]:
        """The record as the file stores it (lists, not tuples)."""
        data = asdict(self)
        data["runtimes"] = list(self.runtimes)
        return data

    @classmethod
    def from_json(cls, path: Path, index: int, data: Any) -> LayerRecord:
        """Read one entry, naming the file, the entry and the field on error."""
        if not isinstance(data, dict):
            msg = f"{path}: entry {index}: expected an object, got {data!r}"
            raise UsageError(msg, hint=f"fix or delete {path}")
        try:
            return cls(
                recipe=_text(data, "recipe"),
                layer_name=_text(data, "layer_name"),
                runtimes=tuple(_text_list(data, "runtimes")),
                architecture=_text(data, "architecture"),
                region=_text(data, "region"),
                layer_version_arn=_text(data, "layer_version_arn"),
                version=_count(data, "version"),
                content_key=_text(data, "content_key"),
                unzipped_bytes=_count(data, "unzipped_bytes"),
            )
        except ValueError as error:
            msg = f"{path}: entry {index}: {error.args[0]}"
            raise UsageError(msg, hint=f"fix or delete {path}") from error


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        msg = f"field '{key}': {value!r} is not a non-empty string"
        raise ValueError(msg)
    return value


def _text_list(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        msg = f"field '{key}': {value!r} is not a list of strings"
        raise ValueError(msg)
    return value


def _count(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"field '{key}': {value!r} is not a whole number"
        raise ValueError(msg)
    return value


def load_records(path: Path) -> list[LayerRecord]:
    """The records in ``path``; an empty list when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as error:
        msg = f"{path}: cannot read the records file: {error.strerror}"
        raise UsageError(msg, hint="pass another --records FILE") from error

    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        msg = f"{path}: not valid JSON (line {error.lineno}): {error.msg}"
        raise UsageError(msg, hint=f"fix or delete {path}") from error
    if not isinstance(data, list):
        msg = f"{path}: expected a JSON list of layer records"
        raise UsageError(msg, hint=f"fix or delete {path}")
    return [LayerRecord.from_json(path, i, entry) for i, entry in enumerate(data)]


def _sort_key(record: LayerRecord) -> tuple[str, str, int]:
    return (record.layer_name, record.region, record.version)


def merge_records(
    existing: Iterable[LayerRecord],
    added: Iterable[LayerRecord] = (),
    removed_arns: Iterable[str] = (),
) -> list[LayerRecord]:
    """Existing records plus ``added`` (which win on the same ARN), less removed."""
    by_arn = {record.layer_version_arn: record for record in existing}
    for record in added:
        by_arn[record.layer_version_arn] = record
    for arn in removed_arns:
        by_arn.pop(arn, None)
    return sorted(by_arn.values(), key=_sort_key)


def write_records(path: Path, records: Iterable[LayerRecord]) -> None:
    """Write the records to a temporary file beside ``path``, then rename it."""
    text = json.dumps([r.to_json() for r in records], indent=2) + "\n"
    mode = path.stat().st_mode & 0o777 if path.exists() else NEW_FILE_MODE
    try:
        write_atomically(path, text, mode=mode)
    except OSError as error:
        msg = f"{path}: cannot write the records file: {error.strerror}"
        raise UsageError(msg, hint="pass another --records FILE") from error


def update_records(
    path: Path,
    added: Iterable[LayerRecord] = (),
    removed_arns: Iterable[str] = (),
) -> list[LayerRecord]:
    """Merge changes into the records file and return what it now holds."""
    added = list(added)
    removed_arns = list(removed_arns)
    if not added and not removed_arns and not path.exists():
        return []
    records = merge_records(load_records(path), added, removed_arns)
    write_records(path, records)
    return records
