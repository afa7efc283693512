"""Another model on another server plays the counterpart (``--counterpart-engine URL``).

The counterpart is not captured, so nothing of it is replayed: its messages go to the server's
chat route (``POST {url}/v1/chat/completions``), which applies that model's own chat template, and
the reply text comes back to the game. A stronger opponent than the model under study, served
anywhere. The same client as the ``openai`` engine: retries printed, a timeout naming its setting,
the key from the environment only, no redirect to another origin followed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from deception_core.base.errors import EngineFailed, UsageError
from deception_core.base.types import JSONObject, Message
from deception_core.engine.client import EngineClient, Unreachable
from deception_core.engine.openai import SEED_RANGE, OpenAISettings
from deception_core.model.decoding import trim_at_stop
from deception_core.model.requests import Sampling


@attrs.frozen
class ChatCall:
    """One counterpart call: its messages, token limit, seed and stop strings."""

    messages: tuple[Message, ...]
    max_tokens: int
    seed: int
    stop: tuple[str, ...] = ()


@attrs.frozen
class ChatReply:
    text: str
    tokens: int  # the server's count (usage.completion_tokens), 0 when it gives none


class ChatEngine:
    """The counterpart's server. ``model``: its name there (None: left out, the server's one model);
    the other settings are the ``openai`` engine's (``components.engine.openai``)."""

    def __init__(self, url: str, model: str | None, settings: OpenAISettings | None = None) -> None:
        self.url = url.rstrip("/").removesuffix("/v1")
        self.model = model
        self.settings = settings or OpenAISettings()
        key = os.environ.get(self.settings.api_key_env) or None
        self.client = EngineClient(self.url, timeout=self.settings.timeout, max_tries=self.settings.max_tries,
                                   key=key, timeout_setting="components.engine.openai.timeout")
        self.pool = ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="counterpart")

    def describe(self) -> JSONObject:
        return {"url": self.url, "model": self.model}

    def preflight(self) -> None:
        try:
            status = self.client.probe("/v1/models", timeout=min(self.settings.timeout, 15.0))
        except Unreachable as error:
            raise UsageError(f"--counterpart-engine {self.url}: no server answers there ({error}). Start it "
                             "first, or fix --counterpart-engine") from None
        if status in (401, 403):
            raise UsageError(f"--counterpart-engine {self.url} refused the request (HTTP {status}): set its key in "
                             f"{self.settings.api_key_env}")

    def replies(self, calls: Sequence[ChatCall], sampling: Sampling) -> list[ChatReply]:
        return list(self.pool.map(lambda call: self._one(call, sampling), calls))

    def _one(self, call: ChatCall, sampling: Sampling) -> ChatReply:
        body: JSONObject = {"messages": [{"role": m.role, "content": m.content} for m in call.messages],
                            "max_tokens": call.max_tokens,
                            "temperature": 0.0 if sampling.greedy else sampling.temperature,
                            "seed": int(call.seed) % SEED_RANGE}
        if not sampling.greedy:
            body["top_p"] = sampling.top_p
        if call.stop:
            body["stop"] = list(call.stop)
        if self.model:
            body["model"] = self.model
        answer = self.client.request("POST", "/v1/chat/completions", body, what=f"a counterpart reply from {self.url}")
        try:
            content = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise EngineFailed(f"the counterpart engine at {self.url} answered without choices[0].message.content: "
                               f"{str(answer)[:300]}") from None
        usage = answer.get("usage") if isinstance(answer, dict) else None
        tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
        text, _ = trim_at_stop(str(content or ""), call.stop)
        return ChatReply(text.strip(), int(tokens or 0))

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()
