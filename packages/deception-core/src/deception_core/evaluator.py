"""The contract of an evaluator: an LLM judge that labels focal utterances.

The judge sees the scenario's private facts, the dialogue so far and a question, and answers in
a constrained format. An answer it cannot parse becomes ``ambiguous`` with the raw text kept.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import attrs

from deception_core.types import JudgeVerdict, Message

# A text generator offered by the run to evaluators that use the run's own model.
TextGenerator = Callable[[Sequence[Sequence[Message]], int], list[str]]
# Log-probability of each candidate continuation after each conversation's prompt: [conversation][choice].
ChoiceScorer = Callable[[Sequence[Sequence[Message]], Sequence[str]], list[list[float]]]


@attrs.frozen
class JudgeRequest:
    scenario: str
    facts: str
    question: str
    dialogue: tuple[dict[str, str], ...]
    utterance: str
    speaker: str = "Negotiator"


@attrs.frozen
class EvaluatorContext:
    """What a run gives an evaluator when it builds one."""

    generate_text: TextGenerator | None = None
    score_choices: ChoiceScorer | None = None
    options: dict[str, Any] = attrs.field(factory=dict)


class Evaluator(abc.ABC):
    name: ClassVar[str]
    #: environment variables that must be set before the run starts (API keys)
    required_env: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_environment(cls) -> None:
        """Raise `deception_core.errors.UsageError` if the evaluator cannot work (missing key)."""
        import os

        from deception_core.errors import UsageError

        missing = [name for name in cls.required_env if not os.environ.get(name)]
        if missing:
            raise UsageError(
                f"--evaluator {cls.name} needs the environment variable {', '.join(missing)}; "
                f"export it, or choose --evaluator local"
            )
        for name in cls.required_env:  # the value itself is never shown
            value = os.environ[name]
            if not value.strip():
                raise UsageError(f"--evaluator {cls.name}: {name} is empty; export the API key in it")
            if any(ord(ch) < 32 or ord(ch) == 127 for ch in value.strip()):
                raise UsageError(
                    f"--evaluator {cls.name}: {name} contains control characters (a newline or a tab, "
                    f"often from copying); export the key again without them"
                )

    def __init__(self, context: EvaluatorContext) -> None:
        self.context = context

    def preflight(self) -> None:
        """Check, before any model loads, that the judge can answer (e.g. a rejected key)."""

    def judge_many(self, requests: Sequence[JudgeRequest]) -> list[JudgeVerdict]:
        return [self.judge(request) for request in requests]

    @abc.abstractmethod
    def judge(self, request: JudgeRequest) -> JudgeVerdict:
        """Label one utterance."""
