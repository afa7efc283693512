"""The run as it is played: one typed record of every choice validation made, built once.

`RunConfig` is the run's intent as the user gave it and is never changed. Validation
(`deception_core.pipeline.validate`) resolves it into a `ResolvedRun`: the scenarios, the layers
(with the SAE's), the capture backend, every component's settings as the run uses them (the
judge's with its defaults and environment filled in) and the run's *identity*, the values that
change what a trial produces. Where the model runs (device, dtype, batch size) is known once it has
loaded, in this process or on the Ray workers; the runner records it once as the run's `Placement`.

The outputs (``config.json``, the dataset's metadata), the checkpoint's area, the output policy's
resume check, merge and the Ray executor all read this record; the identity is computed here, in
`run_identity`, and nowhere else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from deception_core.base.types import JSONObject, JSONValue, Position
from deception_core.config.run import RunConfig, to_jsonable
from deception_core.config.sae import DEFAULT_SAE_LAYER, sae_settings

#: ``{kind: {component name: {parameter: value}}}``
ComponentParams = dict[str, dict[str, dict[str, Any]]]

#: settings that change what a run computes: part of the checkpoint identity, compared by the
#: output policy before a resume and by merge across runs, and recorded as the dataset's
#: ``result_config``
RESULT_FIELDS = (
    "model", "revision", "dtype", "mode", "max_rounds", "max_tokens", "fast", "ultrafast", "self_report",
    "layers", "positions", "sae", "sae_layer", "sae_release", "sae_id", "sae_path", "evaluator",
    "label_policy", "seed", "temperature", "top_p",
)
#: the component kinds whose settings change what a trial holds (the judge's are part of the identity too)
TRIAL_COMPONENT_KINDS = ("scenario", "capture_backend", "engine")


def result_config(config: RunConfig) -> JSONObject:
    """The values of `RESULT_FIELDS` for ``config``, as plain JSON. The SAE's settings keep the
    names they had as config fields (``sae``, ``sae_layer``, ...), so identities and the results
    recorded by earlier versions compare equal."""
    values = config.to_dict()
    sae = sae_settings(config.components)
    values.update(sae=sae is not None, sae_layer=sae.layer if sae else DEFAULT_SAE_LAYER,
                  sae_release=sae.release if sae else None, sae_id=sae.id if sae else None,
                  sae_path=sae.path if sae else None)
    return {name: values[name] for name in RESULT_FIELDS}


def recorded_result_config(recorded: Mapping[str, JSONValue]) -> JSONObject:
    """The values of `RESULT_FIELDS` of a config as a run's ``config.json`` recorded it: with the
    SAE's settings as config fields (earlier versions) or as the SAE component's."""
    values = dict(recorded)
    if "sae" not in values:
        components = values.get("components")
        by_name = components.get("sae") if isinstance(components, Mapping) else None
        sae = by_name.get("sae-lens") if isinstance(by_name, Mapping) else None
        params = sae if isinstance(sae, Mapping) else {}
        values.update(sae=sae is not None, sae_layer=params.get("layer", DEFAULT_SAE_LAYER),
                      sae_release=params.get("release"), sae_id=params.get("id"), sae_path=params.get("path"))
    return {name: values.get(name) for name in RESULT_FIELDS}


@attrs.frozen(kw_only=True)
class Placement:
    """Where the model runs and how many generation calls share a batch (``--batch-size auto``
    resolved on the loaded model: the free GPU memory, or the CPU size)."""

    device: str
    dtype: str
    batch_size: int


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(name) for name in value)


def _layers(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(int(layer) for layer in value)


def _plain_components(value: Mapping[str, Mapping[str, Mapping[str, object]]]) -> ComponentParams:
    return {str(kind): {str(name): dict(params) for name, params in by_name.items()} for kind, by_name in value.items()}


@attrs.frozen(kw_only=True)
class ResolvedRun:
    """One run, resolved: what every stage after validation reads (never the config's raw values
    where a resolved one exists)."""

    config: RunConfig
    scenarios: tuple[str, ...] = attrs.field(default=(), converter=_names)
    layers: tuple[int, ...] = attrs.field(converter=_layers)
    capture_backend: str
    #: every component's parameters as the run uses them (the judge's resolved); default: the config's
    components: ComponentParams = attrs.field(converter=_plain_components)
    placement: Placement | None = None
    identity: JSONObject = attrs.field(init=False)

    @components.default
    def _given_components(self) -> ComponentParams:
        return _plain_components(self.config.components)

    @identity.default
    def _identity(self) -> JSONObject:
        return run_identity(self)

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def positions(self) -> tuple[Position, ...]:
        return self.config.positions

    @property
    def evaluator(self) -> str:
        return self.config.evaluator

    @property
    def identity_hash(self) -> str:
        return identity_hash(self.identity)

    @property
    def batch_size(self) -> int:
        """The resolved batch size (known once the model has loaded)."""
        if self.placement is None:
            raise RuntimeError("the batch size is known once the model has loaded (ResolvedRun.placed)")
        return self.placement.batch_size

    def params(self, kind: str, name: str) -> dict[str, Any]:
        """The parameters of one component, as the run uses them."""
        return dict(self.components.get(kind, {}).get(name, {}))

    @property
    def judge(self) -> JSONObject:
        """The judge's name and settings as the run uses them."""
        return {"name": self.evaluator, **self.params("evaluator", self.evaluator)}

    def result_config(self) -> JSONObject:
        return result_config(self.config)

    def config_dict(self) -> JSONObject:
        """The config as ``config.json`` records it: the user's values, with every component's
        settings as the run used them."""
        return {**self.config.to_dict(), "components": to_jsonable(self.components)}

    def placed(self, placement: Placement) -> ResolvedRun:
        """This run once its model has loaded (set once, by the runner)."""
        if self.placement is not None:
            raise RuntimeError("the run's placement is set once, when the model has loaded")
        return attrs.evolve(self, placement=placement)

    def to_wire(self) -> JSONObject:
        """Plain data for a Ray worker (`from_wire` rebuilds the same record)."""
        return {"config": self.config.to_dict(), "scenarios": list(self.scenarios), "layers": list(self.layers),
                "capture_backend": self.capture_backend, "components": to_jsonable(self.components),
                "placement": None if self.placement is None else attrs.asdict(self.placement)}

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> ResolvedRun:
        placement = data.get("placement")
        return cls(config=RunConfig.from_dict(data["config"]), scenarios=tuple(data["scenarios"]),
                   layers=tuple(data["layers"]), capture_backend=str(data["capture_backend"]),
                   components=data["components"], placement=None if placement is None else Placement(**placement))


