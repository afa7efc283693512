"""--batch-size auto and the waves that fix which trials share batches."""

from __future__ import annotations

import pytest

from deception_core.base.errors import ConfigError
from deception_core.base.types import Condition, Mode
from deception_core.config.run import RunConfig
from deception_core.contracts.scenario import TrialSpec
from deception_core.play.batching import (
    CPU_BATCH_SIZE,
    MAX_AUTO_BATCH,
    cuda_batch_size,
    per_sequence_bytes,
    resolve_batch_size,
    waves,
)
from deception_core.testing.tiny_models import tiny_hf_model


def _specs(n: int) -> list[TrialSpec]:
    return [TrialSpec("echo", Mode.EMERGENT, Condition.HIGH_INCENTIVE, i, i) for i in range(n)]


def test_batch_size_defaults_to_auto_and_accepts_numbers() -> None:
    assert RunConfig().batch_size == "auto"
    assert RunConfig(batch_size="8").batch_size == 8


@pytest.mark.parametrize("bad", [0, -1, "abc", 2.5, True, ""])
def test_bad_batch_sizes_are_refused(bad) -> None:
    with pytest.raises(ConfigError, match=r"batch_size must be between 1 and 4096 \(or 'auto'\)"):
        RunConfig(batch_size=bad)


def test_waves_are_cut_from_the_plan_in_order() -> None:
    cut = waves(_specs(21), 4)
    assert [len(w) for w in cut] == [8, 8, 5]
    assert [s.index for s in cut[1]] == list(range(8, 16))


def test_batch_size_one_plays_one_trial_at_a_time() -> None:
    assert [len(w) for w in waves(_specs(3), 1)] == [1, 1, 1]


def test_auto_on_cpu_is_the_benchmarked_size() -> None:
    class Loaded:
        device = "cpu"

    assert resolve_batch_size("auto", Loaded(), 128) == CPU_BATCH_SIZE
    assert resolve_batch_size(3, Loaded(), 128) == 3


def test_cuda_batch_size_is_the_largest_power_of_two_that_fits() -> None:
    per_sequence = 100 * 2**20
    assert cuda_batch_size(10 * 2**30, per_sequence) == 64  # 81 would fit; capped
    assert cuda_batch_size(2 * 2**30, per_sequence) == 16  # 0.8 * 2 GiB holds 16.4 sequences
    assert cuda_batch_size(50 * 2**20, per_sequence) == 1  # never below 1
    assert MAX_AUTO_BATCH == 64


def test_per_sequence_memory_grows_with_length_and_depth() -> None:
    config = tiny_hf_model("llama", n_layers=4).config
    deeper = tiny_hf_model("llama", n_layers=8).config
    assert per_sequence_bytes(config, 2000, 2) > per_sequence_bytes(config, 1000, 2)
    cache_only = 2 * 4 * config.num_key_value_heads * (config.hidden_size // config.num_attention_heads) * 1000 * 2
    assert per_sequence_bytes(deeper, 1000, 2) - per_sequence_bytes(config, 1000, 2) == cache_only
