"""Which negotiation prompts of the run the causal tests use, and the matched pairs for patching."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs
import numpy as np

if TYPE_CHECKING:
    from deception_core import Dataset


#: conditions paired for patching: (source, target), the source being the deception-favouring one
CONDITION_PAIRS = (("high_incentive", "low_incentive"), ("deceptive_instruction", "honest_instruction"))


def choose_prompts(dataset: Dataset, n: int, seed: int) -> list[int]:
    """Up to ``n`` rows with distinct prompt token ids, labelled rows first, classes alternating.

    Distinct prompts matter: every statistic is over prompts, and duplicates would count one
    prompt as several independent observations.
    """
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, ...]] = set()
    by_label: dict[str, list[int]] = {"deceptive": [], "honest": [], "ambiguous": []}
    for row in rng.permutation(len(dataset)).tolist():
        ids = tuple(dataset.prompt_ids(row))
        if ids in seen or not ids:
            continue
        seen.add(ids)
        by_label.setdefault(dataset.samples[row].label, []).append(row)
    chosen: list[int] = []
    labelled = [by_label["deceptive"], by_label["honest"]]
    while len(chosen) < n and any(labelled):
        for pool in labelled:
            if pool and len(chosen) < n:
                chosen.append(pool.pop(0))
    rest = by_label["ambiguous"]
    chosen += rest[: max(0, n - len(chosen))]
    return sorted(chosen)


@attrs.frozen
class MatchedPair:
    source: int  # row whose state is patched in (deceptive reply, or the deception-favouring condition)
    target: int  # row patched into
    kind: str  # "label" (honest vs deceptive outcome) | "condition" (HIGH vs LOW, or instructed pair)


def matched_pairs(dataset: Dataset, n: int, seed: int) -> list[MatchedPair]:
    """Pairs of rows from the same scenario, mode, trial index and round.

    A pair whose replies were labelled deceptive and honest is a ``label`` pair (source =
    deceptive); otherwise a pair of matched conditions (HIGH vs LOW incentive, or told to deceive
    vs told to be honest) is a ``condition`` pair (source = the deception-favouring condition).
    Label pairs come first; at most ``n`` pairs with distinct prompts are returned.
    """
    groups: dict[tuple[str, str, int, int], list[int]] = {}
    for row, s in enumerate(dataset.samples):
        groups.setdefault((s.scenario, s.mode, s.trial_index, s.round), []).append(row)
    label_pairs, condition_pairs = [], []
    for rows in groups.values():
        by_condition = {dataset.samples[r].condition: r for r in rows}
        for source_c, target_c in CONDITION_PAIRS:
            if source_c not in by_condition or target_c not in by_condition:
                continue
            a, b = by_condition[source_c], by_condition[target_c]
            la, lb = dataset.samples[a].label, dataset.samples[b].label
            if {la, lb} == {"honest", "deceptive"}:
                source, target = (a, b) if la == "deceptive" else (b, a)
                label_pairs.append(MatchedPair(source, target, "label"))
            else:
                condition_pairs.append(MatchedPair(a, b, "condition"))
    rng = np.random.default_rng(seed)
    ordered = [label_pairs[i] for i in rng.permutation(len(label_pairs))]
    ordered += [condition_pairs[i] for i in rng.permutation(len(condition_pairs))]
    out: list[MatchedPair] = []
    seen: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
    for pair in ordered:
        key = (tuple(dataset.prompt_ids(pair.source)), tuple(dataset.prompt_ids(pair.target)))
        if key[0] == key[1] or key in seen:
            continue
        seen.add(key)
        out.append(pair)
        if len(out) >= n:
            break
    return out


def trial_keys(dataset: Dataset, rows: Sequence[int]) -> list[str]:
    return sorted({dataset.samples[r].trial_key for r in rows})
