"""How long the causal tests take next to the games (`deception bench --causal`).

One run of the README quick start's shape (two scenarios, both modes, ``--trials`` per condition,
two rounds, rule labels) with ``--causal``, timed stage by stage by the runner itself: the play
stage (every trial played) and the causal stage (patching, ablation, steering and faithfulness on
``causal_samples`` prompts). The row says whether the causal stage stays within a small multiple of
the play stage, and each test's status, since a fast test that answers "not testable" is no answer.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from deception_core.base.types import JSONObject
from deception_core.config.plugin_options import config_with_options
from deception_core.pipeline import InterpretabilityRunner
from deception_core.plugins import get_plugin_set

if TYPE_CHECKING:
    from deception_core.model.surface import Model

#: the README quick start's scenarios
QUICK_START_SCENARIOS = ("info_withholding", "capability_bluff")


@attrs.frozen
class CausalBenchResult:
    trials: int
    causal_samples: int
    play_seconds: float
    causal_seconds: float
    statuses: dict[str, str]  # causal test -> its status in the last repeat
    rounds: tuple[tuple[float, float], ...] = ()  # (play, causal) seconds of each repeat

    @property
    def ratio(self) -> float:
        return self.causal_seconds / self.play_seconds if self.play_seconds else float("nan")


def run_causal_benchmark(loaded: Model, model_name: str, *, trials: int = 2, max_rounds: int = 2,
                         causal_samples: int = 10, repeats: int = 1, max_tokens: int | None = None,
                         scenarios: Sequence[str] = QUICK_START_SCENARIOS,
                         progress: Callable[[str], None] = lambda message: None) -> CausalBenchResult:
    """``repeats`` quick-start-shaped runs with ``--causal``; medians of the runner's stage times."""

    device = "cuda" if next(loaded.hf_model.parameters()).is_cuda else "cpu"
    rounds = []
    statuses: dict[str, str] = {}
    n_trials = 0
    with tempfile.TemporaryDirectory(prefix="deception-bench-causal-") as scratch:
        for repeat in range(repeats):
            values = dict(model=model_name, mode="both", scenario_names=list(scenarios), trials=trials,
                          max_rounds=max_rounds, label_policy="rule", causal=True, causal_samples=causal_samples,
                          report=False, device=device, dtype=loaded.dtype, output=str(Path(scratch) / f"run-{repeat}"))
            # --causal-samples is the causal tests' own flag: mapped into their settings as `deception run` maps it
            config = config_with_options(values, get_plugin_set().run_options(), given=tuple(values))
            if max_tokens is not None:
                config = attrs.evolve(config, max_tokens=max_tokens)
            run = InterpretabilityRunner(config, model=loaded, trial_sink=None).run()
            play, causal = run.stage_seconds["play"], run.stage_seconds.get("causal", 0.0)
            statuses = {name: str(record.get("status")) for name, record in run.causal.items()}
            n_trials = len(run.dataset.trials)
            progress(f"causal bench run {repeat + 1} of {repeats}: play {play:.1f} s, causal {causal:.1f} s")
            rounds.append((play, causal))
    return CausalBenchResult(n_trials, causal_samples, statistics.median(p for p, _ in rounds),
                             statistics.median(c for _, c in rounds), statuses, tuple(rounds))


def format_causal_row(result: CausalBenchResult, header: str = "") -> str:
    lines = [header] if header else []
    lines.append(f"{'stage':<24}{'trials':>8}{'prompts':>9}{'play s':>10}{'causal s':>10}{'causal/play':>13}")
    lines.append(f"{'causal (quick start)':<24}{result.trials:>8}{result.causal_samples:>9}{result.play_seconds:>10.1f}"
                 f"{result.causal_seconds:>10.1f}{result.ratio:>13.2f}")
    lines.append("tests: " + ", ".join(f"{name} {status}" for name, status in result.statuses.items()))
    return "\n".join(lines)


def causal_json(result: CausalBenchResult) -> JSONObject:
    return {"stage": "causal (quick start)", "trials": result.trials, "causal_samples": result.causal_samples,
            "play_seconds": result.play_seconds, "causal_seconds": result.causal_seconds,
            "causal_over_play": result.ratio, "statuses": result.statuses,
            "repeats": [{"play_seconds": p, "causal_seconds": c} for p, c in result.rounds]}
