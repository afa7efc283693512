"""A small JSON-over-HTTPS client (standard library only) with timeouts, retries and key scrubbing.

Retried, with exponential backoff and a little jitter: HTTP 408, 429 and 5xx, timeouts and
dropped connections. Not retried: other 4xx (a rejected key or a bad request will not get better)
and a success whose body is not JSON. Every message this module produces, and every response
excerpt it keeps, has the secrets it was given (API keys) replaced by ``***``.

Redirects are followed only within the same origin (scheme, host and port): the request carries
the API key in a header, and a redirect elsewhere would hand that key to another server. A
cross-origin redirect fails the request (not retried) and names where it pointed.
"""

from __future__ import annotations

import email.message
import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import IO, Any

import attrs

from deception_core import SHOW, DeceptionError, JSONValue

log = logging.getLogger("deception.judge")

#: the most of a response body kept in an error message or a verdict's raw text
EXCERPT_CHARS = 2000
#: the most bytes read from one response
MAX_BODY_BYTES = 8 * 1024 * 1024
RETRYABLE_STATUS = frozenset({408, 429})


class JudgeHTTPError(DeceptionError):
    """A judge request that failed for good (after retries, or at once when retrying cannot help)."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "", attempts: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.attempts = attempts


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


class CrossOriginRedirect(urllib.error.URLError):
    def __init__(self, source: str, target: str) -> None:
        super().__init__(f"redirected from {source} to another origin")
        self.source, self.target = source, target


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to the same origin; never send the headers (the key) anywhere else."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: http.client.HTTPMessage, newurl: str) -> urllib.request.Request | None:
        if _origin(newurl) != _origin(req.full_url):
            raise CrossOriginRedirect(req.full_url, newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameOriginRedirects)


class _Retryable(Exception):
    def __init__(self, message: str, status: int | None = None, body: str = "", wait: float | None = None) -> None:
        super().__init__(message)
        self.status, self.body, self.wait = status, body, wait


@attrs.frozen
class RetryPolicy:
    """``max_tries`` attempts in all; the wait before try ``n + 1`` is ``base_delay * 2**(n - 1)``,
    capped at ``max_delay``, plus up to ``jitter`` of itself at random (a server's ``Retry-After``
    is honoured up to ``max_delay``)."""

    max_tries: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    base_delay: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    #: with the remote judges' default timeout (45 s), a stalled API prints a retry line at least once a minute
    max_delay: float = attrs.field(default=15.0, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(default=0.25, validator=attrs.validators.ge(0))

    def delay(self, failed_tries: int, rng: random.Random, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        wait = min(self.max_delay, self.base_delay * 2 ** (failed_tries - 1))
        return float(wait * (1.0 + self.jitter * rng.random()))


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _retry_after(headers: email.message.Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date; the backoff schedule is used instead


class JsonClient:
    """POST or GET JSON with a timeout per request and retries; see the module docstring."""

    def __init__(
        self,
        *,
        timeout: float,
        policy: RetryPolicy,
        secrets: Sequence[str] = (),
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        settings_hint: str = "",
    ) -> None:
        """``settings_hint``: which settings change the timeout and the tries (ends the final error)."""
        self.settings_hint = settings_hint
        self.timeout = timeout
        self.policy = policy
        self.secrets = tuple(s for s in secrets if s)
        self.sleep = sleep
        self.rng = rng or random.Random()

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets)

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        payload: JSONValue = None,
        *,
        what: str = "request",
        max_tries: int | None = None,
    ) -> Any:
        """The decoded JSON response; raises `JudgeHTTPError` (scrubbed) when it fails for good."""
        tries = max_tries or self.policy.max_tries
        last: _Retryable | None = None
        for attempt in range(1, tries + 1):
            try:
                return self._once(method, url, headers, payload, what)
            except _Retryable as error:
                last = error
                if attempt == tries:
                    break
                wait = self.policy.delay(attempt, self.rng, error.wait)
                # on the console too (not only in run.log): someone is waiting for this call
                log.info("%s: %s; retry %d of %d in %.1f s", what, error, attempt, tries - 1, wait, extra=SHOW)
                self.sleep(wait)
            except JudgeHTTPError as error:
                error.attempts = attempt
                raise
        assert last is not None
        made = "1 try" if tries == 1 else f"{tries} tries"
        message = f"{what} failed after {made} (at most {self.timeout:g} s each): {last}"
        if self.settings_hint:
            message += f". {self.settings_hint}"
        raise JudgeHTTPError(message, status=last.status, body=last.body, attempts=tries)

    def _once(self, method: str, url: str, headers: dict[str, str], payload: JSONValue, what: str) -> Any:
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        all_headers = {"Accept": "application/json", **headers}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=all_headers, method=method)
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                body = response.read(MAX_BODY_BYTES).decode("utf-8", errors="replace")
        except urllib.error.HTTPError as error:
            body = self._excerpt(self._read_error_body(error))
            status = error.code
            message = f"HTTP {status} {self.scrub(str(error.reason))}"
            if body:
                message += f": {body[:300]}"
            if status in RETRYABLE_STATUS or 500 <= status < 600:
                raise _Retryable(message, status, body, _retry_after(error.headers)) from None
            raise JudgeHTTPError(f"{what} was refused: {message}", status=status, body=body) from None
        except CrossOriginRedirect as error:
            target = urllib.parse.urlsplit(error.target)
            raise JudgeHTTPError(
                f"{what}: the server redirected to another origin ({target.scheme}://{target.netloc}); the request "
                "was not followed there, so the API key was not sent. Set the base URL to the API's final address"
            ) from None
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, TimeoutError):
                raise _Retryable(f"no answer within {self.timeout:g} s") from None
            raise _Retryable(f"connection failed: {self.scrub(str(reason))}") from None
        except TimeoutError:
            raise _Retryable(f"no answer within {self.timeout:g} s") from None
        except (ConnectionError, http.client.HTTPException) as error:
            raise _Retryable(f"connection failed: {self.scrub(type(error).__name__ + ': ' + str(error))}") from None
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            excerpt = self._excerpt(body)
            raise JudgeHTTPError(f"{what} returned a body that is not JSON: {excerpt[:300]!r}",
                                 status=200, body=excerpt) from None

    @staticmethod
    def _read_error_body(error: urllib.error.HTTPError) -> str:
        try:
            return error.read(MAX_BODY_BYTES).decode("utf-8", errors="replace")
        except Exception:  # the connection may already be gone
            return ""

    def _excerpt(self, body: str) -> str:
        return self.scrub(body.strip())[:EXCERPT_CHARS]
