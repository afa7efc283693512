"""What a process needs to play trials: the model's backend, the judge, the scenarios and options.

The single-process run and every Ray worker build one `PlaySession` the same way, so a trial is
played by the same code with the same settings wherever it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from deception_core.config import RunConfig
from deception_core.evaluator import EvaluatorContext
from deception_core.registry import Kind, Registry
from deception_core.scenario import GameOptions


@attrs.define
class PlaySession:
    config: RunConfig
    model: Any
    backend: Any
    backend_cls: Any
    scenarios: Mapping[str, Any]
    evaluator: Any
    sampling: Any
    options: GameOptions
    generator: dict[str, Any]
    batch_size: int

    def use_batch_size(self, batch_size: int) -> None:
        """Generate in batches of ``batch_size`` (a Ray worker takes the size the driver chose)."""
        from deception_core.runner.play import choice_scorer, text_generator

        self.batch_size = batch_size
        self.generator["fn"] = text_generator(self.backend, max(batch_size, 4))
        self.generator["score"] = choice_scorer(self.backend, max(batch_size, 4))


def new_evaluator(registry: Registry, config: RunConfig) -> tuple[Any, dict[str, Any]]:
    """The run's judge with its settings (``components``, ``--judge-model``, ``--judge-url``), and the
    slots its local generator is plugged into once a backend exists (in this process or a worker)."""
    generator: dict[str, Any] = {}
    evaluator_cls = registry.get(Kind.EVALUATOR, config.evaluator).load()
    evaluator = evaluator_cls(EvaluatorContext(
        generate_text=lambda convs, n: generator["fn"](convs, n),
        score_choices=lambda convs, choices: generator["score"](convs, choices),
        options=config.component_params(Kind.EVALUATOR.value, config.evaluator),
    ))
    return evaluator, generator


def open_session(config: RunConfig, scenario_names: tuple[str, ...], backend_name: str, layers: tuple[int, ...],
                 registry: Registry, model: Any, evaluator: Any, generator: dict[str, Any], *,
                 wrap_backend: Any = None) -> PlaySession:
    """Wrap a loaded model in the run's capture backend and wire the judge to it."""
    from deception_core.capture.base import CaptureSpec, Sampling
    from deception_core.components import build

    scenarios = {name: build(Kind.SCENARIO, name, registry.get(Kind.SCENARIO, name).load(),
                             config.component_params(Kind.SCENARIO.value, name)) for name in scenario_names}
    backend_cls = registry.get(Kind.CAPTURE_BACKEND, backend_name).load()
    backend = backend_cls(model, CaptureSpec(layers, config.positions))
    if wrap_backend is not None:
        backend = wrap_backend(backend)
    options = GameOptions(
        max_rounds=config.max_rounds,
        max_tokens=config.max_tokens,
        theory_of_mind=not (config.fast or config.ultrafast),
        minimal_agents=config.ultrafast,
        self_report=config.self_report,
        chat_template=model.has_chat_template,
    )
    from deception_core.runner.batching import resolve_batch_size

    batch_size = resolve_batch_size(config.batch_size, model, config.max_tokens)
    session = PlaySession(config, model, backend, backend_cls, scenarios, evaluator,
                          Sampling(config.temperature, config.top_p), options, generator, batch_size)
    session.use_batch_size(session.batch_size)
    return session


@attrs.frozen
class ModelFacts:
    """What the driver records about the model when the model itself lives in the workers."""

    device: str
    dtype: str
    description: dict[str, Any]

    @classmethod
    def of(cls, model: Any) -> ModelFacts:
        return cls(str(model.device), str(model.dtype), dict(model.describe()))

    def describe(self) -> dict[str, Any]:
        return dict(self.description)

    @property
    def has_chat_template(self) -> bool:
        return bool(self.description.get("chat_template"))
