"""Agents: a persona, a memory of the dialogue, and the messages each kind of call sends.

An agent never calls a model itself: it builds the messages of a generation request and the game
(`deception_scenarios.game`) asks the runner for the text. That keeps every call visible, so
only the focal agent's negotiation move is captured.

* full agents see their whole brief and the whole dialogue they witnessed;
* minimal agents (``--ultrafast``) get a compact brief and only the latest turn addressed to them,
  one call per move and no theory-of-mind step.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from deception_core import Message


@attrs.frozen
class Persona:
    """Who an agent is: its transcript name and the system text (full and minimal)."""

    name: str
    brief: str
    minimal_brief: str


@attrs.frozen
class Turn:
    speaker: str
    text: str
    round: int
    audience: tuple[str, ...] = ()  # who heard it; empty means everybody


@attrs.define
class DialogueMemory:
    """Everything said in a game, from which each agent sees the turns it witnessed."""

    turns: list[Turn] = attrs.field(factory=list)

    def add(self, speaker: str, text: str, round_number: int, audience: Sequence[str] = ()) -> Turn:
        turn = Turn(speaker, " ".join(text.split()), round_number, tuple(audience))
        self.turns.append(turn)
        return turn

    def witnessed_by(self, name: str) -> list[Turn]:
        return [t for t in self.turns if not t.audience or name in t.audience or t.speaker == name]


def _merge_users(messages: list[Message]) -> list[Message]:
    """Join consecutive user messages and make the turns alternate (chat templates require it)."""
    out: list[Message] = []
    for m in messages:
        if out and out[-1].role == m.role and m.role == "user":
            out[-1] = Message("user", f"{out[-1].content}\n{m.content}")
        else:
            out.append(m)
    if len(out) > 1 and out[1].role == "assistant":
        out.insert(1, Message("user", "(The conversation begins.)"))
    return out


@attrs.define
class Agent:
    """An agent with a persona and a view of the shared dialogue memory."""

    persona: Persona
    memory: DialogueMemory
    minimal: bool = False

    @property
    def name(self) -> str:
        return self.persona.name

    def history(self) -> list[Message]:
        seen = self.memory.witnessed_by(self.name)
        if self.minimal:  # only the latest turn of somebody else
            others = [t for t in seen if t.speaker != self.name]
            seen = others[-1:]
        out: list[Message] = []
        for turn in seen:
            if turn.speaker == self.name:
                out.append(Message("assistant", turn.text))
            else:
                out.append(Message("user", f"{turn.speaker}: {turn.text}"))
        return out

    def messages(self, cue: str, note: str | None = None, *, cue_first: bool = False) -> tuple[Message, ...]:
        """System brief, the witnessed dialogue, and ``cue`` (with ``note``) as a user line.

        A question the agent must answer goes last. For a negotiation move (``cue_first``) the cue
        goes before the turns the agent has not answered yet, so the prompt ends with what the
        other side said: a base model then continues the conversation instead of the stage line.
        """
        brief = self.persona.minimal_brief if self.minimal else self.persona.brief
        tail = Message("user", "\n".join(part for part in (cue, note) if part))
        history = self.history()
        if cue_first:
            answered = max((i + 1 for i, m in enumerate(history) if m.role == "assistant"), default=0)
            history = [*history[:answered], tail, *history[answered:]]
        else:
            history = [*history, tail]
        return tuple(_merge_users([Message("system", brief), *history]))
