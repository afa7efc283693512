"""`deception checkpoints DIR`: what a shared checkpoint folder holds, one line per experiment."""

from __future__ import annotations

import json
from pathlib import Path

import click

from deception_core.base.types import json_object
from deception_core.checkpoints.checkpoint import list_areas
from deception_core.config.run import RunConfig


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines (each area's full identity).")
def checkpoints(directory: str, as_json: bool) -> None:
    """List the experiments a --checkpoint-dir holds: area, finished trials per scenario, the settings
    that differ from the defaults (re-run with them to resume that area), and trials in flight."""

    areas = list_areas(Path(directory))
    if as_json:
        click.echo(json.dumps(areas, indent=2, default=str))
        return
    if not areas:
        click.echo(f"{directory} holds no checkpoint yet")
        return
    defaults = RunConfig().to_dict()
    for area in areas:
        if "error" in area:
            click.echo(f"{area['area']}: {area['error']}")
            continue
        identity = json_object(area["identity"])
        changed = [f"{k}={_show(v)}" for k, v in identity.items() if k in defaults and v != defaults[k] and k != "model"]
        scenarios = ", ".join(f"{name} {count}" for name, count in sorted(json_object(area["by_scenario"]).items())) or "none"
        in_flight = f"; {area['claims']} in flight" if area["claims"] else ""
        click.echo(f"{area['name']}: {area['trials']} trial(s) ({scenarios}){in_flight}")
        click.echo(f"    --model {identity.get('model')} {' '.join(changed) or '(defaults)'}; "
                   f"layers {_show(identity.get('resolved_layers'))}, backend {identity.get('capture_backend')}")


def _show(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)
