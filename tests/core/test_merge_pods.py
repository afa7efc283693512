"""`deception merge`: pods with different scenarios or shards combine into the one-run dataset."""

from __future__ import annotations

import json
import shutil

import attrs
import numpy as np
import pytest
from click.testing import CliRunner
from reliability_plugin import PLUGIN_REF, load_tiny, plugin_set, read_exact, run_config, unready_analysis_plugins

from deception_core import InterpretabilityRunner
from deception_core.base.records import Sample, Trial
from deception_core.cli import cli
from deception_core.pipeline.merge import canonical_order, merge_datasets
from deception_core.plugins import DISABLE_ENV, EXTRA_ENV, reset_plugin_set
from deception_core.store.dataset import Dataset, DatasetError, read_dataset, write_dataset


@pytest.fixture(scope="module")
def unready():
    """Analyses whose modules are not importable are left out (every other one is compared)."""
    return ",".join(unready_analysis_plugins())


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory, unready):
    """Pods A (echo), B (echo2), shards 0/2 and 1/2 of both, and one run over both scenarios."""
    root = tmp_path_factory.mktemp("pods")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DISABLE_ENV, unready)
        plugins = plugin_set()
    model = load_tiny(tiny_model_dir)
    both = ("echo", "echo2")
    configs = {
        "a": dict(scenario_names=("echo",)),
        "b": dict(scenario_names=("echo2",)),
        "s0": dict(scenario_names=both, shard="0/2"),
        "s1": dict(scenario_names=both, shard="1/2"),
        "both": dict(scenario_names=both, analyze=True),
    }
    for name, changes in configs.items():
        config = run_config(tiny_model_dir, root / name, **{"analyze": False, **changes})
        InterpretabilityRunner(config, plugins=plugins, model=model).run()
    return root


@pytest.fixture()
def cli_with_plugin(monkeypatch, unready):
    monkeypatch.setenv(EXTRA_ENV, PLUGIN_REF)
    monkeypatch.setenv(DISABLE_ENV, unready)
    reset_plugin_set()
    yield CliRunner()
    reset_plugin_set()


