"""The output policy at its edges: ``--overwrite`` deletes only marked run folders that are not inputs,
two processes never write one output, and file outputs (export, report) never replace what a command
did not write or land inside a run. Each refusal: exit 2, the message, no traceback, nothing written
or deleted."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from reliability_plugin import HERE, PLUGIN_REF, base_args, load_tiny, plugin_set, run_config

from deception_core import InterpretabilityRunner
from deception_core.cli import cli
from deception_core.outputs.policy import MARKER_FILE, OutputClaim, read_marker, write_marker
from deception_core.plugins import EXTRA_ENV, reset_plugin_set
from deception_core.report.frames import neutralise_formulas
from deception_core.store.dataset import Dataset, read_dataset, write_dataset


@pytest.fixture(scope="module")
def good_run(tiny_model_dir, tmp_path_factory) -> Path:
    """A finished run of the tiny model (no analysis), marked by the toolkit."""
    out = tmp_path_factory.mktemp("good") / "run"
    InterpretabilityRunner(run_config(tiny_model_dir, out, analyze=False), plugins=plugin_set(),
                           model=load_tiny(tiny_model_dir)).run()
    return out


@pytest.fixture()
def cli_env(monkeypatch):
    monkeypatch.setenv(EXTRA_ENV, PLUGIN_REF)
    reset_plugin_set()
    yield
    reset_plugin_set()


def _snapshot(*roots: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for root in roots for p in root.rglob("*")}


def _refused(args: list[str], expected: tuple[str, ...], *watched: Path, absent: Path | None = None) -> str:
    """Run ``args``; assert exit 2 with every ``expected`` text, no traceback, ``watched`` unchanged."""
    before = _snapshot(*watched)
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # an answer, not a crash
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.output, result.output
    assert _snapshot(*watched) == before, "a refused command wrote or deleted files"
    if absent is not None:
        assert not absent.exists()
    return result.output


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


# --- class 1: --overwrite deletes only marked run folders that are no input --------------------------


def test_overwrite_refuses_a_model_folder_even_the_one_being_loaded(tiny_model_dir, tmp_path, cli_env) -> None:
    model = _copy(tiny_model_dir, tmp_path / "model")  # a Hugging Face folder: config.json, weights, tokenizer
    args = [*base_args(model, model), "--overwrite"]
    _refused(args, ("is not a deception run folder", MARKER_FILE, "--overwrite only replaces"), tmp_path)
    assert (model / "model.safetensors").is_file()


def test_overwrite_refuses_the_model_being_loaded_even_with_a_marker(tiny_model_dir, tmp_path, cli_env) -> None:
    model = _copy(tiny_model_dir, tmp_path / "model")
    write_marker(model, "run")  # planted, or a run folder that a model was saved into
    _refused([*base_args(model, model), "--overwrite"], ("is the model", "never replaces an input"), tmp_path)


def test_overwrite_refuses_a_run_that_contains_the_checkpoint(tiny_model_dir, good_run, tmp_path, cli_env) -> None:
    run = _copy(good_run, tmp_path / "run")
    (run / "ckpt").mkdir()
    args = [*base_args(tiny_model_dir, run, **{"--checkpoint-dir": run / "ckpt"}), "--overwrite"]
    _refused(args, ("contains the checkpoint folder", "never replaces an input"), tmp_path)


def test_overwrite_refuses_a_run_of_an_earlier_version(tiny_model_dir, good_run, tmp_path, cli_env) -> None:
    legacy = _copy(good_run, tmp_path / "legacy")
    (legacy / MARKER_FILE).unlink()  # what every run folder looked like before the marker
    _refused([*base_args(tiny_model_dir, legacy), "--overwrite"],
             ("written by an earlier version", "delete it by hand"), tmp_path)


def test_analyze_never_writes_over_the_runs_own_dataset(good_run, tmp_path, cli_env) -> None:
    run = _copy(good_run, tmp_path / "run")
    _refused(["analyze", run, "--output", run / "dataset", "--overwrite"],
             ("inside the dataset folder", "outside it"), tmp_path)
    assert len(read_dataset(run)) == len(read_dataset(good_run))  # still verifies


def test_analyze_never_overwrites_the_folder_above_the_run(good_run, tmp_path, cli_env) -> None:
    parent = tmp_path / "parent"
    run = _copy(good_run, parent / "run")
    _refused(["analyze", run, "--output", parent, "--overwrite"], ("is not empty and is not a deception run",),
             tmp_path)
    write_marker(parent, "analyze")  # even a marked folder: it contains the input
    _refused(["analyze", run, "--output", parent, "--overwrite"], ("contains the run", "never replaces an input"),
             tmp_path)


def test_merge_never_overwrites_a_folder_holding_its_input(good_run, tmp_path, cli_env) -> None:
    outer = _copy(good_run, tmp_path / "outer")  # a marked run ...
    inner = _copy(good_run, outer / "inner")  # ... holding the run being merged
    _refused(["merge", outer, inner, "--overwrite"], ("contains the input", "never replaces an input"), tmp_path)


def test_every_command_marks_the_folders_it_creates(tiny_model_dir, good_run, tmp_path, cli_env) -> None:
    assert read_marker(good_run)["command"] == "run"
    merged = CliRunner().invoke(cli, ["merge", str(tmp_path / "merged"), str(good_run)])
    assert merged.exit_code == 0, merged.output
    assert read_marker(tmp_path / "merged")["command"] == "merge"
    data = tmp_path / "statements.jsonl"
    data.write_text('{"text": "I paid 30 coins.", "label": "honest"}\n{"text": "I paid 50.", "label": "deceptive"}\n')
    captured = CliRunner().invoke(cli, ["capture", str(data), "-m", str(tiny_model_dir), "-o", str(tmp_path / "cap"),
                                        "--device", "cpu", "--dtype", "float32"])
    assert captured.exit_code == 0, captured.output
    assert read_marker(tmp_path / "cap")["command"] == "capture"
    analysed = CliRunner().invoke(cli, ["analyze", str(good_run), "--output", str(tmp_path / "analysis")])
    assert analysed.exit_code == 0, analysed.output
    assert read_marker(tmp_path / "analysis")["command"] == "analyze"
    again = CliRunner().invoke(cli, ["analyze", str(good_run), "--output", str(tmp_path / "analysis"), "--overwrite"])
    assert again.exit_code == 0, again.output  # a marked output that is no input: replaced
    assert not list(tmp_path.glob(".*deception-lock"))  # claims are released


# --- class 2: one process at a time writes an output --------------------------------------------------


def test_a_command_into_an_output_another_holds_exits_2_naming_it(tiny_model_dir, tmp_path, cli_env) -> None:
    out = tmp_path / "out"
    with OutputClaim(out, "run"):
        output = _refused(base_args(tiny_model_dir, out), ("is being written by `deception run`",
                                                           f"process {os.getpid()}", "pass another --output"),
                          tmp_path, absent=out)
    assert "since" in output


def test_capture_into_a_held_output_exits_2_before_the_model_loads(tiny_model_dir, tmp_path, cli_env,
                                                                   monkeypatch) -> None:
    def no_model(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("deception_core.model.surface.load_model", no_model)
    data = tmp_path / "statements.jsonl"
    data.write_text('{"text": "I paid 30 coins.", "label": "honest"}\n')
    out = tmp_path / "cap"
    with OutputClaim(out, "capture"):
        _refused(["capture", data, "-m", tiny_model_dir, "-o", out], ("is being written by `deception capture`",),
                 tmp_path, absent=out)


def test_relabel_of_a_run_being_written_exits_2(good_run, tmp_path, cli_env) -> None:
    run = _copy(good_run, tmp_path / "run")
    with OutputClaim(run, "run"):
        _refused(["relabel", run, "--no-analyze"], ("RUN_DIR", "is being written by `deception run`"), tmp_path)


def test_a_planted_lock_link_is_refused_and_its_target_left_alone(tiny_model_dir, tmp_path, cli_env) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / ".out.deception-lock").symlink_to(victim)
    _refused(base_args(tiny_model_dir, tmp_path / "out"), ("is a symbolic link", "remove it"), tmp_path,
             absent=tmp_path / "out")
    assert victim.read_text() == "precious\n"


def test_two_processes_into_one_new_output_one_wins_the_other_exits_2(tiny_model_dir, tmp_path) -> None:
    """20 times: two processes start `deception run` into the same new --output at the same moment."""
    repeats = 20
    env = {**os.environ, EXTRA_ENV: PLUGIN_REF, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    worker = str(HERE / "output_race_worker.py")
    processes = [subprocess.Popen([sys.executable, worker, str(tmp_path), name, other, str(repeats),
                                   str(tiny_model_dir)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for name, other in (("a", "b"), ("b", "a"))]
    for process in processes:
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output.decode()[-3000:]
    workers = {name: json.loads((tmp_path / f"results-{name}.json").read_text()) for name in ("a", "b")}
    for index in range(repeats):
        results = {name: workers[name]["results"][index] for name in workers}
        codes = sorted(r["exit_code"] for r in results.values())
        assert codes == [0, 2], {n: (r["exit_code"], r["output"][-600:], r["traceback"][-1500:])
                                 for n, r in results.items()}
        winner = next(n for n, r in results.items() if r["exit_code"] == 0)
        loser = results["b" if winner == "a" else "a"]
        assert not loser["traceback"]
        assert "Traceback" not in loser["output"]
        assert f"process {workers[winner]['pid']}" in loser["output"], loser["output"]  # names the winner
        out = tmp_path / f"out-{index}"
        assert len(read_dataset(out)) > 0  # the winner's run is complete
        assert read_marker(out)["pid"] == workers[winner]["pid"]
    assert not list(tmp_path.glob(".*"))  # no claim, staging folder or temporary file left


# --- class 3: file outputs go through the policy ------------------------------------------------------


def test_export_never_writes_into_a_run(good_run, tmp_path, cli_env) -> None:
    run = _copy(good_run, tmp_path / "run")
    target = run / "dataset" / "samples.jsonl"
    _refused(["export", run, "--format", "jsonl", "-o", target, "--overwrite"],
             ("is inside the run or dataset folder", "write samples.jsonl outside it"), tmp_path)
    _refused(["export", run, "--format", "csv", "-o", run / "samples.csv"], ("is inside the run or dataset folder",),
             tmp_path, absent=run / "samples.csv")
    assert len(read_dataset(run)) == len(read_dataset(good_run))


def test_export_refuses_an_existing_file_unless_overwrite(good_run, tmp_path, cli_env) -> None:
    target = tmp_path / "mine.csv"
    target.write_text("my own notes\n")
    _refused(["export", good_run, "--format", "csv", "-o", target], ("exists", "--overwrite to replace it"), tmp_path)
    replaced = CliRunner().invoke(cli, ["export", str(good_run), "--format", "csv", "-o", str(target), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert "sample_id" in target.read_text().splitlines()[0].split(",")


def test_report_file_outputs_go_through_the_policy(good_run, tmp_path, cli_env) -> None:
    other = _copy(good_run, tmp_path / "other")
    mine = tmp_path / "mine.html"
    mine.write_text("<p>mine</p>")
    _refused(["report", good_run, "-o", mine, "--no-tokens"], ("exists", "--overwrite"), tmp_path, good_run)
    _refused(["report", good_run, "-o", other / "report.html", "--no-tokens"],
             ("is inside the run or dataset folder",), tmp_path, good_run)


def test_bench_refuses_an_existing_json_file_before_the_model_loads(tiny_model_dir, good_run, tmp_path,
                                                                   monkeypatch) -> None:
    def no_model(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("deception_core.cli.bench._load", no_model)
    mine = tmp_path / "bench.json"
    mine.write_text("{}")
    bench = ["bench", "--model", tiny_model_dir, "--device", "cpu", "--repeats", "1"]
    _refused([*bench, "--json", mine], ("--json", "exists", "--overwrite"), tmp_path)
    _refused([*bench, "--json", good_run / "bench.json"], ("inside the run or dataset folder",), tmp_path, good_run)


FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1", "plain", "a=b"]


def test_csv_cells_that_start_a_formula_are_neutralised(good_run, tmp_path, cli_env) -> None:
    import attrs

    dataset = read_dataset(good_run)
    samples = [attrs.evolve(s, reply_text=FORMULAS[i % len(FORMULAS)]) for i, s in enumerate(dataset.samples)]
    run = tmp_path / "run"
    write_dataset(run / "dataset", Dataset(dataset.meta, samples, dataset.trials, dataset.arrays))
    exported = CliRunner().invoke(cli, ["export", str(run), "--format", "csv", "-o", str(tmp_path / "x.csv")])
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO((tmp_path / "x.csv").read_bytes().decode(), newline="")))
    assert len(rows) == len(samples)  # a cell holding a carriage return did not split its row
    texts = {row["reply_text"] for row in rows}
    assert texts == {"'" + t if t[0] in "=+-@\t\r" else t for t in FORMULAS[: len(samples)]}
    assert {row["round"] for row in rows} <= {"0", "1", "2"}  # numbers are left alone


def test_neutralise_formulas_known_answers() -> None:
    import pandas as pd

    frame = pd.DataFrame({"text": ["=1", "+1", "-1", "@x", "\tx", "\rx", "ok", None], "n": [-1, 2, 3, 4, 5, 6, 7, 8],
                          "=cmd": ["a"] * 8})
    safe = neutralise_formulas(frame)
    assert safe["text"].tolist()[:7] == ["'=1", "'+1", "'-1", "'@x", "'\tx", "'\rx", "ok"]
    assert pd.isna(safe["text"][7])
    assert safe["n"].tolist() == [-1, 2, 3, 4, 5, 6, 7, 8]
    assert list(safe.columns) == ["text", "n", "'=cmd"]
    assert frame["text"][0] == "=1"  # the caller's frame is unchanged


def test_the_contrast_writer_never_replaces_a_file(tmp_path) -> None:
    mine = tmp_path / "pairs.jsonl"
    mine.write_text("mine\n")
    before = _snapshot(tmp_path)
    done = subprocess.run([sys.executable, "-m", "deception_scenarios.contrast", str(mine)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 2
    assert "pairs.jsonl exists" in done.stderr
    assert "Traceback" not in done.stderr
    assert _snapshot(tmp_path) == before
