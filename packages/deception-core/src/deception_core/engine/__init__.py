"""Generation engines: the ``openai`` engine (any OpenAI-compatible server plays the games) and the
capture backend that replays its replies through the in-process model (`deception_core.engine.backend`)."""
