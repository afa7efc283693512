"""Render a run folder as one self-contained HTML file.

Everything is inline: the style sheet, the script, the plots (base64 PNG) and the per-token scores
(JSON in a ``<script type="application/json">``). The transcripts are rendered on the server side,
so the page is readable (and searchable) even with scripts off; the script only filters the trials
and colours the reply tokens of a trial when it is opened. Trials start collapsed above
`OPEN_TRIALS_UP_TO` trials, which keeps a full-size run (thousands of utterances) fast to load.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from deception_core.base.records import Sample, Trial
from deception_core.report.assets import CSS, JS
from deception_core.report.inputs import ReportInputs
from deception_core.store.fields import field
from deception_core.ui.progress import progress_bar

OPEN_TRIALS_UP_TO = 60
FLAGGED_TABLE_ROWS = 300  # the transcripts' filter shows every flagged utterance; the table shows the first ones
LABELS = ("honest", "deceptive", "ambiguous")

LABEL_COLUMNS_NOTE = (
    "samples: focal utterances (the captured replies that get a label). honest / deceptive / ambiguous: the "
    "final labels under the run's label policy. agree: the share of utterances on which the LLM judge's "
    "verdict equals the scenario rule's label (n/a without a judge)."
)


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _label(value: object) -> str:
    text = str(value) if value else "none"
    css = text if text in LABELS else "none"
    return f'<span class="label {css}">{_e(text)}</span>'


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return _e(value)


def _table(header: list[str], rows: list[list[str]], numeric: frozenset[int] | set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _png(name: str, data: bytes) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return (f'<figure><img class="plot" alt="{_e(name)}" src="data:image/png;base64,{encoded}">'
            f'<figcaption class="muted">{_e(name)}</figcaption></figure>')


class _Flags:
    """Which focal utterances look mislabelled, and why."""

    def __init__(self, inputs: ReportInputs) -> None:
        self.inputs = inputs

    def probe_disagrees(self, row: int, label: str) -> bool:
        score, threshold = self.inputs.scores.get(row), self.inputs.threshold
        if score is None or threshold is None or label not in ("honest", "deceptive"):
            return False
        return (score.score > threshold) != (label == "deceptive")

    @staticmethod
    def rule_judge_disagree(sample: Sample) -> bool:
        judge, rule = field(sample, "judge_label"), field(sample, "rule_label")
        return judge is not None and rule is not None and judge != rule  # no rule label: nothing to disagree with

    def of(self, sample: Sample) -> list[str]:
        flags = []
        if self.probe_disagrees(int(field(sample, "row")), str(field(sample, "label"))):
            flags.append("probe")
        if self.rule_judge_disagree(sample):
            flags.append("rulejudge")
        return flags


def _config_section(inputs: ReportInputs) -> str:
    config = (inputs.config or {}).get("config") or {}
    resolved = (inputs.config or {}).get("resolved") or {}
    if not config:
        return '<p class="muted">no config.json in the run folder</p>'
    rows = [[_e(k), _e(json.dumps(v) if isinstance(v, (list, dict)) else v)] for k, v in config.items()]
    rows += [[_e(f"resolved {k}"), _e(json.dumps(v, default=str) if isinstance(v, (list, dict)) else v)]
             for k, v in resolved.items()]
    model = config.get("model")
    return (f"<details><summary>model {_e(model)}; {len(rows)} settings (config.json)</summary>"
            f"{_table(['setting', 'value'], rows)}</details>")


def _label_section(inputs: ReportInputs) -> str:
    counts: dict[tuple[str, str, str], Counter[str]] = {}
    agree: dict[tuple[str, str, str], list[bool]] = {}
    for s in inputs.dataset.samples:
        key = (str(field(s, "scenario")), str(field(s, "mode")), str(field(s, "condition")))
        counts.setdefault(key, Counter())[str(field(s, "label"))] += 1
        if field(s, "agreement") is not None:
            agree.setdefault(key, []).append(bool(field(s, "agreement")))
    rows = []
    for key in sorted(counts):
        c, votes = counts[key], agree.get(key, [])
        rate = f"{sum(votes) / len(votes):.2f}" if votes else "n/a"
        rows.append([_e(key[0]), _e(key[1]), _e(key[2]), str(sum(c.values())), str(c["honest"]),
                     str(c["deceptive"]), str(c["ambiguous"]), rate])
    table = _table(["scenario", "mode", "condition", "samples", "honest", "deceptive", "ambiguous", "agree"], rows,
                   numeric={3, 4, 5, 6, 7})
    labelling = inputs.dataset.meta.labelling
    extra = ""
    if labelling:
        extra = f'<p class="note">re-labelled: {_e(json.dumps(labelling, default=str))}</p>'
    return table + f'<p class="note">{_e(LABEL_COLUMNS_NOTE)}</p>' + extra


def _probe_section(inputs: ReportInputs) -> str:
    parts = []
    results = inputs.analysis_results
    if inputs.summary:
        parts.append(f"<h3>Summary</h3><pre>{_e(inputs.summary)}</pre>")
    if results and results.get("cells"):
        rows = []
        for cell in sorted(results["cells"], key=lambda c: (c["layer"], c["position"], c["method"])):
            auc = cell.get("auroc") or {}
            ci = (f"[{_num(auc.get('ci_low'), 2)}, {_num(auc.get('ci_high'), 2)}]" if auc.get("ci_low") is not None
                  else "n/a")
            recall = cell.get("recall_at_fpr") or {}
            rows.append([_e(cell["layer"]), _e(cell["position"]), _e(cell["method"]), _num(auc.get("value")), ci,
                         _num(cell.get("balanced_accuracy")), _num(recall.get("value") if recall else None)])
        parts.append("<h3>Every probe (held-out folds)</h3>" + _table(
            ["layer", "position", "method", "AUROC", "95% CI (trials resampled)", "balanced accuracy",
             "recall at the FPR target"], rows, numeric={0, 3, 5, 6}))
        parts.append(_baseline_html(results))
    elif results:
        parts.append(f'<p class="muted">no probe was trained: {_e("; ".join(results.get("reasons", [])))}</p>')
    else:
        parts.append('<p class="muted">no analysis results (analyses.json names none): run deception analyze RUN_DIR</p>')
    n_scored = len(inputs.scores)
    sources = Counter(s.source for s in inputs.scores.values())
    if n_scored and sources.get("transfer"):
        parts.append(_transfer_scores_note(inputs, n_scored))
    elif n_scored:
        first = next(iter(inputs.scores.values()))
        parts.append(
            f'<p class="note">Per-utterance scores: {_e(first.method)} probe at layer {first.layer} {_e(first.position)}; '
            f"{sources.get('heldout', 0)} held-out (scored by the fold that did not train on them), "
            f"{sources.get('final', 0)} scored by the final probe (unlabelled or ambiguous). Higher = more deceptive. "
            f"Decision threshold {_num(inputs.threshold)}: {_e(inputs.threshold_note)}"
            + (f"; 1 = the score that flags {float(inputs.scale.get('fpr') or 0.01):.0%} of the "
               f"{_e(inputs.scale.get('reference'))} (legend above the transcripts)" if inputs.scale else "")
            + ".</p>")
    else:
        parts.append('<p class="note">no score file: utterances show "no score".</p>')
    for name, data in inputs.plots.items():
        if name.startswith("probe_"):
            parts.append(_png(name, data))
    return "".join(parts)


def _transfer_scores_note(inputs: ReportInputs, n_scored: int) -> str:
    """What the scores of a probe trained on another dataset are (`deception analyze RUN --train-from`):
    every utterance scored, with how many the control set's 1 % threshold flags; no AUROC is claimed."""
    record = (inputs.analysis_results or {}).get("scores") or {}
    first = next(iter(inputs.scores.values()))
    values = np.array([s.score for s in inputs.scores.values()])
    flagged = record.get("flagged")
    flag_text = (f"flagged at the threshold that flags {float((inputs.scale or {}).get('fpr') or 0.01):.0%} of the "
                 f"control set: {int(flagged)} of {n_scored} ({_num(record.get('flagged_share'), 2)})"
                 if isinstance(flagged, int) else "no control set given (--control): nothing flagged at a 1% threshold")
    return (f'<p class="note" id="transfer-scores">Per-utterance scores of the {_e(first.method)} probe at layer '
            f"{first.layer} {_e(first.position)} trained on {_e(record.get('trained_on') or 'another dataset')} "
            f"(this run trained no probe of its own): {n_scored} utterances scored, mean {_num(values.mean())}, "
            f"{int((values > (inputs.threshold or 0.0)).sum())} above the decision threshold; {_e(flag_text)}. "
            "No AUROC: the run's utterances have no honest/deceptive labels. Higher = more deceptive"
            + (f"; 1 = the score that flags {float(inputs.scale.get('fpr') or 0.01):.0%} of the "
               f"{_e(inputs.scale.get('reference'))}" if inputs.scale else "") + ".</p>")


