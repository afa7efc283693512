"""examples/walkthrough.py: on a tiny model (scoring a run folder) and, in the slow set, on the embedded model."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from deception_core import read_dataset
from deception_probes import auroc

WALKTHROUGH = Path(__file__).resolve().parents[2] / "examples" / "walkthrough.py"
N_FACTS = 5  # arithmetic and unit facts each; with the 20 capitals, 30 facts, 60 statements


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("walkthrough", WALKTHROUGH)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {WALKTHROUGH}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["walkthrough"] = module  # attrs resolves the record's module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path, reference: Any) -> Any:
    """The walkthrough on the tiny random model, scoring the reference run's folder."""
    return _load().walkthrough(str(tiny_model_dir), run=str(reference.out), n_facts=N_FACTS, max_new_tokens=8)


def test_the_walkthrough_uses_only_top_level_imports() -> None:
    import ast

    modules = {node.module for node in ast.walk(ast.parse(WALKTHROUGH.read_text()))
               if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deception")}
    assert modules == {"deception_core", "deception_probes", "deception_scenarios"}


def test_it_captures_two_statements_per_fact(tiny: Any) -> None:
    assert tiny.n_statements == 2 * (N_FACTS + N_FACTS + 20)


def test_the_probe_trains_on_half_the_facts(tiny: Any) -> None:
    assert tiny.n_train == tiny.n_statements // 2


def test_the_probe_separates_the_personas_on_held_out_facts(tiny: Any) -> None:
    # the personas differ in the prompt the reply attends to: even random weights carry that
    assert (tiny.auroc_low or 0.0) > 0.5


def test_it_scores_every_sample_of_the_run(tiny: Any, reference: Any) -> None:
    assert len(tiny.scores) == len(read_dataset(reference.out))


def test_the_run_scores_are_finite(tiny: Any) -> None:
    assert all(math.isfinite(score) for score in tiny.scores)


def test_it_scores_the_middle_layer_the_run_captured(tiny: Any, reference: Any) -> None:
    layers = read_dataset(reference.out).layers
    assert tiny.layer == layers[len(layers) // 2]


def test_steering_moves_the_projection_by_alpha(tiny: Any) -> None:
    assert tiny.projection_shift == pytest.approx(tiny.alpha, rel=1e-3)


def test_steering_changes_the_greedy_reply(tiny: Any) -> None:
    assert tiny.steered_reply != tiny.reply


def test_the_script_runs_from_the_command_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(WALKTHROUGH), "--model", str(tiny_model_dir), "--facts", "2"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "held-out AUROC" in done.stdout


@pytest.mark.slow
def test_on_the_embedded_model(tmp_path: Path) -> None:
    result = _load().walkthrough("embedded:gemma-3-270m", n_facts=10, workdir=tmp_path)
    statements = read_dataset(tmp_path / "statements")
    y = np.array([sample.label == "deceptive" for sample in statements.samples])
    checks = {
        "held-out AUROC above chance (interval)": result.auroc_low is not None and result.auroc_low > 0.5,
        "the saved statements scored": len(result.scores) == result.n_statements == 80,
        "their scores separate the personas": (auroc(np.array(result.scores), y) or 0.0) > 0.9,
        "projection moved by alpha": math.isclose(result.projection_shift, result.alpha, rel_tol=1e-3),
        "steering changed the reply": result.steered_reply != result.reply,
    }
    assert [name for name, ok in checks.items() if not ok] == [], result
