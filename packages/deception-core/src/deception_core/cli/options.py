"""Command-line options derived from a config class, so that each default is stated once.

Every field of the config class declared with `deception_core.config.structuring.option` becomes a click
option: its flag, short flag, help, choices and shown default come from the field. A value reaches
the config only when the user gave it (click's parameter source), and the class fills in the rest. Adding an option to
`deception run` is adding a field to `RunConfig`.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, cast

import attrs
import click

from deception_core.base.errors import UsageError
from deception_core.config.run import RunConfig, to_jsonable
from deception_core.config.structuring import cli_option, is_primitive_union, parse_string


def _kind(field: attrs.Attribute[object]) -> object:
    kind = field.type
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        kind = rest[0] if len(rest) == 1 else kind
    return kind


def _shown_default(field: attrs.Attribute[object]) -> str | None:
    default = field.default
    if default is None or default is attrs.NOTHING or isinstance(default, bool):
        return None
    value = to_jsonable(default)
    if isinstance(value, list):
        return ",".join(str(v) for v in value) if value else None
    return str(value)


def click_options(cls: type) -> list[click.Option]:
    """The click options of ``cls``'s command-line fields, in field order."""
    attrs.resolve_types(cls)
    options = []
    for field in attrs.fields(cls):
        cli = cli_option(field)
        if cli is None:
            continue
        decls = [cli.flag(field.name)] + ([cli.short] if cli.short else []) + [field.name]
        kind = _kind(field)
        shown = _shown_default(field)
        kwargs: dict[str, Any] = {"help": cli.help, "hidden": cli.hidden}
        if kind is bool:
            kwargs.update(is_flag=True, default=False)
        else:
            if cli.choices:
                kwargs["type"] = click.Choice(cli.choices)
            elif kind is int:
                kwargs["type"] = click.INT
            elif kind is float:
                kwargs["type"] = click.FLOAT
            else:
                kwargs["type"] = click.STRING
            kwargs.update(default=shown, multiple=cli.multiple, show_default=shown is not None)
        if cli.requires:
            needed_name, sep, needed_value = cli.requires.partition("=")
            owner = cls if needed_name in attrs.fields_dict(cls) else RunConfig  # a plugin's flag may need the run's
            needed = cli_option(attrs.fields_dict(owner)[needed_name])
            extra = f"(with {needed.flag(needed_name) if needed else needed_name}{' ' + needed_value if sep else ''})"
            kwargs["help"] = f"{cli.help} {extra}" if cli.help else extra
        options.append(click.Option(decls, **kwargs))
    return options


def with_config_options(cls: type) -> Callable[[click.Command], click.Command]:
    """Decorator: add ``cls``'s options to a click command (after any declared with ``@click.option``)."""

    def decorate(command: click.Command) -> click.Command:
        command.params[:0] = click_options(cls)
        return command

    return decorate


def given_values(cls: type, ctx: click.Context, params: Mapping[str, object]) -> dict[str, object]:
    """The config values the user gave on the command line, as plain data (nothing defaulted)."""
    values: dict[str, object] = {}
    for field in attrs.fields(cls):
        if field.name not in params:
            continue
        source = ctx.get_parameter_source(field.name)
        if source in (None, click.core.ParameterSource.DEFAULT):
            continue
        value = params[field.name]
        cli = cli_option(field)
        if cli is None:  # a field with a hand-written @click.option of the same name
            values[field.name] = list(value) if isinstance(value, tuple) else value
            continue
        if _kind(field) is bool:
            if not value:
                continue
            value = not cli.invert
        elif cli.multiple:
            value = list(cast("tuple[object, ...]", value))  # click collects a repeated flag in a tuple
            if not value:
                continue
        elif isinstance(value, str) and is_primitive_union(_kind(field)):
            value = parse_string(field, value)  # --batch-size 4 for an ``int | str`` field is 4
        values[field.name] = value
    return values


def was_given(ctx: click.Context, name: str) -> bool:
    """Whether the user wrote option ``name`` (click's parameter source), whatever its value."""
    return ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT,
                                                  click.core.ParameterSource.DEFAULT_MAP)


def refuse_unless(ctx: click.Context, condition: bool, needed: str, *names: str, fix: str | None = None) -> None:
    """Refuse the options ``names`` when given (even at their default value) unless ``condition``
    holds: they take effect only with ``needed`` (e.g. "--pipeline")."""

    if condition:
        return
    flags = {param.name: (param.opts[0] if param.opts else param.name) for param in ctx.command.params}
    for name in names:
        if was_given(ctx, name):
            flag = flags.get(name, name)
            raise UsageError(f"{flag} takes effect only with {needed}; {fix or f'add {needed} or drop {flag}'}")
