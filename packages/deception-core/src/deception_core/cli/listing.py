"""`deception scenarios` and `deception plugins`: fast, no heavy imports."""

from __future__ import annotations

import json
from typing import Any

import click

from deception_core.base.registry import Kind
from deception_core.plan.plan import scenario_order
from deception_core.plugins import get_plugin_set


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def scenarios(as_json: bool) -> None:
    """List every registered scenario with its description and plugin."""

    registry = get_plugin_set().registry
    entries = [registry.get(Kind.SCENARIO, name) for name in scenario_order(registry)]
    if as_json:
        click.echo(json.dumps([e.describe() for e in entries], indent=2))
        return
    if not entries:
        click.echo("no scenarios registered (is deception-scenarios installed?)")
        return
    width = max(len(e.name) for e in entries)
    for e in entries:
        click.echo(f"{e.name:<{width}}  {e.summary}  [{e.provider.plugin}]")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def plugins(as_json: bool) -> None:
    """List plugins, their versions and what each registers."""
    plugin_set = get_plugin_set()
    rows: list[dict[str, Any]] = []
    for info in plugin_set.plugins.values():
        components = [
            {"kind": e.kind.value, "name": e.name}
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
