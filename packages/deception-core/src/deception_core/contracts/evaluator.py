"""The contract of an evaluator: an LLM judge that labels focal utterances.

The judge sees the scenario's private facts, the dialogue so far and a question, and answers in
a constrained format. An answer it cannot parse becomes ``ambiguous`` with the raw text kept.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol

import attrs

from deception_core.base.errors import UsageError
from deception_core.base.types import JSONObject, JudgeVerdict, Message
from deception_core.config.run import to_jsonable

# A text generator offered by the run to evaluators that use the run's own model.
TextGenerator = Callable[[Sequence[Sequence[Message]], int], list[str]]


class ChoiceScorer(Protocol):
    """Log-probability of each candidate continuation after each conversation's prompt:
    ``[conversation][choice]``.

    ``opening``, when given, is how every conversation begins: the same messages, the last of which
    may be cut short (a judge's instructions and worked examples before each case). A scorer on
    the run's own model renders it and runs its tokens once, not once per conversation; the
    scores are the same either way, up to float noise, and do not depend on earlier calls.
    """

    def __call__(self, conversations: Sequence[Sequence[Message]], choices: Sequence[str],
                 opening: Sequence[Message] = ()) -> list[list[float]]: ...


@attrs.frozen
class JudgeRequest:
    """What an evaluator is asked about one utterance: the scenario, its facts, the question, the
    dialogue so far and the utterance itself."""
    scenario: str
    facts: str
    question: str
    dialogue: tuple[dict[str, str], ...]
    utterance: str
    speaker: str = "Negotiator"


@attrs.frozen
class EvaluatorContext:
    """What a run gives an evaluator when it builds one: the backend's real callables (the run
    builds its judge once the capture backend exists, see `deception_core.play.session`)."""

    generate_text: TextGenerator | None = None
    score_choices: ChoiceScorer | None = None


class JudgesMany(Protocol):
    """What labels a trial's utterances: an `Evaluator`, or a stand-in holding verdicts judged earlier
    (`deception_core.label.judging.Prejudged`)."""

    def judge_many(self, requests: Sequence[JudgeRequest]) -> list[JudgeVerdict]: ...


class Evaluator(abc.ABC):
    """A judge. One that takes settings declares them as ``settings_class`` (a frozen attrs class);
    the core structures ``components: {evaluator: {<name>: {...}}}``, ``--judge-model`` and
    ``--judge-url`` into it once (`deception_core.config.components.settings_for`, unknown keys refused
    there) and passes the typed value to the constructor."""

    name: ClassVar[str]
    #: the frozen attrs class of this judge's settings; None: it takes none
    settings_class: ClassVar[type | None] = None
    #: environment variables that must be set before the run starts (API keys)
    required_env: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_environment(cls) -> None:
        """Raise `deception_core.base.errors.UsageError` if the evaluator cannot work (missing key)."""
        import os

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

    def __init__(self, context: EvaluatorContext, settings: Any = None) -> None:
        self.context = context
        if settings is None and self.settings_class is not None:
            settings = self.settings_class()
        self.settings = settings

    @classmethod
    def resolve_settings(cls, settings: Any) -> Any:
        """The settings as the judge will use them, with every default filled in (a remote judge
        reads its model and URL defaults from the environment here), so that what is recorded in
        ``config.json``, ``meta.json`` and the checkpoint identity is what judged."""
        return settings

    def preflight(self) -> None:
        """Check, before any model loads, that the judge can answer (e.g. a rejected key)."""

    def describe(self) -> JSONObject:
        """The judge as used (name, model, URL, settings; never a key), recorded in config.json and meta.json."""
        return describe_judge(self.name, self.settings)

    def judge_many(self, requests: Sequence[JudgeRequest]) -> list[JudgeVerdict]:
        return [self.judge(request) for request in requests]

    @abc.abstractmethod
    def judge(self, request: JudgeRequest) -> JudgeVerdict:
        """Label one utterance."""


def describe_judge(name: str, settings: object) -> JSONObject:
    """``{"name": ..., <each setting>: value}``: how a judge is recorded (JSON-ready)."""

    record: JSONObject = {"name": name}
    if settings is not None:
        record.update(to_jsonable(settings))
    return record
