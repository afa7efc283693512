"""The ``openai`` engine against a real ``transformers serve`` (127.0.0.1, the tiny byte model).

Parity: with greedy decoding a run through the server gives the same texts, labels and reply ids
as ``--engine hf`` on the same model, and activations within rtol 1e-4 (float32): the server
generates, the in-process model replays the captured calls in one teacher-forced pass.

Sampling: ``transformers serve`` samples with HF ``generate``'s own sampler on the process-wide
torch RNG, which it seeds from each request's ``seed`` just before queueing the request; the
``hf`` engine samples with a private generator per request (inverse CDF over the nucleus). The
two draw different tokens from the same seed, so sampled texts are not compared across engines;
what is checked is that the server honours the seeds: with one request in flight at a time, the
same run gives the same dataset twice (with several in flight the process-wide seed races).

Faults: a server down at the start (exit 2, nothing written), one killed mid-run (exit 1 naming
the trials kept; the same command resumes to the same dataset), a slow one (the timeout's message
names its setting), a redirect to another origin (not followed: the key is not sent).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from engine_server import Proxy, free_port, start_transformers_serve
from reliability_plugin import read_exact

from deception_core import InterpretabilityRunner
from deception_core.base.errors import EngineFailed, UsageError
from deception_core.config.run import RunConfig
from deception_core.engine.openai import OpenAIEngine, OpenAISettings
from deception_core.model.requests import GenerationRequest, Sampling
from deception_core.plugins import build_plugin_set
from deception_core.testing.fakes import FakePlugin
from deception_core.testing.tiny_models import byte_tokenizer, save_byte_model

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="starts a server subprocess")
pytest.importorskip("fastapi", reason="needs transformers serve: pip install 'deception-core[serve]'")

KEY = "sk-test-engine-key-0123456789"


@pytest.fixture(scope="module")
def byte_model(tmp_path_factory) -> Path:
    return save_byte_model(tmp_path_factory.mktemp("byte-model"), "llama", chat_template=True, do_sample=True)


@pytest.fixture(scope="module")
def server(byte_model, tmp_path_factory):
    proc, url = start_transformers_serve(byte_model, tmp_path_factory.mktemp("serve") / "serve.log")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture()
def proxy(server):
    made = Proxy(server)
    yield made
    made.close()


@pytest.fixture(scope="module")
def plugins():
    return build_plugin_set(extra_plugins={"fake": FakePlugin()})


def config(model: Path, out: Path, **overrides) -> RunConfig:
    values = dict(model=str(model), scenario_names=("echo",), evaluator="echo-judge", trials=3, max_rounds=2,
                  max_tokens=12, device="cpu", dtype="float32", output=str(out), temperature=0.0, batch_size=2,
                  positions=("last_prompt", "reply_mean", "reply_last", "reply_all"), analyze=False, report=False)
    values.update(overrides)
    return RunConfig(**values)


def openai(url: str, **settings) -> dict:
    return dict(engine="openai", engine_url=url,
                components={"engine": {"openai": {"concurrency": 4, "max_tries": 2, **settings}}})


@pytest.fixture(scope="module")
def hf_run(byte_model, plugins, tmp_path_factory):
    return InterpretabilityRunner(config(byte_model, tmp_path_factory.mktemp("hf") / "out"), plugins=plugins).run()


@pytest.fixture(scope="module")
def openai_run(byte_model, plugins, server, tmp_path_factory):
    proxy = Proxy(server)  # every openai run goes through a proxy URL, so their configs are the same
    try:
        out = tmp_path_factory.mktemp("openai") / "out"
        results = InterpretabilityRunner(config(byte_model, out, **openai(proxy.url)), plugins=plugins).run()
    finally:
        proxy.close()
    return results, proxy.url


def _samples(results, *fields):
    return [tuple(getattr(s, f) for f in fields) for s in results.dataset.samples]


def test_greedy_replies_are_the_hf_engines(hf_run, openai_run) -> None:
    assert _samples(openai_run[0], "reply_text") == _samples(hf_run, "reply_text")


def test_greedy_reply_ids_are_the_hf_engines(hf_run, openai_run) -> None:
    assert _samples(openai_run[0], "reply_ids", "stopped_by") == _samples(hf_run, "reply_ids", "stopped_by")


def test_greedy_labels_are_the_hf_engines(hf_run, openai_run) -> None:
    assert _samples(openai_run[0], "label", "rule_label", "judge_label") == \
        _samples(hf_run, "label", "rule_label", "judge_label")


def test_the_replies_are_not_trivial(hf_run) -> None:
    assert sum(len(s.reply_ids or ()) for s in hf_run.dataset.samples) > 3 * len(hf_run.dataset.samples)


def test_activations_match_within_rtol_1e4(hf_run, openai_run) -> None:
    mine, theirs = openai_run[0].dataset, hf_run.dataset
    for layer in theirs.layers:
        for position in ("last_prompt", "reply_mean", "reply_last"):
            np.testing.assert_allclose(mine.matrix(layer, position), theirs.matrix(layer, position),
                                       rtol=1e-4, atol=1e-5, err_msg=f"layer {layer} {position}")


def test_every_reply_tokens_states_match_within_rtol_1e4(hf_run, openai_run) -> None:
    mine, theirs = openai_run[0].dataset, hf_run.dataset
    layer = theirs.layers[-1]
    for row in range(len(theirs.samples)):
        np.testing.assert_allclose(mine.reply_tokens(layer, row), theirs.reply_tokens(layer, row),
                                   rtol=1e-4, atol=1e-5)


def test_each_call_records_the_round_trip(openai_run) -> None:
    records = [call.get("engine") for trial in openai_run[0].dataset.trials for call in trial.calls]
    assert [(r["reply_ids"], r["round_trip"]) for r in records] == [("retokenized", True)] * 12


def test_sampling_with_seeds_is_reproducible_one_request_at_a_time(byte_model, plugins, proxy, tmp_path) -> None:
    sampled = openai(proxy.url, concurrency=1)
    for name in ("a", "b"):
        InterpretabilityRunner(config(byte_model, tmp_path / name, temperature=1.0, top_p=1.0, trials=2, **sampled),
                               plugins=plugins).run()
    assert read_exact(tmp_path / "a") == read_exact(tmp_path / "b")


def test_sampling_differs_from_greedy(byte_model, plugins, proxy, tmp_path, openai_run) -> None:
    run = InterpretabilityRunner(config(byte_model, tmp_path / "s", temperature=1.0, top_p=1.0,
                                        **openai(proxy.url, concurrency=1)), plugins=plugins).run()
    assert _samples(run, "reply_text") != _samples(openai_run[0], "reply_text")


def test_a_server_down_at_the_start_exits_2_with_nothing_written(byte_model, plugins, tmp_path) -> None:
    out = tmp_path / "out"
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(UsageError, match="no server answers there") as error:
        InterpretabilityRunner(config(byte_model, out, **openai(url)), plugins=plugins).run()
    assert error.value.exit_code == 2
    assert not out.exists()


def test_a_server_killed_mid_run_exits_1_naming_the_kept_trials(byte_model, plugins, server, tmp_path,
                                                                openai_run) -> None:
    results, url = openai_run
    proxy = Proxy(server)
    proxy.port, proxy.url = int(url.rsplit(":", 1)[1]), url  # the URL of the uninterrupted run
    proxy.revive()
    proxy.die_after = 8  # the first wave (4 trials, 2 calls each) finishes; the second one fails
    out = tmp_path / "out"
    try:
        with pytest.raises(EngineFailed, match=r"the 4 finished trial\(s\) are kept in .*re-run the same command"):
            InterpretabilityRunner(config(byte_model, out, **openai(url)), plugins=plugins).run()
        assert EngineFailed.exit_code == 1
        proxy.revive()
        InterpretabilityRunner(config(byte_model, out, **openai(url)), plugins=plugins).run()
    finally:
        proxy.close()
    assert read_exact(out) == read_exact(results.output_dir)


def _engine(url: str, **settings) -> OpenAIEngine:
    return OpenAIEngine(url, byte_tokenizer(chat_template=True), OpenAISettings(**settings))


def _request() -> GenerationRequest:
    return GenerationRequest(tuple(byte_tokenizer()("Say your number.")["input_ids"]), 4, 7)


def test_a_slow_server_times_out_naming_the_setting(proxy, caplog) -> None:
    proxy.mode, proxy.delay = "slow", 3.0
    engine = _engine(proxy.url, timeout=1.0, max_tries=2)
    try:
        with caplog.at_level(logging.INFO, logger="deception.engine"), \
                pytest.raises(EngineFailed, match=r"components\.engine\.openai\.timeout"):
            engine.complete([_request()], Sampling(temperature=0.0))
    finally:
        engine.close()
    assert "retry 1 of 1" in caplog.text


def test_a_redirect_to_another_origin_is_not_followed_and_the_key_is_not_sent(proxy, server, monkeypatch) -> None:
    elsewhere = Proxy(server)
    proxy.mode, proxy.redirect_to = "redirect", elsewhere.url.replace("127.0.0.1", "localhost")
    monkeypatch.setenv("DECEPTION_ENGINE_API_KEY", KEY)
    engine = _engine(proxy.url)
    try:
        with pytest.raises(EngineFailed, match="redirected to another origin") as error:
            engine.complete([_request()], Sampling(temperature=0.0))
    finally:
        engine.close()
        elsewhere.close()
    assert elsewhere.headers == []
    assert proxy.headers[-1].get("Authorization") == f"Bearer {KEY}"
    assert KEY not in str(error.value)


@pytest.fixture(scope="module")
def bench_rows(byte_model, server):
    from deception_core.bench.pipeline import run_pipeline_benchmark
    from deception_core.model.spec import ModelSpec
    from deception_core.model.surface import load_model

    loaded = load_model(ModelSpec.parse(str(byte_model)), device="cpu", dtype="float32")
    return run_pipeline_benchmark(loaded, str(byte_model), batch_sizes=[4], trials=1, new_tokens=6,
                                  engine="openai", engine_url=server)


def test_the_pipeline_bench_times_an_engine_run_of_every_trial(bench_rows) -> None:
    assert [r.trials for r in bench_rows] == [8]  # 2 ranked scenarios x 2 modes x 2 conditions x 1 trial


def test_the_pipeline_bench_splits_off_the_capture_pass(bench_rows) -> None:
    (row,) = bench_rows
    assert 0 < row.capture_seconds < row.seconds
    assert row.capture_share == pytest.approx(row.capture_seconds / row.seconds)


def test_the_pipeline_bench_table_has_the_capture_share_column(bench_rows) -> None:
    from deception_core.bench.pipeline import format_pipeline_table

    header = format_pipeline_table(bench_rows).splitlines()[0]
    assert header.split()[-2:] == ["capture", "%"]


def test_the_bench_refuses_engine_flags_without_pipeline() -> None:
    from click.testing import CliRunner

    from deception_core.cli import cli

    result = CliRunner().invoke(cli, ["bench", "--engine", "openai", "--engine-url", "http://127.0.0.1:1"])
    assert (result.exit_code, "--engine takes effect only with --pipeline" in result.output) == (2, True)


@pytest.fixture(scope="module")
def counterpart_run(byte_model, plugins, server, tmp_path_factory):
    out = tmp_path_factory.mktemp("counterpart") / "out"
    run = config(byte_model, out, scenario_names=("ultimatum_bluff",), evaluator="local", trials=1, max_rounds=1,
                 fast=True, mode="emergent", max_tokens=8, counterpart_engine=server)
    return InterpretabilityRunner(run, plugins=plugins).run(), server


def test_the_counterpart_engine_plays_every_counterpart_call(counterpart_run) -> None:
    results, url = counterpart_run
    calls = [call for trial in results.dataset.trials for call in trial.calls]
    routed = [call["caller"] for call in calls if call.get("engine") == {"counterpart": url}]
    assert sorted(routed) == sorted(c["caller"] for c in calls if c["caller"].startswith("counterpart")) != []


def test_the_agent_is_still_the_in_process_model(counterpart_run) -> None:
    results, _ = counterpart_run
    captured = [call for trial in results.dataset.trials for call in trial.calls if call["captured"]]
    assert [call.get("engine") for call in captured] == [None] * len(captured)


def test_the_counterpart_engine_is_part_of_the_checkpoint_identity(byte_model, server, tmp_path) -> None:
    from deception_core.config.resolved import ResolvedRun

    def identity(**extra):
        return ResolvedRun(config=config(byte_model, tmp_path, **extra), layers=(1,), capture_backend="hf").identity

    assert identity(counterpart_engine=server)["counterpart_engine"] == {"model": None, "url": server}
    assert "counterpart_engine" not in identity()


def test_a_counterpart_server_down_at_the_start_exits_2(byte_model, plugins, tmp_path) -> None:
    out = tmp_path / "out"
    with pytest.raises(UsageError, match="--counterpart-engine .* no server answers there"):
        InterpretabilityRunner(config(byte_model, out, counterpart_engine=f"http://127.0.0.1:{free_port()}"),
                               plugins=plugins).run()
    assert not out.exists()
