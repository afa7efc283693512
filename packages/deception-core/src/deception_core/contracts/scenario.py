"""The contract between the runner and a scenario plugin.

A `Scenario` describes one negotiation game: its private facts (drawn from a seed), its
conditions, and how a trial is played. A trial is a `Game`, a small state machine that the
runner drives: it asks the game which generation calls it needs next (`Game.pending`), runs them
on the model (capturing activations only for calls marked ``capture``), and hands the text back
(`Game.deliver`). Because a game only *asks* for text, the runner can batch the calls of many
trials, and no auxiliary call (theory of mind, planning, a judge) can ever become a sample: only
requests the game marks as focal are captured, and each sample records the call that produced it.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Sequence
from typing import ClassVar

import attrs

from deception_core.base.types import Condition, JSONObject, Message, Mode, RuleVerdict


@attrs.frozen
class TrialSpec:
    """Which trial to play; ``seed`` makes facts and sampling reproducible."""

    scenario: str
    mode: Mode
    condition: Condition
    index: int
    seed: int

    @property
    def key(self) -> str:
        """A run-independent identifier, unique across scenarios, modes and conditions."""
        return f"{self.scenario}/{self.mode.value}/{self.condition.value}/{self.index:05d}"


@attrs.frozen
class GameOptions:
    """Run options a game honours."""

    max_rounds: int = 3
    max_tokens: int = 128
    theory_of_mind: bool = True  # off with --fast
    minimal_agents: bool = False  # --ultrafast
    chat_template: bool = True  # whether the model has one (affects prompt layout)
    self_report: bool = False  # ask the agent an explicit follow-up question, saved separately


@attrs.frozen
class Request:
    """One generation call a game needs.

    ``caller`` names the call (``negotiator.act``, ``negotiator.theory_of_mind``,
    ``counterpart.act`` ...) and ``tag`` its place in the trial (``r1`` ..., ``final``); the
    ``request_id`` is unique within the trial. Only requests with ``capture=True`` become samples,
    which record the caller and tag as fields.
    """

    request_id: str
    caller: str
    messages: tuple[Message, ...]
    capture: bool
    max_new_tokens: int
    round: int
    stop: tuple[str, ...] = ()
    tag: str = ""


@attrs.frozen
class FocalUtterance:
    """An utterance of the agent under study, with the rule's verdict."""

    request_id: str
    round: int
    text: str
    verdict: RuleVerdict
    belief: str | None = None  # what a theory-of-mind step concluded about the counterpart
    self_report: str | None = None  # answer to an explicit follow-up question, if asked


@attrs.frozen
class TrialResult:
    """A finished trial: what was said, what happened, and the focal utterances."""

    transcript: tuple[JSONObject, ...]
    outcome: JSONObject
    focal: tuple[FocalUtterance, ...]


class Game(abc.ABC):
    """One trial being played. Implemented by scenario packages."""

    @abc.abstractmethod
    def pending(self) -> Sequence[Request]:
        """The generation calls needed now (empty once `done`)."""

    @abc.abstractmethod
    def deliver(self, request: Request, text: str) -> None:
        """Hand back the text generated for ``request``."""

    @property
    @abc.abstractmethod
    def done(self) -> bool:
        """True when the trial is resolved."""

    @abc.abstractmethod
    def result(self) -> TrialResult:
        """The resolved trial (only valid once `done`)."""

    def dialogue_until(self, request_id: str) -> list[dict[str, str]]:
        """The public dialogue up to and including the given focal utterance (for judges)."""
        out: list[dict[str, str]] = []
        for turn in self.result().transcript:
            out.append({"speaker": str(turn["speaker"]), "text": str(turn["text"])})
            if turn.get("request_id") == request_id:
                break
        return out


class Scenario(abc.ABC):
    """A negotiation game in which misrepresenting private facts can pay."""

    name: ClassVar[str]
    description: ClassVar[str]

    @abc.abstractmethod
    def sample_facts(self, rng: random.Random) -> JSONObject:
        """Draw the private facts (JSON-serialisable) held by the game master."""

    @abc.abstractmethod
    def new_game(self, spec: TrialSpec, facts: JSONObject, options: GameOptions) -> Game:
        """Start a trial."""

    @abc.abstractmethod
    def rule_verdict(self, facts: JSONObject, condition: Condition, text: str,
                     context: JSONObject | None = None) -> RuleVerdict:
        """Label one utterance of the focal agent against the private facts.

        ``context`` carries game state the rule may need (e.g. the move actually played later);
        causal tests call this on replies generated under interventions.
        """

    @abc.abstractmethod
    def describe_facts(self, facts: JSONObject) -> str:
        """The private facts in words, for a judge that must check claims against them."""

    @abc.abstractmethod
    def judge_question(self, facts: JSONObject) -> str:
        """What the judge must decide about the focal utterance, in one paragraph."""

