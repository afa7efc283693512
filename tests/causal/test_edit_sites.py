"""Edits at the reply sites (from the last prompt token on) and at every site: the fast paths, which
run each prompt's unedited part once and drop finished rows, give the plain passes' numbers."""

from __future__ import annotations

import pytest
import torch

from deception_causal.common import CausalSettings
from deception_causal.interventions import RowEdit, teacher_forced
from deception_causal.measures import reply_logprobs
from deception_core import replies_from_last_prompt_token
from deception_core.model.conditions import _FromLastToken, _Retained
from deception_core.model.generation import GenerationRequest, LayerRecorder, Sampling, generate_plain
from deception_core.model.intervention import Intervention
from deception_core.model.surface import Model, from_hf
from deception_core.testing.tiny_models import tiny_hf_model, tiny_tokenizer

ARCHS = ["llama", "gemma3", "gpt2"]
PROMPT = (0, 11, 12, 13, 14, 15, 16, 17)


def _edits(d: int, rows: int, keep_first: bool) -> dict[int, RowEdit]:
    """Row 0 unedited; the others add a different push, row 3 also projects a direction out."""
    generator = torch.Generator().manual_seed(0)
    add = torch.randn(rows, d, generator=generator) * 3.0
    add[0] = 0.0
    project = torch.zeros(rows, d)
    project[3, 1] = 1.0
    return {1: RowEdit(project=project, add=add, keep_first=keep_first)}


@pytest.fixture(scope="module", params=ARCHS)
def model(request: pytest.FixtureRequest) -> Model:
    return from_hf(tiny_hf_model(request.param, n_layers=3, d_model=32, seed=7), tiny_tokenizer(),
                   model_id=f"tiny-{request.param}", source="local")


def _plain(model: Model, edits: dict[int, RowEdit], conditions: int, sites: str, sampling: Sampling,
           requests: list[GenerationRequest]) -> list[tuple[int, ...]]:
    """HF ``generate`` with every row kept to the end, the same edits at the same sites."""
    rows = [r for r in requests for _ in range(conditions)]
    width = max(len(r.prompt_ids) for r in rows)
    pads = [width - len(r.prompt_ids) for r in rows]
    wrapped = [Intervention(layer, _FromLastToken(edit) if sites == "reply" else _Retained(edit, pads))
               for layer, edit in edits.items()]
    out = generate_plain(model.hf_model, model.tokenizer, model.stop_tokens, rows, sampling,
                         LayerRecorder(model.layers_module, (), False, wrapped), model.input_device)
    return [g.reply_ids for g in out]


@pytest.mark.parametrize("sites", ["reply", "all"])
@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_generated_conditions_equal_plain_generate(model: Model, sites: str, temperature: float) -> None:
    rows = 5
    edits = _edits(32, rows, keep_first=sites == "all")
    request = GenerationRequest(PROMPT, 12, seed=3, capture=False)
    sampling = Sampling(temperature=temperature, top_p=0.9)
    fast = [g.reply_ids for g in model.generate_conditions([request], edits, rows, sampling, sites=sites)]
    assert fast == _plain(model, edits, rows, sites, sampling, [request])


@pytest.mark.parametrize("sites", ["reply", "all"])
@pytest.mark.parametrize("drop_share", [0.0, 0.5])
def test_several_prompts_in_one_batch_equal_plain_generate(model: Model, sites: str, drop_share: float) -> None:
    """Prompts of different lengths, left-padded together, each under every condition."""
    conditions = 4
    requests = [GenerationRequest(PROMPT, 10, seed=3, capture=False),
                GenerationRequest((0, 21, 22), 6, seed=4, capture=False),
                GenerationRequest((0, 31, 32, 33, 34), 12, seed=5, capture=False)]
    one = _edits(32, conditions, keep_first=sites == "all")[1]
    edits = {1: one.take([c for _ in requests for c in range(conditions)])}
    sampling = Sampling(temperature=0.8, top_p=0.9)
    fast = [g.reply_ids for g in model.generate_conditions(requests, edits, conditions, sampling, sites=sites,
                                                           drop_share=drop_share)]
    assert fast == _plain(model, edits, conditions, sites, sampling, requests)


STREAM = [GenerationRequest((0, 21, 22), 3, seed=4, capture=False),
          GenerationRequest(PROMPT, 10, seed=3, capture=False),
          GenerationRequest((0, 31, 32, 33, 34), 5, seed=5, capture=False),
          GenerationRequest((0, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51), 4, seed=6, capture=False),
          GenerationRequest((0, 61), 8, seed=7, capture=False),
          GenerationRequest((0, 62), 2, seed=8, capture=False),
          GenerationRequest(tuple(range(70, 90)), 4, seed=9, capture=False)]


