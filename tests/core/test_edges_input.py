"""The safety promises at their edges: relabel when the judge fails, capture input, dataset
compatibility, time limits that speak, and the resume line on the console.

Every refusal is checked the same way: its exit code, its message, no traceback, and not one
file written, changed or deleted anywhere under the test's folders.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from reliability_plugin import Killed, base_args, dying_store, load_tiny, plugin_set, run_config

from deception_core import InterpretabilityRunner
from deception_core.capture.texts import TextRecord, capture_texts, read_text_records, record_groups
from deception_core.cli import cli
from deception_core.model.surface import from_hf
from deception_core.store.dataset import read_dataset, write_dataset
from deception_core.testing.tiny_models import tiny_hf_model, tiny_tokenizer

KEY = "sk-edges-test-key"


# --- helpers ---------------------------------------------------------------------------------------

def snapshot(*roots: Path) -> dict[Path, str]:
    """Every file and folder under ``roots`` with its content hash (folders: "dir")."""
    state: dict[Path, str] = {}
    for root in roots:
        for path in [root, *root.rglob("*")] if root.exists() else []:
            state[path] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def refused(result: Result, code: int, *expected: str) -> None:
    assert result.exit_code == code, (result.output, result.exception)
    if code:
        assert isinstance(result.exception, SystemExit), result.exception  # an answer, not a crash
    else:
        assert result.exception is None, result.exception
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.output, result.output


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture()
def no_model_load(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("a model was loaded for input that should have been refused first")

    monkeypatch.setattr("deception_core.model.surface.load_model", refuse)


@pytest.fixture(scope="module")
def finished_run(tiny_model_dir, tmp_path_factory) -> Path:
    """A finished echo run (labels from the echo judge), copied by each test that touches it."""
    out = tmp_path_factory.mktemp("edges") / "run"
    InterpretabilityRunner(run_config(tiny_model_dir, out, analyze=False, report=False), plugins=plugin_set(),
                           model=load_tiny(tiny_model_dir)).run()
    return out


@pytest.fixture()
def run_copy(finished_run, tmp_path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(finished_run, target)
    return target


class FakeJudgeAPI:
    """A Together-shaped chat API on 127.0.0.1: the first ``ok`` calls answer, every later one gets 503."""

    def __init__(self, ok: int) -> None:
        self.calls = 0
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with api.lock:
                    api.calls += 1
                    good = api.calls <= ok
                body = json.dumps({"choices": [{"message": {"content": "OK"}}]} if good
                                  else {"error": "overloaded"}).encode()
                self.send_response(200 if good else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeJudgeAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture()
def stalled_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections (the kernel's backlog) and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def closed_port() -> int:
    """A local port nothing listens on (bound, then released): connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def judge_env(monkeypatch, url: str, **settings: str) -> None:
    monkeypatch.setenv("TOGETHER_API_KEY", KEY)
    monkeypatch.setenv("DECEPTION_TOGETHER_BASE_URL", url)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


# --- 5. relabel ------------------------------------------------------------------------------------

def test_relabel_keeps_every_label_when_the_judge_fails_after_its_preflight(run_copy, cli_with_plugin,
                                                                            monkeypatch) -> None:
    with FakeJudgeAPI(ok=1) as api:  # the preflight passes, every judge call after it fails
        judge_env(monkeypatch, api.url, DECEPTION_JUDGE_MAX_TRIES="1")
        before = snapshot(run_copy)
        n = len(read_dataset(run_copy))
        result = cli_with_plugin.invoke(cli, ["relabel", str(run_copy), "--evaluator", "together", "--no-analyze"])
    refused(result, 1, f"failed on {n} of the {n} call(s)", "Nothing was applied",
            f"keeps its {n} earlier label(s) (by echo-judge)", "--max-judge-failures")
    assert api.calls == n + 1
    assert snapshot(run_copy) == before  # no label changed, no cache file written
    assert KEY not in result.output


