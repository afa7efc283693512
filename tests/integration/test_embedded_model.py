"""The embedded Gemma-3-270M: loads offline from the PyPI package and captures like any model (slow)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_embedded_gemma_loads_and_capture_matches_a_forward_pass() -> None:
    import torch

    from deception_core.base.types import Position
    from deception_core.capture.hf import HFCaptureBackend
    from deception_core.contracts.capture import CaptureSpec, GenerationRequest, Sampling
    from deception_core.model.spec import ModelSpec, peek_model
    from deception_core.model.surface import load_model

    spec = ModelSpec.parse("embedded:gemma-3-270m")
    info = peek_model(spec)
    model = load_model(spec, device="cpu", dtype="float32")
    assert (model.n_layers, model.d_model) == (info.n_layers, info.d_model) == (18, 640)
    backend = HFCaptureBackend(model, CaptureSpec((4, 9, 13)))
    prompt = model.tokenizer("Once upon a time, there was a little")["input_ids"]
    (result,) = backend.generate([GenerationRequest(tuple(prompt), 12, 0)], Sampling(temperature=0))
    assert result.text
    ids = torch.tensor([list(prompt) + list(result.reply_ids)])
    with torch.no_grad():
        hidden = model.hf_model(ids, output_hidden_states=True).hidden_states
    n = len(prompt)
    torch.testing.assert_close(result.activations[Position.LAST_PROMPT][1], hidden[10][0, n - 1], rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(result.activations[Position.REPLY_LAST][2], hidden[14][0, -1], rtol=1e-3, atol=1e-3)
