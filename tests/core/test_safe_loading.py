"""Files from another machine are never unpickled: planted pickles are refused, readers stay safe."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from reliability_plugin import PLUGIN_REF, load_tiny, only_area, plugin_set, run_config, unready_analysis_plugins

from deception_core import InterpretabilityRunner
from deception_core.checkpoints.checkpoint import CheckpointStore, shard_name
from deception_core.cli import cli
from deception_core.plugins import DISABLE_ENV, EXTRA_ENV, reset_plugin_set
from deception_core.store.dataset import read_dataset

SOURCES = Path(__file__).resolve().parents[2] / "packages"


class _Exploit:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def finished(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    config = run_config(tiny_model_dir, root / "run", analyze=False, checkpoint_dir=str(root / "ckpt"))
    InterpretabilityRunner(config, plugins=plugin_set(), model=load_tiny(tiny_model_dir)).run()
    return root


@pytest.fixture()
def run_dir(finished, tmp_path):
    """A private copy of a finished run (``tmp_path/run``) and its checkpoint (``tmp_path/ckpt``)."""
    shutil.copytree(finished / "ckpt", tmp_path / "ckpt")
    return Path(shutil.copytree(finished / "run", tmp_path / "run"))


def test_the_activation_export_loads_with_weights_only_and_matches_the_dataset(run_dir) -> None:
    """The export holds tensors and plain containers only, so a reader never has to unpickle code."""
    export = torch.load(run_dir / "activations_emergent.pt", weights_only=True)
    dataset = read_dataset(run_dir)
    assert export["config"]["n_samples"] == len(dataset)
    assert export["labels"]["label"] == dataset.column("label")
    for layer in dataset.layers:
        for position in dataset.positions:
            np.testing.assert_array_equal(export["activations"][layer][position].numpy(), dataset.matrix(layer, position))


def test_merge_and_analyze_never_open_planted_pickles(run_dir, tmp_path, monkeypatch) -> None:
    marker = tmp_path / "pwned"
    torch.save(_Exploit(str(marker)), run_dir / "activations_emergent.pt")
    torch.save(_Exploit(str(marker)), run_dir / "dataset" / "extra.pt")
    monkeypatch.setenv(EXTRA_ENV, PLUGIN_REF)
    monkeypatch.setenv(DISABLE_ENV, ",".join(unready_analysis_plugins()))
    reset_plugin_set()
    try:
        merged = CliRunner().invoke(cli, ["merge", str(tmp_path / "merged"), str(run_dir)])
        assert merged.exit_code == 0, merged.output
        analysed = CliRunner().invoke(cli, ["analyze", str(run_dir), "--output", str(tmp_path / "analysis")])
        assert analysed.exit_code == 0, analysed.output
    finally:
        reset_plugin_set()
    assert not marker.exists()


def test_the_planted_pickle_is_live_and_the_weights_only_reader_refuses_it(tmp_path) -> None:
    """Positive control of the test above: the planted file runs code when unpickled, and the reader
    the README gives for the export (`torch.load(..., weights_only=True)`) opens it and refuses it."""
    import pickle

    planted, refused, ran = tmp_path / "planted.pt", tmp_path / "refused", tmp_path / "ran"
    torch.save(_Exploit(str(refused)), planted)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(planted, weights_only=True)
    assert not refused.exists()
    torch.save(_Exploit(str(ran)), planted)
    torch.load(planted, weights_only=False)  # what the toolkit never does: the exploit runs
    assert ran.exists()


def test_a_planted_pickle_in_place_of_the_activations_is_refused_by_the_reader(run_dir, tmp_path) -> None:
    """The dataset reader does open activations.safetensors: a pickle there is refused (exit 2), not run."""
    marker = tmp_path / "pwned"
    torch.save(_Exploit(str(marker)), run_dir / "dataset" / "activations.safetensors")
    result = CliRunner().invoke(cli, ["analyze", str(run_dir), "--output", str(tmp_path / "analysis")])
    assert result.exit_code == 2, result.output
    assert "activations.safetensors" in result.output
    assert not marker.exists()
    assert not (tmp_path / "analysis").exists()


def test_planted_pickle_as_checkpoint_shard_is_discarded(run_dir, tmp_path, tiny_model_dir) -> None:
    marker = tmp_path / "pwned"
    dataset = read_dataset(run_dir)
    key = dataset.trials[0].trial_key
    torch.save(_Exploit(str(marker)), only_area(tmp_path / "ckpt") / "trials" / shard_name(key))
    store = CheckpointStore(tmp_path / "ckpt")
    config = run_config(tiny_model_dir, tmp_path / "again", analyze=False, checkpoint_dir=str(tmp_path / "ckpt"))
    InterpretabilityRunner(config, plugins=plugin_set(), model=load_tiny(tiny_model_dir), trial_sink=store).run()
    assert store.redone == [key]
    assert store.saved == 1
    assert not marker.exists()


def _calls(text: str, name: str) -> list[str]:
    """The argument text of every call to ``name(`` in ``text`` (balanced parentheses)."""
    found = []
    for match in re.finditer(re.escape(name) + r"\(", text):
        depth, i = 1, match.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        found.append(text[match.end(): i - 1])
    return found


def test_no_reader_in_the_toolkit_unpickles() -> None:
    offenders = []
    files = sorted(SOURCES.glob("*/src/**/*.py"))
    assert len(files) > 20
    for path in files:
        text = path.read_text()
        for args in _calls(text, "torch.load"):
            if not re.search(r"weights_only\s*=\s*True", args):
                offenders.append(f"{path}: torch.load({args})")
        for forbidden in ("pickle.load(", "pickle.loads(", "joblib.load(", "np.load("):
            for args in _calls(text, forbidden[:-1]):
                if forbidden == "np.load(" and re.search(r"allow_pickle\s*=\s*False", args):
                    continue
                offenders.append(f"{path}: {forbidden}{args})")
    assert not offenders, "\n".join(offenders)
