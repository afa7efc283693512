"""The ``openai`` engine's request building and reply cutting, without a server (known answers)."""

from __future__ import annotations

import pytest

from deception_core.base.errors import EngineFailed
from deception_core.engine.backend import stop_hit
from deception_core.engine.openai import OpenAIEngine, OpenAISettings
from deception_core.model.requests import GenerationRequest, Sampling
from deception_core.testing.tiny_models import byte_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return byte_tokenizer()


@pytest.fixture(scope="module")
def bos_tokenizer():
    """The byte tokenizer with a post-processor that starts every text with the BOS, like Gemma's."""
    from tokenizers import processors

    made = byte_tokenizer()
    made.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", 0)])
    return made


def _engine(tokenizer, **settings) -> OpenAIEngine:
    return OpenAIEngine("http://127.0.0.1:9/v1/", tokenizer, OpenAISettings(**settings))


def test_the_url_loses_a_trailing_v1(tokenizer) -> None:
    engine = _engine(tokenizer)
    engine.close()
    assert engine.url == "http://127.0.0.1:9"


def test_a_greedy_request_asks_one_token_more_with_its_seed_and_stops(tokenizer) -> None:
    engine = _engine(tokenizer, model="served-name", extra_body={"return_token_ids": True})
    body = engine.payload(GenerationRequest((41, 70), 5, 2**40 + 3, stop=("\n",)), Sampling(temperature=0.0))
    engine.close()
    assert body == {"prompt": "He", "max_tokens": 6, "temperature": 0.0, "seed": 3, "stop": ["\n"],
                    "model": "served-name", "return_token_ids": True}


def test_a_sampled_request_sends_top_p(tokenizer) -> None:
    engine = _engine(tokenizer, prompt_ids=True)
    body = engine.payload(GenerationRequest((41, 70), 5, 1), Sampling(temperature=0.7, top_p=0.9))
    engine.close()
    assert (body["prompt"], body["temperature"], body["top_p"]) == ([41, 70], 0.7, 0.9)


def test_the_prompt_text_leaves_the_bos_to_the_server(bos_tokenizer) -> None:
    ids = bos_tokenizer("Hello", add_special_tokens=True)["input_ids"]
    engine = _engine(bos_tokenizer)
    engine.close()
    assert (ids[0], engine.prompt_text(ids)) == (0, "Hello")


def test_a_prompt_that_does_not_round_trip_is_refused_naming_prompt_ids(tokenizer) -> None:
    lone_lead_byte = tokenizer("é", add_special_tokens=False)["input_ids"][:1]  # half a UTF-8 character
    engine = _engine(tokenizer)
    engine.close()
    with pytest.raises(EngineFailed, match="prompt_ids: true"):
        engine.prompt_text(lone_lead_byte)


def test_a_stop_string_is_hit_where_its_last_token_arrives(tokenizer) -> None:
    reply = tokenizer("ab\ncd", add_special_tokens=False)["input_ids"]
    assert stop_hit(tokenizer, reply, ["\n"]) == 3


def test_no_stop_string_no_hit(tokenizer) -> None:
    reply = tokenizer("abcd", add_special_tokens=False)["input_ids"]
    assert stop_hit(tokenizer, reply, ["\n"]) == -1
