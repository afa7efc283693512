"""Judge every focal utterance of a wave in one call, so the judge's batches span trials too.

`collect_trial` asks the evaluator once per trial; with a local judge that is a batch of one or
two utterances. `judge_wave` asks once for all the trials of a wave and hands `collect_trial` an
evaluator that answers each trial's call from those verdicts, in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deception_core.contracts.evaluator import JudgeRequest
from deception_core.ui.progress import progress_bar


def wave_requests(played: Any, scenario: Any) -> list[JudgeRequest]:
    """The judge requests `collect_trial` makes for one played trial (same order)."""
    game, facts = played.game, played.facts
    facts_text, question = scenario.describe_facts(facts), scenario.judge_question(facts)
    return [JudgeRequest(played.spec.scenario, facts_text, question, tuple(game.dialogue_until(u.request_id)), u.text)
            for u in game.result().focal]


class Prejudged:
    """Stands in for the evaluator inside `collect_trial`: returns the verdicts judged for the
    wave, one trial's worth per call, after checking the requests are the ones judged."""

    def __init__(self, batches: Sequence[tuple[list[JudgeRequest], list[Any]]]) -> None:
        self._batches = list(batches)

    def judge_many(self, requests: Sequence[JudgeRequest]) -> list[Any]:
        judged, verdicts = self._batches.pop(0)
        if list(requests) != judged:
            raise RuntimeError("a trial asked the judge about other utterances than were judged for its wave")
        return verdicts


def judge_wave(evaluator: Any, trials: Sequence[Any], scenarios: dict[str, Any], chunk: int = 64) -> Prejudged:
    """Judge the focal utterances of ``trials``, ``chunk`` per evaluator call (a progress bar
    counts them)."""

    per_trial = [wave_requests(t, scenarios[t.spec.scenario]) for t in trials]
    flat = [request for requests in per_trial for request in requests]
    verdicts: list[Any] = []
    bar = progress_bar(len(flat), "judging", "utterance")
    for start in range(0, len(flat), chunk):
        part = flat[start : start + chunk]
        verdicts.extend(evaluator.judge_many(part))
        bar.update(len(part))
    bar.close()
    batches, start = [], 0
    for requests in per_trial:
        batches.append((requests, verdicts[start : start + len(requests)]))
        start += len(requests)
    return Prejudged(batches)
