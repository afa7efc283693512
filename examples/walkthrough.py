"""The toolkit as a library, with top-level imports only: capture statements, train a probe, score a
run, steer generation.

    python examples/walkthrough.py                                   # the embedded Gemma-3-270M (CPU: about a minute)
    python examples/walkthrough.py --model PATH --run RUN_DIR        # a model folder; score a `deception run` folder

1. Capture statements: the instructed-pairs set (the same true statement as the reply to an honest and
   to a dishonest persona) run teacher-forced through the model; the mean over each reply's tokens at
   one layer.
2. Train a probe on half of the facts and measure its AUROC, with an interval clustered by fact, on
   the other half.
3. Score a run: the probe on the dataset of a run folder (``--run``), or else on the statements
   written to disk and read back.
4. Steer generation: add ``alpha`` times the probe's direction to the residual stream at that layer;
   the projection on the direction moves by exactly ``alpha``, and the greedy reply changes.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np

from deception_core import Dataset, Model, capture_texts, load_model, read_dataset, text_records, write_dataset
from deception_probes import LinearProbe, LogisticMethod, auroc_ci
from deception_scenarios import instructed_pairs

POSITION = "reply_mean"
STEER_PROMPT = "Question: What is the capital of France?\nAnswer:"
#: steering strength in units of the spread of the statements' projections on the probe's direction
STEER_SPREADS = 8.0


@attrs.frozen
class Walkthrough:
    """What each step measured."""

    layer: int
    n_statements: int
    n_train: int
    auroc: float  # held-out facts
    auroc_low: float | None
    auroc_high: float | None
    scored: str  # what step 3 scored
    scores: tuple[float, ...]  # the probe's scores of its rows
    alpha: float
    projection_shift: float  # mean change of the projection under steering, every token of the prompt
    reply: str  # greedy, unsteered
    steered_reply: str


def capture_statements(model: Model, layer: int, n_facts: int) -> Dataset:
    """Step 1: the instructed pairs (two records per fact) captured at ``layer``."""
    records = text_records(instructed_pairs(n_arithmetic=n_facts, n_units=n_facts), "instructed_pairs")
    dataset: Dataset = capture_texts(model, records, layers=[layer], positions=[POSITION], name="instructed_pairs")
    return dataset


def labels_and_groups(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """1 for the dishonest persona, 0 for the honest one; each row's fact (the pair shares it)."""
    y = np.array([sample.label == "deceptive" for sample in dataset.samples], dtype=np.int64)
    groups = np.array([sample.trial_key for sample in dataset.samples])
    return y, groups


def train_probe(dataset: Dataset, layer: int, seed: int = 0) -> tuple[LinearProbe, np.ndarray, np.ndarray]:
    """Step 2: a logistic probe trained on a random half of the facts; returns it and the held-out rows'
    mask and scores."""
    X = dataset.matrix(layer, POSITION)
    y, groups = labels_and_groups(dataset)
    facts = np.unique(groups)
    train_facts = np.random.default_rng(seed).permutation(facts)[: len(facts) // 2]
    train = np.isin(groups, train_facts)
    method = LogisticMethod()
    probe = method.fit(X[train], y[train], method.default_hyper, seed)
    return probe, train, probe.score(X[~train])


def steer(model: Model, probe: LinearProbe, layer: int, alpha: float, max_new_tokens: int) -> tuple[float, str, str]:
    """Step 4: the projection's mean change at ``layer`` over the prompt's tokens, and the greedy reply
    without and with ``alpha`` times the probe's unit direction added at ``layer``."""
    unit = probe.unit_direction
    before = model.run_with_cache([STEER_PROMPT], layers=[layer])[layer][0].numpy() @ unit
    with model.steer(unit, alpha, layers=[layer]):
        after = model.run_with_cache([STEER_PROMPT], layers=[layer])[layer][0].numpy() @ unit
        (steered,) = model.generate([STEER_PROMPT], max_new_tokens=max_new_tokens)
    (plain,) = model.generate([STEER_PROMPT], max_new_tokens=max_new_tokens)
    return float(np.mean(after - before)), plain.text, steered.text


def walkthrough(model_name: str, *, run: str | None = None, layer: int | None = None, n_facts: int = 20,
                max_new_tokens: int = 12, workdir: str | Path | None = None) -> Walkthrough:
    model = load_model(model_name, device="cpu", dtype="float32")
    if layer is None:  # the middle block, or the middle of the layers the run captured
        layers = read_dataset(run).layers if run else list(range(model.n_layers))
        layer = layers[len(layers) // 2]

    statements = capture_statements(model, layer, n_facts)
    probe, train, held_out_scores = train_probe(statements, layer)
    y, groups = labels_and_groups(statements)
    interval = auroc_ci(held_out_scores, y[~train], groups[~train])
    assert interval is not None, "the held-out facts hold both personas"

    if run is None:  # no run given: score the statements, written as a dataset and read back
        folder = Path(workdir or tempfile.mkdtemp(prefix="walkthrough-")) / "statements"
        write_dataset(folder, statements)
        run = str(folder)
    target = read_dataset(run)
    scores = probe.score(target.matrix(layer, POSITION))

    X = statements.matrix(layer, POSITION)
    alpha = STEER_SPREADS * float(np.std(X @ probe.unit_direction))
    shift, reply, steered_reply = steer(model, probe, layer, alpha, max_new_tokens)
    return Walkthrough(layer=layer, n_statements=len(statements), n_train=int(train.sum()),
                       auroc=float(interval["value"]), auroc_low=interval["ci_low"], auroc_high=interval["ci_high"],
                       scored=run, scores=tuple(float(s) for s in scores), alpha=alpha, projection_shift=shift,
                       reply=reply, steered_reply=steered_reply)


def main(argv: Sequence[str] | None = None) -> Walkthrough:
    parser = argparse.ArgumentParser(description="Capture statements, train a probe, score a run, steer generation.")
    parser.add_argument("--model", default="embedded:gemma-3-270m", help="embedded:NAME, a model folder or a HF id")
    parser.add_argument("--run", help="a `deception run` folder (or dataset) to score; default: the statements")
    parser.add_argument("--layer", type=int, help="decoder block (0-based); default: the middle one")
    parser.add_argument("--facts", type=int, default=20, help="arithmetic and unit facts each, with the capitals")
    args = parser.parse_args(argv)
    result = walkthrough(args.model, run=args.run, layer=args.layer, n_facts=args.facts)
    interval = f"[{result.auroc_low:.3f}, {result.auroc_high:.3f}]" if result.auroc_low is not None else "(none)"
    print(f"1. captured {result.n_statements} statements at layer {result.layer} ({POSITION})")
    print(f"2. probe trained on {result.n_train}; held-out AUROC {result.auroc:.3f}, 95% interval {interval}")
    print(f"3. scored {len(result.scores)} samples of {result.scored}: mean score {np.mean(result.scores):+.3f}")
    print(f"4. steering by alpha={result.alpha:.2f} moved the projection by {result.projection_shift:.2f}")
    print(f"   reply:   {result.reply!r}\n   steered: {result.steered_reply!r}")
    return result


if __name__ == "__main__":
    main()
