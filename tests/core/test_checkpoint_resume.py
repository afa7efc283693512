"""`--checkpoint-dir`: per-trial shards, resume, one area per config in a shared folder, corrupt shards redone."""

from __future__ import annotations

import json
import logging
import pickle

import numpy as np
import pytest
from reliability_plugin import Killed, dying_store, only_area, read_exact, run_config

from deception_core import InterpretabilityRunner
from deception_core.checkpoints.checkpoint import (
    MANIFEST_FILE,
    CheckpointMismatch,
    CheckpointStore,
    CorruptShard,
    _host,
    decode_trial,
    encode_trial,
    list_areas,
    shard_name,
)
from deception_core.checkpoints.shard_key import KEY_FILE, load_or_create_key
from deception_core.plan.plan import plan_trials


def _run(tiny_model_dir, out, ckpt, plugins, model, sink=None, **changes):
    config = run_config(tiny_model_dir, out, analyze=False, checkpoint_dir=str(ckpt), **changes)
    return InterpretabilityRunner(config, plugins=plugins, model=model, trial_sink=sink).run()


def test_interrupted_then_resumed_equals_uninterrupted(tiny_model_dir, tmp_path, plugins, model, reference) -> None:
    ckpt = tmp_path / "ckpt"
    with pytest.raises(Killed):
        _run(tiny_model_dir, tmp_path / "first", ckpt, plugins, model, sink=dying_store(4)(ckpt))
    assert len(list((only_area(ckpt) / "trials").glob("*.safetensors"))) == 4
    resumed = CheckpointStore(ckpt)
    results = _run(tiny_model_dir, tmp_path / "out", ckpt, plugins, model, sink=resumed)
    assert (resumed.resumed, resumed.saved) == (4, 2)  # only the 2 missing trials were played
    assert read_exact(tmp_path / "out") == reference.exact
    keys = [t.trial_key for t in results.dataset.trials]
    assert len(keys) == len(set(keys)) == 6
    assert len(list((only_area(ckpt) / "trials").glob("*.safetensors"))) == 6
    manifest = json.loads((only_area(ckpt) / MANIFEST_FILE).read_text())
    assert manifest["identity"]["max_tokens"] == 6
    assert len(manifest["identity_sha256"]) == 64


def test_runner_builds_the_store_from_config_and_logs_resume(tiny_model_dir, tmp_path, plugins, model, reference) -> None:
    ckpt = tmp_path / "ckpt"
    _run(tiny_model_dir, tmp_path / "a", ckpt, plugins, model)
    assert read_exact(tmp_path / "a") == reference.exact
    again = _run(tiny_model_dir, tmp_path / "b", ckpt, plugins, model)
    assert read_exact(tmp_path / "b") == reference.exact
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


@pytest.mark.parametrize("changes", [{"max_tokens": 7}, {"seed": 5, "temperature": 0.5}, {"layers": "1,2"}])
def test_configs_sharing_a_folder_each_resume_their_own_trials(tiny_model_dir, tmp_path, plugins, model, reference,
                                                              changes) -> None:
    ckpt = tmp_path / "ckpt"
    _run(tiny_model_dir, tmp_path / "a", ckpt, plugins, model)
    other = CheckpointStore(ckpt)
    _run(tiny_model_dir, tmp_path / "b", ckpt, plugins, model, sink=other, **changes)
    assert (other.resumed, other.saved) == (0, 6)  # a config of its own: nothing of the first run reused
    areas = list_areas(ckpt)
    assert len(areas) == 2
    assert sorted(a["trials"] for a in areas) == [6, 6]
    first_again, other_again = CheckpointStore(ckpt), CheckpointStore(ckpt)
    _run(tiny_model_dir, tmp_path / "a2", ckpt, plugins, model, sink=first_again)
    _run(tiny_model_dir, tmp_path / "b2", ckpt, plugins, model, sink=other_again, **changes)
    assert (first_again.resumed, first_again.saved) == (6, 0)
    assert (other_again.resumed, other_again.saved) == (6, 0)
    assert first_again.area != other_again.area
    assert read_exact(tmp_path / "a2") == reference.exact


def test_edited_manifest_is_refused_before_the_model_loads(tiny_model_dir, tmp_path, plugins, model) -> None:
    ckpt = tmp_path / "ckpt"
    _run(tiny_model_dir, tmp_path / "a", ckpt, plugins, model)
    manifest_file = only_area(ckpt) / MANIFEST_FILE
    manifest = json.loads(manifest_file.read_text())
    manifest["identity"]["max_tokens"] = 99
    manifest_file.write_text(json.dumps(manifest))
    config = run_config(tiny_model_dir, tmp_path / "b", analyze=False, checkpoint_dir=str(ckpt))
    with pytest.raises(CheckpointMismatch, match="max_tokens"):
        InterpretabilityRunner(config, plugins=plugins, model="must not be used").run()
    assert not (tmp_path / "b").exists()


