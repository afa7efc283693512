"""Per-sample scores of the analysed run under the probes trained on other datasets (``--train-from``).

This is the monitoring use: a probe trained on labelled data scores replies that have no labels (or
only ambiguous ones). ``probe_transfer_scores.parquet`` holds one row per run sample and training
dataset: the raw projection, the score on that probe's scale (`deception_probes.scores.ScoreScale`:
0 is the probe's decision threshold, 1 the score that flags 1 % of the control set, or of the
training set's honest samples without one), and whether the control set's 1 % threshold flags it.
Where the run's own analysis trained no probe, the first training dataset's probe also writes the
run's ``probe_scores.parquet`` (``score_source`` = ``transfer``), which the report shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deception_core import JSONObject, json_number
from deception_probes.engine import Labelled
from deception_probes.scores import SCORES_FILE, ScoreScale
from deception_probes.transfer import FittedProbe, TransferOutcome

if TYPE_CHECKING:
    import pandas as pd

    from deception_core import Dataset

TRANSFER_SCORES_FILE = "probe_transfer_scores.parquet"
#: ``score_source`` of a sample scored by a probe trained on another dataset
TRANSFER_SOURCE = "transfer"


def transfer_scale(fit: FittedProbe, train: Dataset, control: Dataset | None, fpr: float, train_name: str) -> ScoreScale:
    """The scale of a transferred probe's scores: the control set's scores under it where one was
    given; else its training set's honest samples (in-sample: the probe was fitted on them)."""
    if control is not None:
        return ScoreScale.fit(fit.probe.score(np.asarray(control.matrix(fit.layer, fit.position))), fpr,
                              "control samples")
    labelled = Labelled.of(train.samples)
    honest = labelled.rows[labelled.y == 0]
    raw = fit.probe.score(np.asarray(train.matrix(fit.layer, fit.position))[honest])
    return ScoreScale.fit(raw, fpr, f"honest samples of {train_name} (in-sample)")


def _field(sample: object, name: str) -> object:
    """A sample's field, whether samples are dicts (samples.jsonl) or typed records."""
    return sample.get(name) if isinstance(sample, dict) else getattr(sample, name, None)


def _frame(run: Dataset, fit: FittedProbe, scale: ScoreScale, threshold: float | None) -> pd.DataFrame:
    import pandas as pd

    n = len(run.samples)
    raw = fit.probe.score(np.asarray(run.matrix(fit.layer, fit.position))) if n else np.zeros(0)
    flagged = pd.array([bool(v) for v in raw > threshold] if threshold is not None else [None] * n, dtype="boolean")
    return pd.DataFrame({
        "row": np.arange(n, dtype=np.int64),
        "sample_id": pd.array([str(_field(s, "sample_id")) for s in run.samples], dtype="string"),
        "label": pd.array([str(_field(s, "label")) for s in run.samples], dtype="string"),
        "score": scale.apply(raw),
        "score_raw": raw,
        "score_source": pd.array([TRANSFER_SOURCE] * n, dtype="string"),
        "method": pd.array([fit.method] * n, dtype="string"),
        "layer": np.full(n, fit.layer, dtype=np.int64),
        "position": pd.array([fit.position] * n, dtype="string"),
        "flagged_at_control_fpr": flagged,
    })


def _write(frame: pd.DataFrame, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def write_transfer_scores(run: Dataset, outcome: TransferOutcome, trained_on: Mapping[str, Dataset],
                          control: Dataset | None, fpr: float, out_dir: Path, as_run_scores: bool) -> JSONObject | None:
    """Score every run sample with each probe of ``trained_on`` (name -> dataset) and write the files;
    with ``as_run_scores`` the first probe's scores also become the run's ``probe_scores.parquet``.
    Returns what `ProbeAnalysis` records (``files``, per training dataset the counts flagged), or
    None when no other dataset trained a probe."""
    import pandas as pd

    names = [name for name in trained_on if name in outcome.fitted]
    if not names:
        return None
    frames: list[pd.DataFrame] = []
    summary: list[JSONObject] = []
    scales: dict[str, ScoreScale] = {}
    for name in names:
        fit = outcome.fitted[name]
        threshold = outcome.thresholds.get(name)
        scale = transfer_scale(fit, trained_on[name], control, fpr, name)
        scales[name] = scale
        frame = _frame(run, fit, scale, None if threshold is None else json_number(threshold["threshold"]))
        frames.append(frame.assign(train=pd.array([name] * len(frame), dtype="string")))
        flagged = frame["flagged_at_control_fpr"]
        entry: JSONObject = {"train": name, "layer": fit.layer, "position": fit.position, "method": fit.method,
                        "n_samples": len(frame), "scale": scale.to_dict(),
                        "mean_score": float(frame["score"].mean()) if len(frame) else None,
                        "flagged": None if threshold is None else int(flagged.sum()),
                        "flagged_share": None if threshold is None or not len(frame) else float(flagged.mean())}
        summary.append(entry)
    out_dir = Path(out_dir)
    files = [_write(pd.concat(frames, ignore_index=True), out_dir / TRANSFER_SCORES_FILE).name]
    run_scores: JSONObject | None = None
    if as_run_scores:
        first = names[0]
        fit = outcome.fitted[first]
        threshold = outcome.thresholds.get(first)
        frame = _frame(run, fit, scales[first], None if threshold is None else json_number(threshold["threshold"]))
        files.insert(0, _write(frame, out_dir / SCORES_FILE).name)
        first_entry = summary[0]
        run_scores = {"files": [SCORES_FILE], "layer": fit.layer, "position": fit.position, "method": fit.method,
                      "token_scores": False, "token_source": None, "scale": scales[first].to_dict(),
                      "trained_on": first, "n_samples": first_entry["n_samples"],
                      "flagged": first_entry["flagged"], "flagged_share": first_entry["flagged_share"],
                      "note": f"every sample scored by the probe trained on {first} (this run trained none); "
                              "score: on the scale (0 = decision threshold), score_raw: the raw projection"}
    return {"files": files, "by_train": summary, "run_scores": run_scores}
