"""What the remote judges (Together, Gemini) share: settings, the key, preflight and failure policy.

Settings (`JudgeSettings`, from ``components: {evaluator: {together: {...}}}``, ``--judge-model``
and ``--judge-url``) come first, then the environment, then the service's defaults; the core
structures them once (unknown keys refused there) and `RemoteEvaluator.resolve_settings` fills
every default, so the values recorded for a run are the ones that judged:

==================  ===========================================  =====================
setting             environment                                  meaning
==================  ===========================================  =====================
``model``           ``DECEPTION_<SERVICE>_MODEL``                the judge model
``base_url``        ``DECEPTION_<SERVICE>_BASE_URL``             the API's base URL
``timeout``         ``DECEPTION_JUDGE_TIMEOUT``                  seconds per request
``max_tries``       ``DECEPTION_JUDGE_MAX_TRIES``                attempts per request
``backoff``                                                      first retry wait (s)
``max_tokens``                                                   answer length cap
``max_dialogue_chars``                                           dialogue shown
``concurrency``     ``DECEPTION_JUDGE_CONCURRENCY``              calls in flight
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

import attrs

from deception_core import (
    Evaluator,
    EvaluatorContext,
    JSONObject,
    JudgeRequest,
    JudgeVerdict,
    Label,
    Message,
    UsageError,
    structure_strings,
)
from deception_scenarios.evaluators.http_json import EXCERPT_CHARS, JsonClient, JudgeHTTPError, RetryPolicy
from deception_scenarios.evaluators.judge_prompt import DEFAULT_MAX_DIALOGUE_CHARS, judge_messages
from deception_scenarios.evaluators.parsing import parse_verdict

log = logging.getLogger("deception.judge")

FAILURES_BEFORE_FAST_FAIL = 5
DEFAULT_CONCURRENCY = 4


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value <= 0:
        raise UsageError(f"evaluator option {attribute.name}={value!r} must be positive")


def _at_most(high: int) -> Callable[[object, attrs.Attribute[int | None], int | None], None]:
    def check(_instance: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and value > high:
            raise UsageError(f"evaluator option {attribute.name}={value!r} must be at most {high}")

    return check


@attrs.frozen(kw_only=True)
class JudgeSettings:
    """A remote judge's settings (see the module docstring); ``None``: from the environment, else the
    service's default (`RemoteEvaluator.resolve_settings` fills them all in)."""

    model: str | None = None
    base_url: str | None = None
    timeout: float | None = attrs.field(default=None, validator=[_positive, _at_most(3600)])
    max_tries: int | None = attrs.field(default=None, validator=[_positive, _at_most(100)])
    backoff: float | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.ge(0)))
    max_tokens: int | None = attrs.field(default=None, validator=_positive)
    max_dialogue_chars: int | None = attrs.field(default=None, validator=_positive)
    concurrency: int | None = attrs.field(default=None, validator=[_positive, _at_most(256)])


#: the settings that may also come from environment variables ({service}: TOGETHER, GOOGLE)
SETTING_ENV = {"model": "DECEPTION_{service}_MODEL", "base_url": "DECEPTION_{service}_BASE_URL",
               "timeout": "DECEPTION_JUDGE_TIMEOUT", "max_tries": "DECEPTION_JUDGE_MAX_TRIES",
               "concurrency": "DECEPTION_JUDGE_CONCURRENCY"}


class ResponseFormatError(Exception):
    """A JSON response without the answer text where the API puts it."""


