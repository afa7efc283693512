"""Fixtures for the toolkit's tests and for plugin authors' (registered through ``pytest11``)."""

from __future__ import annotations

import pytest

from deception_core.plugins import build_plugin_set
from deception_core.testing.fakes import FakePlugin
from deception_core.testing.tiny_models import save_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A saved tiny random Llama-shaped model with a byte-level tokenizer and no chat template."""

    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_chat_model_dir(tmp_path_factory):
    """The same tiny model with a chat template on its tokenizer."""

    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama-chat"), "llama", chat_template=True)


@pytest.fixture()
def fake_plugin_set():
    """A plugin set with the installed plugins plus the echo test scenario and judge."""

    return build_plugin_set(extra_plugins={"fake": FakePlugin()})
