"""Drive games on a capture backend, batching the calls of several trials together."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from deception_core.base.types import JSONObject, Message
from deception_core.contracts.capture import CaptureBackend, CaptureResult, GenerationRequest, Sampling
from deception_core.contracts.evaluator import ChoiceScorer
from deception_core.contracts.scenario import Game, Request, TrialSpec
from deception_core.model.prompting import render_prompt
from deception_core.plan.plan import stable_seed


@attrs.define
class PlayedTrial:
    spec: TrialSpec
    facts: JSONObject
    game: Game
    captures: dict[str, CaptureResult] = attrs.field(factory=dict)
    requests: dict[str, Request] = attrs.field(factory=dict)  # the captured calls, by request id
    calls: list[JSONObject] = attrs.field(factory=list)


def play_batch(
    trials: Sequence[PlayedTrial],
    backend: CaptureBackend,
    sampling: Sampling,
    batch_size: int,
    on_batch: Callable[[int, int], None] | None = None,
) -> None:
    """Play ``trials`` to the end, generating the pending calls of all of them in shared batches.

    At every step the pending calls of every unfinished trial, whatever its scenario, mode,
    condition or caller, are pooled, ordered by token limit and prompt length (so a batch wastes
    little on padding and on rows that stop early) and cut into batches of ``batch_size``. Each
    call samples from its own seeded generator, so a reply does not depend on its batch partners
    beyond float noise (see the README). Which calls share a batch is a function of ``trials``
    alone, so replaying the same trials reproduces the same batches.

    ``on_batch(n_calls, n_reply_tokens)`` is called after every batch (progress and benchmarks).
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
                if request.capture:
                    trial.captures[request.request_id] = result
                    trial.requests[request.request_id] = request
                trial.game.deliver(request, result.text)
            if on_batch is not None:
                on_batch(len(chunk), sum(len(r.reply_ids) for r in results))


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

    Each judge prompt is run once (batches ordered by length, left padding; a shared opening, given
    or found within a batch, is run once, see `capture.shared_prefix`) and its key/value cache
    is reused for every answer: scoring three answers costs one prompt pass and one short pass
    (the answers side by side) instead of three prompt passes.
    """
    import torch

    from deception_core.model.shared_prefix import PrefixMemory, prompt_pass

    model, tokenizer = backend.model.hf_model, backend.model.tokenizer
    device = model.get_input_embeddings().weight.device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    memories: dict[tuple[int, ...], PrefixMemory] = {}  # one per opening, each run once

    @torch.inference_mode()
    def score(conversations: Sequence[Sequence[Message]], choices: Sequence[str],
              opening: Sequence[Message] = ()) -> list[list[float]]:
        choice_ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
        longest = max(len(c) for c in choice_ids)
        answers = torch.tensor([c + [pad] * (longest - len(c)) for c in choice_ids], dtype=torch.long, device=device)
        lengths = torch.tensor([len(c) for c in choice_ids], device=device)
        prompts = [render_prompt(tokenizer, list(conv)) for conv in conversations]
        memory = None
        if opening:
            tokens = tuple(render_prompt(tokenizer, list(opening)))
            memory = memories.setdefault(tokens, PrefixMemory(tokens))
        out = [[0.0] * len(choices) for _ in conversations]
        order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
        for start in range(0, len(order), max_batch):
            rows = order[start : start + max_batch]
            passed = prompt_pass(model, [prompts[i] for i in rows], pad, device, memory=memory)
            first = torch.log_softmax(passed.output.logits[:, -1].float(), dim=-1)
            totals = [first[:, choice[0]] for choice in choice_ids]
            if longest > 1:  # every answer's later tokens, all answers in one pass over the shared cache
                rest = _answer_tokens(model, passed, answers, lengths)
                totals = [total + rest[:, j] for j, total in enumerate(totals)]
            for j, total in enumerate(totals):
                for r, i in enumerate(rows):
                    out[i][j] = float(total[r])
        return out

    return score


def _answer_tokens(model: Any, passed: Any, answers: Any, lengths: Any) -> Any:
    """``[rows, answers]``: the summed log-probability of every answer token after its first, each
    row's prompt cache repeated once per answer so that all answers run in one forward call.
    ``answers`` is ``[answers, longest]``, padded on the right (padding is fed but never scored);
    ``lengths`` holds each answer's true length. The prompt cache is extended in place."""
    import torch

    rows, k = passed.mask.shape[0], answers.shape[0]
    n, device = answers.shape[1] - 1, answers.device
    cache = passed.cache
    cache.batch_repeat_interleave(k)
    mask = passed.mask.repeat_interleave(k, dim=0)
    feed = answers[:, :n].repeat(rows, 1)
    logits = model(input_ids=feed, attention_mask=torch.cat([mask, mask.new_ones((rows * k, n))], 1),
                   position_ids=passed.position[:, -1:].repeat_interleave(k, dim=0) + torch.arange(1, n + 1, device=device),
                   past_key_values=cache, use_cache=True).logits.float()
    out = logits.device  # the last layer's device when a model is split over several GPUs
    targets = answers[:, 1:].repeat(rows, 1).to(out)
    picked = logits.gather(-1, targets[..., None])[..., 0] - torch.logsumexp(logits, dim=-1)
    scored = torch.arange(1, n + 1, device=out)[None, :] < lengths.to(out)[:, None]
    return (picked * scored.repeat(rows, 1)).sum(dim=-1).view(rows, k)
