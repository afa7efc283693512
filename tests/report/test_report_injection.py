"""The report trusts none of its inputs: every string of a dataset someone sends, of its analysis files
and of its config reaches the page as text, the analysis files are checked against their checksums,
and a malformed ``analyses.json`` is named with the fix (exit 2), never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import attrs
import pandas as pd
import pytest
from click.testing import CliRunner

from deception_core.analyse.analyse import write_analysis_manifest
from deception_core.base.records import ANALYSES_MANIFEST, Sample, Trial, from_json, to_json
from deception_core.cli import cli
from deception_core.report import write_report
from deception_core.store.dataset import Dataset, read_dataset, write_dataset
from deception_core.testing.browser import Browser, find_chromium
from deception_core.testing.report_fixture import write_synthetic_run

#: closes any element or attribute it lands in, then tries a script, an event handler and a new element
PAYLOAD = ("\"'></textarea></title></style></script><!--<script>document.title='pwned';window.pwned=1</script>"
           "<img id=injected src=x onerror=\"document.title='pwned';window.pwned=1\">")
#: the same without "/", for a folder name
NAME_PAYLOAD = "run\"'><img id=injected-name src=x onerror=\"document.title='pwned'\">"


def evil(value: Any) -> Any:
    """Every string in ``value`` with the payload appended, the same string the same way (so sample ids,
    trial keys and request ids still link samples to their transcripts); the keys of the free-form
    objects (claims, facts, outcome) get one more entry whose key is the payload."""
    if isinstance(value, str):
        return value + PAYLOAD
    if isinstance(value, dict):
        return {k: evil(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [evil(v) for v in value]
    return value


class EvilTokenizer:
    def decode(self, ids: list[int]) -> str:
        return f" tok{ids[0]}{PAYLOAD}"


def _evil_run(tmp: Path) -> Path:
    run = write_synthetic_run(tmp / NAME_PAYLOAD, trials=1, scenarios=1, rounds=2, reply_tokens=3)
    dataset = read_dataset(run)
    free = {PAYLOAD: PAYLOAD}
    samples = [from_json(Sample, {**evil(to_json(s)), "row": s.row, "reply_ids": s.reply_ids,
                                  "claims": {**evil(s.claims or {}), **free},
                                  "outcome": {**evil(s.outcome or {}), **free}}) for s in dataset.samples]
    samples = [s if s.label_history else _with_history(s) for s in samples]
    trials = [from_json(Trial, {**evil(to_json(t)), "facts": {**evil(t.facts), **free},
                                "outcome": {**evil(t.outcome), **free}}) for t in dataset.trials]
    meta = {**dataset.meta.to_json(), "model": evil(dataset.meta.model), "scenarios": evil(dataset.meta.scenarios),
            "labelling": evil({"evaluator": "judge", "label_policy": "agree"})}
    shutil.rmtree(run / "dataset")
    write_dataset(run / "dataset", Dataset(meta, samples, trials, dataset.arrays))
    (run / "config.json").write_text(json.dumps(evil(json.loads((run / "config.json").read_text()))))
    results = json.loads((run / "synthetic_results.json").read_text())
    results["cells"] = [{**evil(cell), "layer": cell["layer"]} for cell in results["cells"]]
    results["reasons"] = evil(["no reason"])
    results["best"] = evil(results["best"])
    (run / "synthetic_results.json").write_text(json.dumps(results))
    for name in ("synthetic_scores.parquet",):
        frame = pd.read_parquet(run / name)
        for column in ("sample_id", "label", "score_source", "method", "position"):
            frame[column] = [evil(v) for v in frame[column]]
        frame.to_parquet(run / name, index=False)
    outputs = {"results": "synthetic_results.json", "scores": "synthetic_scores.parquet",
               "token_scores": "synthetic_token_scores.parquet"}
    write_analysis_manifest(run, {evil("synthetic"): outputs}, outputs.values())
    (run / "summary.txt").write_text(evil("summary"))
    (run / "causal_steering.json").write_text(json.dumps(evil({"summary": "effect", "test": "steering"})))
    from PIL import Image

    Image.new("RGB", (4, 4), "white").save(run / f"probe_{NAME_PAYLOAD}.png")  # a plot whose name is markup
    return run


def _with_history(sample: Sample) -> Sample:

    return attrs.evolve(sample, label_history=(evil({"label": "honest", "judge_label": "honest", "evaluator": "j",
                                                     "label_policy": "rule"}),))


@pytest.fixture(scope="module")
def evil_report(tmp_path_factory) -> Path:
    run = _evil_run(tmp_path_factory.mktemp("evil"))
    return write_report(run, tokenizer=EvilTokenizer())


def test_every_string_reaches_the_page_escaped(evil_report) -> None:
    html = evil_report.read_text()
    assert "<img id=injected" not in html
    assert "<script>document.title" not in html
    assert html.count("<script") == 2  # the page's own: the token data and the script


@pytest.mark.skipif(find_chromium() is None,
                    reason="no Chromium on this machine (apt-get install chromium, or set CHROMIUM)")
def test_nothing_of_the_markup_runs_in_a_browser(evil_report) -> None:
    with Browser() as page:
        page.open(evil_report.as_uri())
        title = page.evaluate("document.title")
        assert page.evaluate("document.body.dataset.ready") == "1"  # the page's own script ran
        page.evaluate("document.querySelectorAll('details.trial').forEach(d => d.open = true)")
        injected = page.evaluate("document.querySelectorAll('#injected, #injected-name, img[onerror]').length")
        scripts = page.evaluate("document.scripts.length")
        pwned = page.evaluate("window.pwned === undefined ? null : window.pwned")
        text = page.evaluate("document.body.innerText")
        final_title = page.evaluate("document.title")
    assert title == f"deception report: {NAME_PAYLOAD}"  # the folder's name, as text
    assert final_title == title
    assert injected == 0
    assert scripts == 2
    assert pwned is None
    assert text.count("onerror=\"document.title='pwned';window.pwned=1\"") > 20  # shown as text, many fields


# --- checksums and shapes of the analysis files -------------------------------------------------------


@pytest.fixture()
def run_copy(synthetic_run, tmp_path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(synthetic_run, target)
    return target


def _report(run: Path) -> Any:
    return CliRunner().invoke(cli, ["report", str(run), "--no-tokens"])


def _snapshot(root: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}


def _refused(run: Path, *expected: str) -> None:
    before = _snapshot(run)
    result = _report(run)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.output, result.output
    assert _snapshot(run) == before, "a refused report wrote or deleted files"


def test_a_tampered_score_file_is_refused(run_copy) -> None:
    frame = pd.read_parquet(run_copy / "synthetic_scores.parquet")
    frame["score"] = -frame["score"]
    frame.to_parquet(run_copy / "synthetic_scores.parquet", index=False)
    _refused(run_copy, "synthetic_scores.parquet does not match the sha256 recorded in analyses.json",
             "deception analyze RUN_DIR")


def test_a_tampered_results_file_is_refused(run_copy) -> None:
    path = run_copy / "synthetic_results.json"
    path.write_text(path.read_text().replace('"logistic"', '"<script>x</script>"'))
    _refused(run_copy, "synthetic_results.json does not match the sha256")


@pytest.mark.parametrize(("manifest", "expected"), [
    ("[1, 2]", "not an object with an 'analyses' object"),
    ('{"analyses": {"probes": {"outputs": "probe_scores.parquet"}}}', "has no 'outputs' object"),
    ('{"analyses": {"probes": {"outputs": {"scores": "../../etc/passwd"}}}}', "file names in the run folder"),
    ('{"analyses": {"probes": {"outputs": {"scores": "/etc/passwd"}}}}', "file names in the run folder"),
    ('{"analyses": {"probes": {"outputs": {}}}, "sha256": ["x"]}', "'sha256' is not an object"),
    ('{"analyses": ', "analyses.json is not valid JSON"),
])
def test_a_malformed_manifest_is_named(run_copy, manifest, expected) -> None:
    (run_copy / ANALYSES_MANIFEST).write_text(manifest)
    _refused(run_copy, expected, ANALYSES_MANIFEST)


def test_results_of_the_wrong_shape_are_named(run_copy) -> None:
    path = run_copy / "synthetic_results.json"
    path.write_text(json.dumps({"status": "ok", "cells": [{"layer": "1", "position": 3}]}))
    write_analysis_manifest(run_copy, {"synthetic": {"results": "synthetic_results.json",
                                                     "scores": "synthetic_scores.parquet"}},
                            ["synthetic_results.json", "synthetic_scores.parquet"])
    _refused(run_copy, "synthetic_results.json is malformed", "'cells'")


def test_a_listed_file_without_a_checksum_is_refused(run_copy) -> None:
    manifest = json.loads((run_copy / ANALYSES_MANIFEST).read_text())
    del manifest["sha256"]["synthetic_scores.parquet"]
    (run_copy / ANALYSES_MANIFEST).write_text(json.dumps(manifest))
    _refused(run_copy, "lists no checksum for synthetic_scores.parquet")
