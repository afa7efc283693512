"""Truth tables of the decisions users rely on, each written out by hand.

- the final label from the rule's and the judge's verdicts, under every policy and every pair;
- the best probe (validation folds, then held-out folds, then the first cell);
- the decision threshold (score strictly above it is "deceptive") and the thresholds that let 1 % of
  the honest (or control) samples through;
- the guards that answer "not testable" / "not computable" instead of a number, on both sides of
  their boundary.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from deception_core.base.types import JudgeVerdict, Label, RuleVerdict, combine_labels
from deception_core.config.run import LABEL_POLICIES

H, D, A = Label.HONEST, Label.DECEPTIVE, Label.AMBIGUOUS

# (policy, rule label, judge label or None for "no judge verdict") -> final label
LABEL_TABLE: dict[tuple[str, Label, Label | None], Label] = {
    # agree: the rule's label only where the judge says the same; every disagreement is ambiguous
    ("agree", H, H): H, ("agree", H, D): A, ("agree", H, A): A, ("agree", H, None): H,
    ("agree", D, H): A, ("agree", D, D): D, ("agree", D, A): A, ("agree", D, None): D,
    ("agree", A, H): A, ("agree", A, D): A, ("agree", A, A): A, ("agree", A, None): A,
    # rule: the rule decides; the judge is recorded for audit only
    ("rule", H, H): H, ("rule", H, D): H, ("rule", H, A): H, ("rule", H, None): H,
    ("rule", D, H): D, ("rule", D, D): D, ("rule", D, A): D, ("rule", D, None): D,
    ("rule", A, H): A, ("rule", A, D): A, ("rule", A, A): A, ("rule", A, None): A,
}


def test_the_label_table_covers_every_policy_and_every_pair() -> None:
    pairs = {(p, r, j) for p in LABEL_POLICIES for r in Label for j in (*Label, None)}
    assert set(LABEL_TABLE) == pairs


@pytest.mark.parametrize(("policy", "rule", "judge"), sorted(LABEL_TABLE, key=str))
def test_final_label(policy: str, rule: Label, judge: Label | None) -> None:
    verdict = None if judge is None else JudgeVerdict(judge, f"judge says {judge.value}")
    final = combine_labels(RuleVerdict(rule, "trace"), verdict, policy)
    assert final is LABEL_TABLE[policy, rule, judge]


def test_agree_is_the_default_policy() -> None:
    assert combine_labels(RuleVerdict(H, ""), JudgeVerdict(D, "")) is A
    assert combine_labels(RuleVerdict(D, ""), JudgeVerdict(D, "")) is D


@pytest.mark.parametrize("judge", [JudgeVerdict(D, ""), None])
@pytest.mark.parametrize("policy", ["AGREE", "judge", ""])
def test_an_unknown_policy_is_refused_not_read_as_agree(policy, judge) -> None:
    with pytest.raises(ValueError, match=f"label policy must be one of agree, rule; got {policy!r}"):
        combine_labels(RuleVerdict(D, ""), judge, policy)


def test_a_failed_judge_call_counts_as_its_verdict() -> None:
    """A judge answer with an error carries its label (ambiguous when the call failed): agree keeps it out."""
    failed = JudgeVerdict(A, "", error="timeout")
    assert combine_labels(RuleVerdict(D, ""), failed, "agree") is A
    assert combine_labels(RuleVerdict(D, ""), failed, "rule") is D


# ------------------------------------------------------------------------------------------ best probe

def _cv(validation: list[float | None]) -> Any:
    return SimpleNamespace(validation_auroc=validation)


def _cell(key: tuple[int, str, str], auroc: float | None) -> dict[str, Any]:
    return {"layer": key[0], "position": key[1], "method": key[2], "auroc": None if auroc is None else {"value": auroc}}


K1, K2, K3 = (1, "reply_mean", "logistic"), (2, "reply_mean", "logistic"), (3, "last_prompt", "lat")


def test_best_probe_is_the_highest_mean_validation_auroc() -> None:
    from deception_probes.engine import _select_best

    # means: K1 0.7, K2 0.8 (0.6 and 1.0), K3 0.75; held-out figures would pick K1 but are not used
    cvs = {K1: _cv([0.7, 0.7]), K2: _cv([0.6, 1.0]), K3: _cv([0.75, None])}
    cells = [_cell(K1, 0.99), _cell(K2, 0.5), _cell(K3, 0.6)]
    assert _select_best(cvs, cells) == (K2, "validation folds (mean validation AUROC)")


def test_best_probe_ignores_missing_validation_folds_in_the_mean() -> None:
    from deception_probes.engine import _select_best

    # K1: mean of 0.9 alone (the None is a fold without both classes), K2: 0.85
    cvs = {K1: _cv([0.9, None]), K2: _cv([0.85, 0.85])}
    assert _select_best(cvs, [])[0] == K1


def test_best_probe_ties_go_to_the_first_cell() -> None:
    from deception_probes.engine import _select_best

    cvs = {K3: _cv([0.8]), K1: _cv([0.8]), K2: _cv([0.7])}
    assert _select_best(cvs, [])[0] == K3


def test_best_probe_falls_back_to_held_out_folds_and_says_so() -> None:
    from deception_probes.engine import _select_best

    cvs = {K1: _cv([None]), K2: _cv([]), K3: _cv([None, None])}
    cells = [_cell(K1, 0.65), _cell(K2, None), _cell(K3, 0.6)]
    key, how = _select_best(cvs, cells)
    assert key == K1
    assert how == "held-out folds (too few trials for validation folds): optimistic"


def test_best_probe_without_any_figure_is_the_first_cell_and_says_so() -> None:
    from deception_probes.engine import _select_best

    cvs = {K2: _cv([None]), K1: _cv([])}
    key, how = _select_best(cvs, [_cell(K2, None), _cell(K1, None)])
    assert key == K2
    assert how.startswith("none (no figure could be computed)")


# ------------------------------------------------------------------------------------------ thresholds

def test_balanced_accuracy_calls_only_scores_above_the_threshold_deceptive() -> None:
    from deception_probes.metrics import balanced_accuracy

    y = np.array([1, 1, 0, 0])
    # at threshold 0: deceptive 0.5 (called), 0.0 (not: equal is not above); honest -0.5, -0.2 not called
    assert balanced_accuracy(np.array([0.5, 0.0, -0.5, -0.2]), y) == pytest.approx((0.5 + 1.0) / 2)
    # at threshold -1 every score is called deceptive: recall 1, honest recall 0
    assert balanced_accuracy(np.array([0.5, 0.0, -0.5, 0.0]), y, threshold=-1.0) == pytest.approx(0.5)
    assert balanced_accuracy(np.array([2.0, 3.0, 1.0, 1.5]), y, threshold=1.75) == pytest.approx(1.0)


def test_recall_at_one_percent_fpr_on_two_hundred_honest_samples() -> None:
    from deception_probes.metrics import recall_at_fpr

    honest = np.arange(1, 201, dtype=float)  # 1..200
    deceptive = np.array([198.5, 199.0, 199.5, 200.0, 201.0, 250.0])
    scores = np.r_[honest, deceptive]
    y = np.r_[np.zeros(200), np.ones(6)]
    got = recall_at_fpr(scores, y, 0.01)
    assert got is not None
    # the 0.99 quantile of 1..200 ("higher"): position 0.99 * 199 = 197.01 -> index 198 -> 199
    assert got["threshold"] == 199.0
    assert got["achieved_fpr"] == pytest.approx(1 / 200)  # only 200 is above 199
    assert got["value"] == pytest.approx(4 / 6)  # 199.5, 200, 201, 250 (199.0 is not above)
    assert got == {"value": got["value"], "target_fpr": 0.01, "threshold": 199.0, "achieved_fpr": 0.005,
                   "n_honest": 200, "threshold_from": "held-out honest samples", "resolution_limited": False}


@pytest.mark.parametrize(("n_honest", "limited"), [(99, True), (100, False), (150, False)])
def test_recall_at_fpr_is_resolution_limited_below_one_over_fpr_honest_samples(n_honest, limited) -> None:
    from deception_probes.metrics import recall_at_fpr

    scores = np.r_[np.arange(n_honest, dtype=float), [1e6]]
    got = recall_at_fpr(scores, np.r_[np.zeros(n_honest), [1]], 0.01)
    assert got is not None
    assert got["resolution_limited"] is limited


def test_recall_at_fpr_with_few_honest_samples_uses_the_highest_and_says_so() -> None:
    from deception_probes.metrics import recall_at_fpr

    scores = np.array([0.1, 0.4, 0.3, 0.35, 0.5])
    y = np.array([0, 0, 0, 1, 1])
    got = recall_at_fpr(scores, y, 0.01)
    assert got is not None
    assert got["threshold"] == 0.4
    assert got["achieved_fpr"] == 0.0
    assert got["value"] == 0.5
    assert got["resolution_limited"] is True


def test_control_threshold_flags_one_percent_of_the_control_set() -> None:
    from deception_probes.transfer import control_threshold

    got = control_threshold(np.arange(1, 401, dtype=float), 0.01)  # 0.99 * 399 = 395.01 -> index 396 -> 397
    assert got == {"threshold": 397.0, "target_fpr": 0.01, "n_control": 400, "achieved_control_fpr": 3 / 400,
                   "resolution_limited": False}
    assert control_threshold(np.array([1.0, 2.0, 3.0]), 0.01)["resolution_limited"] is True
    assert control_threshold(np.arange(99, dtype=float), 0.01)["resolution_limited"] is True
    assert control_threshold(np.arange(100, dtype=float), 0.01)["resolution_limited"] is False
    assert control_threshold(np.arange(150, dtype=float), 0.01)["resolution_limited"] is False


STATED = "the threshold stated in the analysis results"
BOUNDARY = "the probes' decision boundary (a decision value above 0 is called deceptive)"


@pytest.mark.parametrize(("scores", "results", "expected", "note"), [
    ({}, {"best": {"threshold": 0.3}}, None, "no scores"),
    ({1: "s"}, {"best": {"threshold": 0.3}}, 0.3, STATED),
    ({1: "s"}, {"best": {"threshold": -2}}, -2.0, STATED),
    ({1: "s"}, {"best": {"threshold": "0.3"}}, 0.0, BOUNDARY),
    ({1: "s"}, {"best": {}}, 0.0, BOUNDARY),
    ({1: "s"}, None, 0.0, BOUNDARY),
])
def test_report_decision_threshold(scores, results, expected, note) -> None:
    from deception_core.report.inputs import decision_threshold

    assert decision_threshold(None, scores, results) == (expected, note)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- not testable / computable

def _one_fold(n: int) -> list[Any]:
    from deception_probes.crossval import FoldPlan

    return [FoldPlan(np.arange(0), np.arange(n), [], True)]


def test_permutation_scheme_is_testable_from_twenty_distinct_labellings() -> None:
    from deception_probes.nulls import MIN_DISTINCT_LABELLINGS, permutation_scheme

    assert MIN_DISTINCT_LABELLINGS == 20
    # six one-utterance trials in one fold, three deceptive: C(6, 3) = 20 labellings
    y = np.array([1, 1, 1, 0, 0, 0])
    scheme = permutation_scheme(y, np.arange(6).astype(str), _one_fold(6), 5, 0)
    assert scheme.testable
    assert scheme.level == "trials"
    assert scheme.log10_distinct == pytest.approx(math.log10(20))
    assert scheme.labellings.shape == (6, 5)
    assert (scheme.labellings.sum(axis=0) == 3).all()


def test_permutation_scheme_below_twenty_labellings_is_not_testable_with_the_count() -> None:
    from deception_probes.nulls import permutation_scheme

    # two deceptive of six: C(6, 2) = 15 < 20, and one-utterance trials have nothing to shuffle inside
    y = np.array([1, 1, 0, 0, 0, 0])
    scheme = permutation_scheme(y, np.arange(6).astype(str), _one_fold(6), 5, 0)
    assert not scheme.testable
    assert scheme.labellings.shape == (6, 0)
    assert scheme.reason is not None
    assert "only 15 distinct way(s)" in scheme.reason


def test_permutation_scheme_below_twenty_reports_the_log10_count() -> None:
    from deception_probes.nulls import permutation_scheme

    scheme = permutation_scheme(np.array([1, 1, 0, 0, 0, 0]), np.arange(6).astype(str), _one_fold(6), 5, 0)
    assert scheme.log10_distinct == pytest.approx(math.log10(15))
    assert scheme.labellings.dtype == np.int64


@pytest.mark.parametrize("n", [0, -1])
def test_no_permutations_asked_for_is_not_testable_and_says_so(n) -> None:
    from deception_probes.nulls import permutation_scheme

    scheme = permutation_scheme(np.array([1, 1, 1, 0, 0, 0]), np.arange(6).astype(str), _one_fold(6), n, 0)
    assert not scheme.testable
    assert scheme.level is None
    assert scheme.labellings.shape == (6, 0)
    assert scheme.log10_distinct == 0.0
    assert scheme.reason == "no permutations asked for (n_permutations = 0)"


def test_one_permutation_is_drawn_when_one_is_asked_for() -> None:
    from deception_probes.nulls import permutation_scheme

    scheme = permutation_scheme(np.array([1, 1, 1, 0, 0, 0]), np.arange(6).astype(str), _one_fold(6), 1, 0)
    assert scheme.labellings.shape == (6, 1)


def test_paired_trials_are_permuted_within_trials() -> None:
    """Every trial one honest and one deceptive utterance: swapping trials changes nothing, shuffling
    inside them gives 2^5 = 32 labellings (>= 20): the level is "rounds within trials"."""
    from deception_probes.nulls import _log_distinct, _trial_rows, permutation_scheme

    y = np.array([1, 0] * 5)
    groups = np.repeat(np.arange(5), 2).astype(str)
    trials = _trial_rows(groups, _one_fold(10))
    assert _log_distinct(y, trials, "trials") == pytest.approx(0.0)
    assert _log_distinct(y, trials, "rounds within trials") == pytest.approx(math.log(32))
    assert _log_distinct(y, trials, "trials and rounds within trials") == pytest.approx(math.log(32))
    scheme = permutation_scheme(y, groups, _one_fold(10), 4, 0)
    assert scheme.level == "rounds within trials"
    assert scheme.log10_distinct == pytest.approx(math.log10(32))
    for column in scheme.labellings.T:  # each trial keeps one deceptive utterance
        assert column.reshape(5, 2).sum(axis=1).tolist() == [1] * 5


def test_trials_of_two_lengths_are_swapped_only_with_their_own_length() -> None:
    """Known answer: three 1-round trials (one deceptive) and three 2-round trials (patterns 11, 00, 10):
    between = log C(3,1) + log 3! = log 18; within = log(1 * 2) (only the 10 trial can be reordered)."""
    from deception_probes.nulls import _log_distinct, _trial_rows

    y = np.array([1, 0, 0, 1, 1, 0, 0, 1, 0])
    groups = np.array(["a", "b", "c", "d", "d", "e", "e", "f", "f"])
    trials = _trial_rows(groups, _one_fold(9))
    assert _log_distinct(y, trials, "trials") == pytest.approx(math.log(3 * 6))
    assert _log_distinct(y, trials, "rounds within trials") == pytest.approx(math.log(2))
    # with rounds free, the 2-round trials are keyed by their count (2, 0, 1): still 3! orders
    assert _log_distinct(y, trials, "trials and rounds within trials") == pytest.approx(math.log(3 * 6 * 2))


def test_trials_are_told_apart_by_their_label_pattern_not_only_its_count() -> None:
    from deception_probes.nulls import _log_distinct, _trial_rows

    y = np.array([1, 0, 0, 1])  # two 2-round trials, patterns 10 and 01: two orders at the trial level
    trials = _trial_rows(np.array(["a", "a", "b", "b"]), _one_fold(4))
    assert _log_distinct(y, trials, "trials") == pytest.approx(math.log(2))
    assert _log_distinct(y, trials, "trials and rounds within trials") == pytest.approx(math.log(4))


def test_trial_level_draws_keep_each_trials_pattern_and_the_seed_fixes_them() -> None:
    """At the trial level whole trials' patterns are swapped: no trial gets a pattern none had (such as 01)."""
    from deception_probes.nulls import permutation_scheme

    patterns = [(1, 0), (1, 0), (0, 0), (0, 0), (1, 1)]  # 5! / (2! 2! 1!) = 30 distinct labellings
    y = np.array([label for pattern in patterns for label in pattern])
    groups = np.repeat(np.arange(5), 2).astype(str)
    scheme = permutation_scheme(y, groups, _one_fold(10), 20, 3)
    assert scheme.level == "trials"
    for column in scheme.labellings.T:
        assert sorted(map(tuple, column.reshape(5, 2).tolist())) == sorted(patterns)
    again = permutation_scheme(y, groups, _one_fold(10), 20, 3)
    np.testing.assert_array_equal(again.labellings, scheme.labellings)


