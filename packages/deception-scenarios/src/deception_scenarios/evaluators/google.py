"""`google`: the Gemini API's ``generateContent`` as the judge (``GOOGLE_API_KEY``).

POST ``{base}/v1beta/models/{model}:generateContent`` with the key in the ``x-goog-api-key``
header (never in the URL, so it cannot leak into logs or proxies), temperature 0. For the
Gemini 2.5 Flash models, thinking is switched off so the whole answer budget goes to the answer.
Override with ``DECEPTION_GOOGLE_MODEL`` and ``DECEPTION_GOOGLE_BASE_URL``; see `remote` for the
other settings and the failure policy.
"""

from __future__ import annotations

import urllib.parse

from deception_core import JSONObject, Message
from deception_scenarios.evaluators.http_json import JudgeHTTPError
from deception_scenarios.evaluators.remote import RemoteEvaluator, ResponseFormatError


class GoogleEvaluator(RemoteEvaluator):
    """The Gemini API as the judge (``--evaluator google``; the key comes from ``GOOGLE_API_KEY``)."""
    name = "google"
    required_env = ("GOOGLE_API_KEY",)
    key_env = "GOOGLE_API_KEY"
    service = "GOOGLE"
    default_base_url = "https://generativelanguage.googleapis.com"
    default_model = "gemini-2.5-flash"

    def _headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._key}

    def _model_path(self) -> str:
        model = self.model.removeprefix("models/")
        return f"{self.base_url}/v1beta/models/{urllib.parse.quote(model, safe='-._')}"

    def chat_call(self, messages: list[Message], max_tokens: int) -> tuple[str, dict[str, str], JSONObject]:
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        contents = [
            {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
            for m in messages
            if m.role != "system"
        ]
        config: JSONObject = {"temperature": 0, "maxOutputTokens": max_tokens, "candidateCount": 1}
        if "2.5-flash" in self.model:
            config["thinkingConfig"] = {"thinkingBudget": 0}
        payload: JSONObject = {"contents": contents, "generationConfig": config}
        if system:
            payload["systemInstruction"] = {"parts": [{"text": system}]}
        return f"{self._model_path()}:generateContent", self._headers(), payload

    def preflight_call(self) -> tuple[str, str, dict[str, str], JSONObject | None]:
        # Reading the model's metadata is free, needs the key and fails with 404 for an unknown model.
        return "GET", self._model_path(), self._headers(), None

    def is_rejected_key(self, error: JudgeHTTPError) -> bool:
        # Gemini answers a malformed or unknown key with 400 API_KEY_INVALID, not 401.
        body = error.body or ""
        return error.status in (401, 403) or (error.status == 400 and
                                             ("API_KEY_INVALID" in body or "API key not valid" in body))

    def answer_text(self, response: object) -> str:
        if not isinstance(response, dict):
            raise ResponseFormatError("the response is not a JSON object")
        candidates = response.get("candidates")
        if not candidates:
            blocked = (response.get("promptFeedback") or {}).get("blockReason")
            raise ResponseFormatError(f"no candidates (prompt blocked: {blocked})" if blocked else "no candidates")
        candidate = candidates[0] if isinstance(candidates, list) else None
        if not isinstance(candidate, dict):
            raise ResponseFormatError("candidates[0] is not an object")
        parts = (candidate.get("content") or {}).get("parts") or []
        texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
                 and not p.get("thought")]
        if not texts:
            reason = candidate.get("finishReason", "unknown")
            raise ResponseFormatError(f"candidates[0] has no text parts (finishReason {reason})")
        return "".join(texts)
