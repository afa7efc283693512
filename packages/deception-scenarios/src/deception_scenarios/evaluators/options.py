"""``--judge-model`` and ``--judge-url``: the cloud guide's judge flags, mapped into the settings of
the judge ``--evaluator`` names (``components.evaluator.<name>.model`` and ``.base_url``; for
example `deception_scenarios.evaluators.remote.JudgeSettings`). A judge that takes no settings
refuses them when the run is validated, naming itself."""

from __future__ import annotations

import attrs

from deception_core import ComponentParams, RunConfig, RunOptions, option


@attrs.frozen(kw_only=True)
class JudgeFlags:
    """The judge's flags, as the cloud guide names them."""

    judge_model: str | None = option(None, help="The judge's model (remote evaluators); recorded in config.json.")
    judge_url: str | None = option(None, help="The judge API's base URL (remote evaluators).")


def judge_components(flags: JudgeFlags, set_keys: frozenset[str], config: RunConfig) -> ComponentParams:
    params = {setting: getattr(flags, flag) for flag, setting in (("judge_model", "model"), ("judge_url", "base_url"))
              if flag in set_keys and getattr(flags, flag) is not None}
    return {"evaluator": {config.evaluator: params}} if params else {}


JUDGE_OPTIONS: RunOptions[JudgeFlags] = RunOptions("deception-scenarios (judge)", JudgeFlags, judge_components)
