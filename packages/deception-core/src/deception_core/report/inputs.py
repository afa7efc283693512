"""Everything the HTML report shows, read from a run folder alone (no model, no network).

The analyses record their files by role in ``analyses.json`` (see `deception_core.base.records.OUTPUT_ROLES`);
the report reads, from the first analysis that has each role: ``results`` (JSON; ``best.threshold``
is the decision threshold, ``best.scale`` the score scale), ``scores`` (Parquet, one row per sample: ``row``, ``sample_id``,
``label``, ``score``, ``score_source`` = ``heldout`` | ``final`` | ``transfer``, ``method``, ``layer``,
``position``, and ``token_score_mean`` / ``_max`` / ``_last`` when every reply token was captured)
and ``token_scores`` (Parquet: ``row``, ``token_index``, ``token_id``, ``score``). All are
optional here: without them the report says "no score".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from deception_core.base.records import ANALYSES_MANIFEST
from deception_core.base.types import JSONObject, JSONValue, json_object
from deception_core.model.loading import local_tokenizer
from deception_core.model.spec import ModelSpec
from deception_core.store.dataset import Dataset, DatasetError, read_dataset, sha256_file
from deception_core.ui.progress import progress_bar

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger("deception")

REPORT_FILE = "report.html"


@attrs.frozen
class SampleScore:
    score: float
    source: str  # "heldout" | "final" | "transfer" (a probe trained on another dataset: analyze --train-from)
    method: str
    layer: int
    position: str


@attrs.define
class TokenScores:
    """One reply's per-token scores; ``texts`` is None when the token ids could not be decoded."""

    scores: list[float]
    texts: list[str] | None = None


@attrs.define
class ReportInputs:
    run_dir: Path
    dataset: Dataset
    config: dict[str, Any] | None
    scores: dict[int, SampleScore]  # by dataset row; empty when no analysis recorded a score file
    tokens: dict[int, TokenScores]  # by dataset row; empty when no analysis recorded per-token scores
    threshold: float | None  # decision value above which the probe calls a reply deceptive
    threshold_note: str
    analysis_results: dict[str, Any] | None
    summary: str | None
    plots: dict[str, bytes]  # file name -> PNG bytes
    causal: dict[str, dict[str, Any]]  # test name -> causal_<name>.json
    #: the score scale the analysis states (`deception_probes.scores.ScoreScale.to_dict`); None for older runs
    scale: dict[str, Any] | None = None


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except json.JSONDecodeError as error:
        log.warning("report: %s is not valid JSON (%s); left out", path, error)
        return None


def _malformed(path: Path, what: str) -> DatasetError:
    return DatasetError(f"{path} is malformed ({what}); re-create it with `deception analyze RUN_DIR`")


def _plain_name(name: object) -> bool:
    """A file name inside the run folder: relative, no ``..``, not empty."""
    if not isinstance(name, str) or not name.strip() or "\\" in name or "\x00" in name:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts


def read_manifest(run_dir: Path) -> JSONObject | None:
    """``analyses.json``, its shape checked and every file it lists checked against its sha256
    (exit 2 naming the file on a mismatch); None without one. A manifest of an earlier version (no
    ``sha256``) is read with a warning."""
    path = Path(run_dir) / ANALYSES_MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"{path} is not valid JSON ({error}); re-create it with `deception analyze RUN_DIR`") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("analyses"), dict):
        raise _malformed(path, "not an object with an 'analyses' object")
    for name, entry in manifest["analyses"].items():
        outputs = entry.get("outputs") if isinstance(entry, dict) else None
        if not isinstance(outputs, dict) or not all(isinstance(k, str) and _plain_name(v) for k, v in outputs.items()):
            raise _malformed(path, f"analysis {name!r} has no 'outputs' object of roles to file names in the run folder")
    sums = manifest.get("sha256")
    if sums is None:
        log.warning("%s records no checksums (written by an earlier version); the analysis files are not verified",
                    path)
        checked: JSONObject = manifest
        return checked
    if not isinstance(sums, dict) or not all(_plain_name(k) and isinstance(v, str) for k, v in sums.items()):
        raise _malformed(path, "'sha256' is not an object of file names in the run folder to digests")
    for entry in manifest["analyses"].values():
        for name in entry["outputs"].values():
            if name not in sums and (Path(run_dir) / name).exists():
                raise DatasetError(f"{path} lists no checksum for {name}; the analysis files cannot be trusted. "
                                   "Re-create them with `deception analyze RUN_DIR`")
    for name, digest in sums.items():
        file = Path(run_dir) / name
        if file.is_file() and sha256_file(file) != digest:
            raise DatasetError(f"{file} does not match the sha256 recorded in {ANALYSES_MANIFEST}: it was changed after "
                               "the analysis wrote it. Restore it, or re-create the analysis files with "
                               "`deception analyze RUN_DIR`")
    verified: JSONObject = manifest
    return verified


