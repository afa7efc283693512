"""A dataset's ``meta.json`` as a typed record.

The fields every reader relies on are typed attributes; sub-documents that echo settings (the model's
description, the results-relevant config, the judge, package versions, the SAE, the labelling) stay JSON
objects, since they are JSON by nature and their keys belong to the component that wrote them. Keys this
version does not know, and known keys stored as ``null``, are kept in ``extra`` exactly as read, so that
reading a dataset and writing it again never changes its ``meta.json`` (old datasets included).

The record is serialised only at the edge: `to_json` when ``meta.json`` is written, `DatasetMeta.from_json`
when it is read.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import attrs

from deception_core.base.types import JSONObject, JSONValue


def _ints(value: object) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, numbers.Integral) for v in value):
        raise TypeError(f"a dataset's layers are a list of integers, not {value!r}")
    return tuple(int(v) for v in value if isinstance(v, numbers.Integral))


def _strs(value: object) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"expected a list of names, not {value!r}")
    return tuple(str(v) for v in value)


@attrs.frozen(kw_only=True)
class DatasetMeta:
    """What a dataset records about itself (``meta.json``)."""

    #: the captured decoder layers and positions (``reply_all`` included when every reply token was kept)
    layers: tuple[int, ...] = attrs.field(converter=_ints)
    positions: tuple[str, ...] = attrs.field(converter=_strs)
    #: the model: ``id``, ``revision``, ``dtype``, ``n_layers``, ``d_model``, ``fingerprint`` ...
    model: JSONObject = attrs.field(factory=dict)
    capture_backend: str | None = None
    #: when the run finished (ISO 8601, UTC)
    created: str | None = None
    schema_version: int | None = None
    n_samples: int | None = None
    #: sha256 of every other file of the dataset, by file name
    files: dict[str, str] | None = None
    scenarios: tuple[str, ...] | None = None
    #: the results-relevant config of the run (mode, trials, seed, label policy, ...)
    result_config: JSONObject | None = None
    judge: JSONObject | None = None
    #: package versions by plugin
    plugins: JSONObject | None = None
    #: how the labels were last given (`deception relabel`)
    labelling: JSONObject | None = None
    #: the SAE whose codes the dataset stores (``d_sae``, ``layer``, ``hook_name`` ...)
    sae: JSONObject | None = None
    #: records `deception capture` cut to the model's context
    truncated_records: int | None = None
    #: every other key, as read (``merged_from``, ``merged_differences`` ...)
    extra: JSONObject = attrs.field(factory=dict)

    @property
    def model_id(self) -> str:
        return str(self.model.get("id", "?"))

    @classmethod
    def from_json(cls, data: Mapping[str, JSONValue]) -> DatasetMeta:
        """The record of a ``meta.json`` document (whose shape the reader checked first)."""
        read = _Reader(data)
        meta = cls(
            layers=read.array("layers") or (), positions=read.array("positions") or (),
            model=read.object("model") or {}, capture_backend=read.text("capture_backend"),
            created=read.text("created"), schema_version=read.integer("schema_version"),
            n_samples=read.integer("n_samples"), files=read.digests("files"),
            scenarios=None if (scenarios := read.array("scenarios")) is None else _strs(scenarios),
            result_config=read.object("result_config"), judge=read.object("judge"), plugins=read.object("plugins"),
            labelling=read.object("labelling"), sae=read.object("sae"),
            truncated_records=read.integer("truncated_records"),
        )
        return attrs.evolve(meta, extra=read.rest())

    def to_json(self) -> JSONObject:
        """The ``meta.json`` document: the typed fields that are set, and ``extra`` as read."""
        out: JSONObject = {}
        for field in attrs.fields(DatasetMeta):
            value = getattr(self, field.name)
            if field.name == "extra" or value is None:
                continue
            out[field.name] = list(value) if isinstance(value, tuple) else value
        out.update(self.extra)
        return out

    def with_extra(self, **values: JSONValue) -> DatasetMeta:
        """A copy with these keys set in ``extra``."""
        return attrs.evolve(self, extra={**self.extra, **values})


class _Reader:
    """Takes the typed fields out of a ``meta.json`` document; what it does not take stays, as read."""

    def __init__(self, data: Mapping[str, JSONValue]) -> None:
        self.data = data
        self.taken: set[str] = set()

    def array(self, key: str) -> Sequence[JSONValue] | None:
        value = self.data.get(key)
        if isinstance(value, (list, tuple)):
            self.taken.add(key)
            return value
        return None

    def object(self, key: str) -> JSONObject | None:
        value = self.data.get(key)
        if isinstance(value, Mapping):
            self.taken.add(key)
            return dict(value)
        return None

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if isinstance(value, str):
            self.taken.add(key)
            return value
        return None

    def integer(self, key: str) -> int | None:
        value = self.data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            self.taken.add(key)
            return value
        return None

    def digests(self, key: str) -> dict[str, str] | None:
        value = self.data.get(key)
        if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
            self.taken.add(key)
            return {str(k): str(v) for k, v in value.items()}
        return None

    def rest(self) -> JSONObject:
        return {k: v for k, v in self.data.items() if k not in self.taken}


def as_dataset_meta(value: DatasetMeta | Mapping[str, JSONValue]) -> DatasetMeta:
    """``value`` as the record (a mapping is the JSON form: code that builds a dataset's meta as a document)."""
    return value if isinstance(value, DatasetMeta) else DatasetMeta.from_json(value)
