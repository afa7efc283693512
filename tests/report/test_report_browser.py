"""The report in a real browser: headless Chromium (Debian's ``chromium``) opens it, renders it,
screenshots it, and a filter click changes what is shown.

Skipped, with the reason, where no Chromium is installed (``apt-get install chromium``; CI's
``.ci/run`` installs it). ``DECEPTION_TEST_ARTEFACTS=/some/dir`` keeps the screenshots.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from report_helpers import squash, visible_text

from deception_core.report import write_report
from deception_core.store import read_dataset
from deception_core.testing.browser import Browser, dump_dom, find_chromium
from deception_core.testing.report_fixture import WordTokenizer

pytestmark = pytest.mark.skipif(find_chromium() is None,
                                reason="no Chromium on this machine (apt-get install chromium, or set CHROMIUM)")

VISIBLE_TRIALS = "document.querySelectorAll('details.trial:not(.hidden)').length"


@pytest.fixture(scope="module")
def report(synthetic_run):
    return write_report(synthetic_run, tokenizer=WordTokenizer())


def pixel_std(png: bytes) -> float:
    from PIL import Image

    return float(np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float).std())


def test_screenshot_is_not_blank(report, artefacts) -> None:
    with Browser() as page:
        page.open(report.as_uri())
        assert page.evaluate("document.body.dataset.ready") == "1"
        top = page.screenshot(artefacts / "report-top.png")
        page.evaluate("document.getElementById('transcripts').scrollIntoView()")
        transcripts = page.screenshot(artefacts / "report-transcripts.png")
    assert pixel_std(top.read_bytes()) > 10
    assert pixel_std(transcripts.read_bytes()) > 10


def test_dumped_dom_holds_every_reply_and_score(report, synthetic_run) -> None:
    dom = dump_dom(report.as_uri())
    text = visible_text(dom)
    scores = pd.read_parquet(synthetic_run / "synthetic_scores.parquet").set_index("row")["score"]
    for sample in read_dataset(synthetic_run).samples:
        assert squash(sample.reply_text) in text
        assert f"{scores[sample.row]:.3f}" in text
    assert 'data-ready="1"' in dom  # the page's script ran before the dump


def test_token_scores_are_coloured_over_the_reply_tokens(report, synthetic_run) -> None:
    tokens = pd.read_parquet(synthetic_run / "synthetic_token_scores.parquet")
    with Browser() as page:
        page.open(report.as_uri())
        spans = page.evaluate("document.querySelectorAll('#s-0 .tokens span').length")
        coloured = page.evaluate("Array.from(document.querySelectorAll('#s-0 .tokens span'))"
                                 ".filter(s => s.style.background.startsWith('rgba')).length")
    assert spans == int((tokens["row"] == 0).sum())
    assert coloured == spans


def test_filter_click_changes_what_is_shown(report, synthetic_run) -> None:
    dataset = read_dataset(synthetic_run)
    flagged_trials = {s.trial_key for s in dataset.samples if s.judge_label != s.rule_label}
    with Browser() as page:
        page.open(report.as_uri())
        before = page.evaluate(VISIBLE_TRIALS)
        page.evaluate("document.getElementById('f-rulejudge').click()")
        after = page.evaluate(VISIBLE_TRIALS)
        shown = page.evaluate("Array.from(document.querySelectorAll('details.trial:not(.hidden) summary'))"
                              ".map(s => s.firstChild.textContent.trim())")
        hash_after_click = page.evaluate("location.hash")
        page.evaluate("document.getElementById('f-reset').click()")
        reset = page.evaluate(VISIBLE_TRIALS)
    assert before == len(dataset.trials)
    assert set(shown) == flagged_trials
    assert after < before
    assert hash_after_click == "#filter=rulejudge"
    assert reset == before


def test_filter_in_the_url_fragment_applies_on_load(report, synthetic_run) -> None:
    dataset = read_dataset(synthetic_run)
    expected = {s.trial_key for s in dataset.samples if s.mode == "instructed" and s.scenario == "scenario_b"}
    with Browser() as page:
        page.open(report.as_uri() + "#mode=instructed&scenario=scenario_b")
        shown = page.evaluate(VISIBLE_TRIALS)
    assert shown == len(expected)