def test_relabel_below_the_threshold_keeps_the_failed_samples_labels(run_copy) -> None:
    from deception_core.base.types import JudgeVerdict, Label
    from deception_core.contracts.hookspecs import hookimpl
    from deception_core.label.relabel import relabel
    from deception_core.plugins import build_plugin_set
    from deception_core.testing.fakes import RuleEchoEvaluator

    class FirstCallFails(RuleEchoEvaluator):
        name = "first-fails"

        def judge_many(self, requests):
            verdicts = [self.judge(r) for r in requests]
            return [JudgeVerdict(Label.AMBIGUOUS, "", "HTTP 503"), *verdicts[1:]]

    class Plugin:
        @hookimpl
        def register_evaluators(self, registry) -> None:
            registry.add("first-fails", lambda: FirstCallFails, summary="fails on the first request")

    plugins = build_plugin_set(extra_plugins={"flaky": Plugin(), **_reliability_plugin()})
    before = read_dataset(run_copy)
    result = relabel(run_copy, evaluator="first-fails", analyze=False, plugins=plugins, max_failures=0.5)
    after = read_dataset(run_copy)
    assert result.kept == 1
    assert after.samples[0].label_history == before.samples[0].label_history  # untouched: no new verdict
    assert after.samples[0].label == before.samples[0].label
    assert all(len(s.label_history) == len(b.label_history) + 1
               for s, b in zip(after.samples[1:], before.samples[1:], strict=True))
    assert after.meta["labelling"]["kept_after_judge_failure"] == 1


def _reliability_plugin() -> dict[str, Any]:
    from reliability_plugin import PLUGIN

    return {"reliability-test": PLUGIN}


@pytest.mark.parametrize(("damage", "expected"), [
    ("cache-torn-line", ("judge_cache.jsonl:2 is damaged", "Delete that line")),
    ("cache-wrong-label", ("judge_cache.jsonl:1 is damaged",)),
    ("cache-binary", ("judge_cache.jsonl is not a text file",)),
    ("config-truncated", ("config.json is not valid JSON", "truncated?", "Restore it")),
    ("config-a-list", ("config.json does not hold a run's config",)),
])
def test_relabel_refuses_damaged_side_files_naming_them(damage, expected, run_copy, cli_with_plugin) -> None:
    cache, config = run_copy / "judge_cache.jsonl", run_copy / "config.json"
    good_line = json.dumps({"key": "a" * 64, "judge": {}, "label": "honest", "raw": "x", "error": None})
    if damage == "cache-torn-line":
        cache.write_text(good_line + "\n" + good_line[:30] + "\n")
    elif damage == "cache-wrong-label":
        cache.write_text(good_line.replace('"honest"', '"lying"') + "\n")
    elif damage == "cache-binary":
        cache.write_bytes(b"\xff\xfe\x00garbage")
    elif damage == "config-truncated":
        config.write_text(config.read_text()[:57])
    elif damage == "config-a-list":
        config.write_text("[1, 2]")
    before = snapshot(run_copy)
    result = cli_with_plugin.invoke(cli, ["relabel", str(run_copy), "--no-analyze"])
    refused(result, 2, *expected)
    assert snapshot(run_copy) == before


def test_relabel_of_a_capture_dataset_says_what_it_is(tmp_path, tiny_model_dir, cli_with_plugin) -> None:
    data = tmp_path / "facts.jsonl"
    data.write_text('{"text": "Paris is in France.", "label": "honest"}\n{"text": "Paris is in Peru.", '
                    '"label": "deceptive"}\n')
    captured = tmp_path / "captured"
    refused(cli_with_plugin.invoke(cli, ["capture", str(data), "-m", str(tiny_model_dir), "-o", str(captured),
                                         "--dtype", "float32", "--device", "cpu"]), 0)
    before = snapshot(tmp_path)
    result = cli_with_plugin.invoke(cli, ["relabel", str(captured), "--evaluator", "echo-judge"])
    refused(result, 2, "was written by `deception capture`", "edit the 'label' field")
    assert "unknown scenario" not in result.output
    assert snapshot(tmp_path) == before


# --- 6. capture input ------------------------------------------------------------------------------

LONG = "word " * 2000  # about 2000 tokens; the tiny model's context is 1024

CAPTURE_CASES: dict[str, tuple[bytes | None, tuple[str, ...]]] = {
    "latin-1-bytes": ('{"text": "caf\xe9"}\n'.encode("latin-1"), ("data.jsonl:1: not UTF-8 text", "byte 0xe9")),
    "text-a-number": (b'{"text": "ok"}\n{"text": 5}\n', ("data.jsonl:2: 'text' must be text", "a number")),
    "reply-a-number": (b'{"text": "Q?", "reply": 42}\n', ("'reply' must be text", "put it in quotes")),
    "label-a-list": (b'{"text": "x", "label": ["honest"]}\n', ("'label' must be text",)),
    "group-an-object": (b'{"text": "x", "group": {"a": 1}}\n', ("'group' must be text or a whole number",)),
    "content-a-number": (b'{"messages": [{"role": "user", "content": 7}]}\n', ("values are text",)),
    "too-long": (json.dumps({"text": LONG}).encode() + b"\n",
                 ("longer than the model's context of 1024 tokens", "record 1 (", "--truncate")),
    "directory": (None, ("is a directory",)),
}


