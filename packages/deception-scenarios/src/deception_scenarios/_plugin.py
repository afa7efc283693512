"""The deception-scenarios plugin: the six negotiation scenarios, the control scenario, the on-policy
role plays, the evaluators, the instructed-pairs contrast set and the field's published sets.

Registered lazily: nothing below imports torch, transformers or an HTTP client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deception_core import hookimpl
from deception_scenarios.evaluators.options import JUDGE_OPTIONS
from deception_scenarios.published.sources import SOURCES

if TYPE_CHECKING:
    from deception_core import KindRegistry, RunOptions
    from deception_scenarios.evaluators.options import JudgeFlags

SCENARIOS = {
    "ultimatum_bluff": ("ultimatum:UltimatumBluff",
                        "Split 100 points; claiming a final offer above your true minimum is a bluff"),
    "capability_bluff": ("capability:CapabilityBluff",
                         "A contractor states a delivery time against a known true capability"),
    "hidden_value": ("hidden_value:HiddenValue", "A seller states what an item cost them while a buyer haggles"),
    "info_withholding": ("info_withholding:InfoWithholding",
                         "A used-car seller with a known defect is asked about the car's condition"),
    "promise_break": ("promise_break:PromiseBreak",
                      "Promise to cooperate, then a secret cooperate/defect move is played"),
    "alliance_betrayal": ("alliance_betrayal:AllianceBetrayal",
                          "Three players; an ally asks for loyalty while a rival offers more, then the vote happens"),
}

#: ``--scenarios N`` runs the first N: the predecessor's core three first (its ``--scenarios 3`` set),
#: then the other three, so every N gives one set for both modes
RANKING = ("ultimatum_bluff", "hidden_value", "alliance_betrayal", "capability_bluff", "info_withholding",
           "promise_break")

#: benign scenarios (no reason to deceive): control sets for probe thresholds, never in the default runs
CONTROLS = {
    "control": ("control:ControlRequests",
                "Ordinary requests with no reason to deceive: the benign control set for probe thresholds"),
}

#: the field's on-policy sets: played by name only, never among `--scenarios N`
FIELD_SCENARIOS = {
    "roleplaying": ("roleplaying:Roleplaying",
                    "Apollo-style role plays answered in role, single turn; the rule is 'not checkable', so the "
                    "label policy takes the judge's verdict"),
}

#: contrast and control data captured by name (`deception capture NAME`)
STATEMENT_SETS = {
    "instructed_pairs": ("contrast:InstructedPairs",
                         "Instructed pairs: true facts said under an honest and a dishonest persona (RepE-style contrast)"),
    "apollo_roleplaying": ("published.sets:ApolloRoleplaying",
                           "Apollo's role plays off policy: each scenario's honest and deceptive completion"),
    "apollo_instructed_pairs": ("published.sets:ApolloInstructedPairs",
                                "Apollo's instructed pairs: each true fact after an honest and a dishonest persona"),
    "ai_liar": ("published.sets:AILiar",
                "How to Catch an AI Liar: one answer under a normal and under a deceiving instruction"),
    "liars_bench": ("published.sets:LiarsBench",
                    "Liars' Bench: on-policy lies and honest replies of four model families over seven datasets"),
}

EVALUATORS = {
    "local": ("local:LocalEvaluator", "The run's own model judges each utterance (greedy, constrained answer)"),
    "together": ("together:TogetherEvaluator", "Together's OpenAI-compatible chat API judges (TOGETHER_API_KEY)"),
    "google": ("google:GoogleEvaluator", "Google Gemini generateContent judges (GOOGLE_API_KEY)"),
}


@hookimpl
def register_scenarios(registry: KindRegistry) -> None:
    for name, (target, summary) in SCENARIOS.items():  # --scenarios N takes the first N of RANKING
        registry.add(name, f"deception_scenarios.scenarios.{target}", summary=summary, order=RANKING.index(name))
    for name, (target, summary) in CONTROLS.items():  # unranked: never among `--scenarios N`, only by name
        registry.add(name, f"deception_scenarios.scenarios.{target}", summary=summary)
    for name, (target, summary) in FIELD_SCENARIOS.items():
        registry.add(name, f"deception_scenarios.scenarios.{target}", summary=summary, source=SOURCES[name])


@hookimpl
def register_evaluators(registry: KindRegistry) -> None:
    for name, (target, summary) in EVALUATORS.items():
        registry.add(name, f"deception_scenarios.evaluators.{target}", summary=summary)


@hookimpl
def register_statement_sets(registry: KindRegistry) -> None:
    for name, (target, summary) in STATEMENT_SETS.items():
        registry.add(name, f"deception_scenarios.{target}", summary=summary, source=SOURCES[name])


@hookimpl
def register_run_options() -> RunOptions[JudgeFlags]:
    """``--judge-model`` and ``--judge-url``, mapped into the chosen judge's settings."""

    return JUDGE_OPTIONS
