"""Run configuration: frozen attrs classes, validated, unknown keys refused.

Nothing here imports torch; dtypes and devices are strings resolved when the model loads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from deception_core.errors import ConfigError
from deception_core.types import DEFAULT_POSITIONS, Position

DTYPES = ("bfloat16", "float16", "float32")
DEVICES = ("auto", "cuda", "mps", "cpu")
MODES = ("emergent", "instructed", "both")
EVALUATORS_BUILTIN = ("local", "together", "google")
LABEL_POLICIES = ("agree", "rule")
CAPTURE_BACKENDS_BUILTIN = ("hf", "transformer-lens", "hybrid")
#: ``--scenarios N`` runs the first N: the predecessor's core three first (its ``--scenarios 3``
#: set), then the other three; every N gives one set for both modes.
SCENARIO_ORDER = (
    "ultimatum_bluff",
    "hidden_value",
    "alliance_betrayal",
    "capability_bluff",
    "info_withholding",
    "promise_break",
)

C = TypeVar("C")


def _positive(_instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{attribute.name} must be at least 1, got {value}")


def _non_negative(_instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if value < 0:
        raise ConfigError(f"{attribute.name} must be 0 or more, got {value}")


def _choice(choices: tuple[str, ...]):
    def check(_instance: Any, attribute: attrs.Attribute, value: str) -> None:
        if value not in choices:
            raise ConfigError(
                f"{attribute.name} must be one of {', '.join(choices)}; got {value!r}"
            )

    return check


def _layers(value: Any) -> tuple[int, ...] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = [int(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise ConfigError(
                f"--layers takes comma-separated integers such as 4,9,13; got {value!r}"
            ) from None
    layers = tuple(int(v) for v in value)
    if any(layer < 0 for layer in layers):
        raise ConfigError(f"layers must be 0 or more; got {list(layers)}")
    return tuple(sorted(set(layers)))


def _positions(value: Any) -> tuple[Position, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    try:
        return tuple(Position(v) for v in value)
    except ValueError:
        valid = ", ".join(p.value for p in Position)
        raise ConfigError(f"positions must be among {valid}; got {list(value)}") from None


def _shard(value: Any) -> tuple[int, int] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        index, sep, total = value.partition("/")
        try:
            value = (int(index), int(total)) if sep else None
        except ValueError:
            value = None
        if value is None:
            raise ConfigError("--shard takes I/N with 0 <= I < N, for example 0/4")
    index, total = (int(v) for v in value)
    if not (total >= 1 and 0 <= index < total):
        raise ConfigError(f"--shard needs 0 <= I < N; got {index}/{total}")
    return (index, total)


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    return tuple(dict.fromkeys(str(v) for v in value))


@attrs.frozen(kw_only=True)
class RunConfig:
    """Everything a `deception run` needs. Field names follow the command-line flags."""

    model: str = "google/gemma-2b-it"
    revision: str | None = None
    device: str = attrs.field(default="auto", validator=_choice(DEVICES))
    dtype: str = attrs.field(default="bfloat16", validator=_choice(DTYPES))
    mode: str = attrs.field(default="emergent", validator=_choice(MODES))
    scenarios: int = attrs.field(default=3)
    scenario_names: tuple[str, ...] = attrs.field(default=(), converter=_names)
    trials: int = attrs.field(default=40, validator=_positive)
    max_rounds: int = attrs.field(default=3, validator=_positive)
    max_tokens: int = attrs.field(default=128, validator=_positive)
    fast: bool = False
    ultrafast: bool = False
    self_report: bool = False
    hybrid: bool = False
    capture_backend: str | None = None
    layers: tuple[int, ...] | None = attrs.field(default=None, converter=_layers)
    positions: tuple[Position, ...] = attrs.field(default=DEFAULT_POSITIONS, converter=_positions)
    sae: bool = False
    sae_layer: int = attrs.field(default=12, validator=_non_negative)
    sae_release: str | None = None
    sae_id: str | None = None
    sae_path: str | None = None
    causal: bool = False
    causal_samples: int = attrs.field(default=20, validator=_positive)
    evaluator: str = "local"
    label_policy: str = attrs.field(default="agree", validator=_choice(LABEL_POLICIES))
    output: str = "./experiment_output"
    checkpoint_dir: str | None = None
    verbose: bool = False
    seed: int = 0
    shard: tuple[int, int] | None = attrs.field(default=None, converter=_shard)
    batch_size: int = attrs.field(default=1, validator=_positive)
    temperature: float = 0.7
    top_p: float = 0.9
    analyze: bool = True

    def __attrs_post_init__(self) -> None:
        if self.temperature < 0:
            raise ConfigError(f"temperature must be 0 (greedy) or more; got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1]; got {self.top_p}")
        if self.hybrid and self.capture_backend not in (None, "hybrid"):
            raise ConfigError(
                f"--hybrid selects the 'hybrid' capture backend but --capture-backend is "
                f"{self.capture_backend!r}; drop one of the two"
            )

    @property
    def modes(self) -> tuple[str, ...]:
        return ("emergent", "instructed") if self.mode == "both" else (self.mode,)

    @property
    def backend_name(self) -> str | None:
        return "hybrid" if self.hybrid else self.capture_backend

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        return structure(cls, data)

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        data = json.loads(Path(path).read_text())
        return cls.from_dict(data.get("config", data))


def structure(cls: type[C], data: Mapping[str, Any]) -> C:
    """Build an attrs config from a mapping, refusing keys the class does not have."""
    names = {field.name for field in attrs.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown {cls.__name__} key(s): {', '.join(unknown)}. Valid keys: {', '.join(sorted(names))}"
        )
    try:
        return cls(**dict(data))
    except TypeError as error:
        raise ConfigError(f"invalid {cls.__name__}: {error}") from None


def to_jsonable(value: Any) -> Any:
    """attrs instances, enums, tuples and paths as plain JSON values."""
    if attrs.has(type(value)):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "value") and hasattr(type(value), "__members__"):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value
