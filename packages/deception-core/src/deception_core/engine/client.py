"""A small JSON client for an OpenAI-compatible server (httpx), with the judge's hygiene.

Retried, with exponential backoff, each retry printed on the console: timeouts, dropped or refused
connections, HTTP 408, 429 and 5xx. Not retried: other 4xx (a rejected key or request will not get
better). The API key travels in a header and never appears in a message (scrubbed to ``***``).
Redirects are followed only within the same origin (scheme, host, port); a redirect to another
origin fails the request without following it, so the key is never sent there.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import httpx

from deception_core.base.errors import EngineFailed
from deception_core.ui.console import SHOW

log = logging.getLogger("deception.engine")

RETRYABLE_STATUS = frozenset({408, 429})
MAX_REDIRECTS = 5


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


class _Retryable(Exception):
    pass


class Unreachable(EngineFailed):
    """No connection could be made (the server is down or the address is wrong)."""


class EngineClient:
    """POST/GET JSON under ``base_url`` with a timeout per request and ``max_tries`` tries.

    ``timeout_setting``: the setting that changes the timeout, named in a timeout's message."""

    def __init__(self, base_url: str, *, timeout: float, max_tries: int, key: str | None,
                 timeout_setting: str, retry_delay: float = 1.0, max_delay: float = 15.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_tries = max_tries
        self.key = key or None
        self.timeout_setting = timeout_setting
        self.retry_delay, self.max_delay, self.sleep = retry_delay, max_delay, sleep
        self.http = httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def scrub(self, text: str) -> str:
        return text.replace(self.key, "***") if self.key else text

    def request(self, method: str, path: str, payload: Any = None, *, what: str,
                max_tries: int | None = None, timeout: float | None = None) -> Any:
        """The decoded JSON answer; `Unreachable` or `EngineFailed` (scrubbed) once it fails for good."""
        tries = max_tries or self.max_tries
        last: _Retryable | None = None
        refused = True
        for attempt in range(1, tries + 1):
            try:
                return self._once(method, self.base_url + path, payload, what, timeout or self.timeout)
            except _Retryable as error:
                last = error
                refused = refused and str(error).startswith("connection failed")
                if attempt == tries:
                    break
                wait = min(self.max_delay, self.retry_delay * 2 ** (attempt - 1))
                log.info("%s: %s; retry %d of %d in %.1f s", what, error, attempt, tries - 1, wait, extra=SHOW)
                self.sleep(wait)
        made = "1 try" if tries == 1 else f"{tries} tries"
        message = f"{what} failed after {made}: {last}"
        raise (Unreachable if refused else EngineFailed)(message)

    def probe(self, path: str, timeout: float) -> int:
        """The HTTP status of one GET (no retry, redirects not followed); `Unreachable` when no
        connection could be made or no answer came within ``timeout``."""
        try:
            return self.http.get(self.base_url + path, headers=self._headers(), timeout=timeout).status_code
        except httpx.TimeoutException:
            raise Unreachable(f"no answer within {timeout:g} s") from None
        except httpx.TransportError as error:
            raise Unreachable(f"connection failed: {self.scrub(type(error).__name__ + ': ' + str(error))}") from None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        return headers

    def _once(self, method: str, url: str, payload: Any, what: str, timeout: float) -> Any:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self.http.request(method, url, json=payload, headers=self._headers(), timeout=timeout)
            except httpx.TimeoutException:
                raise _Retryable(f"no answer within {timeout:g} s (raise {self.timeout_setting})") from None
            except httpx.TransportError as error:
                raise _Retryable(f"connection failed: {self.scrub(type(error).__name__ + ': ' + str(error))}") from None
            if not response.is_redirect:
                break
            target = urllib.parse.urljoin(url, response.headers.get("location", ""))
            if origin(target) != origin(url):
                parts = urllib.parse.urlsplit(target)
                raise EngineFailed(
                    f"{what}: the server redirected to another origin ({parts.scheme}://{parts.netloc}); the "
                    "redirect was not followed, so the API key was not sent there. Set --engine-url to the "
                    "server's final address")
            url = target
        else:
            raise EngineFailed(f"{what}: more than {MAX_REDIRECTS} redirects")
        status = response.status_code
        if status >= 400:
            body = self.scrub(response.text.strip())[:300]
            message = f"HTTP {status}" + (f": {body}" if body else "")
            if status in RETRYABLE_STATUS or status >= 500:
                raise _Retryable(message)
            raise EngineFailed(f"{what} was refused: {message}")
        try:
            return response.json()
        except ValueError:
            raise EngineFailed(f"{what} returned a body that is not JSON: "
                               f"{self.scrub(response.text.strip())[:300]!r}") from None
