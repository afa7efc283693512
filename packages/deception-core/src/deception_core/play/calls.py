"""How many generation calls a run made, and what --fast and --ultrafast save (for the run summary)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from deception_core.base.records import Trial

#: generation calls per talk round of each agent setting (theory of mind, move, counterpart)
CALLS_PER_ROUND = {"default": 3, "fast": 2, "ultrafast": 1}


def agent_setting(result_config: Mapping[str, object]) -> str:
    if result_config.get("ultrafast"):
        return "ultrafast"
    return "fast" if result_config.get("fast") else "default"


def talk_calls(trial: Trial) -> int:
    """Calls of the talk rounds (request ids tagged ``#r<round>``), leaving out the final moves."""
    return sum(1 for call in trial.calls if "#r" in str(call.get("request_id", "")))


def _rounds_played(trial: Trial) -> int:
    value = (trial.outcome or {}).get("rounds_played") or 0
    return int(value) if isinstance(value, (int, float, str)) else 0


def call_summary(trials: Sequence[Trial], result_config: Mapping[str, object]) -> str:
    """One line: calls made per trial and per talk round, and the saving against the other settings."""
    if not trials:
        return "generation calls: none (no trials)"
    total = sum(len(t.calls) for t in trials)
    rounds = sum(_rounds_played(t) for t in trials)
    per_round = sum(talk_calls(t) for t in trials) / rounds if rounds else 0.0
    setting = agent_setting(result_config)
    line = (f"generation calls: {total} in {len(trials)} trial(s), {total / len(trials):.1f} per trial, "
            f"{per_round:.2f} per talk round ({setting}")
    if result_config.get("self_report"):
        line += ", with a self-report question per round"
    line += ")"
    extra = 1 if result_config.get("self_report") else 0
    mine = CALLS_PER_ROUND[setting] + extra
    saving = [f"{CALLS_PER_ROUND[other] + extra} with {flag} ({(CALLS_PER_ROUND[other] + extra) / mine:.1f}x as many)"
              for other, flag in (("fast", "--fast"), ("default", "the default"))
              if CALLS_PER_ROUND[other] > CALLS_PER_ROUND[setting]]
    if saving:
        line += f"; per talk round {mine} call(s) here against {' and '.join(saving)}"
    return line
