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
    requests: dict[str, Request] = attrs.field(factory=dict)  # the captured calls, by request id
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
                for (trial, request), result in zip(chunk, results, strict=True):
                    trial.calls.append({"request_id": request.request_id, "caller": request.caller,
                                        "captured": request.capture, "n_reply_tokens": len(result.reply_ids)})
                    if request.capture:
                        trial.captures[request.request_id] = result
                        trial.requests[request.request_id] = request
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


def choice_scorer(backend: CaptureBackend, max_batch: int) -> Callable[..., list[list[float]]]:
    """Score fixed answers by their log-probability under the run's model (no sampling, no capture).

    Used by the local judge: choosing the likeliest of a few verdict lines is a constrained answer
    that even a small base model can give, where free generation often rambles.
    """
    import torch

    model, tokenizer = backend.model.hf_model, backend.model.tokenizer
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    @torch.inference_mode()
    def score(conversations, choices) -> list[list[float]]:
        choice_ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
        rows = [(i, j, render_prompt(tokenizer, list(conv)), ids)
                for i, conv in enumerate(conversations) for j, ids in enumerate(choice_ids)]
        out = [[0.0] * len(choices) for _ in conversations]
        for start in range(0, len(rows), max_batch):
            chunk = rows[start : start + max_batch]
            width = max(len(p) + len(c) for _, _, p, c in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, (_, _, prompt, choice) in enumerate(chunk):
                seq = prompt + choice
                ids[r, width - len(seq):] = torch.tensor(seq)
                mask[r, width - len(seq):] = 1
            # left padding: every choice ends at the last position, so only the last (longest
            # choice + 1) positions' logits are needed (the judge prompt itself is never scored)
            keep = max(len(c) for *_, c in chunk) + 1
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=keep).logits
            logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            for r, (i, j, _prompt, choice) in enumerate(chunk):
                n = len(choice)
                targets = torch.tensor(choice, device=logprobs.device)
                picked = logprobs[r, keep - 1 - n : keep - 1].gather(-1, targets[:, None])
                out[i][j] = float(picked.sum())
        return out

    return score