def test_permutation_test_reports_not_testable_instead_of_a_p_value() -> None:
    from deception_probes.nulls import permutation_scheme, permutation_test

    y = np.array([1, 1, 0, 0, 0, 0])
    scheme = permutation_scheme(y, np.arange(6).astype(str), _one_fold(6), 5, 0)
    got = permutation_test(None, None, scheme, _one_fold(6), np.arange(6), None, 0.9, 0)  # type: ignore[arg-type]
    assert got is not None
    assert got["status"] == "not testable"
    assert got["p_value"] is None
    assert permutation_test(None, None, scheme, [], np.arange(6), None, None, 0) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("train", "test", "status", "reason"), [
    ([0, 1, 2, 3], [4, 5], "not computable", "training side: one class only (4 honest, 0 deceptive)"),
    ([0, 1, 4, 5], [2, 3], "not computable", "test side: one class only (2 honest, 0 deceptive)"),
    ([0, 1, 4], [2, 3, 5], "ok", None),
])
def test_transfer_split_without_both_classes_is_not_computable(train, test, status, reason) -> None:
    from deception_probes.generalise import train_test
    from deception_probes.methods import MeanDifferenceMethod

    X = np.array([[0.0], [0.1], [0.2], [0.3], [1.0], [1.1]])
    y = np.array([0, 0, 0, 0, 1, 1])
    groups = np.arange(6).astype(str)
    settings = SimpleNamespace(seed=0)
    got = train_test(MeanDifferenceMethod(), X, y, groups, np.array(train), np.array(test), None, settings)
    assert got["status"] == status
    assert got["reason"] == reason
    assert (got["auroc"] is None) == (status != "ok")
    for side, rows in (("train_counts", train), ("test_counts", test)):
        assert got[side] == {"honest": int((y[rows] == 0).sum()), "deceptive": int((y[rows] == 1).sum()),
                             "trials": len(rows)}


