"""Drive games on a capture backend, batching the calls of several trials together."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from deception_core.capture.base import CaptureBackend, CaptureResult, GenerationRequest, Sampling
from deception_core.prompting import render_prompt
from deception_core.runner.plan import stable_seed
from deception_core.scenario import Game, Request, TrialSpec


@attrs.define
class PlayedTrial:
    spec: TrialSpec
    facts: dict[str, Any]
    game: Game
    captures: dict[str, CaptureResult] = attrs.field(factory=dict)
    calls: list[dict[str, Any]] = attrs.field(factory=list)


def play_batch(
    trials: Sequence[PlayedTrial],
    backend: CaptureBackend,
    sampling: Sampling,
    batch_size: int,
) -> None:
    """Play ``trials`` to the end, generating their pending calls in batches."""
    tokenizer = backend.model.tokenizer
    while True:
        pending: list[tuple[PlayedTrial, Request]] = [
            (trial, request) for trial in trials if not trial.game.done for request in trial.game.pending()
        ]
        if not pending:
            if all(trial.game.done for trial in trials):
                return
            raise RuntimeError("a game is not done but asks for no generation call")
        groups: dict[tuple[bool, int], list[tuple[PlayedTrial, Request]]] = {}
        for item in pending:
            groups.setdefault((item[1].capture, item[1].max_new_tokens), []).append(item)
        for items in groups.values():
            for start in range(0, len(items), batch_size):
                chunk = items[start : start + batch_size]
                requests = [
                    GenerationRequest(
                        prompt_ids=tuple(render_prompt(tokenizer, request.messages)),
                        max_new_tokens=request.max_new_tokens,
                        seed=stable_seed(trial.spec.seed, request.request_id),
                        capture=request.capture,
                        stop=request.stop,
                    )
                    for trial, request in chunk
                ]
                results = backend.generate(requests, sampling)
                for (trial, request), result in zip(chunk, results):
                    trial.calls.append({"request_id": request.request_id, "caller": request.caller,
                                        "captured": request.capture, "n_reply_tokens": len(result.reply_ids)})
                    if request.capture:
                        trial.captures[request.request_id] = result
                    trial.game.deliver(request, result.text)


def text_generator(backend: CaptureBackend, max_batch: int) -> Callable[..., list[str]]:
    """A greedy, uncaptured text generator over the run's model (for the local judge)."""

    def generate(conversations, max_new_tokens: int) -> list[str]:
        out: list[str] = []
        for start in range(0, len(conversations), max_batch):
            chunk = conversations[start : start + max_batch]
            requests = [
                GenerationRequest(tuple(render_prompt(backend.model.tokenizer, list(c))), max_new_tokens, 0, capture=False)
                for c in chunk
            ]
            out.extend(r.text for r in backend.generate(requests, Sampling(temperature=0.0)))
        return out

    return generate