def analysis_output(run_dir: Path, role: str, manifest: Mapping[str, JSONValue] | None = None) -> Path | None:
    """The file the first analysis recorded for ``role`` in ``analyses.json``, when it exists (checked
    against its checksum: `read_manifest`)."""
    if manifest is None:
        manifest = read_manifest(Path(run_dir)) or {}
    for entry in json_object(manifest.get("analyses") or {}).values():
        name = json_object(json_object(entry or {}).get("outputs") or {}).get(role)
        if name:
            path = Path(run_dir) / str(name)
            return path if path.is_file() else None
    return None


def read_scores(run_dir: Path, manifest: Mapping[str, JSONValue] | None = None) -> dict[int, SampleScore]:
    path = analysis_output(run_dir, "scores", manifest)
    if path is None:
        return {}
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
        out = {}
        for rec in frame.to_dict("records"):
            score = rec.get("score")
            if score is None or (isinstance(score, float) and np.isnan(score)):
                continue
            out[int(rec["row"])] = SampleScore(float(score), str(rec.get("score_source") or "?"),
                                               str(rec.get("method")), int(rec.get("layer")), str(rec.get("position")))
    except (KeyError, TypeError, ValueError, OSError) as error:
        raise _malformed(path, f"not a score table: {error}") from None
    return out


def read_token_scores(run_dir: Path, tokenizer: PreTrainedTokenizerBase | None,
                      manifest: Mapping[str, JSONValue] | None = None) -> dict[int, TokenScores]:
    path = analysis_output(run_dir, "token_scores", manifest)
    if path is None:
        return {}
    try:
        return _token_scores(path, tokenizer)
    except (KeyError, TypeError, ValueError, OSError) as error:
        raise _malformed(path, f"not a token score table: {error}") from None


def _token_scores(path: Path, tokenizer: PreTrainedTokenizerBase | None) -> dict[int, TokenScores]:
    import pandas as pd

    frame = pd.read_parquet(path).sort_values(["row", "token_index"], kind="stable")
    rows = frame["row"].to_numpy()
    scores = frame["score"].to_numpy(dtype=float)
    ids = frame["token_id"].to_numpy(dtype=float, na_value=np.nan) if "token_id" in frame else None
    decoded: dict[int, str] = {}
    out: dict[int, TokenScores] = {}
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    bar = progress_bar(len(starts) if tokenizer is not None else 0, "report: reply tokens", "reply")
    for start, end in zip(starts, ends, strict=True):
        row_scores = [round(float(s), 4) for s in scores[start:end]]
        texts = None
        if tokenizer is not None and ids is not None and not np.isnan(ids[start:end]).any():
            texts = []
            for token_id in ids[start:end].astype(np.int64).tolist():
                if token_id not in decoded:
                    decoded[token_id] = str(tokenizer.decode([token_id]))
                texts.append(decoded[token_id])
        out[int(rows[start])] = TokenScores(row_scores, texts)
        bar.update(1)
    bar.close()
    return out


def load_tokenizer(config: Mapping[str, JSONValue] | None) -> PreTrainedTokenizerBase | None:
    """The run's tokenizer when it is on this machine already (nothing is downloaded), else None."""
    model = json_object((config or {}).get("config") or {}).get("model")
    if not model:
        return None
    try:
        revision = json_object((config or {}).get("config") or {}).get("revision")
        return local_tokenizer(ModelSpec.parse(str(model)), None if revision is None else str(revision))
    except Exception as error:  # any failure only means the tokens are shown without their text
        log.info("report: the tokenizer of %s is not available here (%s); tokens shown as a score strip", model, error)
        return None


