"""One typed structuring step for every way a setting arrives: command line, config file, environment.

A config class is a frozen attrs class; `structure` turns a mapping of plain values into it with
cattrs, checking every value's type before the class's own validators check its range:

- an ``int`` field takes an integer, never ``true`` or ``"2"`` (a JSON string is refused with the fix);
- a ``float`` field takes a finite number (``nan`` and ``inf`` are refused);
- a ``bool`` field takes ``true`` or ``false``, never ``"no"``;
- a ``str`` field takes a non-empty string (``--output ""`` would mean "here", silently);
- unknown keys are refused with the valid ones listed.

Values from the environment are strings; `structure_strings` parses them into the field's type
first (``"2"`` -> 2, ``"true"`` -> True) and then runs the same checks.

Fields carry their command-line description in their metadata (`option`), so `deception run`'s
flags are derived from `RunConfig` (see `deception_core.cli.options`): a default is stated once.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from deception_core.base.errors import ConfigError

C = TypeVar("C", bound=attrs.AttrsInstance)

#: key of the command-line description in an attrs field's metadata
CLI_KEY = "deception.cli"


@attrs.frozen
class CliOption:
    """How a config field appears on the command line."""

    help: str | None = None
    short: str | None = None  # e.g. "-t"
    name: str | None = None  # the flag, if not --<field-name-with-dashes>
    invert: bool = False  # a bool field that defaults to True, set False by this flag (--no-analyze)
    multiple: bool = False  # repeatable flag collected into a tuple
    requires: str | None = None  # a bool field this one takes effect with (--sae-layer needs --sae)
    hidden: bool = False
    choices: tuple[str, ...] | None = None  # the valid values (checked by the field's validator too)

    def flag(self, field_name: str) -> str:
        return self.name or "--" + field_name.replace("_", "-")


def option(default: object = attrs.NOTHING, *, help: str | None = None, short: str | None = None,
           name: str | None = None, invert: bool = False, multiple: bool = False, requires: str | None = None,
           hidden: bool = False, choices: tuple[str, ...] | None = None, **field_kwargs: Any) -> Any:
    """An attrs field that is also a command-line option of `deception run`.

    ``choices`` is checked by a validator and offered by the command line (one list for both).
    """
    cli = CliOption(help=help, short=short, name=name, invert=invert, multiple=multiple, requires=requires,
                    hidden=hidden, choices=tuple(choices) if choices else None)
    if choices:
        validators = [one_of(tuple(choices))]
        if field_kwargs.get("validator") is not None:
            validators.append(field_kwargs["validator"])
        field_kwargs["validator"] = validators
    metadata = dict(field_kwargs.pop("metadata", {}) or {}, **{CLI_KEY: cli})
    return attrs.field(default=default, metadata=metadata, **field_kwargs)


def cli_option(field: attrs.Attribute[object]) -> CliOption | None:
    return field.metadata.get(CLI_KEY)


class _TypeProblem(ValueError):
    """A value of the wrong type; the message names the expected type and the fix."""


class _ValueProblem(_TypeProblem):
    """A value of the right type that no field may hold (empty, not finite, control characters)."""


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f"{value!r} (a string)"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return f"{list(value)!r} (a list)"
    if isinstance(value, dict):
        return "an object"
    return repr(value)


def _int(value: object, _type: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        hint = f"; write {value} without quotes" if isinstance(value, str) and value.strip().lstrip("-").isdigit() else ""
        raise _TypeProblem(f"must be an integer, got {_describe(value)}{hint}")
    return value


def _float(value: object, _type: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _TypeProblem(f"must be a number, got {_describe(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise _ValueProblem(f"must be a finite number, got {value}")
    return number


def _bool(value: object, _type: object) -> bool:
    if not isinstance(value, bool):
        raise _TypeProblem(f"must be true or false, got {_describe(value)}")
    return value


def _str(value: object, _type: object) -> str:
    if not isinstance(value, str):
        raise _TypeProblem(f"must be a string, got {_describe(value)}")
    if not value.strip():
        raise _ValueProblem("must not be empty; give a value or leave the option out")
    if any(ord(ch) < 32 for ch in value):
        raise _ValueProblem(f"must not contain control characters (newlines, tabs...), got {value!r}")
    return value


_PRIMITIVES = {int: _int, float: _float, bool: _bool, str: _str}


def is_primitive_union(kind: object) -> bool:
    args = typing.get_args(kind)
    return (typing.get_origin(kind) in (typing.Union, types.UnionType)
            and all(a in _PRIMITIVES or a is type(None) for a in args))


def _primitive_union_hook(kind: object) -> Callable[[object, object], object]:
    """``int | str`` (``--batch-size 4`` or ``auto``), ``float | None`` ...: the first member that accepts the value."""
    members = [a for a in typing.get_args(kind) if a is not type(None)]
    optional = type(None) in typing.get_args(kind)
    names = " or ".join(m.__name__ for m in members) + (" or null" if optional else "")

    def structure_union(value: object, _type: object) -> object:
        if value is None and optional:
            return None
        if len(members) == 1:  # X | None: X's own message ("must be a number")
            return _PRIMITIVES[members[0]](value, members[0])
        for member in members:
            try:
                return _PRIMITIVES[member](value, member)
            except _ValueProblem:
                raise  # the right type, a wrong value: say what is wrong with it
            except _TypeProblem:
                continue
        raise _TypeProblem(f"must be {names}, got {_describe(value)}")

    return structure_union


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, prefer_attrib_converters=True, detailed_validation=True)
    for kind, hook in _PRIMITIVES.items():
        converter.register_structure_hook(kind, hook)
    converter.register_structure_hook_factory(is_primitive_union, _primitive_union_hook)
    return converter


CONVERTER = _make_converter()


def _messages(error: BaseException, path: str) -> list[str]:
    """Flatten cattrs' grouped errors into ``field: problem`` lines."""
    if isinstance(error, ForbiddenExtraKeysError):
        return [f"{path or 'config'}: unknown key(s) {sorted(error.extra_fields)}"]
    if isinstance(error, (ClassValidationError, IterableValidationError)):
        lines: list[str] = []
        with_notes, without = error.group_exceptions()
        for inner, note in with_notes:
            name = getattr(note, "name", None)
            index = getattr(note, "index", None)
            where = f"{path}.{name}" if name is not None else f"{path}[{index}]"
            lines += _messages(inner, where.lstrip("."))
        for inner in without:
            lines += _messages(inner, path)
        return lines
    if isinstance(error, ConfigError):
        return [str(error)]
    if isinstance(error, _TypeProblem):
        return [f"{path} {error}"]
    return [f"{path}: {type(error).__name__}: {error}"]


