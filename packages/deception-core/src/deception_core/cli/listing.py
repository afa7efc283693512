"""`deception scenarios` and `deception plugins`: fast, no heavy imports."""

from __future__ import annotations

import json
from typing import Any

import click

from deception_core.base.registry import Entry, Kind
from deception_core.plan.plan import scenario_order
from deception_core.plugins import get_plugin_set


def _source(entry: Entry) -> str | None:
    """Where a component's data comes from (its ``source`` metadata), when the plugin says."""
    source = entry.metadata.get("source")
    return str(source) if source else None


def _rows(entries: list[Entry]) -> None:
    width = max(len(e.name) for e in entries)
    for e in entries:
        click.echo(f"{e.name:<{width}}  {e.summary}  [{e.provider.plugin}]")
        source = _source(e)
        if source:
            click.echo(f"{'':<{width}}    data: {source}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def scenarios(as_json: bool) -> None:
    """List the registered scenarios and statement sets, with where their data comes from.

    Each scenario, then each statement set (`deception capture NAME`), with its description, its
    plugin and, where the plugin names it, the source of its data.
    """

    registry = get_plugin_set().registry
    entries = [registry.get(Kind.SCENARIO, name) for name in scenario_order(registry)]
    sets = sorted(registry.entries(Kind.STATEMENT_SET), key=lambda e: e.name)
    if as_json:
        click.echo(json.dumps([e.describe() for e in [*entries, *sets]], indent=2))
        return
    if not entries:
        click.echo("no scenarios registered (is deception-scenarios installed?)")
    else:
        _rows(entries)
    if sets:
        click.echo("\nstatement sets (deception capture NAME):")
        _rows(sets)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def plugins(as_json: bool) -> None:
    """List plugins, their versions and what each registers."""
    plugin_set = get_plugin_set()
    rows: list[dict[str, Any]] = []
    for info in plugin_set.plugins.values():
        components = [
            {"kind": e.kind.value, "name": e.name, **({"source": _source(e)} if _source(e) else {})}
            for e in plugin_set.registry.entries()
            if e.provider.plugin == info.name
        ]
        rows.append({
            "name": info.name, "distribution": info.distribution, "version": info.version,
            "module": info.module, "hooks": info.hooks, "components": components, "error": info.error,
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        status = f"  BROKEN: {row['error']}" if row["error"] else ""
        click.echo(f"{row['name']} ({row['distribution'] or 'local'} {row['version'] or ''}){status}")
        for kind in Kind:
            names = [c["name"] for c in row["components"] if c["kind"] == kind.value]
            if names:
                click.echo(f"  {kind.value}: {', '.join(names)}")
        for component in row["components"]:
            if component.get("source"):
                click.echo(f"    {component['name']} data: {component['source']}")
