"""The steering and ablation tests, whole (generation, labelling, random nulls), on the planted model.

The game's rule calls a reply deceptive when it contains the planted token, so the planted
direction causally controls the label; the decoy direction is readable but unused.
"""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch
from causal_planted import LAYER, TARGET, TRIGGER

from deception_causal.ablation import DirectionalAblation
from deception_causal.common import CausalSettings
from deception_causal.steering import Steering
from deception_core.base.records import ProbeDirection, Sample, Trial
from deception_core.base.types import Label, RuleVerdict
from deception_core.contracts.analysis import CausalContext
from deception_core.contracts.capture import CaptureSpec, Sampling
from deception_core.store.dataset import Dataset
from deception_core.testing.fakes import EchoScenario

PROMPTS = [[10, 20, 30, 40], [11, 21, 31, 41, 51], [12, 22, 32, TRIGGER], [13, 23, 33, 43, TRIGGER]]


class TokenScenario(EchoScenario):
    """Deceptive when the reply contains the planted token's text, honest otherwise."""

    name = "token"

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def rule_verdict(self, facts, condition, text, context=None) -> RuleVerdict:
        if self.marker in text:
            return RuleVerdict(Label.DECEPTIVE, "planted token")
        return RuleVerdict(Label.HONEST if text.strip() else Label.AMBIGUOUS, "no planted token")


class _Config:
    seed, max_tokens = 0, 2


def make_context(planted, direction: np.ndarray, out_dir, layers: tuple[int, ...] = (LAYER,),
                 prompts: list[list[int]] = PROMPTS) -> CausalContext:
    """A causal context over ``prompts`` (labelled deceptive when they end in the trigger, honest otherwise)."""
    from deception_causal.measures import prompt_states
    from deception_core.capture.hf import HFCaptureBackend
    from deception_core.model.surface import from_hf
    model = from_hf(planted.model, planted.tokenizer, model_id="planted", source="test")
    marker = planted.tokenizer.decode([TARGET])
    states = {layer: np.stack([prompt_states(planted.model, p, layer)[-1].numpy() for p in prompts]) for layer in layers}
    labels = ["deceptive" if p[-1] == TRIGGER else "honest" for p in prompts]
    samples = [Sample(sample_id=f"token/{i}", trial_key=f"token/emergent/high_incentive/{i:05d}", scenario="token",
                mode="emergent", condition="high_incentive", trial_index=i, round=1, label=labels[i],
                reply_text="3" if labels[i] == "honest" else marker, row=i) for i in range(len(prompts))]
    arrays = {**{f"layer{layer}/last_prompt": states[layer].astype(np.float32) for layer in layers},
              "prompt_ids/values": np.concatenate([np.asarray(p, np.int32) for p in prompts]),
              "prompt_ids/offsets": np.concatenate([[0], np.cumsum([len(p) for p in prompts])]).astype(np.int64)}
    trials = [Trial(trial_key=s.trial_key, facts={"secret": 3}, transcript=[]) for s in samples]
    dataset = Dataset({"layers": list(layers), "positions": ["last_prompt"]}, samples, trials, arrays)
    chosen = ProbeDirection(LAYER, "last_prompt", direction, 0.0, "probe", {"method": "mass_mean"})
    backend = HFCaptureBackend(model, CaptureSpec(layers=tuple(layers)))
    return CausalContext(model, backend, dataset, chosen, _Config(), {"token": TokenScenario(marker)}, None,
                         out_dir, Sampling(temperature=0.0))


# ablation about zero: the dataset is half trigger prompts, so its mean carries half the planted direction and
# mean ablation would move every prompt to the middle (test_causal_units covers mean ablation)
SETTINGS = CausalSettings(alphas=(-2.0, 0.0, 2.0), n_random=10, n_random_forward=10, batch_size=32,
                          ablate_all_layers=False, ablation="zero", samples=4)


