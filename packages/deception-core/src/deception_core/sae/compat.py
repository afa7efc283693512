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

from deception_core.base.errors import ConfigError, UsageError
from deception_core.base.types import JSONObject
from deception_core.model.spec import EMBEDDED_MODELS, EMBEDDED_PREFIX
from deception_core.sae.releases import RESID_POST, DirectorySae, model_key, span, width_value

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
    width: str | None = None  # as the sae-lens directory states it ("16k")
    l0: float | None = None  # expected L0 from the directory
    neuronpedia_id: str | None = None  # dashboard: https://www.neuronpedia.org/<neuronpedia_id>/<feature>

    def describe(self) -> JSONObject:
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


def model_names(model_id: str) -> list[str]:
    """The names a run's ``--model`` goes by, for matching against the SAE directory: the hub id;
    for an embedded model its hub name; for a local directory its folder name and the
    ``_name_or_path`` saved in its config.json."""

    if model_id.startswith(EMBEDDED_PREFIX):
        embedded = EMBEDDED_MODELS.get(model_id[len(EMBEDDED_PREFIX):])
        return [n for n in (embedded.tl_name if embedded else None, model_id[len(EMBEDDED_PREFIX):]) if n]
    directory = Path(model_id).expanduser()
    if directory.is_dir():
        names = [directory.resolve().name]
        try:
            saved = json.loads((directory / "config.json").read_text()).get("_name_or_path")
        except (OSError, ValueError, AttributeError):
            saved = None
        if isinstance(saved, str) and saved and not Path(saved).is_absolute():
            names.insert(0, saved)
        return names
    return [model_id]


def saes_for_model(names: Sequence[str], saes: Sequence[DirectorySae]) -> list[DirectorySae]:
    """The residual-stream SAEs trained on this model or on its -it/-pt twin, best first: an exact
    model match, then canonical or medium-L0 ids, then the narrowest."""
    keys = {model_key(n) for n in names}
    exact = {n.rstrip("/").split("/")[-1].lower() for n in names}
    fitting = [s for s in saes if s.hook == RESID_POST and model_key(s.model) in keys]
    return sorted(fitting, key=lambda s: (s.model.split("/")[-1].lower() not in exact,
                                          not ("canonical" in s.sae_id or "medium" in s.sae_id),
                                          width_value(s.width), s.release, s.sae_id))


def _layers_of(saes: Sequence[DirectorySae]) -> dict[str, list[int]]:
    layers: dict[str, list[int]] = {}
    for s in saes:
        layers.setdefault(s.release, [])
        if s.layer not in layers[s.release]:
            layers[s.release].append(s.layer)
    return layers


def _suggest(fitting: Sequence[DirectorySae], saes: Sequence[DirectorySae], layer: int | None = None) -> str:
    """Choices that fit (releases with their layers), or, when none does, models that have SAEs."""
    if fitting:
        at_layer = [s for s in fitting if s.layer == layer]
        if at_layer:
            return "compatible: " + "; ".join(f"--sae-release {s.release} --sae-id {s.sae_id}" for s in at_layer[:3])
        return "compatible: " + "; ".join(f"--sae-release {release} with --sae-layer {span(layers)}"
                                          for release, layers in list(_layers_of(fitting).items())[:3])
    examples: dict[str, DirectorySae] = {}
    for s in saes:
        if s.hook == RESID_POST and "gemma" in s.model.lower():
            examples.setdefault(model_key(s.model), s)
    shown = "; ".join(f"--model {s.model if '/' in s.model else 'google/' + s.model} --sae-release {s.release} "
                      f"--sae-layer {s.layer}" for s in list(examples.values())[:4])
    return (f"sae-lens has residual-stream SAEs for other models, e.g. {shown} (list them all with "
            "`deception saes`); or pass --sae-path DIR with an sae-lens SAE trained on this model")


