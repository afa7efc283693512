"""Unit tests of the causal package's pieces: statistics, prompt selection, pairs, directions,
and honest reporting when the data cannot support a test."""

from __future__ import annotations

import json

import attrs
import numpy as np
import pytest

from deception_causal.direction import NotComputable, resolve_direction
from deception_causal.selection import choose_prompts, matched_pairs
from deception_causal.stats import bootstrap_ci, compare_with_null, correlation, random_unit_directions
from deception_core.base.records import ProbeDirection, Sample, Trial
from deception_core.contracts.analysis import CausalContext
from deception_core.store.dataset import Dataset


def make_dataset(labels, conditions=None, prompts=None, d=6, seed=0) -> Dataset:
    """A small in-memory dataset: one sample per label, activations with a planted mean shift."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    conditions = conditions or ["high_incentive" if i % 2 == 0 else "low_incentive" for i in range(n)]
    prompts = prompts or [[5, 6, i + 10] for i in range(n)]
    shift = np.zeros(d)
    shift[0] = 3.0
    X = rng.standard_normal((n, d)) + np.array([shift if v == "deceptive" else np.zeros(d) for v in labels])
    samples = [Sample(sample_id=f"s{i}", trial_key=f"echo/emergent/{conditions[i]}/{i // 2:05d}", scenario="echo",
                mode="emergent", condition=conditions[i], trial_index=i // 2, round=1, label=labels[i],
                reply_text="3", row=i) for i in range(n)]
    arrays = {"layer1/last_prompt": X.astype(np.float32),
              "prompt_ids/values": np.concatenate([np.asarray(p, np.int32) for p in prompts]),
              "prompt_ids/offsets": np.concatenate([[0], np.cumsum([len(p) for p in prompts])]).astype(np.int64)}
    trials = [Trial(trial_key=s.trial_key, facts={"secret": 3}) for s in samples]
    meta = {"layers": [1], "positions": ["last_prompt"]}
    return Dataset(meta, samples, trials, arrays)


def test_random_directions_are_unit_seeded_and_orthogonal_to_the_probe() -> None:
    avoid = np.arange(8, dtype=np.float64)
    first = random_unit_directions(8, 12, seed=1, avoid=avoid)
    assert first.shape == (12, 8)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0)
    np.testing.assert_allclose(first @ avoid, 0.0, atol=1e-10)
    np.testing.assert_array_equal(first, random_unit_directions(8, 12, seed=1, avoid=avoid))


def test_compare_with_null_numbers() -> None:
    effect = np.array([1.0, 2.0, 3.0])
    null = np.array([[0.1, -0.1, 0.0]] * 5 + [[2.0, 2.0, 2.0]] + [[-0.3, 0.0, 0.0]] * 4)  # 10 directions
    result = compare_with_null(effect, null, name="x", unit="u", expected_sign=1)
    assert result["value"] == pytest.approx(2.0)
    assert result["null"]["n_directions"] == 10
    # one random direction (mean 2.0) reaches |2.0|: p = (1 + 1) / 11
    assert result["p_value_rank"] == pytest.approx(2 / 11)
    null_means = np.array([0.0] * 5 + [2.0] + [-0.1] * 4)
    assert result["z"] == pytest.approx((2.0 - null_means.mean()) / null_means.std(ddof=1))
    assert result["ci_low"] <= 2.0 <= result["ci_high"]
    empty = compare_with_null(np.zeros(0), np.zeros((10, 0)), name="x", unit="u")
    assert empty["value"] is None
    assert empty["p_value_rank"] is None


def test_bootstrap_interval_and_correlation() -> None:
    values = np.random.default_rng(0).normal(5.0, 1.0, 400)
    low, high = bootstrap_ci(values)
    assert low < 5.0 < high
    assert high - low < 0.3
    assert bootstrap_ci(np.array([1.0])) == (None, None)
    assert correlation([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert correlation([1, 1, 1], [1, 2, 3]) is None


def test_choose_prompts_takes_distinct_prompts_and_alternates_classes() -> None:
    labels = ["deceptive"] * 4 + ["honest"] * 2 + ["ambiguous"] * 2
    prompts = [[1, 2], [1, 2], [3], [4], [5], [6], [7], [8]]  # rows 0 and 1 share a prompt
    dataset = make_dataset(labels, prompts=prompts)
    rows = choose_prompts(dataset, 5, seed=0)
    assert len(rows) == 5
    assert len({tuple(dataset.prompt_ids(r)) for r in rows}) == 5
    chosen = [labels[r] for r in rows]
    assert chosen.count("honest") == 2
    assert chosen.count("deceptive") == 3
    assert len(choose_prompts(dataset, 50, seed=0)) == 7  # only 7 distinct prompts exist


def test_matched_pairs_prefer_label_pairs_and_orient_source_to_deceptive() -> None:
    labels = ["honest", "deceptive", "ambiguous", "ambiguous", "deceptive", "deceptive"]
    dataset = make_dataset(labels)
    pairs = matched_pairs(dataset, 10, seed=0)
    assert [p.kind for p in pairs] == ["label", "condition", "condition"]
    assert (pairs[0].source, pairs[0].target) == (1, 0)  # deceptive LOW row patched into the honest HIGH row
    for pair in pairs[1:]:
        assert dataset.samples[pair.source].condition == "high_incentive"
    assert matched_pairs(make_dataset(labels, conditions=["high_incentive"] * 6), 10, seed=0) == []


def test_difference_of_means_fallback_recovers_the_shift_and_excludes_prompt_trials() -> None:
    labels = ["deceptive", "honest"] * 20
    dataset = make_dataset(labels)
    held = ["echo/emergent/high_incentive/00000"]
    direction = resolve_direction(dataset, None, held)
    assert direction.source == "difference_of_means"
    assert direction.layer == 1
    assert direction.provenance["fit_excludes_causal_prompt_trials"] is True
    assert direction.provenance["n_fit_rows"] == 39
    assert abs(direction.unit[0]) > 0.9
    assert direction.unit[0] > 0
    scores = direction.score(dataset.matrix(1, "last_prompt"))
    y = np.array([v == "deceptive" for v in labels])
    assert scores[y].mean() > 0 > scores[~y].mean()
    # no labelled class contrast: the HIGH-minus-LOW incentive contrast, recorded as such
    by_condition = resolve_direction(make_dataset(["ambiguous", "ambiguous", "deceptive", "ambiguous"]), None)
    assert by_condition.source == "condition_difference_of_means"
    assert "condition" in by_condition.provenance["contrast"]
    with pytest.raises(NotComputable, match="no paired conditions"):
        resolve_direction(make_dataset(["deceptive"] * 4, conditions=["high_incentive"] * 4), None)


def test_the_direction_an_analysis_chose_is_used_when_the_dataset_holds_its_layer() -> None:
    dataset = make_dataset(["deceptive", "honest"])
    chosen = ProbeDirection(1, "last_prompt", [0.0, 2.0, 0.0, 0.0, 0.0, 0.0], -0.5, "probe", {"method": "mass_mean"})
    assert resolve_direction(dataset, chosen) is chosen
    elsewhere = ProbeDirection(7, "last_prompt", [0.0, 2.0, 0.0, 0.0, 0.0, 0.0], -0.5, "probe")
    fallback = resolve_direction(dataset, elsewhere)
    assert fallback.source == "difference_of_means"
    assert fallback.layer == 1
    assert "layer 7" in fallback.provenance["why"]


class _Config:
    seed, max_tokens = 0, 4


def test_tests_report_not_computable_instead_of_crashing(tmp_path) -> None:
    import jsonschema

    from deception_causal import load_schema
    from deception_causal.ablation import DirectionalAblation
    from deception_causal.faithfulness import Faithfulness
    from deception_causal.patching import ActivationPatching
    from deception_causal.steering import Steering

    dataset = make_dataset(["deceptive"] * 4, conditions=["high_incentive"] * 4)
    context = CausalContext(model=None, backend=None, dataset=dataset, direction=None, config=_Config(),
                            scenarios={}, evaluator=None, out_dir=tmp_path, sampling=None)
    for cls in (ActivationPatching, DirectionalAblation, Steering, Faithfulness):
        result = cls().run(context)
        assert result["status"] == "not_computable"
        assert result["reason"]
        assert "not computable" in result["summary"]
        jsonschema.validate(json.loads(json.dumps(result)), load_schema())
    assert "no matched pairs" in ActivationPatching().run(context)["reason"]
    assert "0 honest / 4 deceptive" in Steering().run(context)["reason"]


def test_the_plugin_registers_four_causal_tests_lazily() -> None:
    import sys

    from deception_core.base.registry import Kind
    from deception_core.plugins import build_plugin_set

    entries = {e.name: e for e in build_plugin_set().registry.entries(Kind.CAUSAL_TEST)}
    assert {"patching", "ablation", "steering", "faithfulness"} <= set(entries)
    assert all(entries[n].provider.distribution == "deception-causal" for n in ("patching", "steering"))
    from deception_core.contracts.analysis import CausalTest

    assert issubclass(entries["steering"].load(), CausalTest)
    assert "deception_causal._plugin" in sys.modules


def test_the_plugin_module_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = ("import sys, deception_causal._plugin, deception_causal; "
            "heavy = [m for m in ('torch', 'transformers', 'sklearn', 'matplotlib') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_sae_splice_reads_the_runs_sae_settings(tmp_path) -> None:
    """The SAE reconstruction test finds the run's SAE in its resolved components (``--sae --sae-layer 2``)."""
    from deception_causal.sae_splice import run_sae_settings
    from deception_core.config.resolved import ResolvedRun
    from deception_core.config.run import RunConfig
    from deception_core.config.sae import SaeSettings

    dataset = make_dataset(["deceptive"] * 4, conditions=["high_incentive"] * 4)
    config = RunConfig(components={"sae": {"sae-lens": {"layer": 2, "path": "/data/sae"}}})
    run = ResolvedRun(config=config, layers=(1, 2), capture_backend="hf")
    context = CausalContext(model=None, backend=None, dataset=dataset, direction=None, config=config,
                            scenarios={}, evaluator=None, out_dir=tmp_path, sampling=None, run=run)
    assert run_sae_settings(context) == SaeSettings(layer=2, path="/data/sae")
    assert run_sae_settings(attrs.evolve(context, run=None, config=RunConfig())) is None


def test_the_wide_ablation_scope_starts_at_the_direction_layer_by_default() -> None:
    from deception_causal.ablation import ablation_scopes
    from deception_causal.common import CausalSettings

    assert ablation_scopes(4, 8, CausalSettings()) == {"layer": [4], "later_layers": [4, 5, 6, 7]}


def test_the_all_layers_scope_stays_available_for_comparison_with_the_literature() -> None:
    from deception_causal.ablation import ablation_scopes
    from deception_causal.common import CausalSettings

    assert ablation_scopes(4, 6, CausalSettings(wide_scope="all_layers")) == {"layer": [4], "all_layers": list(range(6))}


def test_an_unknown_wide_scope_is_refused() -> None:
    from deception_causal.common import CausalSettings

    with pytest.raises(ValueError, match="wide_scope must be"):
        CausalSettings(wide_scope="early_layers")