@pytest.fixture(scope="module")
def contexts(planted, tmp_path_factory):
    return {name: make_context(planted, vector, tmp_path_factory.mktemp(name))
            for name, vector in (("planted", planted.causal), ("decoy", planted.decoy))}


def test_steering_finds_the_planted_direction_and_not_the_decoy(contexts) -> None:
    torch.manual_seed(0)
    found = Steering(SETTINGS).run(contexts["planted"])
    assert found["status"] == "ok"
    assert found["direction"]["source"] == "probe"
    effect = found["effects"]["deception_rate_difference"]
    assert effect["value"] == pytest.approx(1.0)  # every prompt: deceptive at +2, honest at -2
    assert effect["p_value_rank"] == pytest.approx(1 / 11)
    assert effect["null"]["abs_max"] == 0.0
    rates = [d["deceptive_rate"] for d in found["dose_response"]]
    assert rates[0] == 0.0
    assert rates[-1] == 1.0
    assert rates == sorted(rates)
    assert found["per_sample_steerability"]["behaviour"]["expected"] == 1.0
    assert found["per_sample_steerability"]["logprob"]["expected"] == 1.0
    assert (contexts["planted"].out_dir / "causal_dose_response.png").is_file()

    decoy = Steering(SETTINGS).run(contexts["decoy"])
    assert decoy["effects"]["deception_rate_difference"]["value"] == 0.0
    assert decoy["effects"]["deception_rate_difference"]["p_value_rank"] == 1.0
    assert decoy["per_sample_steerability"]["behaviour"]["expected"] == 0.0


def test_ablation_removes_planted_deception_and_the_decoy_does_not(contexts) -> None:
    found = DirectionalAblation(SETTINGS).run(contexts["planted"])
    base = next(c for c in found["conditions"] if c["name"] == "baseline")
    assert base["labels"] == ["honest", "honest", "deceptive", "deceptive"]
    effect = found["effects"]["deception_rate_change_layer"]
    assert effect["value"] == pytest.approx(-0.5)  # the two trigger prompts stop saying the token
    assert effect["per_prompt"] == [0.0, 0.0, -1.0, -1.0]
    assert effect["p_value_rank"] == pytest.approx(1 / 11)
    decoy = DirectionalAblation(SETTINGS).run(contexts["decoy"])
    assert decoy["effects"]["deception_rate_change_layer"]["value"] == 0.0


def _with_replies(context: CausalContext, text: str, ids: tuple[int, ...] | None) -> CausalContext:
    """The context with every deceptive sample's reply replaced by ``text`` / stored ``ids``."""
    samples = [attrs.evolve(s, reply_text=text, reply_ids=ids) if s.label == "deceptive" else s
               for s in context.dataset.samples]
    return attrs.evolve(context, dataset=attrs.evolve(context.dataset, samples=samples))


def test_causal_tests_score_the_stored_reply_ids_not_the_re_tokenised_text(contexts, planted) -> None:
    """A reply whose text does not round-trip through the tokenizer (the game collapses whitespace):
    the teacher-forced effects follow the generated ids, not the text."""
    marker = planted.tokenizer.decode([TARGET])
    mangled = "  " + marker.lower() + "  "
    assert planted.tokenizer.encode(mangled, add_special_tokens=False) != [TARGET]
    settings = attrs.evolve(SETTINGS, n_random_forward=10)

    def per_prompt(text: str, ids: tuple[int, ...] | None) -> list[float]:
        found = DirectionalAblation(settings).run(_with_replies(contexts["planted"], text, ids))
        return found["effects"]["reply_logprob_change_layer"]["per_prompt"]

    stored = per_prompt(mangled, (TARGET,))
    assert stored == per_prompt(marker, None)  # the stored ids score like the exact text would
    assert stored != per_prompt(mangled, None)  # re-tokenising the text scores other tokens
    assert stored[-1] < -1.0  # ablating the planted direction makes the generated token much less likely
