"""`together`: Together's OpenAI-compatible chat completions API as the judge (``TOGETHER_API_KEY``).

POST ``{base}/v1/chat/completions`` with ``Authorization: Bearer <key>``, temperature 0. The
default judge is a 70B instruct model, larger than the models the toolkit studies, so the judge
is not weaker than the subject. Override with ``DECEPTION_TOGETHER_MODEL`` and
``DECEPTION_TOGETHER_BASE_URL``; see `remote` for the other settings and the failure policy.
"""

from __future__ import annotations

from typing import Any

from deception_core import JSONObject, Message
from deception_scenarios.evaluators.remote import RemoteEvaluator, ResponseFormatError


class TogetherEvaluator(RemoteEvaluator):
    """Together's API as the judge (``--evaluator together``; the key comes from ``TOGETHER_API_KEY``)."""
    name = "together"
    required_env = ("TOGETHER_API_KEY",)
    key_env = "TOGETHER_API_KEY"
    service = "TOGETHER"
    default_base_url = "https://api.together.xyz"
    default_model = "meta-llama/Llama-3.3-70B-Instruct-Turbo"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"}

    def chat_call(self, messages: list[Message], max_tokens: int) -> tuple[str, dict[str, str], JSONObject]:
        payload: JSONObject = {
            "model": self.model,
            "messages": [m.to_dict() for m in messages],
            "temperature": 0,
            "max_tokens": max_tokens,
        }
        return f"{self.base_url}/v1/chat/completions", self._headers(), payload

    def preflight_call(self) -> tuple[str, str, dict[str, str], JSONObject | None]:
        # A one-token completion: proves the key and that the model is served, for almost no cost.
        url, headers, payload = self.chat_call([Message("user", "Reply with OK.")], 1)
        return "POST", url, headers, payload

    def answer_text(self, response: Any) -> str:
        try:
            choice = response["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ResponseFormatError("expected choices[0].message.content") from None
        if not isinstance(content, str):
            raise ResponseFormatError(f"choices[0].message.content is {type(content).__name__}, not text")
        return content