def _baseline_html(results: dict[str, Any]) -> str:
    """The positions left out as not informative, and the lexical baseline beside the best probe."""
    parts = [f'<p class="note">not informative: {_e(entry["position"])}: {_e(entry["reason"])}</p>'
             for entry in results.get("not_informative") or []]
    lexical = results.get("lexical_baseline") or {}
    if lexical.get("status") == "ok":
        def auc(metric: dict[str, Any] | None) -> str:
            metric = metric or {}
            return (f"{_num(metric.get('value'), 2)} [{_num(metric.get('ci_low'), 2)}, {_num(metric.get('ci_high'), 2)}]"
                    if metric else "n/a")
        probe = lexical.get("probe") or {}
        rows = [["the words alone (bag of words + logistic regression)", auc(lexical.get("auroc"))],
                [f"best probe ({_e(probe.get('method'))} at layer {_e(probe.get('layer'))} {_e(probe.get('position'))})",
                 auc(lexical.get("probe_auroc"))],
                ["best probe minus the words", auc(lexical.get("difference"))]]
        parts.append("<h3>Lexical baseline (the same held-out samples)</h3>"
                     + _table(["detector", "AUROC [95% CI]"], rows))
        if lexical.get("warning"):
            parts.append(f'<p class="note">warning: {_e(lexical["warning"])}</p>')
    elif lexical:
        parts.append(f'<p class="muted">lexical baseline not computable: {_e(lexical.get("reason"))}</p>')
    return "".join(parts)