@pytest.mark.parametrize("sites", ["reply", "all"])
@pytest.mark.parametrize("rows", [4, 9])
@pytest.mark.parametrize("drop_share", [0.0, 0.5])
def test_prompts_joining_a_running_batch_equal_plain_generate(model: Model, sites: str, rows: int,
                                                              drop_share: float) -> None:
    """Prompts that wait for room join the batch as rows finish (shorter and longer prompts than those
    decoding), and each reply is still plain generation's."""
    conditions = 4
    one = _edits(32, conditions, keep_first=sites == "all")[1]
    edits = {1: one.take([c for _ in STREAM for c in range(conditions)])}
    sampling = Sampling(temperature=0.8, top_p=0.9)
    fast = [g.reply_ids for g in model.generate_conditions(STREAM, edits, conditions, sampling, sites=sites,
                                                           drop_share=drop_share, rows=rows)]
    assert fast == _plain(model, edits, conditions, sites, sampling, STREAM)


def _progress(model: Model) -> list[int]:
    """What ``progress`` hears over a stream of prompts through a batch of one prompt's rows."""
    conditions = 4
    edits = {1: _edits(32, conditions, keep_first=False)[1].take([c for _ in STREAM for c in range(conditions)])}
    heard: list[int] = []
    model.generate_conditions(STREAM, edits, conditions, Sampling(temperature=0.0), rows=conditions,
                              progress=heard.append)
    return heard


def test_progress_counts_every_finished_row(model: Model) -> None:
    assert _progress(model)[-1] == len(STREAM) * 4


def test_progress_never_goes_back(model: Model) -> None:
    heard = _progress(model)
    assert heard == sorted(heard)


def test_the_unedited_row_is_the_unedited_reply(model: Model) -> None:
    edits = _edits(32, 5, keep_first=False)
    request = GenerationRequest(PROMPT, 12, seed=3, capture=False)
    fast = model.generate_conditions([request], edits, 5, Sampling(temperature=0.0), sites="reply")
    clean = model.generate([request], Sampling(temperature=0.0))
    assert fast[0].reply_ids == clean[0].reply_ids


def test_an_open_steer_block_applies_to_every_row(model: Model) -> None:
    """`Model.steer` applies to every forward pass: the unedited row equals plain generation under it."""
    request = GenerationRequest(PROMPT, 12, seed=3, capture=False)
    edits = _edits(32, 5, keep_first=False)
    direction = torch.zeros(32)
    direction[2] = 1.0
    with model.steer(direction, 6.0, layers=[0]):
        steered = model.generate_conditions([request], edits, 5, Sampling(temperature=0.0))
        plain = model.generate([request], Sampling(temperature=0.0))
    unsteered = model.generate_conditions([request], edits, 5, Sampling(temperature=0.0))
    assert steered[0].reply_ids == plain[0].reply_ids
    assert steered[0].reply_ids != unsteered[0].reply_ids


def test_edits_change_the_replies(model: Model) -> None:
    edits = _edits(32, 5, keep_first=False)
    fast = model.generate_conditions([GenerationRequest(PROMPT, 12, seed=3, capture=False)], edits, 5,
                                    Sampling(temperature=0.0))
    assert len({g.reply_ids for g in fast}) > 1


def test_rows_that_end_early_leave_the_batch_without_moving_the_others(model: Model) -> None:
    """A stop string (a piece of one row's free reply) ends some rows early; the rest decode as
    when each row runs alone."""
    edits = _edits(32, 5, keep_first=False)
    free = model.generate_conditions([GenerationRequest(PROMPT, 16, seed=3, capture=False)], edits, 5,
                                     Sampling(temperature=0.0))
    stop = next(text for token in free[1].reply_ids[3:] if (text := model.tokenizer.decode([token]).strip()))
    request = GenerationRequest(PROMPT, 16, seed=3, capture=False, stop=(stop,))
    together = model.generate_conditions([request], edits, 5, Sampling(temperature=0.0))
    assert len({len(g.reply_ids) for g in together}) > 1
    for row in range(5):
        alone = model.generate_conditions([request], {1: edits[1].take([row])}, 1, Sampling(temperature=0.0))
        assert together[row].reply_ids == alone[0].reply_ids