def test_a_side_without_labelled_samples_says_so() -> None:
    from deception_probes.generalise import train_test
    from deception_probes.methods import MeanDifferenceMethod

    X, y, groups = np.zeros((3, 1)), np.array([0, 1, 1]), np.array(["a", "b", "c"])
    got = train_test(MeanDifferenceMethod(), X, y, groups, np.array([], dtype=int), np.array([0, 1]), None,
                     SimpleNamespace(seed=0))
    assert got["reason"] == "training side: no labelled samples"
    got = train_test(MeanDifferenceMethod(), X, y, groups, np.array([0]), np.array([1]), None, SimpleNamespace(seed=0))
    assert got["reason"] == "training side: one class only (1 honest, 0 deceptive)"


@pytest.mark.parametrize("metric", ["auroc", "balanced_accuracy", "recall_at_fpr"])
@pytest.mark.parametrize("y", [[1, 1, 1], [0, 0], []])
def test_metrics_without_both_classes_are_none_not_a_number(metric, y) -> None:
    from deception_probes import metrics

    got = getattr(metrics, metric)(np.arange(len(y), dtype=float), np.array(y, dtype=int))
    assert got is None


def test_metrics_with_both_classes_are_numbers() -> None:
    """Positive control of the guard above: the same calls with one more sample of the other class."""
    from deception_probes import metrics

    assert metrics.auroc(np.array([0.0, 1.0, 2.0]), np.array([0, 1, 1])) == 1.0
    assert metrics.balanced_accuracy(np.array([-1.0, 1.0, 2.0]), np.array([0, 1, 1])) == 1.0
    got = metrics.recall_at_fpr(np.array([0.0, 1.0, 2.0]), np.array([0, 1, 1]))
    assert got is not None
    assert got["value"] == 1.0


