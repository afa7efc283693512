"""The generated configuration reference: every `RunConfig` field and every component setting is listed
with a type, a default and a meaning taken from the source (so a new field without one fails here)."""

from __future__ import annotations

import attrs
from test_api_reference import HOOKS

from deception_core.base.registry import Kind
from deception_core.config.run import RunConfig
from deception_core.plugins import build_plugin_set


def rows(table: str) -> dict[str, list[str]]:
    """The rows of a generated markdown table by their first cell's name."""
    out: dict[str, list[str]] = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if line.startswith("| `"):
            out.setdefault(cells[0].strip("`"), cells)
    return out


def test_every_run_config_field_has_a_row() -> None:
    table = rows(HOOKS.run_config_table())
    assert set(table) == {field.name for field in attrs.fields(RunConfig)}


def test_every_run_config_field_has_a_meaning() -> None:
    undocumented = [name for name, cells in rows(HOOKS.run_config_table()).items() if HOOKS.UNDOCUMENTED in cells[-1]]
    assert undocumented == []


def test_every_plugin_option_has_a_meaning() -> None:
    undocumented = [line for line in HOOKS.plugin_options().splitlines() if HOOKS.UNDOCUMENTED in line]
    assert undocumented == []


def test_the_flags_default_is_the_fields_default() -> None:
    table = rows(HOOKS.run_config_table())
    assert table["trials"][1:4] == ["`--trials`", "`int`", "`40`"]


def test_every_component_setting_has_a_meaning() -> None:
    page = HOOKS.component_settings()
    undocumented = [line for line in page.splitlines() if HOOKS.UNDOCUMENTED in line]
    assert undocumented == []


def test_every_component_with_settings_has_a_section() -> None:
    page = HOOKS.component_settings()
    registry = build_plugin_set().registry
    for kind in Kind:
        for entry in registry.entries(kind):
            if getattr(entry.load(), "settings_class", None) is not None:
                assert f"`components.{kind.value}.{entry.name}`" in page