def test_cli_lists_what_a_checkpoint_folder_holds(tiny_model_dir, tmp_path, plugins, model) -> None:
    from click.testing import CliRunner

    from deception_core.cli import cli

    ckpt = tmp_path / "ckpt"
    _run(tiny_model_dir, tmp_path / "a", ckpt, plugins, model, trials=1)
    _run(tiny_model_dir, tmp_path / "b", ckpt, plugins, model, trials=2, max_tokens=7)
    result = CliRunner().invoke(cli, ["checkpoints", str(ckpt)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    heads = [i for i, line in enumerate(lines) if "trial(s)" in line]
    assert len(heads) == 2
    described = {lines[i].split(": ")[1].split(" (")[0]: lines[i + 1] for i in heads}
    assert "max_tokens=7" in described["4 trial(s)"]
    assert "max_tokens=6" in described["2 trial(s)"]
    assert "echo 2" in result.output


def test_trial_selection_flags_do_not_count_as_a_changed_config(tiny_model_dir, tmp_path, plugins, model) -> None:
    ckpt = tmp_path / "ckpt"
    first = _run(tiny_model_dir, tmp_path / "a", ckpt, plugins, model, trials=1)
    second = _run(tiny_model_dir, tmp_path / "b", ckpt, plugins, model, trials=2, shard="1/2", verbose=True)
    planned = plan_trials(run_config(tiny_model_dir, tmp_path / "b", trials=2, shard="1/2"), ["echo"])
    assert [t.trial_key for t in second.dataset.trials] == sorted(s.key for s in planned)
    shards = {p.name for p in (only_area(ckpt) / "trials").iterdir()}
    assert len(shards) == len({t.trial_key for t in first.dataset.trials} | {s.key for s in planned})


def test_corrupt_torn_and_planted_shards_are_redone(tiny_model_dir, tmp_path, plugins, model, reference, caplog) -> None:
    ckpt = tmp_path / "ckpt"
    _run(tiny_model_dir, tmp_path / "a", ckpt, plugins, model)
    shards = sorted((only_area(ckpt) / "trials").glob("*.safetensors"))
    torn, flipped, planted, foreign = shards[0], shards[1], shards[2], shards[3]
    torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])
    data = bytearray(flipped.read_bytes())
    data[-5] ^= 0x01  # one bit of one activation
    flipped.write_bytes(bytes(data))
    marker = tmp_path / "pwned"
    planted.write_bytes(pickle.dumps(_Exploit(str(marker))))
    foreign.write_bytes(shards[4].read_bytes())  # a valid shard of another trial under this trial's name
    trials = only_area(ckpt) / "trials"
    leftover = trials / f".{torn.name}.{_host()}.{_dead_pid()}.0123abcd.tmp"  # a dead writer's temporary file
    leftover.write_bytes(b"half a write")
    keep = trials / ".gitkeep"  # a dotfile that is not ours
    keep.write_bytes(b"")
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
    assert read_exact(tmp_path / "out") == reference.exact
    assert not leftover.exists()
    assert keep.exists()


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


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
    output = decode_trial((only_area(tmp_path / "ckpt") / "trials" / shard_name(key)).read_bytes(), key, secret)
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
    shards = list((only_area(ckpt) / "trials").glob("*.safetensors"))
    assert len(shards) == len(results.dataset.trials) == 6
    activations = (tmp_path / "a" / "dataset" / "activations.safetensors").stat().st_size
    # each shard holds one trial: together about one dataset, never a growing re-save of all so far
    assert max(p.stat().st_size for p in shards) < activations / 3
    assert sum(p.stat().st_size for p in shards) < 2.5 * activations
    assert sorted(p.name for p in only_area(ckpt).iterdir()) == [MANIFEST_FILE, "trials"]
    assert sorted(p.name for p in ckpt.iterdir()) == [KEY_FILE, only_area(ckpt).name]


def test_extra_plugins_env_registers_and_reports_bad_references(monkeypatch) -> None:
    import warnings

    from reliability_plugin import PLUGIN_REF

    from deception_core.base.registry import Kind
    from deception_core.plugins import EXTRA_ENV, PluginLoadWarning, build_plugin_set

    monkeypatch.setenv(EXTRA_ENV, f"{PLUGIN_REF}, no_such_module_xyz:PLUGIN")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugins = build_plugin_set()
    assert plugins.registry.get(Kind.SCENARIO, "echo2").provider.plugin == PLUGIN_REF
    assert plugins.plugins["no_such_module_xyz:PLUGIN"].error.startswith("ModuleNotFoundError")
    assert any("no_such_module_xyz" in str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning))
    monkeypatch.setenv("DECEPTION_DISABLE_PLUGINS", PLUGIN_REF)
    assert (Kind.SCENARIO, "echo2") not in build_plugin_set().registry
