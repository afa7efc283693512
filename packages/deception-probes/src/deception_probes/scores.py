"""Per-sample and per-token scores of the best probe, as Parquet tables in the run folder.

``probe_scores.parquet``: one row per sample. Labelled samples get the score of the outer fold that
held them out ("heldout"): the same number every held-out figure is computed from. The rest
(ambiguous, unlabelled) get the score of the probe fitted on every labelled sample ("final").
Where the dataset kept every reply token (``reply_all``), each token is scored by the same probe
(the held-out fold's for labelled samples) and reduced per sample to its mean, max and last value;
the tokens themselves go to ``probe_token_scores.parquet``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SCORES_FILE = "probe_scores.parquet"
TOKEN_SCORES_FILE = "probe_token_scores.parquet"
REPLY_ALL = "reply_all"


def _field(sample: Any, name: str) -> Any:
    return sample.get(name) if isinstance(sample, dict) else getattr(sample, name, None)


def _token_matrix(dataset: Any, layer: int) -> np.ndarray | None:
    matrix: np.ndarray | None = dataset.arrays.get(f"layer{layer}/{REPLY_ALL}")
    return matrix


def _write_parquet(frame: Any, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def sample_probes(method: Any, X: np.ndarray, y: np.ndarray, plans: list[Any], hypers: list[float | None],
                  final: Any, rows: np.ndarray, n_samples: int, seed: int) -> list[Any]:
    """The probe that scores each sample of the dataset: its held-out fold's probe, else the final probe.

    The fold probes are refitted exactly as the cross-validation fitted them (same rows, hyper-parameter
    and seed), so their scores of the held-out rows are the cross-validated scores.
    """
    probes: list[Any] = [final] * n_samples
    for plan, hyper in zip(plans, hypers, strict=True):
        if not plan.usable:
            continue
        fold_probe = method.fit(X[plan.train], y[plan.train], hyper, seed)
        for i in rows[plan.test]:
            probes[int(i)] = fold_probe
    return probes


def write_score_files(dataset: Any, out_dir: Path, best: tuple[int, str, str], heldout: np.ndarray,
                      rows: np.ndarray, probes: list[Any], final: Any) -> list[Path]:
    """Write ``probe_scores.parquet`` (and ``probe_token_scores.parquet`` with ``reply_all``); returns the paths.

    ``heldout`` holds the cross-validated score of each labelled row (``rows``), NaN where no fold
    scored it; ``probes`` gives, per dataset row, the probe that scores its tokens (`sample_probes`);
    ``final`` is the probe fitted on every labelled sample.
    """
    import pandas as pd

    layer, position, method = best
    samples = dataset.samples
    n = len(samples)
    score = final.score(np.asarray(dataset.matrix(layer, position))) if n else np.zeros(0)
    source = np.array(["final"] * n, dtype=object)
    scored = ~np.isnan(heldout)
    score[rows[scored]] = heldout[scored]
    source[rows[scored]] = "heldout"
    frame = pd.DataFrame({
        "row": np.arange(n, dtype=np.int64),
        "sample_id": pd.array([str(_field(s, "sample_id")) for s in samples], dtype="string"),
        "label": pd.array([str(_field(s, "label")) for s in samples], dtype="string"),
        "score": score,
        "score_source": pd.array(source.tolist(), dtype="string"),
        "method": pd.array([method] * n, dtype="string"),
        "layer": np.full(n, layer, dtype=np.int64),
        "position": pd.array([position] * n, dtype="string"),
    })
    tokens = _token_matrix(dataset, layer)
    paths = []
    reductions = {"token_score_mean": np.full(n, np.nan), "token_score_max": np.full(n, np.nan),
                  "token_score_last": np.full(n, np.nan)}
    if tokens is not None:
        token_rows: list[dict[str, Any]] = []
        for i, sample in enumerate(samples):
            start, length = _field(sample, "reply_all_offset"), _field(sample, "reply_all_length")
            if start is None or not length:
                continue
            values = probes[i].score(np.asarray(tokens[start:start + length], dtype=np.float64))
            reductions["token_score_mean"][i] = values.mean()
            reductions["token_score_max"][i] = values.max()
            reductions["token_score_last"][i] = values[-1]
            ids = _field(sample, "reply_ids")
            for k, value in enumerate(values):
                token_rows.append({"row": i, "token_index": k,
                                   "token_id": int(ids[k]) if ids is not None and k < len(ids) else None,
                                   "score": float(value)})
        token_frame = pd.DataFrame(token_rows, columns=["row", "token_index", "token_id", "score"])
        token_frame = token_frame.astype({"row": "int64", "token_index": "int64", "token_id": "Int64",
                                          "score": "float64"})
        paths.append(_write_parquet(token_frame, Path(out_dir) / TOKEN_SCORES_FILE))
    for name, values in reductions.items():
        frame[name] = pd.array([None if np.isnan(v) else float(v) for v in values], dtype="Float64")
    paths.insert(0, _write_parquet(frame, Path(out_dir) / SCORES_FILE))
    return paths