# per candidate layer: (ablation broken, {steering scale factor: broken}) -> each test's verdict
# (status, candidate layer, steering's factor); max_random_broken = 0.25, scale factors (1.0, 0.5)
FINE = {1.0: 0.0, 0.5: 0.0}


@pytest.mark.parametrize(("broken", "ablation", "steering"), [
    ({0: (0.0, FINE)}, ("the chosen direction", 0), ("the chosen direction", 0, 1.0)),
    ({0: (0.25, {1.0: 0.25, 0.5: 0.0})}, ("the chosen direction", 0), ("the chosen direction", 0, 1.0)),  # at the limit
    ({0: (0.0, {1.0: 0.5, 0.5: 0.0})}, ("the chosen direction", 0), ("the chosen direction at a smaller scale", 0, 0.5)),
    # one direction that serves both tests wins over the first that serves one
    ({0: (0.5, FINE), 2: (0.0, FINE)}, ("moved off the chosen direction", 2), ("moved off the chosen direction", 2, 1.0)),
    ({0: (0.5, {1.0: 0.5, 0.5: 0.5}), 2: (0.5, {1.0: 0.5, 0.5: 0.3})}, None, None),
    # steering keeps its own verdict where ablation breaks everywhere
    ({0: (0.3, FINE), 2: (0.3, FINE)}, None, ("the chosen direction", 0, 1.0)),
])
def test_choosing_usable_directions(monkeypatch, broken, ablation, steering) -> None:
    selection, directions = _choose(monkeypatch, broken, steering_check_share=1.0)
    verdicts = selection.record["verdicts"]
    for test, expected in (("ablation", ablation), ("steering", steering)):
        choice = selection.for_test(test)
        if expected is None:
            assert choice.direction is None
            assert verdicts[test]["status"] == "not testable"
            assert verdicts[test]["reason"].startswith("not testable: norm-matched random directions ")
            assert verdicts[test]["reason"].endswith("; an effect there would measure damage, not deception")
            continue
        status, layer = expected[0], expected[1]
        assert choice.direction is directions[layer]
        assert verdicts[test]["status"] == status
        assert verdicts[test]["candidate"] == {0: 0, 2: 1}[layer]
        if test == "steering":
            assert choice.scale_factor == expected[2]
    assert [t["layer"] for t in selection.record["tried"]] == list(broken)  # layer 1 is skipped
    assert selection.record["n_prompts_checked"] == 1