def decision_threshold(dataset: Dataset, scores: dict[int, SampleScore],
                       analysis_results: Mapping[str, JSONValue] | None) -> tuple[float | None, str]:
    """The probe's decision threshold: the one its results state, else 0.

    0 is the decision boundary of every probe method here (a decision value above 0 is called
    deceptive, as in the balanced accuracy of the probe tables).
    """
    if not scores:
        return None, "no scores"
    threshold = json_object((analysis_results or {}).get("best") or {}).get("threshold")
    if isinstance(threshold, (int, float)):
        return float(threshold), "the threshold stated in the analysis results"
    return 0.0, "the probes' decision boundary (a decision value above 0 is called deceptive)"


def _run_config(path: Path) -> dict[str, Any] | None:
    """``config.json`` as the report shows it: ``config`` and ``resolved`` objects (anything else is left out)."""
    data = _read_json(path)
    if data is None:
        return None
    if not isinstance(data, dict):
        log.warning("report: %s is not a JSON object; left out", path)
        return None
    return {k: data[k] for k in ("config", "resolved") if isinstance(data.get(k), dict)}


def _check_results_shape(results: object, path: Path | None) -> None:
    """The fields of an analysis's results that the report reads, with their types."""
    where = path if path is not None else Path(ANALYSES_MANIFEST)
    if not isinstance(results, dict):
        raise _malformed(where, f"a {type(results).__name__}, not a JSON object")
    cells = results.get("cells")
    if cells is not None and not (isinstance(cells, list) and all(
            isinstance(c, dict) and isinstance(c.get("layer"), int) and not isinstance(c.get("layer"), bool)
            and isinstance(c.get("position"), str) and isinstance(c.get("method"), str) for c in cells)):
        raise _malformed(where, "'cells' is not a list of objects with an integer layer, a position and a method")
    for cell in cells or []:
        for key in ("auroc", "recall_at_fpr"):
            if cell.get(key) is not None and not isinstance(cell[key], dict):
                raise _malformed(where, f"a cell's {key!r} is not an object")
    if results.get("best") is not None and not isinstance(results["best"], dict):
        raise _malformed(where, "'best' is not an object")
    reasons = results.get("reasons")
    if reasons is not None and not (isinstance(reasons, list) and all(isinstance(r, str) for r in reasons)):
        raise _malformed(where, "'reasons' is not a list of texts")


def gather(run_dir: str | Path, tokenizer: PreTrainedTokenizerBase | None = None, decode_tokens: bool = True) -> ReportInputs:
    run_dir = Path(run_dir)
    dataset = read_dataset(run_dir)
    config = _run_config(run_dir / "config.json")
    manifest = read_manifest(run_dir) or {}
    results_path = analysis_output(run_dir, "results", manifest)
    analysis_results = _read_json(results_path) if results_path is not None else None
    if analysis_results is not None:
        _check_results_shape(analysis_results, results_path)
    scores = read_scores(run_dir, manifest)
    if tokenizer is None and decode_tokens and analysis_output(run_dir, "token_scores", manifest) is not None:
        tokenizer = load_tokenizer(config)
    tokens = read_token_scores(run_dir, tokenizer, manifest)
    threshold, note = decision_threshold(dataset, scores, analysis_results)
    summary = None
    for name in ("analysis_summary.txt", "summary.txt"):
        if (run_dir / name).is_file():
            summary = (run_dir / name).read_text()
            break
    plots = {p.name: p.read_bytes() for p in sorted(run_dir.glob("*.png"))}
    causal = {}
    for path in sorted(run_dir.glob("causal_*.json")):
        data = _read_json(path)
        if data is not None:
            causal[path.stem[len("causal_"):]] = data
    best = (analysis_results or {}).get("best") or {}
    scale = best.get("scale") if isinstance(best.get("scale"), dict) else None
    score_record = (analysis_results or {}).get("scores") or {}
    if scale is None and isinstance(score_record, dict) and isinstance(score_record.get("scale"), dict):
        scale = score_record["scale"]  # scores of a probe trained on another dataset (analyze --train-from)
    return ReportInputs(run_dir, dataset, config, scores, tokens, threshold, note, analysis_results, summary, plots, causal,
                        scale)
