"""Everything checked before a model loads or an output directory is created."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from deception_core.base.errors import ConfigError
from deception_core.base.registry import Kind, Registry
from deception_core.checkpoints.checkpoint import check_checkpoint
from deception_core.config.components import evaluator_settings, settings_for
from deception_core.config.resolved import ResolvedRun
from deception_core.config.run import RunConfig, to_jsonable
from deception_core.config.sae import SAE_KIND, sae_settings
from deception_core.executors.executors import require_ray
from deception_core.executors.ray_address import check_ray_address
from deception_core.model.device import resolve_device
from deception_core.model.folder_check import check_model_folder
from deception_core.model.spec import ModelInfo, ModelSpec, peek_model
from deception_core.outputs.policy import check_output, check_writable, checkpoint_dir, run_inputs
from deception_core.plan.plan import auto_layers, select_scenarios
from deception_core.plugins import PluginSet
from deception_core.sae import registered_saes, resolve_sae
from deception_core.sae.compat import SaeChoice


@attrs.frozen
class ValidatedRun:
    """A checked run: the resolved record every later stage reads, and what validation learnt on the way."""

    run: ResolvedRun
    model_spec: ModelSpec
    model_info: ModelInfo
    sae: SaeChoice | None = None  # with --sae
    output_state: str = "new"  # "new", "resume" or "overwrite" (deception_core.outputs.policy)

    @property
    def config(self) -> RunConfig:
        return self.run.config


def check_component_settings(config: RunConfig, registry: Registry) -> None:
    """Every component named in ``config.components`` exists and accepts its parameters."""
    sae_settings(config.components)  # the SAE's settings are the core's own (deception_core.config.sae)
    for kind_name, by_name in config.components.items():
        if kind_name == SAE_KIND:
            continue
        kind = Kind(kind_name)
        for name in by_name:
            settings_for(kind, name, registry.get(kind, name).load(), config.component_params(kind_name, name))


def resolved_components(config: RunConfig, registry: Registry) -> dict[str, dict[str, dict[str, Any]]]:
    """``config.components`` with the judge's settings as it will use them (every default filled, a
    remote judge's model and URL from the environment) under ``evaluator.<name>``: what
    ``config.json`` records, what Ray workers build their judge from, and part of the run's
    identity, so a resume with another judge never mixes verdicts."""

    components = {kind: dict(by_name) for kind, by_name in config.components.items()}
    name = config.evaluator
    settings = evaluator_settings(name, registry.get(Kind.EVALUATOR, name).load(),
                                  config.component_params(Kind.EVALUATOR.value, name))
    if settings is not None:
        components[Kind.EVALUATOR.value] = {**components.get(Kind.EVALUATOR.value, {}), name: to_jsonable(settings)}
    return components


def validate(config: RunConfig, plugins: PluginSet) -> ValidatedRun:
    """Check the config against the registry and the model's shape; raise `UsageError`."""
    registry = plugins.registry
    scenarios = select_scenarios(config, registry)
    registry.get(Kind.EVALUATOR, config.evaluator).load().check_environment()
    registry.get(Kind.ENGINE, config.engine)  # an unknown --engine: exit 2 with the registered names
    check_component_settings(config, registry)
    components = resolved_components(config, registry)
    requested = config.backend_name
    spec = ModelSpec.parse(config.model)
    # local checks first: the network (a Ray head, a hub model's config) is asked only after them
    check_executor_and_device(config)
    check_writable(Path(config.output), "--output")
    output_state = check_output(config, inputs=run_inputs(config, spec))
    if config.checkpoint_dir:
        check_writable(Path(config.checkpoint_dir), "--checkpoint-dir")
    if config.executor == "ray" and config.ray_address:
        check_ray_address(config.ray_address)  # unreachable: exit 2 in seconds, naming the address
    info = peek_model(spec, config.revision)
    backend = plugins.manager.hook.resolve_capture_backend(
        model_id=config.model, model_type=info.model_type, requested=requested
    ) or "hf"
    registry.get(Kind.CAPTURE_BACKEND, backend)
    layers = checked_layers(config, info)
    sae = checked_sae(config, info, registry)
    if spec.path is not None:  # weights and tokenizer present and readable, before anything loads

        check_model_folder(spec.raw, spec.path)
    run = ResolvedRun(config=config, scenarios=tuple(scenarios), layers=layers, capture_backend=backend,
                      components=components)

    if config.checkpoint_dir:
        check_checkpoint(config.checkpoint_dir, run)
    elif output_state == "resume":
        check_checkpoint(checkpoint_dir(config), run)
    return ValidatedRun(run, spec, info, sae, output_state)


def checked_layers(config: RunConfig, info: ModelInfo) -> tuple[int, ...]:
    """``--layers`` (or the automatic choice) plus the SAE's layer, every one present in the model."""
    layers = config.layers or auto_layers(info.n_layers)
    sae = sae_settings(config.components)
    if sae is not None:
        layers = tuple(sorted(set(layers) | {sae.layer}))
    bad = [layer for layer in layers if layer >= info.n_layers]
    if bad:
        what = "--sae-layer" if sae is not None and sae.layer in bad else "--layers"
        raise ConfigError(
            f"{what}: layer(s) {bad} do not exist in {config.model}, which has {info.n_layers} layers "
            f"(valid: 0 to {info.n_layers - 1})"
        )
    return tuple(layers)


def checked_sae(config: RunConfig, info: ModelInfo, registry: Registry) -> SaeChoice | None:
    """The SAE chosen with ``--sae`` (``components.sae``); None without one."""
    sae = sae_settings(config.components)
    if sae is None:
        return None

    return resolve_sae(
        layer=sae.layer, model_id=config.model, model_type=info.model_type, n_layers=info.n_layers,
        d_model=info.d_model, saes=registered_saes(registry), release=sae.release, sae_id=sae.id, path=sae.path,
    )


def check_executor_and_device(config: RunConfig) -> None:
    if config.executor == "ray":
        require_ray()  # not installed: exit 2 with the install command, before any model loads
    if config.device != "auto" and config.executor != "ray":  # Ray workers check their own device

        resolve_device(config.device)  # --device cuda without CUDA fails here, not after the output exists
