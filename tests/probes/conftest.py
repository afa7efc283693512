"""Synthetic datasets for the probe tests (no model): planted directions, null labels, near-duplicate trials."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from deception_core.base.records import Sample, Trial
from deception_core.store import Dataset

CONDITIONS = {"emergent": ("high_incentive", "low_incentive"), "instructed": ("deceptive_instruction", "honest_instruction")}


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Tiny matrices: multi-threaded BLAS only adds contention on shared CPUs."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def build_dataset(
    labels: list[list[str]],
    width: int = 16,
    layers: tuple[int, ...] = (1,),
    positions: tuple[str, ...] = ("reply_mean",),
    signal: dict[int, float] | None = None,
    seed: int = 0,
    modes: tuple[str, ...] = ("emergent",),
    scenarios: tuple[str, ...] = ("alpha", "beta"),
    trial_spread: float = 0.0,
    round_noise: float = 1.0,
) -> tuple[Dataset, np.ndarray]:
    """One trial per entry of ``labels`` (its rounds' labels). Returns the dataset and the planted unit direction.

    Activations: ``trial_spread`` * trial offset + ``round_noise`` * N(0, I) + ``signal[layer]`` * [deceptive] * u.
    """
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(width)
    u /= np.linalg.norm(u)
    signal = signal or {}
    samples = []
    for t, rounds in enumerate(labels):
        mode = modes[t % len(modes)]
        condition = CONDITIONS[mode][(t // len(modes)) % 2]
        scenario = scenarios[t % len(scenarios)]
        for r, label in enumerate(rounds):
            samples.append(Sample(row=len(samples), trial_key=f"{scenario}/{mode}/{condition}/{t:05d}",
                            scenario=scenario, mode=mode, condition=condition, round=r + 1,
                            label=label, rule_label=label, judge_label=label))
    n = len(samples)
    deceptive = np.array([s.label == "deceptive" for s in samples], dtype=np.float64)
    trial_index = np.array([int(s.trial_key.rsplit("/", 1)[1]) for s in samples], dtype=np.int64)
    arrays = {}
    for layer in layers:
        for position in positions:
            offsets = rng.standard_normal((len(labels), width)) * trial_spread
            X = offsets[trial_index] + round_noise * rng.standard_normal((n, width))
            X += signal.get(layer, 0.0) * deceptive[:, None] * u[None, :]
            arrays[f"layer{layer}/{position}"] = X.astype(np.float32)
    meta = {"layers": list(layers), "positions": list(positions), "model": {"id": "synthetic", "d_model": width}}
    trials = [Trial(trial_key=k) for k in dict.fromkeys(s.trial_key for s in samples)]
    return Dataset(meta, samples, trials, arrays), u


def random_labels(n_trials: int, rounds: int, seed: int, p: float = 0.5) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [["deceptive" if rng.random() < p else "honest" for _ in range(rounds)] for _ in range(n_trials)]


@pytest.fixture()
def make_dataset() -> Callable[..., tuple[Dataset, np.ndarray]]:
    return build_dataset


@pytest.fixture()
def make_labels() -> Callable[..., list[list[str]]]:
    return random_labels


@pytest.fixture()
def fast() -> dict[str, int]:
    """Probe settings that keep a test within seconds (fewer resamples, same statistics)."""
    return {"n_permutations": 20, "n_random_directions": 20}
