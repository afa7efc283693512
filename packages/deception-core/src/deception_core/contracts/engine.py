"""The generation-engine interface: what produces the replies of a run's calls.

``hf`` (the default) generates in the toolkit's own process and records the residual stream
during generation. Any other engine generates elsewhere (a serving engine reached over HTTP);
the toolkit then runs one batched teacher-forced pass of its own model over the prompt and reply
ids of the calls it captures (`deception_core.engine.backend`), so activations are exactly as
the in-process model computes them, whatever the engine did internally.

An engine with settings declares ``settings_class`` (a frozen attrs class); the run structures
``components.engine.<name>`` into it, unknown keys refused.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

from deception_core.base.types import JSONObject
from deception_core.model.requests import GenerationRequest, Sampling

__all__ = ["Engine", "EngineReply", "IN_PROCESS_ENGINE"]

#: the engine that generates with the in-process model (capture during generation)
IN_PROCESS_ENGINE = "hf"


@attrs.frozen
class EngineReply:
    """One generated reply as the engine returned it, before the toolkit cuts it like ``hf`` does.

    ``token_ids``: the generated ids (the server's own where it returns them, else the reply text
    re-tokenised); ``text``: the text the server returned; ``finish_reason``: ``stop`` (end of
    sequence or a stop string) or ``length``; ``record``: how the ids were obtained, kept with the
    call (``{"reply_ids": "server" | "retokenized", "round_trip": bool, ...}``)."""

    token_ids: tuple[int, ...]
    text: str
    finish_reason: str
    record: JSONObject = attrs.field(factory=dict)


class Engine(abc.ABC):
    """Generates the replies of a batch of requests; holds no model weights of the toolkit's."""

    name: ClassVar[str]
    settings_class: ClassVar[type | None] = None
    #: True for the engine that generates in the toolkit's process (the capture backend does it)
    in_process: ClassVar[bool] = False

    def __init__(self, url: str | None, tokenizer: Any, settings: Any = None) -> None:
        self.url = url
        self.tokenizer = tokenizer
        self.settings = settings

    def preflight(self) -> None:
        """Check that the engine answers, before anything is written (raise `UsageError`: exit 2)."""

    def describe(self) -> JSONObject:
        """What the run records about the engine (config and checkpoint identity); no secrets."""
        return {"name": self.name}

    @abc.abstractmethod
    def complete(self, requests: Sequence[GenerationRequest], sampling: Sampling) -> list[EngineReply]:
        """One reply per request, in order (sent concurrently where the engine can)."""

    def close(self) -> None:
        """Release connections."""


class InProcessEngine(Engine):
    """``hf``: the in-process model generates (the capture backend's own path); never called."""

    name = IN_PROCESS_ENGINE
    in_process = True

    def complete(self, requests: Sequence[GenerationRequest], sampling: Sampling) -> list[EngineReply]:
        raise RuntimeError("the hf engine generates through the capture backend, not through Engine.complete")
