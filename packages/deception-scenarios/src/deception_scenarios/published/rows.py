"""Rows of a published dataset: from a local file in the format it is published in, or from the hub.

A row is a plain dict with a *where* that names it in messages (``FILE record 3``, ``FILE:7`` for a
line of a JSON Lines file), so a malformed record is refused naming the record and the fix. The
``datasets`` library (hub) and ``pyarrow`` (Parquet) are imported only when used.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from deception_core import ConfigError, UsageError

#: file suffix -> the format's name in messages
FORMATS = {".yaml": "YAML", ".yml": "YAML", ".json": "JSON", ".jsonl": "JSON Lines", ".csv": "CSV",
           ".parquet": "Parquet"}


@attrs.frozen
class Row:
    """One record of a published dataset and where it was read (for messages)."""

    where: str
    values: Mapping[str, Any]

    def text(self, key: str, fields: Sequence[str], *, required: bool = True) -> str:
        """The text field ``key`` (an optional one absent or empty is ``""``); anything else is refused,
        naming the record and the format's ``fields``."""
        value = self.values.get(key)
        if value is None or value == "":
            if required:
                raise UsageError(f"{self.where}: '{key}' is missing or empty; each record of this format has "
                                 f"{', '.join(fields)}")
            return ""
        if not isinstance(value, str):
            raise UsageError(f"{self.where}: '{key}' must be text, got {type(value).__name__} ({value!r:.60})")
        return value


def check_path(path: str, name: str, suffixes: Sequence[str]) -> Path:
    """``path`` as a readable file of one of ``suffixes``; refused (exit 2) with the fix otherwise."""
    file = Path(path).expanduser()
    wanted = " or ".join(suffixes)
    if not file.is_file():
        raise UsageError(f"{name}: --param path={path} is not a file; pass the {wanted} file of the published set")
    if file.suffix.lower() not in suffixes:
        raise UsageError(f"{name}: {file} is not a {wanted} file; the set is read in its published format ({wanted})")
    return file


def _text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise UsageError(f"{file}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8") from None


def _listed(data: object, file: Path, what: str) -> list[Any]:
    if not isinstance(data, list):
        raise UsageError(f"{file}: the {what} file must hold a list of records, got {type(data).__name__}")
    return data


def _yaml(file: Path) -> list[Any]:
    import yaml

    try:
        return _listed(yaml.safe_load(_text(file)), file, "YAML")
    except yaml.YAMLError as error:
        raise UsageError(f"{file}: not valid YAML ({error})") from None


def _json(file: Path) -> list[Any]:
    try:
        return _listed(json.loads(_text(file)), file, "JSON")
    except json.JSONDecodeError as error:
        raise UsageError(f"{file}: not valid JSON ({error})") from None


def _jsonl(file: Path) -> list[tuple[str, Any]]:
    out = []
    for number, line in enumerate(_text(file).splitlines(), start=1):
        if line.strip():
            try:
                out.append((f"{file}:{number}", json.loads(line)))
            except json.JSONDecodeError as error:
                raise UsageError(f"{file}:{number}: not valid JSON ({error})") from None
    return out


def _csv(file: Path) -> list[tuple[str, Any]]:
    try:
        reader = csv.DictReader(io.StringIO(_text(file), newline=""))
        return [(f"{file}:{number}", row) for number, row in enumerate(reader, start=2)]
    except csv.Error as error:
        raise UsageError(f"{file}: not a readable CSV file ({error})") from None


def _parquet(file: Path) -> list[Any]:
    import pyarrow
    import pyarrow.parquet

    try:
        return list(pyarrow.parquet.read_table(file).to_pylist())
    except (pyarrow.ArrowException, OSError) as error:
        raise UsageError(f"{file}: not a readable Parquet file ({error})") from None


def read_rows(path: str, name: str, suffixes: Sequence[str]) -> list[Row]:
    """Every record of the file at ``path`` (one of ``suffixes``); each must be an object (a mapping)."""
    file = check_path(path, name, suffixes)
    suffix = file.suffix.lower()
    numbered: list[tuple[str, Any]]
    if suffix in (".jsonl", ".csv"):
        numbered = _jsonl(file) if suffix == ".jsonl" else _csv(file)
    else:
        reader: Callable[[Path], list[Any]] = {".yaml": _yaml, ".yml": _yaml, ".json": _json,
                                               ".parquet": _parquet}[suffix]
        numbered = [(f"{file} record {number}", item) for number, item in enumerate(reader(file), start=1)]
    rows = []
    for where, item in numbered:
        if not isinstance(item, Mapping):
            raise UsageError(f"{where}: a record must be an object of named fields, got {type(item).__name__}")
        rows.append(Row(where, item))
    if not rows:
        raise UsageError(f"{file} holds no records")
    return rows


def hub_rows(repo: str, config: str | None, split: str, name: str) -> list[Row]:
    """The rows of ``repo`` (its subset ``config``, its ``split``) on the Hugging Face hub, through ``datasets``."""
    try:
        import datasets
    except ImportError:
        raise UsageError(f"{name}: reading {repo} from the Hugging Face hub needs the `datasets` package "
                         "(pip install datasets); or download the file and pass --param path=FILE") from None
    try:
        loaded = datasets.load_dataset(repo, config, split=split)
    except Exception as error:  # the hub, a gated repository, a name: whatever fails, the file route is the fix
        raise UsageError(f"{name}: could not load {repo} (subset {config}, split {split}) from the Hugging Face hub "
                         f"({type(error).__name__}: {error}); download it and pass --param path=FILE") from None
    return [Row(f"{repo} {split} row {number}", dict(item)) for number, item in enumerate(loaded, start=1)]


def positive(name: str) -> Callable[[object, attrs.Attribute[int | None], int | None], None]:
    """A validator: ``None`` or a whole number above zero."""

    def check(_instance: object, _attribute: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be 1 or more (or left out for every record), got {value}")

    return check