def _flagged_section(inputs: ReportInputs, flags: _Flags) -> str:
    rows = []
    for s in inputs.dataset.samples:
        reasons = flags.of(s)
        if not reasons:
            continue
        row = int(field(s, "row"))
        score = inputs.scores.get(row)
        why = []
        if "probe" in reasons:
            why.append("probe disagrees with the label")
        if "rulejudge" in reasons:
            why.append("rule and judge disagree")
        rows.append([f'<a href="#s-{row}">{_e(field(s, "sample_id"))}</a>', _label(field(s, "label")),
                     _label(field(s, "rule_label")), _label(field(s, "judge_label")),
                     _num(score.score) if score else "no score", _e("; ".join(why))])
    if not rows:
        return '<p class="muted">none: the probe, the rule and the judge agree with every label (or there are no scores)</p>'
    shown = "" if len(rows) <= FLAGGED_TABLE_ROWS else f"; the first {FLAGGED_TABLE_ROWS} are listed"
    return (f'<p class="note">{len(rows)} of {len(inputs.dataset)} focal utterances{shown}. The same filter is on '
            "the transcripts below (\"mislabelled-looking\").</p>"
            + _table(["sample", "label", "rule", "judge", "probe score", "why"], rows[:FLAGGED_TABLE_ROWS], numeric={4}))


