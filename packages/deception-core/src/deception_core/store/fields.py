"""Read a sample's fields whether it is a JSON dict (today) or a typed record (`deception_core.base.records`)."""

from __future__ import annotations

from typing import Any

from deception_core.base.types import JSONObject
from deception_core.config.run import to_jsonable


def field(sample: object, name: str, default: object = None) -> Any:
    """``sample[name]`` for a dict, ``sample.name`` for a record; ``default`` when absent."""
    if isinstance(sample, dict):
        return sample.get(name, default)
    return getattr(sample, name, default)


def as_dict(sample: object) -> JSONObject:
    """A sample as a plain dict (records are converted with attrs when they are attrs classes)."""
    if isinstance(sample, dict):
        return dict(sample)
    import attrs

    if attrs.has(type(sample)):
        converted: JSONObject = to_jsonable(sample)
        return converted
    return dict(vars(sample))
