"""The units of work every executor plays: waves of the plan, each played, judged and collected whole."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Set as AbstractSet

from deception_core.base.types import Condition, Mode
from deception_core.collect.collect import TrialOutput, collect_trial
from deception_core.contracts.evaluator import JudgesMany
from deception_core.contracts.scenario import TrialSpec
from deception_core.label.judging import judge_wave
from deception_core.play.batching import waves
from deception_core.play.play import PlayedTrial, play_batch
from deception_core.play.session import PlaySession


def play_units(specs: list[TrialSpec], done: set[str], batch_size: int) -> list[list[TrialSpec]]:
    """The run's units of work: the waves of the plan (`deception_core.play.batching.waves`) that
    still hold an unfinished trial.

    A unit is played whole by one process (`play_trials`), even trials a checkpoint already holds,
    so every call meets the same batch partners whichever executor, worker or resumed run plays it.
    """
    return [wave for wave in waves(specs, batch_size) if not all(spec.key in done for spec in wave)]


def play_trials(unit: list[TrialSpec], session: PlaySession, *, skip: AbstractSet[str] = frozenset(),
                on_batch: Callable[[int, int], None] | None = None) -> Iterator[TrialOutput]:
    """Play one unit of trials in flight together; yield the output of each trial not in ``skip``.

    The one way trials are played: in the single-process run and inside every Ray worker.
    """
    config = session.config
    played = []
    for spec in unit:
        scenario = session.scenarios[spec.scenario]
        facts = scenario.sample_facts(random.Random(spec.seed))
        played.append(PlayedTrial(spec, facts, scenario.new_game(spec, facts, session.options)))
    play_batch(played, session.backend, session.sampling, session.batch_size, on_batch=on_batch,
               counterpart=session.counterpart)
    fresh = [trial for trial in played if trial.spec.key not in skip]
    judge: JudgesMany | None = session.evaluator
    if judge is not None and fresh:  # one judge call for the whole unit, so its batches span trials too
        judge = judge_wave(judge, fresh, dict(session.scenarios), 4 * max(session.batch_size, 4))
    for trial in fresh:
        yield collect_trial(trial, session.scenarios[trial.spec.scenario], judge,
                            session.model.tokenizer, config.label_policy)


def spec_to_wire(spec: TrialSpec) -> list[str | int]:
    """A trial spec as plain values, the form it travels in to a Ray worker."""
    return [spec.scenario, spec.mode.value, spec.condition.value, spec.index, spec.seed]


def spec_from_wire(values: Sequence[str | int]) -> TrialSpec:
    scenario, mode, condition, index, seed = values
    return TrialSpec(str(scenario), Mode(mode), Condition(condition), int(index), int(seed))