def _untimed(value):
    """Results without wall-clock fields (timings and timestamps differ between any two runs)."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in {"elapsed_s", "cpu_s", "created", "timestamp"}}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def _without_provenance(exact: dict) -> dict:
    meta = dict(exact["meta"])
    meta.pop("merged_from", None)
    return dict(exact, meta=meta)


def test_two_scenario_pods_merge_into_the_one_run_dataset_and_probe_results(runs, tmp_path, cli_with_plugin) -> None:
    out = tmp_path / "merged"
    result = cli_with_plugin.invoke(cli, ["merge", str(out), str(runs / "b"), str(runs / "a")])
    assert result.exit_code == 0, result.output
    assert "merged 2 run(s): 24 samples, 12 trials" in result.output
    assert _without_provenance(read_exact(out)) == read_exact(runs / "both")
    merged = read_dataset(out)
    assert [m["n_trials"] for m in merged.meta.extra["merged_from"]] == [6, 6]
    assert [t.trial_key for t in merged.trials] == canonical_order(t.trial_key for t in merged.trials)

    # the single run scored every reply token with its loaded model; the merged dataset's analysis loads it for that
    analysed = cli_with_plugin.invoke(cli, ["analyze", str(out), "--score-tokens"])
    assert analysed.exit_code == 0, analysed.output
    probe_merged = json.loads((out / "condition_probe.json").read_text())
    probe_single = json.loads((runs / "both" / "condition_probe.json").read_text())
    assert probe_merged == probe_single
    for other in ("probe_results.json",):  # the probes package's results, where it is installed
        if (runs / "both" / other).is_file():
            merged_results = _untimed(json.loads((out / other).read_text()))
            assert merged_results == _untimed(json.loads((runs / "both" / other).read_text()))
    assert len(probe_merged) == 9
    assert all(0.0 <= v["auroc"] <= 1.0 for v in probe_merged.values())
    import torch

    export = torch.load(out / "activations_emergent.pt", weights_only=True)
    assert export["config"]["n_samples"] == 24


def test_shards_merge_into_the_full_run(runs, tmp_path, cli_with_plugin) -> None:
    shard0, shard1 = read_dataset(runs / "s0"), read_dataset(runs / "s1")
    assert len(shard0.trials)
    assert len(shard1.trials)
    assert len(shard0.trials) + len(shard1.trials) == 12
    assert not {t.trial_key for t in shard0.trials} & {t.trial_key for t in shard1.trials}
    out = tmp_path / "merged"
    result = cli_with_plugin.invoke(cli, ["merge", str(out), str(runs / "s0"), str(runs / "s1")])
    assert result.exit_code == 0, result.output
    assert _without_provenance(read_exact(out)) == read_exact(runs / "both")


def _copy_with_meta(runs, tmp_path, name, edit) -> str:
    target = tmp_path / name
    shutil.copytree(runs / "b", target)
    path = target / "dataset" / "meta.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))
    return str(target)


@pytest.mark.parametrize("name, edit, expected", [
    ("model", lambda m: m["model"].update(id="other/model"), "model id"),
    ("revision", lambda m: m["model"].update(revision="abc123"), "model revision"),
    ("dtype", lambda m: m["model"].update(dtype="bfloat16"), "model dtype"),
    ("layers", lambda m: m.update(layers=[1, 2]), "differ in layers"),
    ("positions", lambda m: m.update(positions=["last_prompt"]), "differ in positions"),
    ("schema", lambda m: m.update(schema_version=99), "schema version 99"),
    ("max_tokens", lambda m: m["result_config"].update(max_tokens=99), "--max-tokens (changes results)"),
])
def test_incompatible_runs_are_refused_with_exit_2(runs, tmp_path, cli_with_plugin, name, edit, expected) -> None:
    other = _copy_with_meta(runs, tmp_path, name, edit)
    out = tmp_path / "merged"
    result = cli_with_plugin.invoke(cli, ["merge", str(out), str(runs / "a"), other])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert not out.exists()


def test_allowed_difference_is_recorded(runs, tmp_path, cli_with_plugin) -> None:
    other = _copy_with_meta(runs, tmp_path, "seed", lambda m: m["result_config"].update(seed=7))
    refused = cli_with_plugin.invoke(cli, ["merge", str(tmp_path / "m1"), str(runs / "a"), other])
    assert refused.exit_code == 2
    assert "--allow-difference seed" in refused.output
    result = cli_with_plugin.invoke(cli, ["merge", str(tmp_path / "m2"), str(runs / "a"), other,
                                          "--allow-difference", "seed"])
    assert result.exit_code == 0, result.output
    assert read_dataset(tmp_path / "m2").meta.extra["merged_differences"] == {"seed": [0, 7]}


@pytest.mark.parametrize("inputs, expected", [
    (("a", "a"), "appear in more than one run"),
    (("both", "s0"), "appear in more than one run"),
])
def test_duplicate_trials_are_refused(runs, tmp_path, cli_with_plugin, inputs, expected) -> None:
    out = tmp_path / "merged"
    result = cli_with_plugin.invoke(cli, ["merge", str(out), *(str(runs / i) for i in inputs)])
    assert result.exit_code == 2
    assert expected in result.output
    assert not out.exists()


def test_output_that_already_holds_results_is_refused(runs, tmp_path, cli_with_plugin) -> None:
    result = cli_with_plugin.invoke(cli, ["merge", str(runs / "a"), str(runs / "b")])
    assert result.exit_code == 2
    assert "not empty" in result.output


def _synthetic(keys: list[str], rng: np.random.Generator) -> Dataset:
    """A dataset with every array layout: per-sample, reply tokens, prompt ids and SAE codes."""
    samples, trials = [], []
    arrays: dict[str, list[np.ndarray]] = {"layer0/reply_last": [], "layer0/reply_all": []}
    ragged: dict[str, list[np.ndarray]] = {"prompt_ids/values": [], "sae/reply_last/indices": [],
                                           "sae/reply_last/values": []}
    sae_lengths, prompt_lengths, token = [], [], 0
    for key in keys:
        trials.append(Trial(trial_key=key, scenario=key.split("/")[0], mode="emergent"))
        for j in range(2):
            n_tok, n_prompt, n_sae = (int(x) for x in rng.integers(1, 5, size=3))
            samples.append(Sample(sample_id=f"{key}/{j}", trial_key=key, mode="emergent", label="honest",
                            scenario=key.split("/")[0], condition="high_incentive", row=len(samples),
                            reply_all_offset=token, reply_all_length=n_tok))
            token += n_tok
            arrays["layer0/reply_last"].append(rng.normal(size=(1, 4)).astype(np.float32))
            arrays["layer0/reply_all"].append(rng.normal(size=(n_tok, 4)).astype(np.float32))
            ragged["prompt_ids/values"].append(rng.integers(0, 300, size=n_prompt).astype(np.int32))
            ragged["sae/reply_last/indices"].append(rng.integers(0, 64, size=n_sae).astype(np.int32))
            ragged["sae/reply_last/values"].append(rng.random(n_sae).astype(np.float32))
            prompt_lengths.append(n_prompt)
            sae_lengths.append(n_sae)
    out = {k: np.concatenate(v) for k, v in {**arrays, **ragged}.items()}
    out["prompt_ids/offsets"] = np.concatenate([[0], np.cumsum(prompt_lengths)]).astype(np.int64)
    out["sae/reply_last/offsets"] = np.concatenate([[0], np.cumsum(sae_lengths)]).astype(np.int64)
    meta = {"schema_version": 1, "model": {"id": "m"}, "layers": [0], "positions": ["reply_last", "reply_all"],
            "capture_backend": "hf", "sae": {"d_sae": 64}, "result_config": {"seed": 0}, "scenarios": []}
    return Dataset(meta, samples, trials, out)


def test_ragged_reply_token_and_sae_arrays_follow_their_rows(tmp_path) -> None:
    rng = np.random.default_rng(0)
    first = _synthetic(["s/emergent/high_incentive/00002", "s/emergent/high_incentive/00000"], rng)
    second = _synthetic(["s/emergent/high_incentive/00001", "r/emergent/high_incentive/00000"], rng)
    merged = merge_datasets([first, second], ["first", "second"])
    assert [t.trial_key for t in merged.trials] == [
        "r/emergent/high_incentive/00000", "s/emergent/high_incentive/00000",
        "s/emergent/high_incentive/00001", "s/emergent/high_incentive/00002"]
    write_dataset(tmp_path / "m", merged)
    merged = read_dataset(tmp_path / "m")  # the integrity checks of the reader pass
    sources = {s.sample_id: (d, s.row) for d in (first, second) for s in d.samples}
    for sample in merged.samples:
        source, row = sources[sample.sample_id]
        new = sample.row
        assert np.array_equal(merged.matrix(0, "reply_last")[new], source.matrix(0, "reply_last")[row])
        assert np.array_equal(merged.reply_tokens(0, new), source.reply_tokens(0, row))
        assert merged.prompt_ids(new) == source.prompt_ids(row)
        for member in ("indices", "values"):
            offsets = merged.arrays["sae/reply_last/offsets"]
            got = merged.arrays[f"sae/reply_last/{member}"][offsets[new]: offsets[new + 1]]
            src = source.arrays["sae/reply_last/offsets"]
            assert np.array_equal(got, source.arrays[f"sae/reply_last/{member}"][src[row]: src[row + 1]])


def test_sae_mismatch_and_unknown_array_layout_are_refused() -> None:
    rng = np.random.default_rng(1)
    first, second = _synthetic(["a/emergent/high_incentive/00000"], rng), _synthetic(["b/emergent/high_incentive/00000"], rng)
    second.meta = attrs.evolve(second.meta, sae={"d_sae": 128})
    with pytest.raises(DatasetError, match="differ in SAE"):
        merge_datasets([first, second], ["first", "second"])
    second.meta = attrs.evolve(second.meta, sae=first.meta.sae)
    for d in (first, second):
        d.arrays["odd"] = np.zeros(7)
    with pytest.raises(DatasetError, match="no known layout"):
        merge_datasets([first, second], ["first", "second"])
