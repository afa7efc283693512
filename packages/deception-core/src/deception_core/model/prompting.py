"""Turn chat messages into the token ids a model generates from.

With a chat template the tokenizer's own template is applied (with the generation prompt), so
activations come from exactly the prompt the model answers. Templates that reject a ``system``
role get the system text folded into the first user turn. Without a template (base models) the
messages are laid out as a plain transcript ending in the speaker's name and a colon.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deception_core.base.types import Message


def _fold_system(messages: Sequence[Message]) -> list[dict[str, str]]:
    out = [m.to_dict() for m in messages]
    if out and out[0]["role"] == "system":
        system = out.pop(0)["content"]
        if out and out[0]["role"] == "user":
            out[0] = {"role": "user", "content": f"{system}\n\n{out[0]['content']}"}
        else:
            out.insert(0, {"role": "user", "content": system})
    return out


def plain_transcript(messages: Sequence[Message], speaker: str = "You") -> str:
    """Base-model layout: the system text, then the turns, ending in ``'<speaker>:'``."""
    parts: list[str] = []
    for message in messages:
        if message.role == "system" or message.role == "user":
            parts.append(message.content.strip())
        else:
            parts.append(f"{speaker}: {message.content.strip()}")
    return "\n\n".join(parts) + f"\n\n{speaker}:"


def render_prompt(tokenizer: Any, messages: Sequence[Message], speaker: str = "You") -> list[int]:
    """Token ids of the prompt for ``messages`` (chat template when the tokenizer has one)."""
    if getattr(tokenizer, "chat_template", None):
        try:
            ids = tokenizer.apply_chat_template(
                [m.to_dict() for m in messages], add_generation_prompt=True, tokenize=True
            )
        except Exception:  # e.g. "System role not supported"
            ids = tokenizer.apply_chat_template(_fold_system(messages), add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return [int(i) for i in ids]
    text = plain_transcript(messages, speaker)
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    return [int(i) for i in ids]