def _causal_section(inputs: ReportInputs) -> str:
    if not inputs.causal:
        return '<p class="muted">no causal results (run with --causal)</p>'
    parts = []
    for name, result in inputs.causal.items():
        summary = result.get("summary") if isinstance(result, dict) else None
        parts.append(f"<h3>{_e(name)}</h3><p>{_e(summary or '')}</p>")
        text = json.dumps(result, indent=1, default=str)
        parts.append(f"<details><summary>causal_{_e(name)}.json ({len(text):,} characters)</summary>"
                     f"<pre>{_e(text)}</pre></details>")
    for plot, data in inputs.plots.items():
        if plot.startswith("causal_"):
            parts.append(_png(plot, data))
    return "".join(parts)


def _turn_html(turn: dict[str, Any], sample: Sample | None, inputs: ReportInputs, flags: _Flags) -> str:
    kind = str(turn.get("kind") or "say")
    audience = turn.get("audience")
    private = kind != "say"
    head = (f'<span class="who">{_e(turn.get("speaker"))}</span> <span class="kind">round {_e(turn.get("round"))}'
            f'{" · " + _e(kind) if kind != "say" else ""}{" · to " + _e(", ".join(audience)) if audience else ""}</span>')
    text = f'<div class="text">{_e(turn.get("text"))}</div>'
    if sample is None:
        return f'<div class="turn{" private" if private else ""}">{head}{text}</div>'
    row = int(field(sample, "row"))
    reasons = flags.of(sample)
    score = inputs.scores.get(row)
    if score is None:
        score_text = "no score"
    else:
        verdict = ""
        if inputs.threshold is not None:
            verdict = " (probe: deceptive)" if score.score > inputs.threshold else " (probe: honest)"
        score_text = f"{score.score:.3f} {score.source}{verdict}"
    judge_error = field(sample, "judge_error")
    ann = [
        ("label", _label(field(sample, "label"))),
        ("rule", f'{_label(field(sample, "rule_label"))} <span class="v">{_e(field(sample, "rule_trace"))}</span>'),
        ("judge", f'{_label(field(sample, "judge_label"))} <span class="v">{_e(field(sample, "judge_raw"))}</span>'
                  + (f' <span class="muted">error: {_e(judge_error)}</span>' if judge_error else "")),
        ("probe score", f'<span class="score">{_e(score_text)}</span>'),
    ]
    history = field(sample, "label_history") or []
    if history:
        ann.append(("earlier labels", _e("; ".join(
            f"{h.get('label')} (judge {h.get('judge_label')} by {h.get('evaluator')}, policy {h.get('label_policy')})"
            for h in history))))
    if reasons:
        ann.append(("flag", _e(", ".join({"probe": "probe disagrees with the label",
                                          "rulejudge": "rule and judge disagree"}[r] for r in reasons))))
    grid = "".join(f'<span class="k">{k}</span><span class="v">{v}</span>' for k, v in ann)
    tokens = f'<div class="tok" data-row="{row}"></div>' if row in inputs.tokens else ""
    css = "turn focal" + (" flagged" if reasons else "")
    return (f'<div class="{css}" id="s-{row}" data-label="{_e(field(sample, "label"))}" data-flags="{" ".join(reasons)}">'
            f'{head} <span class="muted">{_e(field(sample, "sample_id"))}</span>{text}{tokens}'
            f'<div class="ann">{grid}</div></div>')


