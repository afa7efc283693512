"""API keys: never sent to another origin after a redirect, never over plain http off this machine."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deception_core.base.errors import UsageError
from deception_core.contracts.evaluator import EvaluatorContext
from deception_scenarios.evaluators.google import GoogleEvaluator
from deception_scenarios.evaluators.http_json import JsonClient, JudgeHTTPError, RetryPolicy
from deception_scenarios.evaluators.remote import ALLOW_HTTP_ENV, JudgeSettings, check_base_url
from deception_scenarios.evaluators.together import TogetherEvaluator

KEY = "sk-planted-redirect-key-5d41402abc"


class Recorder:
    """A server on 127.0.0.1 that records each request's path and headers and answers from ``answer``."""

    def __init__(self, answer) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                recorder.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                status, headers, body = answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def servers() -> Iterator[tuple[Recorder, Recorder]]:
    """``elsewhere`` answers everything; ``api`` redirects every request to ``elsewhere`` (another port)."""
    elsewhere = Recorder(lambda path: (200, {}, {"name": "models/x", "choices": [{"message": {"content": "OK"}}]}))
    api = Recorder(lambda path: (307, {"Location": elsewhere.url + path}, {}))
    yield api, elsewhere
    api.close()
    elsewhere.close()


def _client() -> JsonClient:
    return JsonClient(timeout=5.0, policy=RetryPolicy(max_tries=2, base_delay=0), secrets=(KEY,), sleep=lambda s: None)


def test_a_redirect_to_another_origin_is_not_followed_and_never_carries_the_key(servers) -> None:
    api, elsewhere = servers
    with pytest.raises(JudgeHTTPError, match="redirected to another origin") as caught:
        _client().request("POST", api.url + "/v1/chat", {"Authorization": f"Bearer {KEY}"}, {"q": 1})
    assert elsewhere.requests == []
    assert len(api.requests) == 1  # not retried: a redirect will not change its mind
    assert KEY not in str(caught.value)
    assert elsewhere.url.split("//")[1] in str(caught.value)


def test_a_redirect_within_the_same_origin_is_followed() -> None:
    api = Recorder(lambda path: (307, {"Location": "/moved"}, {}) if path != "/moved" else (200, {}, {"ok": True}))
    try:
        answer = _client().request("GET", api.url + "/v1/models", {"x-goog-api-key": KEY})
    finally:
        api.close()
    assert answer == {"ok": True}
    assert [path for path, _ in api.requests] == ["/v1/models", "/moved"]


@pytest.mark.parametrize(("cls", "header"), [(TogetherEvaluator, "authorization"), (GoogleEvaluator, "x-goog-api-key")])
def test_the_judges_preflight_never_sends_the_key_to_the_redirect_target(cls, header, servers, monkeypatch) -> None:
    api, elsewhere = servers
    service = "TOGETHER" if cls is TogetherEvaluator else "GOOGLE"
    monkeypatch.setenv(cls.key_env, KEY)
    monkeypatch.setenv(f"DECEPTION_{service}_BASE_URL", api.url)
    judge = cls(EvaluatorContext(), JudgeSettings(timeout=5.0, max_tries=1), sleep=lambda s: None)
    with pytest.raises(UsageError, match="redirected to another origin") as caught:
        judge.preflight()
    assert KEY not in str(caught.value)
    assert elsewhere.requests == []
    assert KEY in api.requests[0][1][header]  # the key went only to the configured API


@pytest.mark.parametrize("url", ["http://judge.example.com", "http://10.0.0.5:8000"])
def test_plain_http_off_this_machine_is_refused_unless_allowed(url, monkeypatch) -> None:
    monkeypatch.delenv(ALLOW_HTTP_ENV, raising=False)
    with pytest.raises(UsageError, match="plain http"):
        check_base_url(url, "DECEPTION_TOGETHER_BASE_URL")
    monkeypatch.setenv(ALLOW_HTTP_ENV, "1")
    check_base_url(url, "DECEPTION_TOGETHER_BASE_URL")


@pytest.mark.asserts_nothing("its point is that these URLs are not refused; the refusals are the tests above")
@pytest.mark.parametrize("url", ["http://localhost:8080", "http://127.0.0.1:9", "http://[::1]:80", "https://api.together.xyz"])
def test_https_and_loopback_urls_are_accepted(url, monkeypatch) -> None:
    monkeypatch.delenv(ALLOW_HTTP_ENV, raising=False)
    check_base_url(url, "DECEPTION_TOGETHER_BASE_URL")


@pytest.mark.parametrize("value", ["sk-abc\ndef", "sk-abc\rdef", "\tsk-abc\x1bdef", "sk-\x7fabc"])
def test_a_key_with_control_characters_is_refused_without_showing_it(value, monkeypatch) -> None:
    monkeypatch.setenv("TOGETHER_API_KEY", value)
    with pytest.raises(UsageError, match="control characters") as caught:
        TogetherEvaluator.check_environment()
    assert "sk-abc" not in str(caught.value)
    assert "sk-" not in repr(caught.value)
