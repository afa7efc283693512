"""What a process needs to play trials: the model's backend, the judge, the scenarios and options.

The single-process run and every Ray worker build one `PlaySession` the same way, so a trial is
played by the same code with the same settings wherever it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from deception_core.base.registry import Kind, Registry
from deception_core.base.types import JSONObject
from deception_core.config.components import build, build_evaluator, settings_for
from deception_core.config.resolved import ResolvedRun
from deception_core.config.run import RunConfig
from deception_core.contracts.capture import CaptureBackend, CaptureSpec, Sampling
from deception_core.contracts.engine import Engine
from deception_core.contracts.evaluator import Evaluator, EvaluatorContext
from deception_core.contracts.scenario import GameOptions, Scenario
from deception_core.engine.backend import EngineCaptureBackend
from deception_core.engine.chat import ChatEngine
from deception_core.engine.openai import OpenAIEngine
from deception_core.play.batching import resolve_batch_size
from deception_core.play.play import choice_scorer, text_generator

if TYPE_CHECKING:
    from deception_core.model.surface import Model


@attrs.define
class PlaySession:
    config: RunConfig
    model: Model
    backend: CaptureBackend
    backend_cls: type[CaptureBackend]
    scenarios: Mapping[str, Scenario]
    evaluator: Evaluator
    sampling: Sampling
    options: GameOptions
    batch_size: int
    make_evaluator: Callable[[EvaluatorContext], Evaluator]
    #: ``--counterpart-engine``: another model's server plays the counterpart
    counterpart: ChatEngine | None = None

    def use_batch_size(self, batch_size: int) -> None:
        """Generate in batches of ``batch_size`` (a Ray worker takes the size the driver chose); the
        judge is rebuilt on the backend's callables for that size."""
        self.batch_size = batch_size
        self.evaluator = self.make_evaluator(judge_context(self.backend, batch_size))


def judge_context(backend: CaptureBackend, batch_size: int) -> EvaluatorContext:
    """The backend's greedy generator and choice scorer, batched like the run's generation calls."""

    return EvaluatorContext(generate_text=text_generator(backend, max(batch_size, 4)),
                            score_choices=choice_scorer(backend, max(batch_size, 4)))


def judge_builder(registry: Registry, run: ResolvedRun) -> Callable[[EvaluatorContext], Evaluator]:
    """Builds the run's judge (``--evaluator`` with its settings as the run resolved them) on a
    context: the backend's callables, or none for the key preflight."""

    evaluator_class = registry.get(Kind.EVALUATOR, run.evaluator).load()
    params = run.params(Kind.EVALUATOR.value, run.evaluator)
    return lambda context: build_evaluator(run.evaluator, evaluator_class, params, context)


def build_engine(run: ResolvedRun, registry: Registry, tokenizer: Any) -> Engine | None:
    """The run's ``--engine`` with its settings (``components.engine.<name>``); None for ``hf``, whose
    replies the capture backend generates itself."""
    name = run.config.engine
    engine_cls = registry.get(Kind.ENGINE, name).load()
    if engine_cls.in_process:
        return None
    settings = settings_for(Kind.ENGINE, name, engine_cls, run.params(Kind.ENGINE.value, name))
    engine: Engine = engine_cls(run.config.engine_url, tokenizer, settings)
    return engine


def build_counterpart(run: ResolvedRun) -> ChatEngine | None:
    """The ``--counterpart-engine`` server (settings: ``components.engine.openai``), or None."""
    url = run.config.counterpart_engine
    if not url:
        return None
    params = run.params(Kind.ENGINE.value, "openai")
    settings = settings_for(Kind.ENGINE, "openai", OpenAIEngine, params) if params else None
    return ChatEngine(url, run.config.counterpart_model, settings)  # type: ignore[arg-type]


def open_session(run: ResolvedRun, registry: Registry, model: Model, *, wrap_backend: Any = None) -> PlaySession:
    """Wrap a loaded model in the run's capture backend, then build the judge on that backend."""

    config = run.config
    scenarios = {name: build(Kind.SCENARIO, name, registry.get(Kind.SCENARIO, name).load(),
                             run.params(Kind.SCENARIO.value, name)) for name in run.scenarios}
    backend_name = run.capture_backend
    backend_cls = registry.get(Kind.CAPTURE_BACKEND, backend_name).load()
    backend_settings = settings_for(Kind.CAPTURE_BACKEND, backend_name, backend_cls,
                                    run.params(Kind.CAPTURE_BACKEND.value, backend_name))
    spec = CaptureSpec(run.layers, run.positions)
    backend = backend_cls(model, spec) if backend_settings is None else backend_cls(model, spec, backend_settings)
    engine = build_engine(run, registry, model.tokenizer)
    if engine is not None:
        backend = EngineCaptureBackend(backend, engine)
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

    batch_size = resolve_batch_size(config.batch_size, model, config.max_tokens)
    make_evaluator = judge_builder(registry, run)
    return PlaySession(config, model, backend, backend_cls, scenarios, make_evaluator(judge_context(backend, batch_size)),
                       Sampling(config.temperature, config.top_p), options, batch_size, make_evaluator,
                       build_counterpart(run))


@attrs.frozen
class ModelFacts:
    """What the driver records about the model when the model itself lives in the workers."""

    device: str
    dtype: str
    description: JSONObject

    @classmethod
    def of(cls, model: Model) -> ModelFacts:
        return cls(str(model.device), str(model.dtype), dict(model.describe()))

    def describe(self) -> JSONObject:
        return dict(self.description)

    @property
    def has_chat_template(self) -> bool:
        return bool(self.description.get("chat_template"))