@pytest.mark.parametrize("case", list(CAPTURE_CASES))
def test_capture_refuses_bad_records_before_the_model_loads(case, tmp_path, tiny_model_dir, no_model_load) -> None:
    content, expected = CAPTURE_CASES[case]
    data = tmp_path / "data.jsonl"
    if content is None:
        data.mkdir()
    else:
        data.write_bytes(content)
    out = tmp_path / "out"
    before = snapshot(tmp_path, tiny_model_dir)
    result = invoke(["capture", data, "-m", tiny_model_dir, "-o", out, "--device", "cpu"])
    refused(result, 2, *expected)
    assert snapshot(tmp_path, tiny_model_dir) == before


def test_csv_row_with_more_cells_than_its_header_is_refused(tmp_path, tiny_model_dir, no_model_load) -> None:
    data = tmp_path / "data.csv"
    data.write_text("text,label\nI paid, in full,honest\n")
    before = snapshot(tmp_path)
    refused(invoke(["capture", data, "-m", tiny_model_dir, "-o", tmp_path / "out"]), 2,
            "data.csv:2: the row has more cells than the header")
    assert snapshot(tmp_path) == before


def test_a_byte_order_mark_is_accepted_in_jsonl_and_csv(tmp_path) -> None:
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + b'{"text": "Snow is white.", "label": "honest"}\n')
    csv = tmp_path / "bom.csv"
    csv.write_bytes(b"\xef\xbb\xbf" + b"text,label\nSnow is black.,deceptive\n")
    assert read_text_records(jsonl) == [TextRecord(text="Snow is white.", label="honest")]
    assert read_text_records(csv) == [TextRecord(text="Snow is black.", label="deceptive")]


def test_the_shipped_contrast_set_holds_no_duplicate_records() -> None:
    from deception_core.capture.texts import duplicates, text_records
    from deception_scenarios.contrast import MAX_UNITS, instructed_pairs

    assert duplicates(text_records(instructed_pairs(), "instructed_pairs")) == []
    assert duplicates(text_records(instructed_pairs(n_units=MAX_UNITS, seed=3), "instructed_pairs")) == []


def test_duplicates_share_one_group_known_answer() -> None:
    records = [TextRecord(text="a", group="g1"), TextRecord(text="b"), TextRecord(text="a", group="g2"),
               TextRecord(text="c", group="g2"), TextRecord(text="b", reply="r")]
    groups = record_groups(records, "s")
    assert groups == ["g1", "s/000001", "g1", "g1", "s/000004"]  # g2 joins g1 through the copy of "a"


def test_capture_reports_duplicates_and_keeps_copies_in_one_group(tmp_path, tiny_model_dir) -> None:
    data = tmp_path / "dups.jsonl"
    data.write_text('{"text": "The sky is green.", "label": "deceptive"}\n{"text": "Snow is white.", "label": '
                    '"honest"}\n{"text": "The sky is green.", "label": "deceptive"}\n')
    out = tmp_path / "out"
    result = invoke(["capture", data, "-m", tiny_model_dir, "-o", out, "--dtype", "float32", "--device", "cpu"])
    refused(result, 0, "1 duplicate record(s)", "records 1, 3", "one group")
    keys = read_dataset(out).column("trial_key")
    assert keys[0] == keys[2]
    assert keys[0] != keys[1]


def test_truncate_cuts_an_overlong_statement_to_the_context(tmp_path, tiny_model_dir) -> None:
    data = tmp_path / "long.jsonl"
    data.write_text(json.dumps({"text": LONG, "label": "honest"}) + "\n")
    out = tmp_path / "out"
    result = invoke(["capture", data, "-m", tiny_model_dir, "-o", out, "--dtype", "float32", "--device", "cpu",
                     "--truncate", "--layers", "0"])
    refused(result, 0, "1 record(s) cut to the model's context")
    dataset = read_dataset(out)
    sample = dataset.samples[0]
    assert sample.n_prompt_tokens + sample.n_reply_tokens == 1024
    assert dataset.meta["truncated_records"] == 1


