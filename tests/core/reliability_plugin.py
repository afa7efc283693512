"""A test plugin for the reliability tests, importable in-process and from a subprocess.

Not a test module itself (it defines no tests): a subprocess gets it through
``PYTHONPATH=<this directory>`` and ``DECEPTION_EXTRA_PLUGINS=reliability_plugin:PLUGIN``.

It registers

- ``echo`` and ``echo2``: the echo test game under two names (two scenarios for merge tests);
- ``echo-judge``: a judge that agrees with the echo rule; ``keyed-judge``: the same judge, but it
  needs an API key from the environment (``TOGETHER_API_KEY``), like a remote evaluator;
- ``condition-probe``: a real analysis (grouped cross-validated logistic regression telling the
  HIGH from the LOW incentive condition per layer and position), so "same probe results" can be
  checked while the probes package is elsewhere.

Crash hooks (for the crash test): with ``DECEPTION_TEST_PAUSE_AT=gen:K`` the process writes the
file named by ``DECEPTION_TEST_PAUSE_MARKER`` and sleeps when the K-th reply of this process has
been generated (the trial is in flight); with ``write:K`` it does so inside the K-th checkpoint
shard write, after the bytes are in the temporary file and before the fsync and rename. With
``DECEPTION_TEST_GEN_DELAY=S`` every reply takes S seconds longer (processes sharing a checkpoint).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from deception_core.contracts.analysis import Analysis, AnalysisReport
from deception_core.contracts.hookspecs import hookimpl
from deception_core.testing.fakes import EchoGame, EchoScenario, RuleEchoEvaluator

PAUSE_ENV = "DECEPTION_TEST_PAUSE_AT"
MARKER_ENV = "DECEPTION_TEST_PAUSE_MARKER"
DELAY_ENV = "DECEPTION_TEST_GEN_DELAY"
_counts = {"gen": 0, "write": 0}


def _pause_point(kind: str) -> None:
    _counts[kind] += 1
    if kind == "gen" and os.environ.get(DELAY_ENV):  # slow replies, so processes sharing a checkpoint overlap
        time.sleep(float(os.environ[DELAY_ENV]))
    wanted = os.environ.get(PAUSE_ENV, "")
    if wanted == f"{kind}:{_counts[kind]}":
        Path(os.environ[MARKER_ENV]).write_text(wanted)
        time.sleep(120)  # the test kills us here


if os.environ.get(PAUSE_ENV, "").startswith("write:"):
    _real_fsync = os.fsync

    def _fsync(fd: int) -> None:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if "/trials/." in target:  # the temporary file of a checkpoint shard
            _pause_point("write")
        _real_fsync(fd)

    os.fsync = _fsync


class PausingEchoGame(EchoGame):
    def deliver(self, request, text: str) -> None:
        _pause_point("gen")
        super().deliver(request, text)


class CrashEchoScenario(EchoScenario):
    def new_game(self, spec, facts, options):
        return PausingEchoGame(spec, facts, options)


class Echo2Scenario(CrashEchoScenario):
    name = "echo2"
    description = "The echo game under a second name."


class KeyedEchoEvaluator(RuleEchoEvaluator):
    """The echo judge behind an API key, as a remote evaluator would be."""

    name = "keyed-judge"
    required_env = ("TOGETHER_API_KEY",)

    def __init__(self, context) -> None:
        super().__init__(context)
        self._key = os.environ["TOGETHER_API_KEY"]  # held like a client would hold it


class ConditionProbe(Analysis):
    """Per layer and position: cross-validated AUROC of HIGH vs LOW incentive, folds grouped by trial."""

    name = "condition-probe"

    def run(self, dataset, out_dir: Path, options: dict[str, Any]) -> AnalysisReport:
        import json

        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import GroupKFold

        y = np.array([c.startswith("high") for c in dataset.column("condition")], dtype=int)
        groups = np.array(dataset.column("trial_key"))
        results: dict[str, Any] = {}
        for layer in dataset.layers:
            for position in dataset.positions:
                x = dataset.matrix(layer, position).astype(np.float64)
                scores = np.zeros(len(y))
                for train, test in GroupKFold(n_splits=3).split(x, y, groups):
                    model = LogisticRegression(C=1.0, max_iter=1000).fit(x[train], y[train])
                    scores[test] = model.decision_function(x[test])
                results[f"layer{layer}/{position}"] = {"auroc": float(roc_auc_score(y, scores)),
                                                       "scores": [float(s) for s in scores]}
        path = Path(out_dir) / "condition_probe.json"
        path.write_text(json.dumps(results, indent=2, sort_keys=True))
        table = "\n".join(f"{k}: AUROC {v['auroc']:.3f}" for k, v in sorted(results.items()))
        return AnalysisReport(results, table, [str(path)])


class ReliabilityTestPlugin:
    @hookimpl
    def register_scenarios(self, registry) -> None:
        registry.add("echo", lambda: CrashEchoScenario, summary=CrashEchoScenario.description)
        registry.add("echo2", lambda: Echo2Scenario, summary=Echo2Scenario.description)

    @hookimpl
    def register_evaluators(self, registry) -> None:
        registry.add("echo-judge", lambda: RuleEchoEvaluator, summary="agrees with the echo rule")
        registry.add("keyed-judge", lambda: KeyedEchoEvaluator, summary="the echo judge behind TOGETHER_API_KEY")

    @hookimpl
    def register_analyses(self, registry) -> None:
        registry.add("condition-probe", lambda: ConditionProbe, summary="HIGH vs LOW incentive probe (test)")


PLUGIN = ReliabilityTestPlugin()
PLUGIN_REF = f"{__name__}:PLUGIN"
HERE = Path(__file__).resolve().parent


def unready_analysis_plugins() -> list[str]:
    """Plugins whose registered analyses cannot be imported (yet); tests leave them out."""
    from deception_core.base.registry import Kind
    from deception_core.plugins import build_plugin_set

    broken = []
    for entry in build_plugin_set().registry.entries(Kind.ANALYSIS):
        try:
            entry.load()
        except ImportError:
            broken.append(entry.provider.plugin)
    return broken


def plugin_set():
    """The installed plugins plus this one, built fresh."""
    from deception_core.plugins import EXTRA_ENV, build_plugin_set

    if PLUGIN_REF in os.environ.get(EXTRA_ENV, ""):  # already added through the environment
        return build_plugin_set()
    return build_plugin_set(extra_plugins={"reliability-test": PLUGIN})


def base_args(model_dir: Path, out: Path, **extra: Any) -> list[str]:
    """`deception run` arguments for a fast, deterministic echo run on the tiny model."""
    values = {"--model": str(model_dir), "--scenario-name": "echo", "--evaluator": "echo-judge", "--trials": "3",
              "--max-rounds": "2", "--max-tokens": "6", "--device": "cpu", "--dtype": "float32",
              "--output": str(out)}
    values.update({k: str(v) for k, v in extra.items() if v is not None})
    for key in [k for k, v in extra.items() if v is None]:  # None removes a default flag
        values.pop(key, None)
    args = ["run"]
    for key, value in values.items():
        for item in value.split("+") if key == "--scenario-name" else [value]:
            args += [key, item]
    return args


def run_config(model_dir: Path, out: Path, **overrides: Any):
    """The `RunConfig` equivalent of `base_args` (in-process runs)."""
    from deception_core.config.run import RunConfig

    values = dict(model=str(model_dir), scenario_names=("echo",), evaluator="echo-judge", trials=3, max_rounds=2,
                  max_tokens=6, device="cpu", dtype="float32", output=str(out))
    values.update(overrides)
    return RunConfig(**values)


def load_tiny(model_dir: Path):
    from deception_core.model.spec import ModelSpec
    from deception_core.model.surface import load_model

    return load_model(ModelSpec.parse(str(model_dir)), device="cpu", dtype="float32")


def read_exact(run_dir: Path) -> dict[str, Any]:
    """A dataset's content for exact comparison: records, bytes of every array, meta less its timestamp."""
    import json

    from safetensors.numpy import load_file

    directory = run_dir / "dataset"
    meta = json.loads((directory / "meta.json").read_text())
    meta.pop("created", None)
    arrays = load_file(str(directory / "activations.safetensors"))
    return {
        "meta": meta,
        "samples": (directory / "samples.jsonl").read_text(),
        "trials": (directory / "trials.jsonl").read_text(),
        "arrays": {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in arrays.items()},
    }


def only_area(ckpt: Path) -> Path:
    """The one area of a checkpoint folder used by a single config (``ckpt/<model>-<hash>``)."""
    areas = [p for p in ckpt.iterdir() if (p / "manifest.json").is_file()] if ckpt.is_dir() else []
    assert len(areas) <= 1, areas
    return areas[0] if areas else ckpt / "no-area-yet"


class Killed(Exception):
    """Raised where a killed process would have stopped."""


def dying_store(survive: int) -> type:
    """A checkpoint store class that saves ``survive`` trials, then dies the way a killed process
    would: mid-run, no cleanup (pass it as a sink, or patch it in as the runner's store)."""
    from deception_core.checkpoints.checkpoint import CheckpointStore

    class DyingStore(CheckpointStore):
        def add(self, output: Any) -> None:
            if self.saved == survive:
                raise Killed(f"killed after {survive} trials")
            super().add(output)

    return DyingStore
