"""Drive games on a capture backend, batching the calls of several trials together."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import attrs

from deception_core.base.types import JSONObject, Message
from deception_core.contracts.capture import CaptureBackend, CaptureResult, GenerationRequest, Sampling
from deception_core.contracts.evaluator import ChoiceScorer
from deception_core.contracts.scenario import Game, Request, TrialSpec
from deception_core.engine.chat import ChatCall, ChatEngine
from deception_core.model.prompting import render_prompt
from deception_core.plan.plan import stable_seed

if TYPE_CHECKING:
    from deception_core.model.surface import Model


@attrs.define
class PlayedTrial:
    spec: TrialSpec
    facts: JSONObject
    game: Game
    captures: dict[str, CaptureResult] = attrs.field(factory=dict)
    requests: dict[str, Request] = attrs.field(factory=dict)  # the captured calls, by request id
    calls: list[JSONObject] = attrs.field(factory=list)


#: the callers a ``--counterpart-engine`` plays (the scenarios' ``counterpart.*`` calls)
COUNTERPART_PREFIX = "counterpart"


def play_batch(
    trials: Sequence[PlayedTrial],
    backend: CaptureBackend,
    sampling: Sampling,
    batch_size: int,
    on_batch: Callable[[int, int], None] | None = None,
    counterpart: ChatEngine | None = None,
) -> None:
    """Play ``trials`` to the end, generating the pending calls of all of them in shared batches.

    At every step the pending calls of every unfinished trial, whatever its scenario, mode,
    condition or caller, are pooled, ordered by token limit and prompt length (so a batch wastes
    little on padding and on rows that stop early) and cut into batches of ``batch_size``. Each
    call samples from its own seeded generator, so a reply does not depend on its batch partners
    beyond float noise (see the README). Which calls share a batch is a function of ``trials``
    alone, so replaying the same trials reproduces the same batches.

    ``on_batch(n_calls, n_reply_tokens)`` is called after every batch (progress and benchmarks).
    ``counterpart``: another model's server plays the uncaptured ``counterpart.*`` calls, through its
    chat route (`deception_core.engine.chat`), at every step before the batches.
    """
    tokenizer = backend.model.tokenizer
    while True:
        pending: list[tuple[PlayedTrial, Request]] = [
            (trial, request) for trial in trials if not trial.game.done for request in trial.game.pending()
        ]
        if not pending:
            if all(trial.game.done for trial in trials):
                return
            raise RuntimeError("a game is not done but asks for no generation call")
        if counterpart is not None:
            routed = [(trial, request) for trial, request in pending
                      if request.caller.startswith(COUNTERPART_PREFIX) and not request.capture]
            if routed:
                _play_counterpart(routed, counterpart, sampling)
                continue
        requests = [
            GenerationRequest(
                prompt_ids=tuple(render_prompt(tokenizer, request.messages)),
                max_new_tokens=request.max_new_tokens,
                seed=stable_seed(trial.spec.seed, request.request_id),
                capture=request.capture,
                stop=request.stop,
            )
            for trial, request in pending
        ]
        order = sorted(range(len(pending)), key=lambda i: (requests[i].max_new_tokens, len(requests[i].prompt_ids), i))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            results = backend.generate([requests[i] for i in chunk], sampling)
            for i, result in zip(chunk, results, strict=True):
                trial, request = pending[i]
                trial.calls.append({"request_id": request.request_id, "caller": request.caller,
                                    "captured": request.capture, "n_reply_tokens": len(result.reply_ids)})
                if result.engine is not None:
                    trial.calls[-1]["engine"] = dict(result.engine)
                if request.capture:
                    trial.captures[request.request_id] = result
                    trial.requests[request.request_id] = request
                trial.game.deliver(request, result.text)
            if on_batch is not None:
                on_batch(len(chunk), sum(len(r.reply_ids) for r in results))


def _play_counterpart(routed: Sequence[tuple[PlayedTrial, Request]], counterpart: ChatEngine,
                      sampling: Sampling) -> None:
    calls = [ChatCall(tuple(request.messages), request.max_new_tokens,
                      stable_seed(trial.spec.seed, request.request_id), tuple(request.stop))
             for trial, request in routed]
    for (trial, request), reply in zip(routed, counterpart.replies(calls, sampling), strict=True):
        trial.calls.append({"request_id": request.request_id, "caller": request.caller, "captured": False,
                            "n_reply_tokens": reply.tokens, "engine": {"counterpart": counterpart.url}})
        trial.game.deliver(request, reply.text)


def text_generator(backend: CaptureBackend, max_batch: int) -> Callable[..., list[str]]:
    """A greedy, uncaptured text generator over the run's model (for the local judge)."""

    def generate(conversations: Sequence[Sequence[Message]], max_new_tokens: int) -> list[str]:
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


def choice_scorer(backend: CaptureBackend, max_batch: int) -> ChoiceScorer:
    """Score fixed answers by their log-probability under the run's model (no sampling, no capture).

    Used by the local judge: choosing the likeliest of a few verdict lines is a constrained answer
    that even a small base model can give, where free generation often rambles.

    Each judge prompt is run once and its shared opening once (`deception_core.model.scoring`, through
    `Model.score_choices`, which keeps the opening's cache for later calls).
    """
    model: Model = backend.model
    tokenizer = model.tokenizer

    def score(conversations: Sequence[Sequence[Message]], choices: Sequence[str],
              opening: Sequence[Message] = ()) -> list[list[float]]:
        answers = [[int(i) for i in tokenizer(c, add_special_tokens=False)["input_ids"]] for c in choices]
        prompts = [render_prompt(tokenizer, list(conv)) for conv in conversations]
        return model.score_choices(prompts, answers, max_batch=max_batch,
                                   opening=render_prompt(tokenizer, list(opening)) if opening else ())

    return score