def _trial_html(trial: Trial, samples: list[Sample], inputs: ReportInputs, flags: _Flags, open_: bool) -> str:
    by_request = {str(field(s, "request_id")): s for s in samples}
    turns = []
    seen = set()
    for turn in trial.transcript:
        request_id = turn.get("request_id")
        sample = by_request.get(str(request_id)) if request_id is not None and (turn.get("kind") or "say") == "say" else None
        if sample is not None:
            seen.add(str(request_id))
        turns.append(_turn_html(turn, sample, inputs, flags))
    for request_id, sample in by_request.items():  # focal utterances the transcript does not show
        if request_id not in seen:
            turns.append(_turn_html({"speaker": field(sample, "caller"), "round": field(sample, "round"),
                                     "text": field(sample, "reply_text")}, sample, inputs, flags))
    any_flag = any(flags.of(s) for s in samples)
    labels = Counter(str(field(s, "label")) for s in samples)
    label_text = ", ".join(f"{n} {k}" for k, n in sorted(labels.items()))
    facts = json.dumps(trial.facts, default=str)
    outcome = json.dumps(trial.outcome, default=str)
    return (
        f'<details class="trial" data-scenario="{_e(trial.scenario)}" data-mode="{_e(trial.mode)}" '
        f'data-condition="{_e(trial.condition)}"{" open" if open_ else ""}>'
        f'<summary>{_e(trial.trial_key)} <span class="muted">({_e(label_text)})</span>'
        f'{"<span class=flag>mislabelled-looking</span>" if any_flag else ""}</summary>'
        f'<div class="facts">private facts: {_e(facts)}<br>outcome: {_e(outcome)}</div>'
        + "".join(turns) + "</details>")


def _options(values: list[str], all_text: str) -> str:
    return f'<option value="">{_e(all_text)}</option>' + "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)


def _toolbar(inputs: ReportInputs) -> str:
    samples = inputs.dataset.samples
    values = {k: sorted({str(field(s, k)) for s in samples}) for k in ("scenario", "mode", "condition")}
    return (
        '<div id="toolbar">'
        f'<label>scenario <select id="f-scenario">{_options(values["scenario"], "all")}</select></label>'
        f'<label>mode <select id="f-mode">{_options(values["mode"], "all")}</select></label>'
        f'<label>condition <select id="f-condition">{_options(values["condition"], "all")}</select></label>'
        f'<label>label <select id="f-label">{_options(list(LABELS), "any")}</select></label>'
        '<label><input type="checkbox" id="f-probe"> probe disagrees with label</label>'
        '<label><input type="checkbox" id="f-rulejudge"> rule and judge disagree</label>'
        '<button id="f-mislabelled" type="button">mislabelled-looking</button>'
        '<button id="f-reset" type="button">show all</button>'
        '<button id="f-expand" type="button">expand shown</button>'
        '<button id="f-collapse" type="button">collapse all</button>'
        '<span id="shown"></span></div>')


def _token_payload(inputs: ReportInputs) -> tuple[str, float]:
    """The token scores as JSON, and the distance from the threshold at which a token's colour is full:
    1 on the analysis's score scale (the score that flags 1 % of honest samples); for older runs
    without a scale, the 95th percentile of the tokens' distances from the threshold."""
    payload = {str(row): {"s": t.scores, "t": t.texts} for row, t in inputs.tokens.items()}
    # no "<" at all inside the script element (JSON escapes it), so no text can close or restart it
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")
    if inputs.scale is not None:
        return text, 1.0
    centre = inputs.threshold if inputs.threshold is not None else 0.0
    values = [abs(s - centre) for t in inputs.tokens.values() for s in t.scores]
    scale = float(np.percentile(values, 95)) if values else 1.0
    return text, scale if scale > 0 else 1.0


