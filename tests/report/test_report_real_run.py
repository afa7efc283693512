"""The report of real run folders in the browser: a tiny-model run (default suite), and any run folder
named by ``DECEPTION_REPORT_RUN_DIR`` (e.g. the README quick start's output).

The score files come from the probe analysis; where a run folder has none, this test writes some
in the same schema (`deception_core.testing.report_fixture.write_contract_scores`) into a copy.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_helpers import COLOURED_BY_LABEL, squash, visible_text

from deception_core import InterpretabilityRunner, RunConfig
from deception_core.report import write_report
from deception_core.report.inputs import analysis_output
from deception_core.store import read_dataset
from deception_core.testing.browser import Browser, dump_dom, find_chromium
from deception_core.testing.report_fixture import write_contract_scores

pytestmark = pytest.mark.skipif(find_chromium() is None,
                                reason="no Chromium on this machine (apt-get install chromium, or set CHROMIUM)")


def check_in_browser(run: Path, artefacts: Path, name: str) -> None:
    report = write_report(run)
    dataset = read_dataset(run)
    scores = pd.read_parquet(analysis_output(run, "scores")).set_index("row")["score"]
    text = visible_text(dump_dom(report.as_uri()))
    for sample in dataset.samples:
        assert squash(sample.reply_text) in text
        assert f"{scores[sample.row]:.3f}" in text
    with Browser() as page:
        page.open(report.as_uri())
        page.evaluate("document.getElementById('f-expand').click()")
        shot = page.screenshot(artefacts / f"{name}.png")
        before = page.evaluate("document.querySelectorAll('details.trial:not(.hidden)').length")
        page.evaluate("document.getElementById('f-label').value = 'deceptive';"
                      "document.getElementById('f-label').dispatchEvent(new Event('change'))")
        after = page.evaluate("document.querySelectorAll('details.trial:not(.hidden)').length")
        spans = page.evaluate("document.querySelectorAll('.tok span').length")
        coloured = json.loads(page.evaluate(COLOURED_BY_LABEL))
    from PIL import Image

    assert float(np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("L"), dtype=float).std()) > 10
    assert before == len(dataset.trials)
    assert after == len({s.trial_key for s in dataset.samples if s.label == "deceptive"})
    token_file = analysis_output(run, "token_scores")
    if token_file is not None:
        assert spans == len(pd.read_parquet(token_file))
        scored_rows = set(pd.read_parquet(token_file)["row"])
        for label in ("honest", "deceptive"):  # every label with scored replies has coloured tokens
            if any(s.label == label and s.row in scored_rows for s in dataset.samples):
                assert coloured[label] >= 1, (label, coloured)


def test_tiny_model_run_in_the_browser(tiny_model_dir, tmp_path, fake_plugin_set, artefacts) -> None:
    out = tmp_path / "run"
    config = RunConfig(model=str(tiny_model_dir), scenario_names=["echo"], trials=2, max_rounds=2, max_tokens=6,
                       evaluator="echo-judge", output=str(out), analyze=False, report=False, mode="both",
                       positions="last_prompt,reply_mean,reply_last,reply_all")
    InterpretabilityRunner(config, plugins=fake_plugin_set).run()
    write_contract_scores(out)
    check_in_browser(out, artefacts, "tiny-run")


@pytest.mark.skipif(not os.environ.get("DECEPTION_REPORT_RUN_DIR"), reason="set DECEPTION_REPORT_RUN_DIR to a run folder")
def test_named_run_folder_in_the_browser(tmp_path, artefacts) -> None:
    source = Path(os.environ["DECEPTION_REPORT_RUN_DIR"])
    run = tmp_path / source.name
    shutil.copytree(source, run)
    if analysis_output(run, "scores") is None:
        write_contract_scores(run)
    check_in_browser(run, artefacts, f"run-{source.name}")
