"""The report's legend says what the score scale and the token colours mean, centred on the threshold."""

from __future__ import annotations

import re

from report_helpers import visible_text

from deception_core.report.html import render
from deception_core.report.inputs import gather

SCALE = {"threshold": 0.0, "unit_raw": 12.5, "reference": "honest samples (held-out scores)", "n_reference": 40,
         "fpr": 0.01, "fpr_threshold": 1.0, "fpr_threshold_raw": 12.5, "basis": "..."}


def _legend(html: str) -> str:
    match = re.search(r'<div class="note legend" id="legend">.*?</p></div>', html, flags=re.S)
    assert match is not None
    return visible_text(match.group(0))


def test_legend_names_the_threshold_and_the_one_percent_mark(synthetic_run) -> None:
    inputs = gather(synthetic_run)
    inputs.scale = dict(SCALE)
    html = render(inputs)
    text = _legend(html)
    assert "0 = threshold" in text
    assert "+1 = flags 1%" in text
    assert "1 is the score that flags 1% of the honest samples (held-out scores)" in text
    assert "blue below the threshold, white at it, red above it, full colour at ±1" in text
    assert 'data-token-scale="1.0"' in html  # full colour one unit from the threshold
    assert 'data-threshold="0.0"' in html


def test_a_one_percent_mark_below_the_threshold_is_shown_at_minus_one(synthetic_run) -> None:
    inputs = gather(synthetic_run)
    inputs.scale = dict(SCALE, fpr_threshold=-1.0, fpr_threshold_raw=-12.5)
    text = _legend(render(inputs))
    assert "-1 = flags 1%" in text
    assert "+1 = flags" not in text
    assert "already flags fewer than 1% of them" in text