@pytest.mark.parametrize(("broken_at_full_scale", "factor"), [(0.125, 1.0), (0.2, 0.5)])
def test_steering_check_passes_a_scale_only_at_its_share_of_the_limit(monkeypatch, broken_at_full_scale,
                                                                        factor) -> None:
    """Steering's teacher-forced check allows half of max_random_broken by default (generated replies
    break about twice as often), so 20 % broken rejects a scale that ablation's limit of 25 % would pass."""
    selection, _ = _choose(monkeypatch, {0: (0.0, {1.0: broken_at_full_scale, 0.5: 0.0})}, steering_check_share=0.5)
    assert selection.steering.scale_factor == factor


def _choose(monkeypatch, broken, steering_check_share):
    from deception_causal import usable
    from deception_core.base.records import ProbeDirection

    # candidate layers 0 (chosen), 1 (not usable on the dataset: skipped), 2 (ranked next)
    directions = [ProbeDirection(i, "reply_mean", np.ones(4) * (i + 1), provenance={"rank": 10 + i} if i < 2 else {})
                  for i in range(3)]
    dataset, model, checks = object(), object(), [((1,), (2,))]
    randoms = np.eye(4)[:1]

    def fake_random_broken(hf_model, checked, clean, rows, layer, fluency_ratio, give_up_above, pad_id, chunk, sites):
        kind, strength = rows[0]
        limit = 0.25 * (steering_check_share if kind == "steering" else 1.0)
        assert (hf_model, checked, fluency_ratio, give_up_above, pad_id, sites) == (model, checks, 2.0, limit, 7, "reply")
        if kind == "ablation":
            return broken[layer][0]
        return broken[layer][1][round(strength / (2.0 * 3.0), 6)]  # a_max 2 x unit 3 x factor

    monkeypatch.setattr(usable, "random_broken", fake_random_broken)
    monkeypatch.setattr(usable, "clean_logprobs", lambda *args, **kwargs: np.zeros(1))
    monkeypatch.setattr(usable, "ablation_rows", lambda n, r, mean: [("ablation", None)])
    monkeypatch.setattr(usable, "steering_rows", lambda n, r, strength: [("steering", strength)])
    monkeypatch.setattr(usable, "steering_unit", lambda data, d, name: usable.Unit(name, 3.0, d.layer))
    monkeypatch.setattr(usable, "dataset_mean", lambda data, d: np.zeros(4))
    monkeypatch.setattr(usable, "usable_on", lambda data, direction: data is dataset and direction.layer != 1)
    settings = SimpleNamespace(alphas=(-2.0, 1.0, 2.0), max_random_broken=0.25, fluency_ratio=2.0, n_random=4,
                               scale_factors=(1.0, 0.5), steering_unit="spread", ablation="mean",
                               steering_check_share=steering_check_share, edit_sites="reply")

    def random_units(d: int) -> np.ndarray:
        assert d == 4  # the candidate's width
        return randoms

    selection = usable.choose_direction(dataset, model, directions[0], directions[1:], checks, random_units, settings, 7)
    return selection, directions


def test_without_stored_replies_the_chosen_direction_is_used_unchecked() -> None:
    from deception_causal import usable
    from deception_core.base.records import ProbeDirection

    chosen = ProbeDirection(0, "reply_mean", np.ones(4))
    settings = SimpleNamespace(alphas=(1.0,), max_random_broken=0.25, fluency_ratio=2.0, n_random=4,
                               scale_factors=(1.0,), steering_unit="spread", ablation="mean",
                               steering_check_share=0.5, edit_sites="reply")
    selection = usable.choose_direction(None, None, chosen, [], [], lambda d: np.eye(d), settings)
    assert selection.ablation.direction is chosen
    assert selection.steering.direction is chosen
    assert selection.steering.scale_factor == 1.0
    assert selection.record["status"] == "not checked: no stored replies to teacher-force"
    assert (selection.record["candidate"], selection.record["scale_factor"], selection.record["tried"]) == (0, 1.0, [])
