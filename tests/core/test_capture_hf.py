"""The `hf` backend captures the residual stream of the generating forward passes.

The captured vectors must equal the hidden states of a separate forward pass over the same
prompt + reply tokens at the recorded positions (HF ``hidden_states[L + 1]`` is the output of
block L; the last entry has the final norm applied, so the last layer is compared via a hook).
"""

from __future__ import annotations

import pytest
import torch

from deception_core.base.types import Position
from deception_core.capture.hf import HFCaptureBackend
from deception_core.contracts.capture import CaptureSpec, GenerationRequest, Sampling
from deception_core.model.intervention import Intervention
from deception_core.model.surface import from_hf
from deception_core.testing.tiny_models import tiny_hf_model, tiny_tokenizer

ALL = (Position.LAST_PROMPT, Position.REPLY_MEAN, Position.REPLY_LAST, Position.REPLY_ALL)


@pytest.fixture(scope="module", params=["llama", "gemma3", "gpt2"])
def loaded(request):
    tokenizer = tiny_tokenizer()
    model = tiny_hf_model(request.param, n_layers=4)
    return from_hf(model, tokenizer, model_id=f"tiny-{request.param}", source="test")


def _reference_states(loaded, prompt: list[int], reply: list[int], layers) -> torch.Tensor:
    """[n_tokens, n_layers, d] block outputs from one plain forward pass."""
    ids = torch.tensor([prompt + reply])
    outputs = {}
    blocks = loaded.hf_model.model.layers if hasattr(loaded.hf_model, "model") else loaded.hf_model.transformer.h

    def keep(layer):
        def hook(_m, _i, out):
            outputs[layer] = (out if torch.is_tensor(out) else out[0])[0].detach()

        return hook

    handles = [blocks[layer].register_forward_hook(keep(layer)) for layer in layers]
    with torch.no_grad():
        hidden = loaded.hf_model(ids, output_hidden_states=True).hidden_states
    for handle in handles:
        handle.remove()
    for layer in layers:
        if layer < loaded.n_layers - 1:  # hidden_states agree with the hooks before the final norm
            torch.testing.assert_close(hidden[layer + 1][0], outputs[layer])
    return torch.stack([outputs[layer] for layer in layers], dim=1)


@pytest.mark.parametrize("stop", [(), ("e",)])
def test_captured_vectors_equal_a_separate_forward_pass(loaded, stop) -> None:
    layers = (0, 2, 3)
    backend = HFCaptureBackend(loaded, CaptureSpec(layers, ALL))
    prompt = loaded.tokenizer("My minimum is thirty points, so")["input_ids"]
    request = GenerationRequest(tuple(prompt), max_new_tokens=10, seed=3, capture=True, stop=stop)
    (result,) = backend.generate([request], Sampling(temperature=1.0, top_p=0.95))
    reply = list(result.reply_ids)
    assert 1 <= len(reply) <= 10
    ref = _reference_states(loaded, prompt, reply, layers)
    n_prompt = len(prompt)
    acts = result.activations
    torch.testing.assert_close(acts[Position.LAST_PROMPT], ref[n_prompt - 1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(acts[Position.REPLY_LAST], ref[-1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(acts[Position.REPLY_MEAN], ref[n_prompt:].mean(dim=0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(result.reply_all, ref[n_prompt:], rtol=1e-4, atol=1e-5)


def test_batched_generation_matches_one_by_one_under_seeded_sampling(loaded) -> None:
    layers = (1, 3)
    backend = HFCaptureBackend(loaded, CaptureSpec(layers))
    texts = ["I will not go lower than sixty", "The car has a small oil leak", "Deal"]
    requests = [GenerationRequest(tuple(loaded.tokenizer(t)["input_ids"]), 8, seed=i, capture=True)
                for i, t in enumerate(texts)]
    sampling = Sampling(temperature=0.9, top_p=0.9)
    batched = backend.generate(requests, sampling)
    for request, together in zip(requests, batched, strict=True):
        (alone,) = backend.generate([request], sampling)
        assert alone.reply_ids == together.reply_ids
        for position in alone.activations:
            torch.testing.assert_close(alone.activations[position], together.activations[position], rtol=1e-3, atol=1e-4)


def test_uncaptured_requests_carry_no_activations_and_interventions_apply(loaded) -> None:
    backend = HFCaptureBackend(loaded, CaptureSpec((1,)))
    prompt = tuple(loaded.tokenizer("Yes, we are still allies")["input_ids"])
    (plain,) = backend.generate([GenerationRequest(prompt, 6, 0, capture=False)], Sampling(temperature=0))
    assert plain.activations is None
    calls = []

    def push(hidden, step):
        calls.append(step)
        return hidden + 50.0

    (captured,) = backend.generate([GenerationRequest(prompt, 6, 0, capture=True)], Sampling(temperature=0),
                                   [Intervention(1, push)])
    (baseline,) = backend.generate([GenerationRequest(prompt, 6, 0, capture=True)], Sampling(temperature=0))
    assert calls[0] == 0
    assert calls == sorted(calls)
    shift = captured.activations[Position.LAST_PROMPT] - baseline.activations[Position.LAST_PROMPT]
    torch.testing.assert_close(shift, torch.full_like(shift, 50.0), rtol=1e-4, atol=1e-3)


def test_greedy_stop_at_max_tokens_is_reported(loaded) -> None:
    backend = HFCaptureBackend(loaded, CaptureSpec((0,)))
    prompt = tuple(loaded.tokenizer("Negotiator: I propose")["input_ids"])
    (result,) = backend.generate([GenerationRequest(prompt, 4, 0)], Sampling(temperature=0))
    assert result.stopped_by in {"max_tokens", "eos"}
    assert len(result.reply_ids) <= 4


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_retiring_rows_gives_what_generate_gives(loaded, temperature) -> None:
    """Dropping finished rows from the batch changes no token and no activation beyond float noise:
    rows with their own token limits and stop strings, one stopping at once, greedy and sampled."""
    layers = (1, 3)
    spec = CaptureSpec(layers, positions=(Position.LAST_PROMPT, Position.REPLY_MEAN, Position.REPLY_LAST,
                                          Position.REPLY_ALL))
    fast, reference = HFCaptureBackend(loaded, spec), HFCaptureBackend(loaded, spec)
    reference.retire_finished_rows = False  # plain HF generate
    assert fast.retire_finished_rows
    texts = ["I will not go lower than sixty", "The car has a small oil leak", "Deal", "Once upon a time, there was"]
    stops = [(), ("e",), (), ("a", "o")]
    limits = [12, 9, 1, 6]
    requests = [GenerationRequest(tuple(loaded.tokenizer(t)["input_ids"]), limit, seed=i, capture=i != 2, stop=stop)
                for i, (t, stop, limit) in enumerate(zip(texts, stops, limits, strict=True))]
    sampling = Sampling(temperature=temperature, top_p=0.9)
    for got, want in zip(fast.generate(requests, sampling), reference.generate(requests, sampling), strict=True):
        assert got.reply_ids == want.reply_ids
        assert got.stopped_by == want.stopped_by
        assert got.text == want.text
        assert (got.activations is None) == (want.activations is None)
        for position in want.activations or {}:
            torch.testing.assert_close(got.activations[position], want.activations[position], rtol=1e-4, atol=1e-5)
        if want.reply_all is not None:
            torch.testing.assert_close(got.reply_all, want.reply_all, rtol=1e-4, atol=1e-5)
