"""`--checkpoint-dir`: per-trial shards, resume, refusal of a changed config, corrupt shards redone."""

from __future__ import annotations

import json
import logging
import pickle

import numpy as np
import pytest
from reliability_plugin import load_tiny, plugin_set, read_exact, run_config

from deception_core import InterpretabilityRunner
from deception_core.runner.checkpoint import (
    MANIFEST_FILE,
    CheckpointMismatch,
    CheckpointStore,
    CorruptShard,
    decode_trial,
    encode_trial,
    shard_name,
)
from deception_core.runner.plan import plan_trials
from deception_core.runner.shard_key import KEY_FILE, load_or_create_key


class _Interrupted(Exception):
    pass


class _DyingStore(CheckpointStore):
    """Saves ``survive`` trials, then dies the way a killed process would: mid-run, no cleanup."""

    def __init__(self, directory, survive: int) -> None:
        super().__init__(directory)
        self.survive = survive

    def add(self, output) -> None:
        if self.saved == self.survive:
            raise _Interrupted()
        super().add(output)


@pytest.fixture(scope="module")
def plugins():
    return plugin_set()


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_tiny(tiny_model_dir)


@pytest.fixture(scope="module")
def reference(tiny_model_dir, tmp_path_factory, plugins, model):
    """An uninterrupted run without a checkpoint (3 trials x 2 conditions)."""
    out = tmp_path_factory.mktemp("reference") / "out"
    InterpretabilityRunner(run_config(tiny_model_dir, out, analyze=False), plugins=plugins, model=model).run()
    return read_exact(out)


def _run(tiny_model_dir, out, ckpt, plugins, model, sink=None, **changes):
    config = run_config(tiny_model_dir, out, analyze=False, checkpoint_dir=str(ckpt), **changes)
    return InterpretabilityRunner(config, plugins=plugins, model=model, trial_sink=sink).run()


def test_interrupted_then_resumed_equals_uninterrupted(tiny_model_dir, tmp_path, plugins, model, reference) -> None:
    ckpt = tmp_path / "ckpt"
    with pytest.raises(_Interrupted):
        _run(tiny_model_dir, tmp_path / "first", ckpt, plugins, model, sink=_DyingStore(ckpt, survive=4))
    assert len(list((ckpt / "trials").glob("*.safetensors"))) == 4
    resumed = CheckpointStore(ckpt)
    results = _run(tiny_model_dir, tmp_path / "out", ckpt, plugins, model, sink=resumed)
    assert (resumed.resumed, resumed.saved) == (4, 2)  # only the 2 missing trials were played
    assert read_exact(tmp_path / "out") == reference
    keys = [t.trial_key for t in results.dataset.trials]
    assert len(keys) == len(set(keys)) == 6
    assert len(list((ckpt / "trials").glob("*.safetensors"))) == 6
    manifest = json.loads((ckpt / MANIFEST_FILE).read_text())
    assert manifest["identity"]["max_tokens"] == 6
    assert len(manifest["identity_sha256"]) == 64


def test_runner_builds_the_store_from_config_and_logs_resume(tiny_model_dir, tmp_path, plugins, model, reference) -> None:
    ckpt = tmp_path / "ckpt"
    _run(tiny_model_dir, tmp_path / "a", ckpt, plugins, model)
    assert read_exact(tmp_path / "a") == reference
    again = _run(tiny_model_dir, tmp_path / "b", ckpt, plugins, model)
    assert read_exact(tmp_path / "b") == reference
    assert "resuming from" in (tmp_path / "b" / "run.log").read_text()
    assert "6 trial(s) resumed, 0 saved" in (tmp_path / "b" / "run.log").read_text()
    assert "on disk" in again.summary
    assert again.dataset_bytes > 0


def test_more_trials_extend_an_existing_checkpoint(tiny_model_dir, tmp_path, plugins, model, reference) -> None:
    # batch size 1 plays every trial alone, so the trials the smaller plan saved are exactly what the
    # larger plan plays; at larger sizes its waves differ and they may differ by float noise (README)
    ckpt = tmp_path / "ckpt"
    _run(tiny_model_dir, tmp_path / "small", ckpt, plugins, model, trials=1, batch_size=1)
    store = CheckpointStore(ckpt)
    _run(tiny_model_dir, tmp_path / "out", ckpt, plugins, model, sink=store, trials=3, batch_size=1)
    assert (store.resumed, store.saved) == (2, 4)
    _run(tiny_model_dir, tmp_path / "fresh", tmp_path / "fresh-ckpt", plugins, model, trials=3, batch_size=1)
    assert read_exact(tmp_path / "out") == read_exact(tmp_path / "fresh")


@pytest.mark.parametrize("changes, fields", [
    ({"max_tokens": 7}, ["max_tokens"]),
    ({"seed": 5, "temperature": 0.5}, ["seed", "temperature"]),
    ({"layers": "1,2"}, ["layers", "resolved_layers"]),
])
def test_changed_config_is_refused_before_the_model_loads(tiny_model_dir, tmp_path, plugins, model, changes, fields) -> None:
    ckpt = tmp_path / "ckpt"
    _run(tiny_model_dir, tmp_path / "a", ckpt, plugins, model)
    config = run_config(tiny_model_dir, tmp_path / "b", analyze=False, checkpoint_dir=str(ckpt), **changes)
    with pytest.raises(CheckpointMismatch) as caught:
        InterpretabilityRunner(config, plugins=plugins, model="must not be used").run()
    message = str(caught.value)
    for field in fields:
        assert f"{field}:" in message
    assert "--checkpoint-dir" in message
    assert "new --checkpoint-dir" in message
    assert not (tmp_path / "b").exists()


