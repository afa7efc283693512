"""Known answers of the model surface (`deception_core.model.surface.Model`) on tiny random models."""

from __future__ import annotations

import pytest
import torch

from deception_core.model.surface import Model, from_hf
from deception_core.testing.tiny_models import tiny_hf_model, tiny_tokenizer

ATOL = 1e-5
ROWS = [[0, 11, 12, 13, 14, 15, 16], [0, 21, 22], [0, 31, 32, 33, 34]]


@pytest.fixture(scope="module", params=["llama", "gemma3", "gpt2"])
def model(request: pytest.FixtureRequest) -> Model:
    return from_hf(tiny_hf_model(request.param, n_layers=4), tiny_tokenizer(), model_id=f"tiny-{request.param}",
                   source="local")


def _hidden_states(model: Model, row: list[int]) -> tuple[torch.Tensor, ...]:
    with torch.inference_mode():
        out = model.hf_model(input_ids=torch.tensor([row]), output_hidden_states=True)
    return tuple(out.hidden_states)


def test_run_with_cache_equals_hf_hidden_states_at_every_position(model: Model) -> None:
    cache = model.run_with_cache(ROWS, layers=[0, 2])
    for row, states in zip(ROWS, cache.rows(2), strict=True):
        assert torch.allclose(states, _hidden_states(model, row)[3][0], atol=ATOL)


def test_run_with_cache_at_chosen_positions(model: Model) -> None:
    cache = model.run_with_cache(ROWS, layers=[1], positions=[0, -1])
    expected = torch.stack([_hidden_states(model, row)[2][0][[0, -1]] for row in ROWS])
    assert torch.allclose(cache[1], expected, atol=ATOL)


def test_last_block_is_read_before_the_final_norm_unless_asked(model: Model) -> None:
    """HF's last hidden state is the final norm's output; the surface records the block's own output
    (as capture does) and the HF value only with final_norm=True (what `deception capture` stores)."""
    last = model.n_layers - 1
    hf_last = _hidden_states(model, ROWS[0])[-1][0]
    assert not torch.allclose(model.run_with_cache([ROWS[0]], layers=[last]).rows(last)[0], hf_last, atol=1e-3)
    assert torch.allclose(model.run_with_cache([ROWS[0]], layers=[last], final_norm=True).rows(last)[0], hf_last,
                          atol=ATOL)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_padding_gives_the_states_of_unpadded_rows(model: Model, batch_size: int) -> None:
    alone = [model.run_with_cache([row], layers=[1, 3]).states[0] for row in ROWS]
    batched = model.run_with_cache(ROWS, layers=[1, 3], batch_size=batch_size).states
    for one, many in zip(alone, batched, strict=True):
        assert torch.allclose(one, many, atol=ATOL)


def test_left_padded_generation_records_the_states_of_unpadded_rows(model: Model) -> None:
    """Generation pads on the left; its prompt-pass state equals the unpadded row's last token state."""
    from deception_core.model.generation import GenerationRequest, Sampling

    requests = [GenerationRequest(tuple(row), 2, 0) for row in ROWS]
    generated = model.generate(requests, Sampling(temperature=0.0), layers=[2], retire=False)
    for row, g in zip(ROWS, generated, strict=True):
        assert g.states is not None
        assert torch.allclose(g.states[0, 0], _hidden_states(model, row)[3][0, -1], atol=ATOL)


def test_texts_are_tokenised_with_special_tokens(model: Model) -> None:
    text = "My minimum is thirty points"
    by_text = model.run_with_cache([text], layers=[1]).states[0]
    by_ids = model.run_with_cache([model.encode(text)], layers=[1]).states[0]
    assert torch.equal(by_text, by_ids)


def _unit(model: Model, seed: int = 3) -> torch.Tensor:
    direction = torch.randn(model.d_model, generator=torch.Generator().manual_seed(seed))
    return direction / direction.norm()


def test_steer_with_alpha_zero_changes_nothing(model: Model) -> None:
    clean = model.run_with_cache(ROWS, layers=[3]).states
    with model.steer(_unit(model), 0.0, layers=[1]):
        steered = model.run_with_cache(ROWS, layers=[3]).states
    for a, b in zip(clean, steered, strict=True):
        assert torch.equal(a, b)


