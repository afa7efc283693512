"""Time the full probe analysis on a synthetic dataset of realistic size.

    python -m deception_probes.bench --samples 10000 --width 2304

builds ``samples`` labelled samples (4 rounds per trial, six scenarios, both modes and all four
conditions, 5% ambiguous) at 3 layers x 3 positions, with a weak planted direction growing with
depth, and runs every method with grouped 5-fold nested CV, the nulls and the transfer matrices.

    python -m deception_probes.bench --paired --samples 742 --width 640 --layers 18

is the shape of a captured contrast set such as Apollo Research's roleplaying completions on
Gemma-3-270M: one honest and one deceptive completion per scenario (371 pairs), every block.
The closing lines give each method's mean CPU and wall seconds per layer x position cell (CPU
seconds, one BLAS thread each, are comparable on a loaded machine; wall seconds are not).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from deception_core import (
    AnalysisReport,
    Dataset,
    DatasetMeta,
    JSONValue,
    Sample,
    Trial,
    json_array,
    json_number,
    json_object,
)
from deception_probes.analysis import ProbeAnalysis
from deception_probes.engine import Labelled, _plans
from deception_probes.methods import ProbeMethod, dense_methods
from deception_probes.nulls import permutation_scheme
from deception_probes.settings import ProbeSettings

SCENARIOS = tuple(f"synthetic_{i}" for i in range(6))  # six scenarios, like the built-in set
CONDITIONS = (("emergent", "high_incentive"), ("emergent", "low_incentive"),
              ("instructed", "deceptive_instruction"), ("instructed", "honest_instruction"))
POSITIONS = ("last_prompt", "reply_mean", "reply_last")


WORDS = ("i", "could", "not", "finish", "the", "report", "because", "my", "train", "was", "late", "and", "a",
         "family", "emergency", "came", "up", "so", "sorry", "for", "delay", "will", "send", "it", "tomorrow")


def synthetic_dataset(n_samples: int, width: int, layers: tuple[int, ...] = (6, 12, 18), rounds: int = 4,
                      signal: float = 0.15, seed: int = 0, positions: tuple[str, ...] = POSITIONS,
                      paired: bool = False) -> Dataset:
    """A `Dataset` with a planted deception direction (strength ``signal`` per unit noise at the deepest layer).

    ``paired``: every trial is one honest and one deceptive sample (a contrast set; ``rounds`` is 2), in
    one scenario. Replies are random words drawn without looking at the labels.
    """

    rng = np.random.default_rng(seed)
    rounds = 2 if paired else rounds
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
        if paired:
            scenario, mode, condition = SCENARIOS[0], "capture", "capture"
            label = ("honest", "deceptive")[row % 2]
        samples.append(Sample(row=row, trial_key=f"{scenario}/{mode}/{condition}/{trial:06d}", scenario=scenario,
                              mode=mode, condition=condition, round=row % rounds + 1, label=label,
                              rule_label=label, judge_label=label, reply_text=" ".join(rng.choice(WORDS, 12))))
    y = np.array([s.label == "deceptive" for s in samples], dtype=np.float32)
    arrays = {}
    for depth, layer in enumerate(layers, start=1):
        trial_offset = rng.standard_normal((n_samples // rounds + 1, width)).astype(np.float32)
        for position in positions:
            noise = rng.standard_normal((n_samples, width), dtype=np.float32)
            noise += 0.5 * trial_offset[np.arange(n_samples) // rounds]
            noise += (signal * depth / len(layers) * np.sqrt(width) * 0.1) * y[:, None] * direction[None, :]
            arrays[f"layer{layer}/{position}"] = noise
    meta = DatasetMeta(layers=layers, positions=positions, model={"id": "synthetic-bench", "d_model": width})
    trials = [Trial(trial_key=key) for key in dict.fromkeys(s.trial_key for s in samples)]
    return Dataset(meta, samples, trials, arrays)


def method_timings(results: Mapping[str, JSONValue]) -> list[str]:
    """Per method: mean CPU and wall seconds per layer x position cell; then LAT over logistic, cell by cell."""
    cells = [json_object(c) for c in json_array(results["cells"])]
    by_method: dict[str, list[tuple[float, float]]] = {}
    for cell in cells:
        by_method.setdefault(str(cell["method"]), []).append((json_number(cell.get("cpu_s", 0.0)),
                                                              json_number(cell.get("elapsed_s", 0.0))))
    lines = [f"{name}: {np.mean([c for c, _ in v]):.2f}s CPU, {np.mean([w for _, w in v]):.2f}s wall per cell "
             f"({len(v)} cells)" for name, v in by_method.items()]
    if "lat" in by_method and "logistic" in by_method:
        ratio = np.array([c for c, _ in by_method["lat"]]) / np.maximum([c for c, _ in by_method["logistic"]], 1e-9)
        lines.append(f"LAT / logistic CPU per cell: median {np.median(ratio):.2f}, max {ratio.max():.2f}")
    return lines


def _layers(count: int | None) -> tuple[int, ...]:
    return (6, 12, 18) if count is None else tuple(range(1, count + 1))


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the joblib workers, once shut down)."""
    import resource

    return float(sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for field in ("ru_utime", "ru_stime")))