def test_trial_selection_flags_do_not_count_as_a_changed_config(tiny_model_dir, tmp_path, plugins, model) -> None:
    ckpt = tmp_path / "ckpt"
    first = _run(tiny_model_dir, tmp_path / "a", ckpt, plugins, model, trials=1)
    second = _run(tiny_model_dir, tmp_path / "b", ckpt, plugins, model, trials=2, shard="1/2", verbose=True)
    planned = plan_trials(run_config(tiny_model_dir, tmp_path / "b", trials=2, shard="1/2"), ["echo"])
    assert [t.trial_key for t in second.dataset.trials] == sorted(s.key for s in planned)
    shards = {p.name for p in (ckpt / "trials").iterdir()}
    assert len(shards) == len({t.trial_key for t in first.dataset.trials} | {s.key for s in planned})


def test_corrupt_torn_and_planted_shards_are_redone(tiny_model_dir, tmp_path, plugins, model, reference, caplog) -> None:
    ckpt = tmp_path / "ckpt"
    _run(tiny_model_dir, tmp_path / "a", ckpt, plugins, model)
    shards = sorted((ckpt / "trials").glob("*.safetensors"))
    torn, flipped, planted, foreign = shards[0], shards[1], shards[2], shards[3]
    torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])
    data = bytearray(flipped.read_bytes())
    data[-5] ^= 0x01  # one bit of one activation
    flipped.write_bytes(bytes(data))
    marker = tmp_path / "pwned"
    planted.write_bytes(pickle.dumps(_Exploit(str(marker))))
    foreign.write_bytes(shards[4].read_bytes())  # a valid shard of another trial under this trial's name
    (ckpt / "trials" / ".leftover.tmp").write_bytes(b"half a write")
    store = CheckpointStore(ckpt)
    with caplog.at_level(logging.WARNING, logger="deception"):
        _run(tiny_model_dir, tmp_path / "out", ckpt, plugins, model, sink=store)
    assert (store.resumed, store.saved) == (2, 4)
    assert sorted(store.redone) == sorted(p.name.replace("--", "/")[: -len(".safetensors")]
                                          for p in (torn, flipped, planted, foreign))
    reasons = " ".join(r.getMessage() for r in caplog.records)
    assert "checksum mismatch" in reasons
    assert "not a readable safetensors file" in reasons
    assert "holds trial" in reasons
    assert not marker.exists()
    assert read_exact(tmp_path / "out") == reference
    assert not (ckpt / "trials" / ".leftover.tmp").exists()


class _Exploit:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_shard_round_trip_keeps_every_array_bit_for_bit(tiny_model_dir, tmp_path, plugins, model) -> None:
    results = _run(tiny_model_dir, tmp_path / "a", tmp_path / "ckpt", plugins, model,
                   positions="last_prompt,reply_mean,reply_last,reply_all")
    dataset = results.dataset
    key = dataset.trials[0].trial_key
    secret = load_or_create_key(tmp_path / "ckpt")
    output = decode_trial((tmp_path / "ckpt" / "trials" / shard_name(key)).read_bytes(), key, secret)
    rows = [s.row for s in dataset.samples if s.trial_key == key]
    assert [s.sample_id for s in output.samples] == [dataset.samples[r].sample_id for r in rows]
    for j, row in enumerate(rows):
        for i, layer in enumerate(dataset.layers):
            assert np.array_equal(output.vectors[j]["reply_last"][i], dataset.matrix(layer, "reply_last")[row])
            assert np.array_equal(output.reply_all[j][:, i, :], dataset.reply_tokens(layer, row))
        assert output.prompt_ids[j] == dataset.prompt_ids(row)
        assert output.samples[j].reply_ids == dataset.samples[row].reply_ids
        assert len(output.samples[j].reply_ids) == output.samples[j].n_reply_tokens
    again = decode_trial(encode_trial(output), key)
    assert again.samples == output.samples
    assert again.trial == output.trial
    with pytest.raises(CorruptShard, match="holds trial"):
        decode_trial(encode_trial(output), "echo/emergent/low_incentive/00099")


def test_one_small_shard_per_trial_no_resaving(tiny_model_dir, tmp_path, plugins, model) -> None:
    ckpt = tmp_path / "ckpt"
    results = _run(tiny_model_dir, tmp_path / "a", ckpt, plugins, model)
    shards = list((ckpt / "trials").glob("*.safetensors"))
    assert len(shards) == len(results.dataset.trials) == 6
    activations = (tmp_path / "a" / "dataset" / "activations.safetensors").stat().st_size
    # each shard holds one trial: together about one dataset, never a growing re-save of all so far
    assert max(p.stat().st_size for p in shards) < activations / 3
    assert sum(p.stat().st_size for p in shards) < 2.5 * activations
    assert sorted(p.name for p in ckpt.iterdir()) == [MANIFEST_FILE, KEY_FILE, "trials"]


def test_extra_plugins_env_registers_and_reports_bad_references(monkeypatch) -> None:
    import warnings

    from reliability_plugin import PLUGIN_REF

    from deception_core.plugins import EXTRA_ENV, PluginLoadWarning, build_plugin_set
    from deception_core.registry import Kind

    monkeypatch.setenv(EXTRA_ENV, f"{PLUGIN_REF}, no_such_module_xyz:PLUGIN")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugins = build_plugin_set()
    assert plugins.registry.get(Kind.SCENARIO, "echo2").provider.plugin == PLUGIN_REF
    assert plugins.plugins["no_such_module_xyz:PLUGIN"].error.startswith("ModuleNotFoundError")
    assert any("no_such_module_xyz" in str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning))
    monkeypatch.setenv("DECEPTION_DISABLE_PLUGINS", PLUGIN_REF)
    assert (Kind.SCENARIO, "echo2") not in build_plugin_set().registry
