"""The Ray actor of ``--executor ray``: loads the model once, then plays the units of trials it is handed.

A plain class (Ray wraps it with ``ray.remote`` in the driver), so importing this module does not
need Ray. Results go back as checkpoint shards (safetensors bytes with a checksum), the format the
driver already verifies and stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from deception_core.base.types import JSONObject
from deception_core.checkpoints.checkpoint import encode_trial
from deception_core.config.resolved import ResolvedRun
from deception_core.executors.units import play_trials, spec_from_wire
from deception_core.model import surface  # the module: tests replace its load_model
from deception_core.model.device import resolve_device, resolve_dtype
from deception_core.model.spec import ModelSpec
from deception_core.play.session import open_session
from deception_core.plugins import get_plugin_set


class WorkerSetup(TypedDict):
    """What the driver hands each worker: the resolved run (`ResolvedRun.to_wire`) and its torch threads."""

    run: JSONObject
    threads: int


class WorkerFacts(TypedDict):
    """What a worker reports once its model is loaded (the driver records the first ready one's)."""

    device: str
    dtype: str
    description: JSONObject
    batch_size: int


class PlayWorker:
    def __init__(self, setup: WorkerSetup) -> None:
        import torch

        torch.set_num_threads(int(setup["threads"]))
        run = ResolvedRun.from_wire(setup["run"])  # the driver's record: the same settings on every worker
        config = run.config
        registry = get_plugin_set().registry
        device = resolve_device(config.device)
        model = surface.load_model(ModelSpec.parse(config.model), device=device, dtype=resolve_dtype(config.dtype, device),
                           revision=config.revision)
        self.session = open_session(run, registry, model)

    def ready(self) -> WorkerFacts:
        """The model facts the driver records (the model is loaded once this returns)."""
        model = self.session.model
        return WorkerFacts(device=str(model.device), dtype=str(model.dtype), description=dict(model.describe()),
                           batch_size=self.session.batch_size)

    def play(self, wire_specs: Sequence[Sequence[str | int]], skip: Sequence[str], batch_size: int) -> list[tuple[str, bytes]]:
        """Play one unit of trials whole, in batches of ``batch_size`` (the run's, the same on every
        worker); return ``(trial key, shard bytes)`` of the trials not in ``skip``, in the unit's order."""

        if batch_size != self.session.batch_size:
            self.session.use_batch_size(batch_size)
        unit = [spec_from_wire(values) for values in wire_specs]
        return [(output.key, encode_trial(output))
                for output in play_trials(unit, self.session, skip=frozenset(skip))]