# --- 7. dataset compatibility ----------------------------------------------------------------------

STATEMENTS = [TextRecord(text=t, label=label, group=f"g{i // 2}") for i, (t, label) in enumerate([
    ("Paris is in France.", "honest"), ("Paris is in Peru.", "deceptive"), ("Two and two make four.", "honest"),
    ("Two and two make five.", "deceptive"), ("Ice is cold.", "honest"), ("Ice is hot.", "deceptive"),
    ("The sun rises in the east.", "honest"), ("The sun rises in the west.", "deceptive")])]


def _captured(folder: Path, vocab_size: int, records: list[TextRecord] = STATEMENTS, name: str = "facts") -> Path:
    """A dataset of ``records`` under ``folder/dataset``, from a tiny model that calls itself "model"."""
    loaded = from_hf(tiny_hf_model("llama", n_layers=2, d_model=32, vocab_size=vocab_size), tiny_tokenizer(),
                     model_id="model", source="local")
    write_dataset(folder / "dataset", capture_texts(loaded, records, name=name))
    return folder


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compat")
    return {"a": _captured(root / "a", 320), "b": _captured(root / "b", 320, STATEMENTS[::-1], "other"),
            "other-model": _captured(root / "other-model", 352)}


@pytest.fixture()
def work(datasets, tmp_path) -> dict[str, Path]:
    copies = {name: tmp_path / name for name in datasets}
    for name, path in datasets.items():
        shutil.copytree(path, copies[name])
    return copies


def test_a_different_model_with_the_same_id_is_refused_before_training(work, monkeypatch) -> None:
    import deception_probes.transfer as transfer

    monkeypatch.setattr(transfer, "select_and_fit", lambda *a, **k: pytest.fail("trained before the check"))
    before = snapshot(*work.values())
    result = invoke(["analyze", work["a"], "--train-from", work["other-model"]])
    refused(result, 2, "different models, though their ids may agree", "config hash")
    assert snapshot(*work.values()) == before


def test_merge_of_a_different_model_with_the_same_id_is_refused(work, tmp_path) -> None:
    before = snapshot(*work.values())
    result = invoke(["merge", tmp_path / "merged", work["a"], work["other-model"]])
    refused(result, 2, "cannot merge: the runs come from different models", "config hash")
    assert not (tmp_path / "merged").exists()
    assert snapshot(*work.values()) == before


def test_every_dataset_records_the_fingerprint(datasets) -> None:
    a = read_dataset(datasets["a"]).meta["model"]["fingerprint"]
    other = read_dataset(datasets["other-model"]).meta["model"]["fingerprint"]
    assert (a["n_layers"], a["d_model"]) == (2, 32)
    assert a["weights_sha256"] != other["weights_sha256"]
    assert a["config_sha256"] != other["config_sha256"]
    assert read_dataset(datasets["b"]).meta["model"]["fingerprint"] == a


@pytest.mark.parametrize(("extra", "expected"), [
    (lambda w: ["--train-from", w["a"]], ("--train-from", "is the same folder as the dataset analysed",
                                          "not how it transfers")),
    (lambda w: ["--train-from", w["a"] / "dataset"], ("is the same folder as the dataset analysed",)),
    (lambda w: ["--train-from", w["b"], "--control", w["b"]], ("--control", "same folder as --train-from",
                                                              "a threshold set on the samples it then flags")),
])
def test_train_equal_to_test_is_refused(extra, expected, work) -> None:
    before = snapshot(*work.values())
    refused(invoke(["analyze", work["a"], *extra(work)]), 2, *expected)
    assert snapshot(*work.values()) == before


def test_a_copy_of_the_analysed_dataset_is_refused_as_training_set(work, tmp_path) -> None:
    shutil.copytree(work["a"], tmp_path / "a-copy")
    before = snapshot(tmp_path)
    refused(invoke(["analyze", work["a"], "--train-from", tmp_path / "a-copy"]), 2, "is a copy of the dataset analysed")
    assert snapshot(tmp_path) == before


def test_an_empty_control_is_refused(work, tmp_path) -> None:
    empty = tmp_path / "empty"
    write_dataset(empty / "dataset", read_dataset(work["b"]).subset([]))
    before = snapshot(tmp_path)
    refused(invoke(["analyze", work["a"], "--control", empty]), 2, "--control", "holds no samples",
            "threshold that flags 1% of it")
    assert snapshot(tmp_path) == before


