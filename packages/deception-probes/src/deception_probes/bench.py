"""Time the full probe analysis on a synthetic dataset of realistic size.

    python -m deception_probes.bench --samples 10000 --width 2304

builds ``samples`` labelled samples (4 rounds per trial, six scenarios, both modes and all four
conditions, 5% ambiguous) at 3 layers x 3 positions, with a weak planted direction growing with
depth, and runs every method with grouped 5-fold nested CV, the nulls and the transfer matrices.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

SCENARIOS = tuple(f"synthetic_{i}" for i in range(6))  # six scenarios, like the built-in set
CONDITIONS = (("emergent", "high_incentive"), ("emergent", "low_incentive"),
              ("instructed", "deceptive_instruction"), ("instructed", "honest_instruction"))
POSITIONS = ("last_prompt", "reply_mean", "reply_last")


def synthetic_dataset(n_samples: int, width: int, layers: tuple[int, ...] = (6, 12, 18), rounds: int = 4,
                      signal: float = 0.15, seed: int = 0):
    """A `Dataset` with a planted deception direction (strength ``signal`` per unit noise at the deepest layer)."""
    from deception_core.dataset import Dataset
    from deception_core.records import Sample, Trial

    rng = np.random.default_rng(seed)
    direction = rng.standard_normal(width).astype(np.float32)
    direction /= np.linalg.norm(direction)
    samples = []
    for row in range(n_samples):
        trial = row // rounds
        scenario = SCENARIOS[trial % len(SCENARIOS)]
        mode, condition = CONDITIONS[(trial // len(SCENARIOS)) % len(CONDITIONS)]
        p_deceptive = {"high_incentive": 0.6, "low_incentive": 0.3, "deceptive_instruction": 0.9,
                       "honest_instruction": 0.1}[condition]
        draw = rng.random()
        label = "ambiguous" if draw < 0.05 else ("deceptive" if rng.random() < p_deceptive else "honest")
        samples.append(Sample(row=row, trial_key=f"{scenario}/{mode}/{condition}/{trial:06d}", scenario=scenario,
                              mode=mode, condition=condition, round=row % rounds + 1, label=label,
                              rule_label=label, judge_label=label))
    y = np.array([s.label == "deceptive" for s in samples], dtype=np.float32)
    arrays = {}
    for depth, layer in enumerate(layers, start=1):
        trial_offset = rng.standard_normal((n_samples // rounds + 1, width)).astype(np.float32)
        for position in POSITIONS:
            noise = rng.standard_normal((n_samples, width), dtype=np.float32)
            noise += 0.5 * trial_offset[np.arange(n_samples) // rounds]
            noise += (signal * depth / len(layers) * np.sqrt(width) * 0.1) * y[:, None] * direction[None, :]
            arrays[f"layer{layer}/{position}"] = noise
    meta = {"layers": list(layers), "positions": list(POSITIONS), "model": {"id": "synthetic-bench", "d_model": width}}
    trials = [Trial(trial_key=key) for key in dict.fromkeys(s.trial_key for s in samples)]
    return Dataset(meta, samples, trials, arrays)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=2304)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--permutations", type=int, default=None,
                        help="shuffled-label reruns per layer x position x method (default: automatic)")
    parser.add_argument("--output", type=Path, default=None, help="keep the results here (default: a temporary directory)")
    args = parser.parse_args(argv)

    from deception_probes.analysis import ProbeAnalysis

    t0 = time.perf_counter()
    dataset = synthetic_dataset(args.samples, args.width, seed=args.seed)
    built = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        out = args.output or Path(tmp)
        options = {"seed": args.seed, "probes": {"n_permutations": args.permutations}}
        t1, c1 = time.perf_counter(), time.process_time()
        report = ProbeAnalysis().run(dataset, out, options)
        elapsed, cpu = time.perf_counter() - t1, time.process_time() - c1
    print(report.table)
    slowest = sorted(report.results["cells"], key=lambda c: -c.get("elapsed_s", 0))[:3]
    print("slowest cells:", ", ".join(f"L{c['layer']} {c['position']} {c['method']} {c['elapsed_s']:.1f}s" for c in slowest))
    print(f"dataset built in {built:.1f}s; analysis of {args.samples} samples x {len(dataset.layers)} layers x "
          f"{len(dataset.positions)} positions at width {args.width}: {elapsed:.1f}s wall, {cpu:.1f}s CPU "
          "(wall time depends on what else shares the CPUs)")


if __name__ == "__main__":
    main()