class RemoteEvaluator(Evaluator):
    """A judge behind an HTTP API. Subclasses say how to build the call and read the answer."""

    key_env: ClassVar[str]
    service: ClassVar[str]  # "TOGETHER" or "GOOGLE", for the DECEPTION_<SERVICE>_* variables
    default_base_url: ClassVar[str]
    default_model: ClassVar[str]
    #: seconds per request; with `RetryPolicy`'s longest wait (15 s), a stalled API prints a retry line
    #: at least once a minute
    default_timeout: ClassVar[float] = 45.0
    default_max_tries: ClassVar[int] = 4
    default_max_tokens: ClassVar[int] = 1024  # room for models that think before answering; billed as used
    settings_class = JudgeSettings

    def __init__(self, context: EvaluatorContext, settings: JudgeSettings | None = None, *,
                 sleep: Callable[[float], None] | None = None) -> None:
        """``sleep`` replaces the wait between retries (tests)."""
        super().__init__(context, self.resolve_settings(settings or JudgeSettings()))
        self.check_environment()
        self._key = os.environ[self.key_env].strip()
        chosen: JudgeSettings = self.settings
        self.model, self.base_url = str(chosen.model), str(chosen.base_url)
        self.timeout = float(chosen.timeout or self.default_timeout)
        self.max_tokens = int(chosen.max_tokens or self.default_max_tokens)
        self.max_dialogue_chars = int(chosen.max_dialogue_chars or DEFAULT_MAX_DIALOGUE_CHARS)
        self.concurrency = int(chosen.concurrency or DEFAULT_CONCURRENCY)
        policy = RetryPolicy(max_tries=int(chosen.max_tries or self.default_max_tries),
                             base_delay=float(chosen.backoff or 0.0))
        client_kwargs: dict[str, Callable[[float], None]] = {"sleep": sleep} if sleep is not None else {}
        self.client = JsonClient(timeout=self.timeout, policy=policy, secrets=(self._key,), rng=random.Random(0),
                                 settings_hint=self.settings_hint(policy.max_tries), **client_kwargs)
        self._failures_in_a_row = 0
        self._lock = threading.Lock()  # judge_many runs calls in threads

    def settings_hint(self, max_tries: int) -> str:
        """The settings that change how long a failing call takes (ends every final judge error)."""
        return (f"The timeout ({self.timeout:g} s) and the tries ({max_tries}) are set by DECEPTION_JUDGE_TIMEOUT "
                f"and DECEPTION_JUDGE_MAX_TRIES, or components.evaluator.{self.name}.timeout / max_tries in --config; "
                f"after {FAILURES_BEFORE_FAST_FAIL} failed calls in a row a call gets 1 try until one succeeds")

    @classmethod
    def resolve_settings(cls, settings: JudgeSettings | None) -> JudgeSettings:
        """Every unset setting from its ``DECEPTION_*`` environment variable, else the service's default;
        a base URL that would leak the key is refused here, before anything runs."""
        given: JudgeSettings = settings if settings is not None else JudgeSettings()
        given_values = {name: value for name, value in attrs.asdict(given).items() if value is not None}
        resolved = attrs.evolve(from_environment(cls.name, cls.service), **given_values)
        resolved = attrs.evolve(
            resolved,
            model=resolved.model or cls.default_model,
            base_url=(resolved.base_url or cls.default_base_url).rstrip("/"),
            timeout=resolved.timeout or cls.default_timeout,
            max_tries=resolved.max_tries or cls.default_max_tries,
            max_tokens=resolved.max_tokens or cls.default_max_tokens,
            max_dialogue_chars=resolved.max_dialogue_chars or DEFAULT_MAX_DIALOGUE_CHARS,
            concurrency=resolved.concurrency or DEFAULT_CONCURRENCY,
            backoff=1.0 if resolved.backoff is None else resolved.backoff,
        )
        check_base_url(str(resolved.base_url), f"DECEPTION_{cls.service}_BASE_URL")
        return resolved

    # --- what a service defines ----------------------------------------------------------------
    def chat_call(self, messages: list[Message], max_tokens: int) -> tuple[str, dict[str, str], JSONObject]:
        """(url, headers, payload) of one deterministic (temperature 0) chat call."""
        raise NotImplementedError

    def preflight_call(self) -> tuple[str, str, dict[str, str], JSONObject | None]:
        """(method, url, headers, payload) of the cheapest call that proves the key and model work."""
        raise NotImplementedError

    def answer_text(self, response: object) -> str:
        """The judge's answer in a decoded response; raises `ResponseFormatError`."""
        raise NotImplementedError

    def is_rejected_key(self, error: JudgeHTTPError) -> bool:
        return error.status in (401, 403)

    # --- the Evaluator contract ----------------------------------------------------------------
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


#: set to 1 to allow a plain-http judge URL on a host other than this machine
ALLOW_HTTP_ENV = "DECEPTION_ALLOW_HTTP"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def check_base_url(url: str, setting: str) -> None:
    """Refuse a base URL that would send the key unencrypted to another machine (or is no URL at all)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host, parts = None, None
    if parts is None or parts.scheme not in ("https", "http") or not host:
        raise UsageError(f"{setting}={url!r} is not an http(s) URL; give one such as https://api.example.com")
    if any(ord(ch) < 33 for ch in url):
        raise UsageError(f"{setting} contains spaces or control characters; give a plain URL")
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS and os.environ.get(ALLOW_HTTP_ENV) != "1":
        raise UsageError(
            f"{setting}={url!r} is plain http: the API key would cross the network unencrypted. Use https, "
            f"or set {ALLOW_HTTP_ENV}=1 if this network is trusted"
        )


def from_environment(name: str, service: str) -> JudgeSettings:
    """The settings the ``DECEPTION_*`` environment variables give (strings, parsed to each field's type)."""

    values = {field: os.environ[variable.format(service=service)] for field, variable in SETTING_ENV.items()
              if os.environ.get(variable.format(service=service), "").strip()}
    return structure_strings(JudgeSettings, values, source=f"--evaluator {name}: DECEPTION_* environment variables")