def test_a_tampered_train_from_is_found_before_the_run_is_rewritten(work) -> None:
    samples = work["b"] / "dataset" / "samples.jsonl"
    samples.write_text(samples.read_text().replace('"honest"', '"deceptive"', 1))
    before = snapshot(*work.values())
    result = invoke(["analyze", work["a"], "--train-from", work["b"]])  # in place: results would go into a/
    refused(result, 2, "samples.jsonl does not match the sha256")
    assert snapshot(*work.values()) == before


def test_analyze_output_removes_staging_left_by_a_killed_call_only(work, tmp_path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    left = tmp_path / f".result.staging-{int(dead.stdout)}-0badc0de"
    live = tmp_path / f".result.staging-{__import__('os').getpid()}-0000aaaa"  # this process: alive
    for folder in (left, live):
        folder.mkdir()
        (folder / "probe_results.json").write_text("{}")
    result = invoke(["analyze", work["a"], "--output", tmp_path / "result"])
    refused(result, 0)
    assert not left.exists()
    assert live.exists()
    assert (tmp_path / "result" / "analysis_summary.txt").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".result.staging-") and p != live]


# --- 8. time limits that speak, local checks first, options that need another ---------------------

@pytest.mark.parametrize("listener", ["closed", "silent"])
def test_unreachable_ray_address_fails_fast_naming_it(listener, tiny_model_dir, tmp_path, monkeypatch, no_model_load,
                                                      cli_with_plugin, stalled_port) -> None:
    """A closed port is refused at once; a port that accepts but never answers (no Ray head) after the
    probe's timeout (shortened here); ray.init, which would wait for minutes, is never reached."""
    ray = pytest.importorskip("ray")
    from deception_core.executors import ray_address

    assert ray_address.CONNECT_TIMEOUT <= 10  # the longest each step of the probe can wait
    monkeypatch.setattr(ray_address, "CONNECT_TIMEOUT", 0.5)
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init was reached: it waits for minutes"))
    port = closed_port() if listener == "closed" else stalled_port
    before = snapshot(tmp_path)
    result = cli_with_plugin.invoke(cli, [*base_args(tiny_model_dir, tmp_path / "out"), "--executor", "ray",
                                          "--ray-address", f"127.0.0.1:{port}"])
    why = "cannot reach a Ray cluster" if listener == "closed" else "accepts connections but gave no answer within 0.5 s"
    refused(result, 2, f"--ray-address 127.0.0.1:{port}", why, "ray start --head")
    assert snapshot(tmp_path) == before


def test_stalled_judge_prints_each_retry_and_names_the_settings(tiny_model_dir, tmp_path, monkeypatch,
                                                               stalled_port, no_model_load, cli_with_plugin) -> None:
    judge_env(monkeypatch, f"http://127.0.0.1:{stalled_port}", DECEPTION_JUDGE_TIMEOUT="0.3",
              DECEPTION_JUDGE_MAX_TRIES="3")
    config = tmp_path / "backoff.json"
    config.write_text(json.dumps({"components": {"evaluator": {"together": {"backoff": 0.01}}}}))
    before = snapshot(tmp_path)
    args = [*base_args(tiny_model_dir, tmp_path / "out", **{"--evaluator": "together"}), "--config", str(config)]
    result = cli_with_plugin.invoke(cli, args)
    refused(result, 2, "together judge check: no answer within 0.3 s; retry 1 of 2",
            "together judge check: no answer within 0.3 s; retry 2 of 2", "failed after 3 tries",
            "DECEPTION_JUDGE_TIMEOUT", "DECEPTION_JUDGE_MAX_TRIES", "components.evaluator.together.timeout")
    assert result.output.count("; retry ") == 2
    assert KEY not in result.output
    assert snapshot(tmp_path) == before


def test_default_judge_settings_print_a_line_at_least_once_a_minute() -> None:
    """The longest silence of a stalled judge: one timeout, then the longest wait before the next try."""
    from deception_scenarios.evaluators.http_json import RetryPolicy
    from deception_scenarios.evaluators.together import TogetherEvaluator

    policy = RetryPolicy(max_tries=TogetherEvaluator.default_max_tries)
    longest_backoff = max(min(policy.max_delay, policy.base_delay * 2 ** (n - 1)) * (1 + policy.jitter)
                          for n in range(1, policy.max_tries))
    longest_wait = max(longest_backoff, policy.max_delay)  # a server's Retry-After is capped at max_delay
    assert TogetherEvaluator.default_timeout + longest_wait <= 60


