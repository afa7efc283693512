"""`deception saes`: which sae-lens SAEs fit a model, read offline from sae-lens's own directory."""

from __future__ import annotations

import json

import click

from deception_core.plugins import get_plugin_set
from deception_core.sae import model_names, registered_saes, saes_for_model
from deception_core.sae.releases import RESID_POST, DirectorySae, span


@click.command()
@click.option("--model", "-m", default=None,
              help="Hugging Face id, local directory or embedded:NAME; without it, one line per release.")
@click.option("--layer", "-l", type=click.IntRange(min=0), default=None,
              help="Only SAEs reading this layer (0 is the first decoder block).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def saes(model: str | None, layer: int | None, as_json: bool) -> None:
    """List residual-stream SAEs usable with --sae: release, SAE id, layer, width, L0, Neuronpedia id.

    Offline: nothing is downloaded; with --model the model is matched by name (its -it/-pt twin
    has the same shape and fits too), so a hub id need not be in the local cache.
    """

    every = [s for s in registered_saes(get_plugin_set().registry) if s.hook == RESID_POST]
    rows = saes_for_model(model_names(model), every) if model else every
    if layer is not None:
        rows = [s for s in rows if s.layer == layer]
    if as_json:
        click.echo(json.dumps([s.describe() for s in rows], indent=2))
        return
    if not rows:
        where = f" at layer {layer}" if layer is not None else ""
        click.echo(f"no sae-lens SAE fits {model or 'any model'}{where}; run `deception saes` to see every release, "
                   "or pass --sae-path DIR with an SAE trained on your model")
        return
    if model is None:
        releases: dict[str, list[DirectorySae]] = {}
        for s in rows:
            releases.setdefault(s.release, []).append(s)
        width = max(len(r) for r in releases)
        click.echo(f"{'release':<{width}}  model; layers; SAE ids")
        for release, entries in releases.items():
            click.echo(f"{release:<{width}}  {entries[0].model}; layers {span([s.layer for s in entries])}; "
                       f"{len(entries)} id(s)")
        return
    header = ("release", "sae_id", "layer", "width", "L0", "neuronpedia")
    table = [(s.release, s.sae_id, str(s.layer), s.width or "?", f"{s.l0:g}" if s.l0 else "?",
              s.neuronpedia_id or "-") for s in rows]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