@pytest.mark.parametrize("arch", ARCHS)
def test_reply_site_scores_equal_a_plain_pass_edited_from_the_last_prompt_token(arch: str) -> None:
    hf = tiny_hf_model(arch, n_layers=3, d_model=32, seed=8)
    prompts = [[0, 5, 9, 11, 40, 41], [0, 7, 8], [0, 5, 9, 11, 40, 41], [0, 7, 8], [0, 5, 9, 11, 40, 41]]
    replies = [[50, 51, 52], [60, 61], [70], [80, 81, 82, 83], [90, 91]]
    edits = _edits(32, len(prompts), keep_first=False)
    fast = replies_from_last_prompt_token(hf, prompts, replies, edits, chunk=2)
    assert fast is not None
    plain = teacher_forced(hf, prompts, replies, {1: RowEdit(project=edits[1].project, add=edits[1].add,
                                                             start=tuple(len(p) - 1 for p in prompts))}, pad_id=1)
    for row in range(len(prompts)):
        torch.testing.assert_close(fast[row], plain.reply_logprobs[row], rtol=1e-4, atol=1e-5)


def test_reply_sites_leave_the_prompt_alone_and_all_sites_do_not() -> None:
    """An edit at the reply sites cannot move the prompt's states before its last token."""
    hf = tiny_hf_model("llama", n_layers=3, d_model=32, seed=9)
    prompt, reply = [0, 5, 9, 11, 40, 41], [50, 51]
    add = torch.full((1, 32), 4.0)
    clean = teacher_forced(hf, [prompt], [reply], record=[2]).hidden[2][0]
    at_reply = teacher_forced(hf, [prompt], [reply], {1: RowEdit(add=add, start=(len(prompt) - 1,))},
                              record=[2]).hidden[2][0]
    everywhere = teacher_forced(hf, [prompt], [reply], {1: RowEdit(add=add)}, record=[2]).hidden[2][0]
    torch.testing.assert_close(at_reply[: len(prompt) - 1], clean[: len(prompt) - 1])
    assert not torch.allclose(at_reply[len(prompt) - 1], clean[len(prompt) - 1])
    assert not torch.allclose(everywhere[1], clean[1])


def test_reply_logprobs_fall_back_to_a_plain_pass_with_the_same_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a cache cannot stand in (a sliding window shorter than a row), the plain pass gives the same scores."""
    import deception_causal.measures as measures

    hf = tiny_hf_model("gemma3", n_layers=3, d_model=32, seed=10)
    prompts = [[0, 5, 9, 11, 40, 41], [0, 7, 8]]
    replies = [[50, 51, 52], [60, 61]]
    rows = {1: (None, torch.randn(2, 32, generator=torch.Generator().manual_seed(1)).numpy() * 3)}
    fast = reply_logprobs(hf, prompts, replies, rows, sites="reply")
    monkeypatch.setattr(measures, "replies_from_last_prompt_token", lambda *args, **kwargs: None)
    plain = reply_logprobs(hf, prompts, replies, rows, sites="reply")
    assert fast == pytest.approx(plain, rel=1e-4, abs=1e-5)


def test_take_keeps_the_rows_in_the_order_asked() -> None:
    edit = RowEdit(add=torch.arange(12, dtype=torch.float32).reshape(4, 3), first=(0, 1, 2, 3), start=(4, 5, 6, 7))
    taken = edit.take([3, 1])
    assert taken.add is not None
    assert taken.add.tolist() == [[9.0, 10.0, 11.0], [3.0, 4.0, 5.0]]
    assert taken.first == (3, 1)
    assert taken.start == (7, 5)


def test_an_unknown_edit_site_is_refused() -> None:
    with pytest.raises(ValueError, match="edit_sites must be 'reply'"):
        CausalSettings(edit_sites="prompt")


def test_steering_reuses_the_unedited_replies_ablation_generated(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Both tests generate the same unedited replies (same prompts, seeds and limits): the second reuses them."""
    from causal_planted import build_planted
    from test_causal_planted_pipeline import make_context

    from deception_causal.ablation import DirectionalAblation
    from deception_causal.common import CausalRun
    from deception_causal.steering import Steering

    planted = build_planted(seed=0)
    context = make_context(planted, planted.causal, tmp_path)
    sizes: list[int] = []
    original = CausalRun.generate

    def counting(self: CausalRun, conditions):  # type: ignore[no-untyped-def]
        sizes.append(len(conditions))
        return original(self, conditions)

    monkeypatch.setattr(CausalRun, "generate", counting)
    settings = CausalSettings(alphas=(-4.0, 0.0, 4.0), n_random=10, n_random_forward=10, samples=4,
                              ablate_all_layers=False)
    ablation = DirectionalAblation(settings).run(context)
    steering = Steering(settings).run(context)
    # ablation: baseline, probe, 10 random; steering: 2 alphas and 10 random at each sign, no baseline
    assert sizes == [12, 22]
    baseline = {r["test"]: next(c for c in r["conditions"] if c["name"] == "baseline")
                for r in (ablation, steering)}
    assert baseline["ablation"]["labels"] == baseline["steering"]["labels"]