@pytest.mark.parametrize(("flags", "expected"), [
    ({"--sae-layer": 12}, "--sae-layer takes effect only with --sae"),  # 12 is the default
    ({"--causal-samples": 20}, "--causal-samples takes effect only with --causal"),  # 20 is the default
])
def test_options_that_need_another_are_refused_at_their_default_value(flags, expected, tiny_model_dir, tmp_path,
                                                                     no_model_load) -> None:
    before = snapshot(tmp_path)
    refused(invoke(base_args(tiny_model_dir, tmp_path / "out", **flags)), 2, expected)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(("args", "expected"), [
    (lambda c: ["analyze", c["run"], "--overwrite"], "--overwrite takes effect only with --output"),
    (lambda c: ["bench", "--model", c["model"], "--trials", "2"], "--trials takes effect only with --pipeline"),
    (lambda c: ["bench", "--pipeline", "--model", c["model"], "--backends", "hybrid"],
     "--backends takes effect only with the capture benchmark"),
    (lambda c: ["bench", "--pipeline", "--model", c["model"], "--layers", "1"], "--layers takes effect only with"),
])
def test_other_commands_refuse_options_that_take_no_effect(args, expected, run_copy, tiny_model_dir,
                                                           no_model_load) -> None:
    before = snapshot(run_copy.parent)
    refused(invoke(args({"run": run_copy, "model": tiny_model_dir})), 2, expected)
    assert snapshot(run_copy.parent) == before


def test_an_option_that_needs_another_in_a_config_file_is_refused_at_its_default(tiny_model_dir, tmp_path,
                                                                                no_model_load) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("causal_samples: 20\n")
    before = snapshot(tmp_path)
    refused(invoke([*base_args(tiny_model_dir, tmp_path / "out"), "--config", config]), 2,
            "--causal-samples takes effect only with --causal")
    assert snapshot(tmp_path) == before


def test_a_runs_own_config_json_is_still_accepted(finished_run, tiny_model_dir, tmp_path) -> None:
    """A run's config.json lists every key at its value: it is no user choice."""
    from deception_core.config.run import RunConfig
    from deception_core.config.sae import sae_settings

    config = RunConfig.from_file(finished_run / "config.json")
    assert config.trials == 3
    assert sae_settings(config.components) is None


def test_device_is_checked_before_a_hub_config_is_fetched(tmp_path, monkeypatch) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("the hub was asked first"))
    before = snapshot(tmp_path)
    result = invoke(["run", "--model", "someone/some-model", "--device", "cuda", "--output", tmp_path / "out"])
    refused(result, 2, "CUDA is not available", "--device cpu")
    result = invoke(["capture", "instructed_pairs", "--model", "someone/some-model", "--device", "cuda",
                     "-o", tmp_path / "cap"])
    refused(result, 2, "CUDA is not available")
    result = invoke(["bench", "--model", "someone/some-model", "--device", "cuda"])
    refused(result, 2, "CUDA is not available")
    assert snapshot(tmp_path) == before


def test_output_problems_are_found_before_a_hub_config_is_fetched(tmp_path, monkeypatch) -> None:
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("the hub was asked first"))
    (tmp_path / "a-file").write_text("not a folder")
    before = snapshot(tmp_path)
    refused(invoke(["run", "--model", "someone/some-model", "--device", "cpu", "--output", tmp_path / "a-file"]), 2,
            "is a file")
    assert snapshot(tmp_path) == before


# --- 9. the console says when a run resumed --------------------------------------------------------

def test_the_console_says_a_run_resumed_and_how_many_trials_it_reused(tiny_model_dir, tmp_path,
                                                                      cli_with_plugin) -> None:
    ckpt = tmp_path / "ckpt"
    config = run_config(tiny_model_dir, tmp_path / "first", checkpoint_dir=str(ckpt), analyze=False, report=False)
    with pytest.raises(Killed):
        InterpretabilityRunner(config, plugins=plugin_set(), model=load_tiny(tiny_model_dir),
                               trial_sink=dying_store(4)(ckpt)).run()
    args = [*base_args(tiny_model_dir, tmp_path / "second", **{"--checkpoint-dir": ckpt}), "--no-analyze",
            "--no-report"]
    result = cli_with_plugin.invoke(cli, args)
    refused(result, 0, "resuming from", "4 of 6 trial(s) reused from the checkpoint, 2 to play")
