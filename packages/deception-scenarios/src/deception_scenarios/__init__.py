"""deception_scenarios: the negotiation scenarios, the evaluators (judges) and the statement sets of the toolkit.

::

    from deception_scenarios import HiddenValue, LocalEvaluator, instructed_pairs

    records = instructed_pairs(n_arithmetic=10, n_units=10)  # for deception_core.capture_texts

The scenarios (`UltimatumBluff`, `CapabilityBluff`, `HiddenValue`, `InfoWithholding`, `PromiseBreak`,
`AllianceBetrayal`, the benign `ControlRequests`; their base `NegotiationScenario`/`NegotiationGame`
and `ScenarioSettings`); the evaluators (`LocalEvaluator`, `TogetherEvaluator`, `GoogleEvaluator`,
their `RemoteEvaluator` base, `parse_verdict`); the instructed-pairs statement set (`instructed_pairs`,
`InstructedPairs`, `write_instructed_pairs`).

Importing this package is light: each name's module is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deception_core import lazy_exports

if TYPE_CHECKING:
    from deception_scenarios.contrast import (
        InstructedPairs,
        InstructedPairsSettings,
        instructed_pairs,
        write_instructed_pairs,
    )
    from deception_scenarios.evaluators.google import GoogleEvaluator
    from deception_scenarios.evaluators.local import LocalEvaluator, LocalJudgeSettings
    from deception_scenarios.evaluators.parsing import parse_verdict
    from deception_scenarios.evaluators.remote import JudgeSettings, RemoteEvaluator
    from deception_scenarios.evaluators.together import TogetherEvaluator
    from deception_scenarios.game import NegotiationGame, NegotiationScenario, ScenarioSettings
    from deception_scenarios.scenarios.alliance_betrayal import AllianceBetrayal
    from deception_scenarios.scenarios.capability import CapabilityBluff
    from deception_scenarios.scenarios.control import ControlRequests
    from deception_scenarios.scenarios.hidden_value import HiddenValue
    from deception_scenarios.scenarios.info_withholding import InfoWithholding
    from deception_scenarios.scenarios.promise_break import PromiseBreak
    from deception_scenarios.scenarios.ultimatum import UltimatumBluff

_SCENARIOS = "deception_scenarios.scenarios"
_EVALUATORS = "deception_scenarios.evaluators"
#: public name -> ``module:attribute`` it is read from on first use
_LAZY: dict[str, str] = {
    "UltimatumBluff": f"{_SCENARIOS}.ultimatum:UltimatumBluff",
    "CapabilityBluff": f"{_SCENARIOS}.capability:CapabilityBluff",
    "HiddenValue": f"{_SCENARIOS}.hidden_value:HiddenValue",
    "InfoWithholding": f"{_SCENARIOS}.info_withholding:InfoWithholding",
    "PromiseBreak": f"{_SCENARIOS}.promise_break:PromiseBreak",
    "AllianceBetrayal": f"{_SCENARIOS}.alliance_betrayal:AllianceBetrayal",
    "ControlRequests": f"{_SCENARIOS}.control:ControlRequests",
    "NegotiationScenario": "deception_scenarios.game:NegotiationScenario",
    "NegotiationGame": "deception_scenarios.game:NegotiationGame",
    "ScenarioSettings": "deception_scenarios.game:ScenarioSettings",
    "LocalEvaluator": f"{_EVALUATORS}.local:LocalEvaluator",
    "LocalJudgeSettings": f"{_EVALUATORS}.local:LocalJudgeSettings",
    "RemoteEvaluator": f"{_EVALUATORS}.remote:RemoteEvaluator",
    "JudgeSettings": f"{_EVALUATORS}.remote:JudgeSettings",
    "TogetherEvaluator": f"{_EVALUATORS}.together:TogetherEvaluator",
    "GoogleEvaluator": f"{_EVALUATORS}.google:GoogleEvaluator",
    "parse_verdict": f"{_EVALUATORS}.parsing:parse_verdict",
    "InstructedPairs": "deception_scenarios.contrast:InstructedPairs",
    "InstructedPairsSettings": "deception_scenarios.contrast:InstructedPairsSettings",
    "instructed_pairs": "deception_scenarios.contrast:instructed_pairs",
    "write_instructed_pairs": "deception_scenarios.contrast:write_instructed_pairs",
}

__all__ = [
    "AllianceBetrayal",
    "CapabilityBluff",
    "ControlRequests",
    "GoogleEvaluator",
    "HiddenValue",
    "InfoWithholding",
    "InstructedPairs",
    "InstructedPairsSettings",
    "JudgeSettings",
    "LocalEvaluator",
    "LocalJudgeSettings",
    "NegotiationGame",
    "NegotiationScenario",
    "PromiseBreak",
    "RemoteEvaluator",
    "ScenarioSettings",
    "TogetherEvaluator",
    "UltimatumBluff",
    "instructed_pairs",
    "parse_verdict",
    "write_instructed_pairs",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
