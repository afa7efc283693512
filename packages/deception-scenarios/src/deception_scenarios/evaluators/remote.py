"""What the remote judges (Together, Gemini) share: settings, the key, preflight and failure policy.

Settings come from ``EvaluatorContext.options`` first, then the environment, then the defaults:

==================  ===========================================  =====================
option              environment                                  meaning
==================  ===========================================  =====================
``model``           ``DECEPTION_<SERVICE>_MODEL``                the judge model
``base_url``        ``DECEPTION_<SERVICE>_BASE_URL``             the API's base URL
``timeout``         ``DECEPTION_JUDGE_TIMEOUT``                  seconds per request
``max_tries``       ``DECEPTION_JUDGE_MAX_TRIES``                attempts per request
``backoff``                                                      first retry wait (s)
``max_tokens``                                                   answer length cap
``max_dialogue_chars``                                           dialogue shown
``concurrency``     ``DECEPTION_JUDGE_CONCURRENCY``              calls in flight
``sleep``                                                        (tests) the sleeper
==================  ===========================================  =====================

When a judge call fails mid-run after its retries, the utterance gets ``ambiguous`` with
``error`` set and the run goes on (a warning is logged): a flaky API must not cost a run's
captured activations, and the affected samples can be re-judged from the stored dialogue. After
`FAILURES_BEFORE_FAST_FAIL` failures in a row the judge stops retrying (one try per utterance)
until a call succeeds again, so an outage does not stall the run for hours.

The API key is read from the environment, sent only in a header, and scrubbed from every error,
log line and verdict.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from deception_core.errors import UsageError
from deception_core.evaluator import Evaluator, EvaluatorContext, JudgeRequest
from deception_core.types import JudgeVerdict, Label, Message
from deception_scenarios.evaluators.http_json import EXCERPT_CHARS, JsonClient, JudgeHTTPError, RetryPolicy
from deception_scenarios.evaluators.judge_prompt import DEFAULT_MAX_DIALOGUE_CHARS, judge_messages
from deception_scenarios.evaluators.parsing import parse_verdict

log = logging.getLogger("deception.judge")

FAILURES_BEFORE_FAST_FAIL = 5
OPTION_NAMES = frozenset({"model", "base_url", "timeout", "max_tries", "backoff", "max_tokens",
                          "max_dialogue_chars", "concurrency", "sleep"})
DEFAULT_CONCURRENCY = 4


class ResponseFormatError(Exception):
    """A JSON response without the answer text where the API puts it."""


class RemoteEvaluator(Evaluator):
    """A judge behind an HTTP API. Subclasses say how to build the call and read the answer."""

    key_env: ClassVar[str]
    service: ClassVar[str]  # "TOGETHER" or "GOOGLE", for the DECEPTION_<SERVICE>_* variables
    default_base_url: ClassVar[str]
    default_model: ClassVar[str]
    default_timeout: ClassVar[float] = 60.0
    default_max_tries: ClassVar[int] = 4
    default_max_tokens: ClassVar[int] = 1024  # room for models that think before answering; billed as used

    def __init__(self, context: EvaluatorContext) -> None:
        super().__init__(context)
        options = dict(context.options)
        unknown = sorted(set(options) - OPTION_NAMES)
        if unknown:
            raise UsageError(f"--evaluator {self.name}: unknown option(s) {unknown}; known: {sorted(OPTION_NAMES)}")
        self.check_environment()
        self._key = os.environ[self.key_env].strip()
        env = os.environ.get
        self.model = str(options.get("model") or env(f"DECEPTION_{self.service}_MODEL") or self.default_model)
        self.base_url = str(options.get("base_url") or env(f"DECEPTION_{self.service}_BASE_URL")
                            or self.default_base_url).rstrip("/")
        self.timeout = _number(options.get("timeout") or env("DECEPTION_JUDGE_TIMEOUT") or self.default_timeout,
                               "timeout", float)
        self.max_tokens = _number(options.get("max_tokens") or self.default_max_tokens, "max_tokens", int)
        self.max_dialogue_chars = _number(options.get("max_dialogue_chars") or DEFAULT_MAX_DIALOGUE_CHARS,
                                          "max_dialogue_chars", int)
        tries = _number(options.get("max_tries") or env("DECEPTION_JUDGE_MAX_TRIES") or self.default_max_tries,
                        "max_tries", int)
        self.concurrency = _number(options.get("concurrency") or env("DECEPTION_JUDGE_CONCURRENCY")
                                   or DEFAULT_CONCURRENCY, "concurrency", int)
        backoff = _number(options.get("backoff", 1.0), "backoff", float)
        sleep: Callable[[float], None] | None = options.get("sleep")
        client_kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        self.client = JsonClient(timeout=self.timeout, policy=RetryPolicy(max_tries=tries, base_delay=backoff),
                                 secrets=(self._key,), rng=random.Random(0), **client_kwargs)
        self._failures_in_a_row = 0
        self._lock = threading.Lock()  # judge_many runs calls in threads

    # --- what a service defines ----------------------------------------------------------------
    def chat_call(self, messages: list[Message], max_tokens: int) -> tuple[str, dict[str, str], dict[str, Any]]:
        """(url, headers, payload) of one deterministic (temperature 0) chat call."""
        raise NotImplementedError

    def preflight_call(self) -> tuple[str, str, dict[str, str], Any]:
        """(method, url, headers, payload) of the cheapest call that proves the key and model work."""
        raise NotImplementedError

    def answer_text(self, response: Any) -> str:
        """The judge's answer in a decoded response; raises `ResponseFormatError`."""
        raise NotImplementedError

    def is_rejected_key(self, error: JudgeHTTPError) -> bool:
        return error.status in (401, 403)

    # --- the Evaluator contract ----------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "base_url": self.base_url, "timeout": self.timeout,
                "max_tries": self.client.policy.max_tries, "max_tokens": self.max_tokens,
                "max_dialogue_chars": self.max_dialogue_chars, "concurrency": self.concurrency}

    def preflight(self) -> None:
        """One cheap authenticated call before the model loads: a rejected key or an unknown model,
        or an API that cannot be reached, stops the run with a `UsageError` (exit code 2)."""
        method, url, headers, payload = self.preflight_call()
        try:
            self.client.request(method, url, headers, payload, what=f"{self.name} judge check")
        except JudgeHTTPError as error:
            if self.is_rejected_key(error):
                raise UsageError(
                    f"--evaluator {self.name}: the API rejected {self.key_env} (HTTP {error.status}); "
                    f"export a valid key in {self.key_env}, or choose --evaluator local"
                ) from None
            if error.status == 404:
                raise UsageError(
                    f"--evaluator {self.name}: model {self.model!r} was not found at {self.base_url} (HTTP 404); "
                    f"set DECEPTION_{self.service}_MODEL to a model the API serves"
                ) from None
            raise UsageError(
                f"--evaluator {self.name}: the judge API at {self.base_url} did not work before the run "
                f"started ({error}); check the network and DECEPTION_{self.service}_BASE_URL, "
                f"or choose --evaluator local"
            ) from None

    def judge_many(self, requests: Sequence[JudgeRequest]) -> list[JudgeVerdict]:
        """The verdicts in the order of ``requests``, with up to ``concurrency`` calls in flight."""
        if self.concurrency == 1 or len(requests) <= 1:
            return [self.judge(request) for request in requests]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(self.judge, requests))

    def judge(self, request: JudgeRequest) -> JudgeVerdict:
        messages = judge_messages(request, reason_first=True, max_dialogue_chars=self.max_dialogue_chars)
        url, headers, payload = self.chat_call(messages, self.max_tokens)
        fast_fail = self._failures_in_a_row >= FAILURES_BEFORE_FAST_FAIL
        try:
            response = self.client.request("POST", url, headers, payload, what=f"{self.name} judge call",
                                           max_tries=1 if fast_fail else None)
            raw = self.client.scrub(self.answer_text(response))
        except JudgeHTTPError as error:
            return self._failed(str(error), error.body)
        except ResponseFormatError as error:
            return self._failed(f"{self.name} judge response has no answer text: {error}",
                                self.client.scrub(json.dumps(response))[:EXCERPT_CHARS])
        with self._lock:
            self._failures_in_a_row = 0
        label, problem = parse_verdict(raw)
        return JudgeVerdict(label, raw, problem)

    def _failed(self, message: str, raw: str) -> JudgeVerdict:
        with self._lock:
            self._failures_in_a_row += 1
            failures = self._failures_in_a_row
        message = self.client.scrub(message)
        log.warning("%s; the utterance is labelled ambiguous and the run goes on", message)
        if failures == FAILURES_BEFORE_FAST_FAIL:
            log.warning("%s judge: %d failures in a row; no more retries until a call succeeds",
                        self.name, FAILURES_BEFORE_FAST_FAIL)
        return JudgeVerdict(Label.AMBIGUOUS, raw, message)

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"


def _number(value: Any, name: str, kind: type) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise UsageError(f"evaluator option {name}={value!r} is not a number; give a positive number") from None
    if number <= 0:
        raise UsageError(f"evaluator option {name}={value!r} must be positive")
    return number