def structure(cls: type[C], data: object, *, source: str = "", given: Collection[str] = (),
              context: attrs.AttrsInstance | None = None) -> C:
    """Build the attrs config ``cls`` from a mapping of plain values; raise `ConfigError` naming each bad key.

    ``given``: the keys the user set explicitly, for `check_requires` (an option that needs another is
    refused when given, whatever its value); ``context``: the config an option's requirement may
    name instead (a plugin's ``--causal-samples`` needs the run's ``--causal``).
    """
    where = f" in {source}" if source else ""
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"a {cls.__name__}{where} must be a mapping of option names to values (a JSON object), "
            f"got {_describe(data)}"
        )
    names = {field.name for field in attrs.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown {cls.__name__} key(s){where}: {', '.join(map(str, unknown))}. "
            f"Valid keys: {', '.join(sorted(names))}"
        )
    try:
        return check_requires(CONVERTER.structure(dict(data), cls), given, context)
    except ConfigError as error:
        raise ConfigError(f"{error}{where}") from None
    except (ClassValidationError, IterableValidationError, ForbiddenExtraKeysError) as error:
        lines = _messages(error, "")
        raise ConfigError(f"invalid {cls.__name__}{where}: " + "; ".join(lines)) from None
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid {cls.__name__}{where}: {error}") from None


def check_requires(instance: C, given: Collection[str] = (), context: attrs.AttrsInstance | None = None) -> C:
    """Refuse an option whose required option is off (--sae-layer without --sae).

    An option counts as set when its value differs from its default, or when its name is in
    ``given`` (the keys the user wrote: a flag on the command line, a key in a config file), so an
    option given at its default value is refused too. ``requires`` names a bool field, or
    ``field=value`` (``executor=ray``: --ray-address needs --executor ray), of ``instance`` or else
    of ``context``.
    """
    cls = type(instance)
    for field in attrs.fields(cls):
        cli = cli_option(field)
        if not (cli and cli.requires):
            continue
        value = getattr(instance, field.name)
        if value == field.default and (field.name not in given or value is None):  # null written: left out
            continue
        needed_name, sep, needed_value = cli.requires.partition("=")
        owner: attrs.AttrsInstance = (context if needed_name not in attrs.fields_dict(cls) and context is not None
                                      else instance)
        current = getattr(owner, needed_name)
        if (current == needed_value) if sep else bool(current):
            continue
        needed = cli_option(attrs.fields_dict(type(owner))[needed_name])
        other = needed.flag(needed_name) if needed else needed_name
        if sep:
            other = f"{other} {needed_value}"
        flag = cli.flag(field.name)
        raise ConfigError(f"{flag} takes effect only with {other}; add {other} or drop {flag}")
    return instance


def _field_kind(field: attrs.Attribute[object]) -> object:
    """The non-None member of an ``X | None`` annotation, else the annotation."""
    kind = field.type
    if isinstance(kind, str):
        return kind
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else kind
    return kind


def parse_string(field: attrs.Attribute[object], text: str) -> str | int | float | bool:
    """A string (environment variable, or a command-line value of a union type) as the plain value of
    ``field``'s type; checked later by `structure`."""
    kind = _field_kind(field)
    if is_primitive_union(kind):  # int | str: "4" is 4, "auto" stays a string
        for member in (int, float):
            if member in typing.get_args(kind):
                try:
                    return member(text.strip())
                except ValueError:
                    continue
        return text
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        return text  # refused by the bool hook, with the value named
    if kind is int:
        try:
            return int(text.strip())
        except ValueError:
            return text
    if kind is float:
        try:
            return float(text.strip())
        except ValueError:
            return text
    return text


def structure_strings(cls: type[C], values: Mapping[str, str], *, source: str = "the environment") -> C:
    """`structure` for string values (environment variables): each is parsed into its field's type first."""
    fields = {f.name: f for f in attrs.fields(cls)}
    parsed = {k: parse_string(fields[k], v) if k in fields and isinstance(v, str) else v for k, v in values.items()}
    return structure(cls, parsed, source=source)


def one_of(choices: tuple[str, ...]) -> Callable[[object, attrs.Attribute[str], str], None]:
    """attrs validator: one of ``choices``."""

    def check(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in choices:
            raise ConfigError(f"{attribute.name} must be one of {', '.join(choices)}; got {value!r}")

    check.choices = choices  # type: ignore[attr-defined]
    return check


def finite(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    """attrs validator: a finite number (Python callers bypass the structuring hooks)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{attribute.name} must be a finite number, got {value!r}")