def test_steer_moves_the_projection_by_exactly_alpha(model: Model) -> None:
    unit = _unit(model)
    clean = model.run_with_cache(ROWS, layers=[1]).rows(1)
    with model.steer(unit * 7.0, 2.5, layers=[1]):  # the direction's norm does not matter
        steered = model.run_with_cache(ROWS, layers=[1]).rows(1)
    for a, b in zip(clean, steered, strict=True):
        assert torch.allclose(b @ unit - a @ unit, torch.full((a.shape[0],), 2.5), atol=ATOL)


def test_steer_is_undone_when_the_block_ends(model: Model) -> None:
    before = model.run_with_cache([ROWS[0]], layers=[2]).states[0]
    with model.steer(_unit(model), 5.0, layers=[1]):
        pass
    assert torch.equal(model.run_with_cache([ROWS[0]], layers=[2]).states[0], before)


def test_ablate_leaves_zero_projection(model: Model) -> None:
    unit = _unit(model)
    with model.ablate(unit, layers=[2]):
        states = model.run_with_cache(ROWS, layers=[2]).rows(2)
    for row in states:
        assert torch.allclose(row @ unit, torch.zeros(row.shape[0]), atol=ATOL)


def test_mean_ablation_sets_the_projection_to_the_mean(model: Model) -> None:
    unit = _unit(model)
    with model.ablate(unit, layers=[2], mean=1.75):
        states = model.run_with_cache(ROWS, layers=[2]).rows(2)
    for row in states:
        assert torch.allclose(row @ unit, torch.full((row.shape[0],), 1.75), atol=ATOL)


def test_patch_replaces_the_states_at_the_positions(model: Model) -> None:
    values = torch.ones(2, model.d_model)
    with model.patch(1, [1, 2], values):
        states = model.run_with_cache([ROWS[0]], layers=[1]).rows(1)[0]
    assert torch.allclose(states[1:3], values, atol=ATOL)


def test_logprobs_equal_a_manual_log_softmax_gather(model: Model) -> None:
    prompt, reply = ROWS[0][:4], ROWS[0][4:]
    with torch.inference_mode():
        logits = model.hf_model(input_ids=torch.tensor([prompt + reply])).logits[0].float()
    manual = torch.log_softmax(logits, dim=-1)[torch.arange(3, 3 + len(reply)), torch.tensor(reply)]
    assert torch.allclose(model.logprobs(prompt, reply), manual, atol=ATOL)


def test_steered_generation_differs_and_ends_clean(model: Model) -> None:
    from deception_core.model.generation import GenerationRequest

    request = [GenerationRequest(tuple(ROWS[0]), 4, 0)]
    clean = model.generate(request, layers=[1])
    with model.steer(_unit(model), 50.0, layers=[1]):
        steered = model.generate(request, layers=[1])
    assert clean[0].states is not None
    assert steered[0].states is not None
    assert torch.allclose(steered[0].states[0, 0] @ _unit(model) - clean[0].states[0, 0] @ _unit(model),
                          torch.tensor(50.0), atol=1e-3)
    assert model.generate(request, layers=[1])[0].reply_ids == clean[0].reply_ids


def test_generate_accepts_texts(model: Model) -> None:
    replies = model.generate(["My minimum is"], max_new_tokens=3)
    assert len(replies[0].reply_ids) <= 3


def test_unknown_layers_are_refused_with_the_range(model: Model) -> None:
    from deception_core.base.errors import UsageError

    with pytest.raises(UsageError, match=r"decoder blocks 0\.\.3"):
        model.run_with_cache(ROWS, layers=[9])


@pytest.mark.slow
def test_notebook_use_on_the_embedded_model() -> None:
    from deception_core import load_model

    m = load_model("embedded:gemma-3-270m")
    cache = m.run_with_cache(["The sky is green today.", "I will not go lower than sixty points."], layers=[4, 9],
                             positions=[-1])
    direction = torch.randn(m.d_model, generator=torch.Generator().manual_seed(0))
    plain = m.generate(["Tell me about the sky."], max_new_tokens=12)
    with m.steer(direction, 40.0, layers=[6]):
        steered = m.generate(["Tell me about the sky."], max_new_tokens=12)
    assert tuple(cache[9].shape) == (2, 1, m.d_model)
    assert steered[0].reply_ids != plain[0].reply_ids
