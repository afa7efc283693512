"""`deception relabel`: a new judge on the stored utterances, no game replayed, answers cached, history kept."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from deception_core import InterpretabilityRunner, RunConfig
from deception_core.base.errors import UsageError
from deception_core.base.registry import Kind
from deception_core.cli import cli
from deception_core.label.relabel import CACHE_FILE, dialogue_until, relabel
from deception_core.store import read_dataset


@pytest.fixture()
def echo_run(tiny_model_dir, tmp_path, fake_plugin_set):
    out = tmp_path / "run"
    config = RunConfig(model=str(tiny_model_dir), scenario_names=["echo"], trials=3, max_rounds=2, max_tokens=4,
                       evaluator="echo-judge", output=str(out), analyze=False, report=False)
    InterpretabilityRunner(config, plugins=fake_plugin_set).run()
    return out


@pytest.fixture()
def counted(monkeypatch, fake_plugin_set):
    """Counts of the game generations (captured) and of the judge's scoring calls."""
    import deception_core.play.play as play

    counts = {"captured": 0, "judge_scoring": 0, "games": 0}
    backend_cls = fake_plugin_set.registry.get(Kind.CAPTURE_BACKEND, "hf").load()
    original_generate = backend_cls.generate

    def generate(self, requests, *args, **kwargs):
        counts["captured"] += sum(1 for r in requests if r.capture)
        return original_generate(self, requests, *args, **kwargs)

    original_scorer = play.choice_scorer

    def choice_scorer(backend, max_batch):
        score = original_scorer(backend, max_batch)

        def counted_score(conversations, choices, opening=()):
            counts["judge_scoring"] += len(conversations)
            return score(conversations, choices, opening)

        return counted_score

    def no_games(*args, **kwargs):
        counts["games"] += 1
        raise AssertionError("relabel played a game")

    monkeypatch.setattr(backend_cls, "generate", generate)
    monkeypatch.setattr(play, "choice_scorer", choice_scorer)
    monkeypatch.setattr(play, "play_batch", no_games)
    return counts


def test_relabel_rejudges_without_playing_and_caches(echo_run, fake_plugin_set, counted) -> None:
    before = read_dataset(echo_run)
    first = relabel(echo_run, evaluator="local", label_policy="agree", analyze=False, plugins=fake_plugin_set)
    after = read_dataset(echo_run)
    assert counted["games"] == 0
    assert counted["captured"] == 0
    assert counted["judge_scoring"] == len(before)
    assert first.changed > 0
    assert first.changed == sum(a.label != b.label for a, b in zip(after.samples, before.samples, strict=True))
    assert all(s.judge_raw.startswith("log-probabilities") for s in after.samples)
    assert [s.label_history[-1]["label"] for s in after.samples] == before.column("label")
    assert [s.label_history[-1]["judge_raw"] for s in after.samples] == before.column("judge_raw")
    assert {s.label_history[-1]["evaluator"] for s in after.samples} == {"echo-judge"}
    assert {s.judge["evaluator"] for s in after.samples} == {"local"}
    assert after.meta["labelling"]["evaluator"] == "local"
    assert after.column("reply_text") == before.column("reply_text")
    entries = [json.loads(line) for line in (echo_run / CACHE_FILE).read_text().splitlines()]
    assert len({e["key"] for e in entries}) == len(before)
    assert {e["judge"]["evaluator"] for e in entries} == {"local"}

    second = relabel(echo_run, evaluator="local", label_policy="agree", analyze=False, plugins=fake_plugin_set)
    assert counted["judge_scoring"] == len(before)  # no new judge call
    assert second.cache_hits == len(before)
    assert second.cache_misses == 0
    assert second.model_loads == 0
    again = read_dataset(echo_run)
    assert again.column("label") == after.column("label")
    assert [len(s.label_history) for s in again.samples] == [2] * len(before)


def test_rule_policy_takes_the_rule_label(echo_run, fake_plugin_set) -> None:
    relabel(echo_run, evaluator="local", label_policy="rule", analyze=False, plugins=fake_plugin_set)
    dataset = read_dataset(echo_run)
    assert dataset.column("label") == dataset.column("rule_label")


def test_unknown_judge_is_refused_before_anything_is_written(echo_run, fake_plugin_set) -> None:
    samples = (echo_run / "dataset" / "samples.jsonl").read_bytes()
    with pytest.raises(UsageError):
        relabel(echo_run, evaluator="no-such-judge", analyze=False, plugins=fake_plugin_set)
    result = CliRunner().invoke(cli, ["relabel", str(echo_run), "--evaluator", "no-such-judge"])
    assert result.exit_code == 2
    assert "no-such-judge" in result.output
    assert (echo_run / "dataset" / "samples.jsonl").read_bytes() == samples
    assert not (echo_run / CACHE_FILE).exists()


def test_dialogue_matches_the_game_view() -> None:
    transcript = [
        {"speaker": "A", "text": "hi", "kind": "say", "request_id": "a#r1"},
        {"speaker": "A", "text": "(thinks)", "kind": "theory_of_mind", "request_id": "t#r1"},
        {"speaker": "B", "text": "hello", "kind": "say", "request_id": "b#r1"},
        {"speaker": "A", "text": "offer", "kind": "say", "request_id": "a#r2"},
        {"speaker": "B", "text": "later", "kind": "say", "request_id": "b#r2"},
    ]
    assert [t["text"] for t in dialogue_until(transcript, "a#r2")] == ["hi", "hello", "offer"]
    untagged = [{k: v for k, v in t.items() if k != "kind"} for t in transcript]
    assert [t["text"] for t in dialogue_until(untagged, "b#r1")] == ["hi", "(thinks)", "hello"]


def test_relabel_keeps_one_choice_scorer_so_an_opening_runs_once(tiny_model_dir, fake_plugin_set) -> None:
    from deception_core.base.types import Message
    from deception_core.label.relabel import _LazyModel
    from deception_core.model.spec import ModelSpec
    from deception_core.model.surface import load_model

    loaded = load_model(ModelSpec.parse(str(tiny_model_dir)), device="cpu", dtype="float32")
    lazy = _LazyModel({"model": str(tiny_model_dir)}, fake_plugin_set.registry, model=loaded)
    conversations = [[Message("user", "Is it honest?")]]
    lazy.score_choices(conversations, [" yes", " no"])
    first = lazy.scorer
    lazy.score_choices(conversations, [" yes", " no"])
    assert lazy.scorer is first