def _shutdown_workers() -> None:
    """Stop joblib's reusable worker processes so that their CPU time is counted."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def _time_analysis(dataset: Dataset, out: Path, seed: int, permutations: int | None, jobs: int | None
                   ) -> tuple[AnalysisReport, float, float]:
    """(report, wall seconds, CPU seconds of this process and its workers)."""

    analysis = ProbeAnalysis(ProbeSettings(seed=seed, jobs=jobs, n_permutations=permutations))
    t1, c1 = time.perf_counter(), _cpu_seconds()
    report = analysis.run(dataset, out, {})
    elapsed = time.perf_counter() - t1
    _shutdown_workers()
    return report, elapsed, _cpu_seconds() - c1


def _comparable(results: Mapping[str, JSONValue]) -> list[tuple[JSONValue, ...]]:
    cells = (json_object(c) for c in json_array(results["cells"]))
    return [(c["layer"], c["position"], c["method"], c["auroc"], c["permutation"]) for c in cells]


def reference_null_timing(dataset: Dataset, permutations: int, seed: int) -> list[tuple[str, float, float]]:
    """(method, batched seconds, refit-per-labelling seconds) for the null of the first cell on ``permutations``
    labellings: the same labellings, folds and hyper-parameters both ways."""
    from threadpoolctl import threadpool_limits

    settings = ProbeSettings(seed=seed)
    labelled = Labelled.of(dataset.samples)
    plans, _ = _plans(labelled.y, labelled.groups, settings)
    scheme = permutation_scheme(labelled.y, labelled.groups, plans, permutations, seed)
    X = np.asarray(dataset.matrix(dataset.layers[-1], dataset.positions[0]))[labelled.rows]
    out = []
    with threadpool_limits(limits=1, user_api="blas"):
        for method in dense_methods():
            t0 = time.perf_counter()
            batched = method.held_out_batch(X, scheme.labellings, plans, method.default_hyper, seed)
            t1 = time.perf_counter()
            refit = ProbeMethod.held_out_batch(method, X, scheme.labellings, plans, method.default_hyper, seed)
            t2 = time.perf_counter()
            if not np.allclose(batched, refit, rtol=1e-3, atol=1e-3 * np.nanmax(np.abs(refit))):
                raise AssertionError(f"{method.name}: batched null scores differ from refitted ones")
            out.append((method.name, t1 - t0, t2 - t1))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=2304)
    parser.add_argument("--layers", type=int, default=None, help="number of layers (default: 3 layers, 6, 12 and 18)")
    parser.add_argument("--positions", type=int, default=len(POSITIONS), choices=range(1, len(POSITIONS) + 1))
    parser.add_argument("--paired", action="store_true",
                        help="one honest and one deceptive sample per trial, one scenario (a contrast set)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--permutations", type=int, default=None,
                        help="shuffled-label reruns per layer x position x method (default: automatic)")
    parser.add_argument("--jobs", type=int, default=None, help="processes (default: every core)")
    parser.add_argument("--compare-jobs", action="store_true", help="also run with one process and compare")
    parser.add_argument("--reference", type=int, default=0, metavar="K",
                        help="time one cell's null on K labellings, batched and refitted per labelling")
    parser.add_argument("--output", type=Path, default=None, help="keep the results here (default: a temporary directory)")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    dataset = synthetic_dataset(args.samples, args.width, layers=_layers(args.layers), seed=args.seed,
                                positions=POSITIONS[:args.positions], paired=args.paired)
    built = time.perf_counter() - t0
    shape = (f"{args.samples} samples x {len(dataset.layers)} layers x {len(dataset.positions)} positions "
             f"at width {args.width}")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.output or Path(tmp)
        report, elapsed, cpu = _time_analysis(dataset, out, args.seed, args.permutations, args.jobs)
        print(report.table)
        cells = [json_object(c) for c in json_array(report.results["cells"])]
        slowest = sorted(cells, key=lambda c: -json_number(c.get("elapsed_s", 0)))[:3]
        print("slowest cells:", ", ".join(f"L{c['layer']} {c['position']} {c['method']} {c['elapsed_s']:.1f}s"
                                          for c in slowest))
        settings = json_object(report.results["settings"])
        n_perm, jobs = settings["n_permutations"], settings["jobs"] or "all cores"
        print(f"dataset built in {built:.1f}s; analysis of {shape}, {n_perm} permutations, jobs={jobs}: "
              f"{elapsed:.1f}s wall, {cpu:.1f}s CPU over all processes "
              "(wall time depends on what else shares the CPUs; CPU time much less)")
        for line in method_timings(report.results):
            print(line)
        print("load average (1, 5, 15 min): " + ", ".join(f"{value:.2f}" for value in os.getloadavg()))
        if args.compare_jobs:
            single, single_elapsed, single_cpu = _time_analysis(dataset, Path(tmp) / "one_job", args.seed,
                                                                args.permutations, 1)
            same = _comparable(single.results) == _comparable(report.results)
            print(f"jobs=1: {single_elapsed:.1f}s wall, {single_cpu:.1f}s CPU; jobs={jobs} is "
                  f"{single_elapsed / elapsed:.2f}x faster in wall time; results identical: {same}")
    if args.reference:
        for name, batched, refit in reference_null_timing(dataset, args.reference, args.seed):
            print(f"null of one cell, {name}, {args.reference} labellings: batched {batched:.2f}s, "
                  f"refitted per labelling {refit:.2f}s ({refit / max(batched, 1e-9):.1f}x)")


if __name__ == "__main__":
    main()
