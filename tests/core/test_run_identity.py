"""The run's identity hash is pinned: a checkpoint written by an earlier version must still resume.

The two hashes below were computed by the code before the resolved-run record existed, for the
same settings; a change that moves a setting (for example into a component's settings) must keep
the identity's keys and values, or every existing checkpoint area would be orphaned.
"""

from __future__ import annotations

from deception_core.checkpoints.checkpoint import area_name
from deception_core.config.resolved import ResolvedRun
from deception_core.config.run import RunConfig
from deception_core.pipeline.validate import resolved_components
from deception_core.plugins import get_plugin_set

QUICK_START_HASH = "9b83e08b04ed3dc1002c9cf203372f20fcb42e63acedc3a8ccfb44be77a4d866"
REMOTE_JUDGE_SAE_HASH = "e00f4e0b6f3e0f0a8b5896b2c02cdac2782e577df35851cbe52bf9bb10f6491a"


def resolved(config: RunConfig, layers: tuple[int, ...], backend: str) -> ResolvedRun:
    registry = get_plugin_set().registry
    return ResolvedRun(config=config, layers=layers, capture_backend=backend,
                       components=resolved_components(config, registry))


def quick_start() -> RunConfig:
    return RunConfig(model="embedded:gemma-3-270m", mode="both", scenario_names=("info_withholding", "capability_bluff"),
                     trials=2, max_rounds=2, label_policy="rule")


#: the settings as the command line gives them (the plugins' flags included)
REMOTE_JUDGE_FLAGS = dict(model="google/gemma-2b-it", evaluator="together", judge_model="meta-llama/X",
                          judge_url="https://judge.example.org", sae=True, sae_layer=5, sae_path="/tmp/sae-dir",
                          layers="4,9", components={"scenario": {"info_withholding": {}}}, seed=3, temperature=0.0)


def remote_judge_with_sae() -> RunConfig:
    """The same settings in Python: the judge's and the SAE's as their components' settings."""
    return RunConfig(model="google/gemma-2b-it", evaluator="together", layers="4,9", seed=3, temperature=0.0,
                     components={"scenario": {"info_withholding": {}},
                                 "evaluator": {"together": {"model": "meta-llama/X",
                                                            "base_url": "https://judge.example.org"}},
                                 "sae": {"sae-lens": {"layer": 5, "path": "/tmp/sae-dir"}}})


def test_the_quick_start_keeps_its_identity_hash() -> None:
    assert resolved(quick_start(), (3, 9, 14), "hf").identity_hash == QUICK_START_HASH


def test_the_quick_start_keeps_its_checkpoint_area() -> None:
    assert area_name(resolved(quick_start(), (3, 9, 14), "hf").identity) == "gemma-3-270m-9b83e08b04ed"


def test_a_remote_judge_with_an_sae_keeps_its_identity_hash(monkeypatch) -> None:
    for name in ("DECEPTION_TOGETHER_MODEL", "DECEPTION_TOGETHER_BASE_URL", "DECEPTION_JUDGE_TIMEOUT",
                 "DECEPTION_JUDGE_MAX_TRIES", "DECEPTION_JUDGE_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    assert resolved(remote_judge_with_sae(), (4, 5, 9), "hybrid").identity_hash == REMOTE_JUDGE_SAE_HASH


def test_the_flags_give_the_same_identity_as_the_components(monkeypatch) -> None:
    from deception_core.config.plugin_options import config_with_options

    for name in ("DECEPTION_TOGETHER_MODEL", "DECEPTION_TOGETHER_BASE_URL", "DECEPTION_JUDGE_TIMEOUT",
                 "DECEPTION_JUDGE_MAX_TRIES", "DECEPTION_JUDGE_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    flags = config_with_options(REMOTE_JUDGE_FLAGS, get_plugin_set().run_options(), given=tuple(REMOTE_JUDGE_FLAGS))
    assert flags == remote_judge_with_sae()
    assert resolved(flags, (4, 5, 9), "hybrid").identity_hash == REMOTE_JUDGE_SAE_HASH


def test_the_identity_does_not_depend_on_where_the_model_runs() -> None:
    from deception_core.config.resolved import Placement

    run = resolved(quick_start(), (3, 9, 14), "hf")
    placed = run.placed(Placement(device="cpu", dtype="float32", batch_size=16))
    assert placed.identity_hash == QUICK_START_HASH