def resolve_sae(
    *,
    layer: int,
    model_id: str,
    model_type: str | None,
    n_layers: int,
    d_model: int,
    saes: Sequence[DirectorySae],
    release: str | None = None,
    sae_id: str | None = None,
    path: str | None = None,
    names: Sequence[str] | None = None,
) -> SaeChoice:
    """Pick and check the run's SAE; raise `SaeIncompatible` (exit 2) naming a compatible choice.

    A directory SAE fits when it reads ``blocks.{layer}.hook_resid_post`` of this model (or of its
    -it/-pt twin, which has the same shape). Its width (``d_in``) is checked against the model's
    when the SAE loads, before the model's weights do.
    """
    shape = f"{model_id} (model_type {model_type}, {n_layers} layers, width {d_model})"
    if path:
        if release or sae_id:
            raise UsageError("give either --sae-path or --sae-release/--sae-id, not both")
        return _local_choice(path, layer, model_id, d_model)
    names = list(names) if names is not None else model_names(model_id)
    fitting = saes_for_model(names, saes)
    if release:
        candidates = _release_candidates(release, names, fitting, saes, layer, shape)
    elif not fitting:
        raise SaeIncompatible(f"no sae-lens SAE fits --model {shape}; {_suggest(fitting, saes, layer)}")
    else:
        candidates = fitting
    if sae_id:
        chosen = _by_id(sae_id, candidates, saes, layer, release or "the releases for " + model_id)
    else:
        chosen = _at_layer(layer, candidates, fitting, saes, release, model_id)
    if chosen.layer >= n_layers:
        raise SaeIncompatible(f"SAE {chosen.release}/{chosen.sae_id} reads layer {chosen.layer}, but {shape} "
                              f"has layers 0-{n_layers - 1}")
    return SaeChoice(layer, chosen.hook_name, release=chosen.release, sae_id=chosen.sae_id, d_in=d_model,
                     width=chosen.width, l0=chosen.l0, neuronpedia_id=chosen.neuronpedia_id)



def _release_candidates(release: str, names: Sequence[str], fitting: Sequence[DirectorySae],
                        saes: Sequence[DirectorySae], layer: int, shape: str) -> list[DirectorySae]:
    """The residual-stream SAEs of ``--sae-release`` (refused when it is unknown or for another model)."""
    in_release = [s for s in saes if s.release == release]
    if not in_release:
        raise UsageError(f"unknown SAE release {release!r}; {_suggest(fitting, saes, layer)}")
    if model_key(in_release[0].model) not in {model_key(n) for n in names}:
        raise SaeIncompatible(
            f"SAE release {release} was trained on {in_release[0].model}, which does not fit --model {shape}; "
            f"{_suggest(fitting, saes, layer)}"
        )
    residual = [s for s in in_release if s.hook == RESID_POST]
    if not residual:
        raise SaeIncompatible(
            f"SAE release {release} reads hook {in_release[0].hook_name!r}, but runs capture the residual "
            f"stream (blocks.L.hook_resid_post); {_suggest(fitting, saes, layer)}"
        )
    return [s for s in fitting if s.release == release] or residual


def _by_id(sae_id: str, candidates: Sequence[DirectorySae], saes: Sequence[DirectorySae], layer: int,
           where: str) -> DirectorySae:
    """The candidate ``--sae-id`` names, which must read ``--sae-layer``."""
    chosen = next((s for s in candidates if s.sae_id == sae_id), None)
    if chosen is None:
        raise UsageError(f"--sae-id {sae_id!r} is not a residual-stream SAE of {where}; "
                         f"{_suggest(candidates, saes, layer)}")
    if chosen.layer != layer:
        better = next((s for s in candidates if s.layer == layer), None)
        instead = f" or --sae-id {better.sae_id}" if better else ""
        raise SaeIncompatible(
            f"--sae-id {sae_id} is for layer {chosen.layer} but --sae-layer is {layer}; "
            f"pass --sae-layer {chosen.layer}{instead}"
        )
    return chosen


def _at_layer(layer: int, candidates: Sequence[DirectorySae], fitting: Sequence[DirectorySae],
              saes: Sequence[DirectorySae], release: str | None, model_id: str) -> DirectorySae:
    """The first candidate that reads ``--sae-layer``."""
    at_layer = [s for s in candidates if s.layer == layer]
    if at_layer:
        return at_layer[0]
    covering = [s for s in fitting if s.layer == layer]
    if release:
        alternative = f"; --sae-release {covering[0].release} covers layer {layer}" if covering else ""
        raise SaeIncompatible(f"SAE release {release} has no SAE at --sae-layer {layer}; its layers are "
                              f"{span([s.layer for s in candidates])}{alternative}")
    raise SaeIncompatible(f"no sae-lens SAE for {model_id} reads --sae-layer {layer}; {_suggest(fitting, saes)}")