def run_identity(run: ResolvedRun) -> JSONObject:
    """Everything that changes what one trial produces, as plain JSON: the result-changing settings,
    the resolved layers and capture backend, the judge's resolved settings (a resume with another
    judge never mixes verdicts) and the settings of the components that play and capture trials.
    Fields that only choose *which* trials run (``--trials``, ``--scenario-name``, ``--shard``) are
    not part of it, so a checkpoint area can be extended or shared by shards."""
    identity = run.result_config()
    identity["resolved_layers"] = [int(layer) for layer in run.layers]
    identity["capture_backend"] = run.capture_backend
    identity["judge"] = run.judge
    if run.config.engine != "hf":  # another engine's replies may differ from the in-process model's
        identity["engine"] = run.config.engine
    if run.config.counterpart_engine:  # another model plays the counterpart: another game
        identity["counterpart_engine"] = {"model": run.config.counterpart_model,
                                          "url": None if run.config.counterpart_model else run.config.counterpart_engine}
    identity["component_settings"] = {kind: run.components[kind] for kind in TRIAL_COMPONENT_KINDS
                                      if run.components.get(kind)}
    return identity


def identity_hash(identity: Mapping[str, object]) -> str:
    """The SHA-256 of the identity's sorted JSON (a checkpoint area's name holds its first 12 digits)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
