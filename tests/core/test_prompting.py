"""Prompts: the chat template when there is one, a plain transcript otherwise."""

from __future__ import annotations

from deception_core.base.types import Message
from deception_core.model.prompting import plain_transcript, render_prompt
from deception_core.testing.tiny_models import tiny_tokenizer

MESSAGES = [Message("system", "You sell a car."), Message("user", "Counterpart: Anything wrong with it?")]


def test_chat_template_is_applied_with_generation_prompt() -> None:
    tokenizer = tiny_tokenizer(chat_template=True)
    text = tokenizer.decode(render_prompt(tokenizer, MESSAGES))
    assert text == "<|system|>You sell a car.\n<|user|>Counterpart: Anything wrong with it?\n<|assistant|>"


def test_template_without_system_role_gets_it_folded_into_the_first_user_turn() -> None:
    tokenizer = tiny_tokenizer(chat_template=True)
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}<|assistant|>"
    )
    text = tokenizer.decode(render_prompt(tokenizer, MESSAGES))
    assert text.startswith("<|user|>You sell a car.\n\nCounterpart: Anything wrong with it?")


def test_base_models_get_a_plain_transcript_ending_in_the_speaker() -> None:
    assert plain_transcript(MESSAGES, "Seller").endswith("Counterpart: Anything wrong with it?\n\nSeller:")
    tokenizer = tiny_tokenizer(chat_template=False)
    assert tokenizer.decode(render_prompt(tokenizer, MESSAGES)).endswith("\n\nYou:")
