"""A dataset as a pandas data frame, and its export to Parquet, CSV or JSON Lines.

One row per sample (focal utterance), in row order. Columns:

- every top-level field of ``samples.jsonl`` under its own name (``sample_id``, ``trial_key``,
  ``scenario``, ``mode``, ``condition``, ``round``, ``reply_text``, ``rule_label``, ``judge_label``,
  ``label``, ...);
- nested objects flattened with dots: ``claims.<name>``, ``outcome.<name>``, ``belief.<name>``, ...;
- a column whose values mix types (a claim that is a number in one sample and a string in
  another) or hold lists (``label_history``) carries JSON text, so every column has one type;
- with ``activations=[(layer, position), ...]`` (or ``True`` for all), one column
  ``act.layer{L}.{position}`` per pair, each cell a float32 vector of length d_model;
- in an export of a run whose analysis wrote per-sample scores, ``probe.score`` (on the score
  scale: 0 at the decision threshold, 1 where 1 % of honest samples are flagged), ``probe.score_raw``
  and ``probe.score_source`` (`with_probe_scores`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from deception_core.base.errors import UsageError
from deception_core.outputs.inspect_log import ProbeScore
from deception_core.outputs.policy import publish_file
from deception_core.report.inputs import analysis_output
from deception_core.store.dataset import resolve_dataset_dir

if TYPE_CHECKING:
    import pandas as pd

    from deception_core.store.dataset import Dataset

FORMATS = ("parquet", "csv", "jsonl")


#: the score file's columns an export carries, under ``probe.<name>``
PROBE_COLUMNS = ("score", "score_raw", "score_source")


def with_probe_scores(frame: pd.DataFrame, run_dir: str | Path) -> pd.DataFrame:
    """``frame`` with the best probe's per-sample scores (``probe.score`` on the analysis's scale,
    ``probe.score_raw``, ``probe.score_source``) where the run's analysis recorded a score file."""
    import pandas as pd

    dataset_dir = resolve_dataset_dir(run_dir)
    path = analysis_output(dataset_dir.parent if dataset_dir.name == "dataset" else Path(run_dir), "scores")
    if path is None:
        return frame
    scores = pd.read_parquet(path).set_index("row")
    for name in PROBE_COLUMNS:
        if name in scores:
            frame[f"probe.{name}"] = scores[name].reindex(range(len(frame))).to_numpy()
    return frame


def probe_scores(run_dir: str | Path, dataset: Dataset) -> dict[int, ProbeScore] | None:
    """The best probe's score of each sample by row, from the run's score file (None when it has none)."""
    import pandas as pd

    frame = with_probe_scores(pd.DataFrame(index=range(len(dataset))), run_dir)
    if "probe.score" not in frame:
        return None

    def column(name: str) -> list[object]:
        return frame[name].tolist() if name in frame else [None] * len(frame)

    out: dict[int, ProbeScore] = {}
    for row, score, raw, source in zip(range(len(frame)), column("probe.score"), column("probe.score_raw"),
                                       column("probe.score_source"), strict=True):
        out[row] = ProbeScore(score=_finite(score), raw=_finite(raw), source=source if isinstance(source, str) else None)
    return out


def _finite(value: object) -> float | None:
    """A score as a float, or None where the file has none (NaN, missing)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if value != value else float(value)


#: first characters that make a spreadsheet read a CSV cell as a formula (OWASP, "CSV injection")
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` in which every text cell (and column name) that starts with a formula
    character gets a leading ``'``, so a spreadsheet shows it as text instead of evaluating it."""
    import pandas as pd

    def safe(value: object) -> object:
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_LEADS) else value

    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object or str(frame[column].dtype) in ("string", "str"):
            frame[column] = pd.Series([safe(v) for v in frame[column]], index=frame.index, dtype=object)
    frame.columns = [safe(str(c)) for c in frame.columns]
    return frame


def export_frame(frame: pd.DataFrame, path: str | Path, fmt: str, overwrite: bool = False) -> Path:
    """Write ``frame`` to ``path`` as ``parquet``, ``csv`` or ``jsonl``, atomically; an existing file
    only with ``overwrite`` (see `deception_core.outputs.policy.check_output_file`). CSV cells
    that would start a spreadsheet formula are neutralised (`neutralise_formulas`)."""

    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    path = Path(path)
    if fmt == "parquet":
        import io

        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        data = buffer.getvalue()
    elif fmt == "csv":
        # CRLF rows (RFC 4180): a cell holding a line break, CR included, is quoted, so it cannot start a row
        data = neutralise_formulas(frame).to_csv(index=False, lineterminator="\r\n").encode()
    else:
        data = frame.to_json(orient="records", lines=True, force_ascii=False).encode()
    publish_file(path, data, overwrite)
    return path