def _legend(inputs: ReportInputs, full: float) -> str:
    """What the scores and the token colours mean: a colour bar centred on the threshold, and the scale."""
    if not inputs.scores:
        return ""
    scale = inputs.scale
    if scale is not None:
        reference = _e(scale.get("reference") or "honest samples")
        fpr = float(scale.get("fpr") or 0.01)
        at = scale.get("fpr_threshold")
        where = (f" (here at -1: the probe's own threshold already flags fewer than {fpr:.0%} of them)"
                 if isinstance(at, (int, float)) and at < 0 else "")
        meaning = (f"Scores: <b>0</b> is the probe's decision threshold (above it the probe calls a reply deceptive); "
                   f"<b>1</b> is the score that flags {fpr:.0%} of the {reference}{where}, so a reply above 1 looks "
                   f"more deceptive than {1 - fpr:.0%} of them. The raw projection is <code>score_raw</code> in "
                   "the score files.")
        mark = f"flags {fpr:.0%}"
        ticks = (f"<span>-1{' = ' + mark if where else ''}</span><span>0 = threshold</span>"
                 f"<span>+1{'' if where else ' = ' + mark}</span>")
    else:
        meaning = (f"Scores: raw probe decision values (a run analysed before the score scale existed); the "
                   f"threshold is {_num(inputs.threshold)}.")
        ticks = f"<span>-{full:.3g}</span><span>{_num(inputs.threshold)} = threshold</span><span>+{full:.3g}</span>"
    tokens = ("Each reply token is coloured by its score: blue below the threshold, white at it, red above it, "
              f"full colour at {'±1' if scale is not None else f'±{full:.3g}'} and beyond; hover a token for its "
              "score. Without the run's tokenizer on this machine a reply's tokens are a strip of coloured cells."
              if inputs.tokens else
              "No reply token was scored (the analysis had neither stored reply_all activations nor the model: "
              "<code>deception analyze RUN_DIR --score-tokens</code> adds them).")
    return (f'<div class="note legend" id="legend"><div class="scalebar"></div><div class="ticks">{ticks}</div>'
            f"<p>{meaning} {tokens}</p></div>")


def render(inputs: ReportInputs) -> str:
    dataset = inputs.dataset
    flags = _Flags(inputs)
    by_trial: dict[str, list[Sample]] = {}
    for s in dataset.samples:
        by_trial.setdefault(str(field(s, "trial_key")), []).append(s)
    open_ = len(dataset.trials) <= OPEN_TRIALS_UP_TO
    bar = progress_bar(len(dataset.trials), "report", "trial")
    parts = []
    for t in dataset.trials:
        parts.append(_trial_html(t, by_trial.get(str(t.trial_key), []), inputs, flags, open_))
        bar.update(1)
    bar.close()
    trials_html = "".join(parts)
    tokens_json, scale = _token_payload(inputs)
    model = dataset.meta.model_id
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    legend = _legend(inputs, scale)
    threshold_attr = "" if inputs.threshold is None else f' data-threshold="{inputs.threshold!r}"'
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>deception report: {_e(Path(inputs.run_dir).name)}</title><style>{CSS}</style></head>"
        f'<body data-token-scale="{scale!r}"{threshold_attr}>'
        f"<h1>deception report</h1><p class=\"muted\">{_e(Path(inputs.run_dir).resolve())} · model {_e(model)} · "
        f"{len(dataset)} focal utterances in {len(dataset.trials)} trials · written {created}</p>"
        '<nav class="toc"><a href="#config">config</a><a href="#labels">labels</a><a href="#probes">probes</a>'
        '<a href="#flagged">mislabelled-looking</a><a href="#causal">causal</a><a href="#transcripts">transcripts</a></nav>'
        f'<h2 id="config">Run configuration</h2>{_config_section(inputs)}'
        f'<h2 id="labels">Labels</h2>{_label_section(inputs)}'
        f'<h2 id="probes">Probes</h2>{_probe_section(inputs)}'
        f'<h2 id="flagged">Mislabelled-looking utterances</h2>{_flagged_section(inputs, flags)}'
        f'<h2 id="causal">Causal tests</h2>{_causal_section(inputs)}'
        f'<h2 id="transcripts">Transcripts</h2>{legend}{_toolbar(inputs)}<div id="trials">{trials_html}</div>'
        f'<script type="application/json" id="token-data">{tokens_json}</script>'
        f"<script>{JS}</script></body></html>")
