"""Everything checked before a model loads or an output directory is created."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

from deception_core.config import RunConfig
from deception_core.errors import ConfigError, UsageError
from deception_core.models.spec import ModelInfo, ModelSpec, peek_model
from deception_core.plugins import PluginSet
from deception_core.registry import Kind
from deception_core.runner.plan import auto_layers, select_scenarios

#: flags whose capability has not landed yet: flag -> predicate on the config
NOT_AVAILABLE_YET: dict[str, Any] = {
    "--sae": lambda c: c.sae,
    "--causal": lambda c: c.causal,
    "--checkpoint-dir": lambda c: c.checkpoint_dir is not None,
    "--shard": lambda c: c.shard is not None,
    "--hybrid": lambda c: c.hybrid or c.capture_backend == "hybrid",
    "--capture-backend transformer-lens": lambda c: c.capture_backend == "transformer-lens",
}


@attrs.frozen
class ValidatedRun:
    config: RunConfig
    model_spec: ModelSpec
    model_info: ModelInfo
    scenarios: tuple[str, ...]
    layers: tuple[int, ...]
    backend: str
    evaluator: str


def check_writable(path: Path, flag: str) -> None:
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UsageError(f"{flag} {path} is inside {probe}, which is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path} is not writable (no write permission on {probe}); choose another directory")


def validate(config: RunConfig, plugins: PluginSet) -> ValidatedRun:
    """Check the config against the registry and the model's shape; raise `UsageError`."""
    for flag, applies in NOT_AVAILABLE_YET.items():
        if applies(config):
            raise UsageError(f"{flag} is not available yet in this version of deception")
    registry = plugins.registry
    scenarios = select_scenarios(config, registry)
    registry.get(Kind.EVALUATOR, config.evaluator).load().check_environment()
    requested = config.backend_name
    backend = plugins.manager.hook.resolve_capture_backend(
        model_id=config.model, model_type=None, requested=requested
    ) or "hf"
    registry.get(Kind.CAPTURE_BACKEND, backend)
    spec = ModelSpec.parse(config.model)
    info = peek_model(spec, config.revision)
    layers = config.layers or auto_layers(info.n_layers)
    if config.sae:
        layers = tuple(sorted(set(layers) | {config.sae_layer}))
    bad = [layer for layer in layers if layer >= info.n_layers]
    if bad:
        what = "--sae-layer" if config.sae and config.sae_layer in bad else "--layers"
        raise ConfigError(
            f"{what}: layer(s) {bad} do not exist in {config.model}, which has {info.n_layers} layers "
            f"(valid: 0 to {info.n_layers - 1})"
        )
    check_writable(Path(config.output), "--output")
    if config.checkpoint_dir:
        check_writable(Path(config.checkpoint_dir), "--checkpoint-dir")
    return ValidatedRun(config, spec, info, tuple(scenarios), tuple(layers), backend, config.evaluator)
