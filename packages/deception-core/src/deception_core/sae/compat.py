"""Choose the SAE of a run and check it fits the model, from configs alone (no weights).

Called by run validation, so an SAE of the wrong width, layer, hook or model family fails before
the model's weights load, with a message naming a choice that fits.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from deception_core.errors import ConfigError, UsageError
from deception_core.sae.releases import SaeRelease

log = logging.getLogger("deception.sae")

_RESID_POST = re.compile(r"^blocks\.(\d+)\.hook_resid_post$")
_ID_LAYER = re.compile(r"layer_(\d+)")


class SaeIncompatible(ConfigError):
    """The SAE asked for does not fit the model."""


@attrs.frozen
class SaeChoice:
    """The SAE a run encodes its SAE layer with: a local directory or an sae-lens release + id."""

    layer: int
    hook_name: str
    path: str | None = None
    release: str | None = None
    sae_id: str | None = None
    d_in: int | None = None
    d_sae: int | None = None

    def describe(self) -> dict[str, Any]:
        return attrs.asdict(self)


def read_local_sae_config(path: str) -> dict[str, Any]:
    """The ``cfg.json`` of an sae-lens ``save_model`` directory."""
    directory = Path(path).expanduser()
    config_file = directory / "cfg.json"
    if not config_file.is_file():
        raise UsageError(
            f"--sae-path {path} holds no cfg.json; point it at a directory written by sae-lens "
            "(SAE.save_model), holding cfg.json and sae_weights.safetensors"
        )
    try:
        config: dict[str, Any] = json.loads(config_file.read_text())
        return config
    except json.JSONDecodeError as error:
        raise UsageError(f"{config_file} is not valid JSON ({error}); re-save the SAE") from None


def _local_choice(path: str, layer: int, model_id: str, d_model: int) -> SaeChoice:
    cfg = read_local_sae_config(path)
    d_in, d_sae = cfg.get("d_in"), cfg.get("d_sae")
    hook_name = (cfg.get("metadata") or {}).get("hook_name") or cfg.get("hook_name")
    if d_in is None or d_sae is None:
        raise UsageError(f"{path}/cfg.json lacks d_in or d_sae; re-save the SAE with sae-lens")
    if hook_name is None:
        log.warning("SAE %s names no hook; assuming blocks.%d.hook_resid_post", path, layer)
        hook_name = f"blocks.{layer}.hook_resid_post"
    match = _RESID_POST.match(hook_name)
    if match is None:
        raise SaeIncompatible(
            f"the SAE in {path} reads hook {hook_name!r}, but runs capture the residual stream "
            f"(blocks.L.hook_resid_post); use an SAE trained on blocks.{layer}.hook_resid_post"
        )
    if int(d_in) != d_model:
        raise SaeIncompatible(
            f"the SAE in {path} has d_in={d_in} but {model_id} has width {d_model}; use an SAE with "
            f"d_in={d_model} (trained on this model), or a model of width {d_in}"
        )
    sae_layer = int(match.group(1))
    if sae_layer != layer:
        raise SaeIncompatible(
            f"the SAE in {path} was trained on {hook_name} (layer {sae_layer}) but --sae-layer is {layer}; "
            f"pass --sae-layer {sae_layer}"
        )
    return SaeChoice(layer, hook_name, path=str(Path(path).expanduser().resolve()), d_in=int(d_in), d_sae=int(d_sae))


def _suggest(fitting: Sequence[SaeRelease], releases: Sequence[SaeRelease]) -> str:
    if fitting:
        return "compatible: " + "; ".join(f"--sae-release {r.release} with --sae-layer in {r.layers[0]}..{r.layers[-1]}"
                                          if len(r.layers) > 4 else
                                          f"--sae-release {r.release} with --sae-layer {'/'.join(map(str, r.layers))}"
                                          for r in fitting[:3])
    families: dict[str, Any] = {}
    for r in releases:
        families.setdefault(r.family, r)
    known = "; ".join(f"{family} fits {r.example_model}-like models (model_type {r.model_types[0]}), "
                      f"e.g. --model {r.example_model} --sae-release {r.release} --sae-layer {r.layers[len(r.layers) // 2]}"
                      for family, r in families.items())
    return f"{known}; or pass --sae-path DIR with an sae-lens SAE trained on this model"


def resolve_sae(
    *,
    layer: int,
    model_id: str,
    model_type: str | None,
    n_layers: int,
    d_model: int,
    releases: Sequence[SaeRelease],
    release: str | None = None,
    sae_id: str | None = None,
    path: str | None = None,
) -> SaeChoice:
    """Pick and check the run's SAE; raise `SaeIncompatible` (exit 2) naming a compatible choice."""
    shape = f"{model_id} (model_type {model_type}, {n_layers} layers, width {d_model})"
    if path:
        if release or sae_id:
            raise UsageError("give either --sae-path or --sae-release/--sae-id, not both")
        return _local_choice(path, layer, model_id, d_model)
    fitting = [r for r in releases if r.fits(model_type, n_layers, d_model)]
    instruction_tuned = "-it" in model_id.lower() or "instruct" in model_id.lower()
    fitting.sort(key=lambda r: (r.instruction_tuned != instruction_tuned, layer not in r.layers))
    if release:
        chosen = next((r for r in releases if r.release == release), None)
        if chosen is None:
            raise UsageError(f"unknown SAE release {release!r}; {_suggest(fitting, releases)}")
        if not chosen.fits(model_type, n_layers, d_model):
            raise SaeIncompatible(
                f"SAE release {chosen.describe()} does not fit --model {shape}; {_suggest(fitting, releases)}"
            )
    else:
        if not fitting:
            raise SaeIncompatible(f"no known SAE release fits --model {shape}; {_suggest(fitting, releases)}")
        chosen = fitting[0]
    if layer not in chosen.layers:
        covering = [r for r in fitting if layer in r.layers]
        alternative = f"; --sae-release {covering[0].release} covers layer {layer}" if covering else ""
        raise SaeIncompatible(
            f"SAE release {chosen.release} has no SAE at --sae-layer {layer}; its layers are "
            f"{', '.join(map(str, chosen.layers))}{alternative}"
        )
    chosen_id = sae_id or chosen.sae_id(layer)
    id_layer = _ID_LAYER.search(chosen_id)
    if id_layer is not None and int(id_layer.group(1)) != layer:
        raise SaeIncompatible(
            f"--sae-id {chosen_id} is for layer {id_layer.group(1)} but --sae-layer is {layer}; "
            f"pass --sae-layer {id_layer.group(1)} or --sae-id {chosen.sae_id(layer)}"
        )
    return SaeChoice(layer, f"blocks.{layer}.hook_resid_post", release=chosen.release, sae_id=chosen_id,
                     d_in=d_model, d_sae=chosen.d_sae)
