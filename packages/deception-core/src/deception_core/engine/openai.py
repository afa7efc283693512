"""The ``openai`` engine: any OpenAI-compatible server (vLLM, SGLang, TGI, ``transformers serve``)
generates the replies, through its plain completions route (``POST {url}/v1/completions``).

The prompt is the toolkit's own token ids (chat template applied by the toolkit's tokenizer), sent
as the text that tokenises back to exactly those ids (checked for every prompt), or as the ids
themselves with ``prompt_ids: true`` for servers that take them (vLLM, SGLang). Each request asks
for one token more than the reply's limit and is cut by the toolkit exactly as the in-process
engine cuts its replies (end of sequence, a stop string, the limit), so both engines give the same
reply for the same tokens.

The reply's token ids are the server's own where it returns them (``choices[0].token_ids``, as
vLLM does with ``extra_body: {"return_token_ids": true}``); otherwise the reply text is
re-tokenised and the round trip (ids decode back to the text, and their count matches the
server's ``usage.completion_tokens``) is checked and recorded with the call.

Requests are sent ``concurrency`` at a time (the server batches them itself), each with its own
``seed``. The key, when the server needs one, comes from the environment variable named by
``api_key_env`` only, never from a config file or a flag.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import attrs

from deception_core.base.errors import EngineFailed, UsageError
from deception_core.base.types import JSONObject
from deception_core.contracts.engine import Engine, EngineReply
from deception_core.engine.client import EngineClient, Unreachable
from deception_core.model.requests import GenerationRequest, Sampling

SETTING = "components.engine.openai"
#: OpenAI-compatible servers take a 32-bit seed at least
SEED_RANGE = 2**31


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


@attrs.frozen(kw_only=True)
class OpenAISettings:
    """Settings of the ``openai`` engine (``components: {engine: {openai: {...}}}``).

    ``model``: the model's name on the server (omitted from requests when unset: the server's one
    model); ``timeout``: seconds one request may take; ``concurrency``: requests in flight at once;
    ``max_tries``: tries per request (retries are printed); ``api_key_env``: the environment
    variable holding the API key (unset or empty: no key sent); ``prompt_ids``: send prompts as
    token ids (vLLM, SGLang) instead of text; ``extra_body``: server-specific request fields, for
    example ``{"return_token_ids": true}`` for vLLM."""

    model: str | None = None
    timeout: float = attrs.field(default=300.0, validator=_positive)
    concurrency: int = attrs.field(default=8, validator=_positive)
    max_tries: int = attrs.field(default=4, validator=_positive)
    api_key_env: str = "DECEPTION_ENGINE_API_KEY"
    prompt_ids: bool = False
    extra_body: dict[str, Any] = attrs.field(factory=dict)


class OpenAIEngine(Engine):
    name = "openai"
    settings_class: ClassVar[type | None] = OpenAISettings

    def __init__(self, url: str | None, tokenizer: Any, settings: OpenAISettings | None = None) -> None:
        if not url:
            raise UsageError("--engine openai needs --engine-url, the server's base URL (for example "
                             "http://127.0.0.1:8000)")
        super().__init__(url.rstrip("/").removesuffix("/v1"), tokenizer, settings or OpenAISettings())
        self.settings: OpenAISettings
        key = os.environ.get(self.settings.api_key_env) or None
        self.client = EngineClient(self.url or "", timeout=self.settings.timeout, max_tries=self.settings.max_tries,
                                   key=key, timeout_setting=f"{SETTING}.timeout")
        self.pool = ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="engine")
        self._prompts: dict[tuple[int, ...], str] = {}

    def describe(self) -> JSONObject:
        """The settings that change what the server generates (not its address, not the key)."""
        return {"name": self.name, "model": self.settings.model, "prompt_ids": self.settings.prompt_ids,
                "extra_body": dict(self.settings.extra_body)}

    def preflight(self) -> None:
        """Any HTTP answer from ``/v1/models`` proves a server listens (``transformers serve`` answers
        it with an error when pinned to one model); 401 and 403 mean the key is missing or wrong."""
        try:
            status = self.client.probe("/v1/models", timeout=min(self.settings.timeout, 15.0))
        except Unreachable as error:
            raise UsageError(f"--engine-url {self.url}: no server answers there ({error}). Start the server "
                             "first (for example `transformers serve MODEL_DIR --port 8000` or `vllm serve "
                             "MODEL`), or fix --engine-url") from None
        if status in (401, 403):
            raise UsageError(f"--engine-url {self.url} refused the request (HTTP {status}): set the server's API "
                             f"key in the environment variable {self.settings.api_key_env} "
                             f"({SETTING}.api_key_env names another)")

    def complete(self, requests: Sequence[GenerationRequest], sampling: Sampling) -> list[EngineReply]:
        return list(self.pool.map(lambda request: self._one(request, sampling), requests))

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()

    # ---- one request ---------------------------------------------------------------------------

    def payload(self, request: GenerationRequest, sampling: Sampling) -> JSONObject:
        body: JSONObject = {
            "prompt": list(request.prompt_ids) if self.settings.prompt_ids else self.prompt_text(request.prompt_ids),
            # one token more than the limit: the toolkit cuts the reply where the in-process engine does
            "max_tokens": request.max_new_tokens + 1,
            "temperature": 0.0 if sampling.greedy else sampling.temperature,
            "seed": int(request.seed) % SEED_RANGE,
        }
        if not sampling.greedy:
            body["top_p"] = sampling.top_p
        if request.stop:
            body["stop"] = list(request.stop)
        if self.settings.model:
            body["model"] = self.settings.model
        body.update(self.settings.extra_body)
        return body

    def _one(self, request: GenerationRequest, sampling: Sampling) -> EngineReply:
        answer = self.client.request("POST", "/v1/completions", self.payload(request, sampling),
                                     what=f"a completion from {self.url}")
        try:
            choice = answer["choices"][0]
            text = choice["text"]
        except (KeyError, IndexError, TypeError):
            raise EngineFailed(f"the engine at {self.url} answered without choices[0].text: "
                               f"{str(answer)[:300]}") from None
        finish = str(choice.get("finish_reason") or "stop")
        server_ids = choice.get("token_ids")
        if isinstance(server_ids, list) and all(isinstance(t, int) for t in server_ids):
            return EngineReply(tuple(server_ids), str(text), finish, {"reply_ids": "server", "round_trip": True})
        ids = [int(i) for i in self.tokenizer(str(text), add_special_tokens=False)["input_ids"]]
        decoded = self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        usage = answer.get("usage") if isinstance(answer, dict) else None
        counted = usage.get("completion_tokens") if isinstance(usage, dict) else None
        # the server's count includes an end-of-sequence token that the text leaves out
        same_count = counted is None or int(counted) in (len(ids), len(ids) + 1)
        record: JSONObject = {"reply_ids": "retokenized", "round_trip": decoded == text and same_count}
        if counted is not None:
            record["server_tokens"] = int(counted)
        return EngineReply(tuple(ids), str(text), finish, record)

    def prompt_text(self, prompt_ids: Sequence[int]) -> str:
        """The text the server tokenises (with its special tokens) into exactly ``prompt_ids``."""
        key = tuple(int(i) for i in prompt_ids)
        if key in self._prompts:
            return self._prompts[key]
        text = str(self.tokenizer.decode(list(key), skip_special_tokens=False, clean_up_tokenization_spaces=False))
        candidates = [text]
        bos = getattr(self.tokenizer, "bos_token", None)
        if bos and text.startswith(bos):
            candidates.append(text[len(bos):])  # the server's tokenizer adds the BOS itself
        for candidate in candidates:
            if self._encode(candidate) == list(key):
                if len(self._prompts) < 4096:
                    self._prompts[key] = candidate
                return candidate
        raise EngineFailed("a prompt does not survive the text round trip (its ids decode to a text that "
                           "tokenises differently), so the server would not see the toolkit's exact prompt; "
                           f"set {SETTING}.prompt_ids: true for a server that takes token ids (vLLM, SGLang)")

    def _encode(self, text: str) -> list[int]:
        return [int(i) for i in self.tokenizer(text, add_special_tokens=True)["input_ids"]]
