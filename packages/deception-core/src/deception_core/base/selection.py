"""The one parser of layer and position choices, shared by the run's config, `deception capture` and
`deception bench` (each command keeps its own default when nothing is given, and checks the
choice against its model's depth itself)."""

from __future__ import annotations

from collections.abc import Sequence

from deception_core.base.errors import ConfigError
from deception_core.base.types import Position


def parse_layers(value: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """Decoder blocks (0-based) from ``"4,9,13"`` or ``[4, 9, 13]``: sorted, without repeats; None for
    "not given" (the command's default). Refuses non-integers, an empty choice and negative layers
    (`ConfigError`, exit 2)."""
    if value is None:
        return None
    raw: object = value
    if isinstance(value, str):
        try:
            raw = [int(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise ConfigError(
                f"--layers takes comma-separated integers such as 4,9,13; got {value!r}"
            ) from None
        if not raw:
            raise ConfigError("--layers is empty; name layers such as 4,9,13 or leave the option out")
    if not isinstance(raw, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
        raise ConfigError(f"layers must be a list of integers such as [4, 9, 13]; got {value!r}")
    if not raw:
        raise ConfigError("layers is empty; name layers such as [4, 9, 13] or leave the key out")
    layers = tuple(int(v) for v in raw)
    if any(layer < 0 for layer in layers):
        raise ConfigError(f"layers must be 0 or more; got {list(layers)}")
    return tuple(sorted(set(layers)))


def parse_positions(value: str | Sequence[str | Position]) -> tuple[Position, ...]:
    """Recorded positions from ``"last_prompt,reply_mean"`` or a list of names, in the given order
    without repeats; refuses unknown names and an empty choice (`ConfigError`, exit 2)."""
    valid = ", ".join(p.value for p in Position)
    raw: object = value
    if isinstance(value, str):
        raw = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(raw, (list, tuple)):
        raise ConfigError(f"positions must be a list or a comma-separated string of {valid}; got {value!r}")
    try:
        positions = tuple(dict.fromkeys(Position(v) for v in raw))
    except (ValueError, TypeError):
        raise ConfigError(f"positions must be among {valid}; got {list(raw)}") from None
    if not positions:
        raise ConfigError(f"positions is empty, so nothing would be captured; name at least one of {valid}")
    return positions
