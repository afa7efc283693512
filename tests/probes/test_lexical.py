"""The lexical baseline: known answers with the label planted in the words, or in the activations only."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from deception_probes.engine import run_probe_analysis
from deception_probes.lexical import MARGIN, margin_warning
from deception_probes.settings import ProbeSettings

SETTINGS = ProbeSettings(n_permutations=0, n_random_directions=0, plots=False, token_scores=False, jobs=1,
                         c_grid=(0.01, 0.1))
VOCABULARY = ("the", "meeting", "ran", "late", "because", "traffic", "was", "heavy", "on", "bridge", "and", "my",
              "phone", "battery", "died", "so", "could", "not", "call", "office", "before", "noon", "yesterday")


def _with_texts(dataset, texts):
    samples = [attrs.evolve(s, reply_text=t) for s, t in zip(dataset.samples, texts, strict=True)]
    return attrs.evolve(dataset, samples=samples)


def _random_texts(n, seed):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(VOCABULARY, 10)) for _ in range(n)]


def _labels(n_trials):
    return [["honest", "deceptive"]] * n_trials  # paired, like completion pairs


def test_labels_decided_by_a_planted_word_give_a_lexical_auroc_near_1(make_dataset, tmp_path):
    dataset, _ = make_dataset(_labels(60), width=12, signal={1: 0.0}, seed=1)
    texts = _random_texts(len(dataset.samples), seed=2)
    texts = [t + " grandmother" if s.label == "deceptive" else t for s, t in zip(dataset.samples, texts, strict=True)]
    results = run_probe_analysis(_with_texts(dataset, texts), tmp_path, SETTINGS).results
    lexical = results["lexical_baseline"]
    assert lexical["status"] == "ok"
    assert lexical["auroc"]["value"] > 0.97
    assert "grandmother" in lexical["top_words"]["deceptive"]
    assert lexical["warning"] is not None  # the probe has nothing in the activations: it cannot lead the words


def test_labels_in_the_activations_only_give_a_lexical_auroc_near_half(make_dataset, tmp_path):
    dataset, _ = make_dataset(_labels(100), width=12, signal={1: 4.0}, seed=3)
    texts = _random_texts(len(dataset.samples), seed=4)
    texts = [t + " grandmother" if s.label == "deceptive" else t for s, t in zip(dataset.samples, texts, strict=True)]
    texts = list(np.random.default_rng(5).permutation(texts))  # the same words, shuffled away from the labels
    results = run_probe_analysis(_with_texts(dataset, texts), tmp_path, SETTINGS).results
    lexical = results["lexical_baseline"]
    assert abs(lexical["auroc"]["value"] - 0.5) < 0.1
    assert lexical["auroc"]["ci_low"] < 0.5 < lexical["auroc"]["ci_high"]
    assert lexical["difference"]["value"] > 0.3  # probe minus words, on the same held-out samples
    assert lexical["warning"] is None


def test_the_lexical_baseline_uses_the_probes_folds(make_dataset, tmp_path):
    dataset, _ = make_dataset(_labels(30), width=12, signal={1: 4.0}, seed=5)
    results = run_probe_analysis(_with_texts(dataset, _random_texts(60, seed=6)), tmp_path, SETTINGS).results
    lexical = results["lexical_baseline"]
    assert len(lexical["fold_aurocs"]) == results["splits"]["n_folds"]
    assert lexical["n_scored"] == 60


def test_samples_without_text_make_the_baseline_not_computable(make_dataset, tmp_path):
    dataset, _ = make_dataset(_labels(20), width=12, signal={1: 4.0}, seed=7)
    lexical = run_probe_analysis(dataset, tmp_path, SETTINGS).results["lexical_baseline"]
    assert lexical["status"] == "not computable"
    assert "no text" in lexical["reason"]


def test_the_bare_statement_falls_back_to_the_prompt(make_dataset, tmp_path):
    dataset, _ = make_dataset(_labels(40), width=12, seed=8)
    samples = [attrs.evolve(s, prompt_text=("grandmother " if s.label == "deceptive" else "office ") + "said")
               for s in dataset.samples]
    lexical = run_probe_analysis(attrs.evolve(dataset, samples=samples), tmp_path, SETTINGS).results["lexical_baseline"]
    assert lexical["text_sources"] == {"reply": 0, "prompt": 80, "none": 0}
    assert lexical["auroc"]["value"] == pytest.approx(1.0)


@pytest.mark.parametrize(("value", "low", "warned"), [(0.20, 0.10, False), (MARGIN - 0.01, 0.01, True),
                                                      (0.20, -0.01, True)])
def test_the_margin_needs_both_the_lead_and_an_interval_above_zero(value, low, warned):
    warning = margin_warning({"value": value, "ci_low": low, "ci_high": value + 0.1}, 0.7)
    assert (warning is not None) == warned
