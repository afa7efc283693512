"""Per-sample and per-token scores of the best probe, as Parquet tables in the run folder.

``probe_scores.parquet``: one row per sample. Labelled samples get the score of the outer fold that
held them out ("heldout"): the same number every held-out figure is computed from. The rest
(ambiguous, unlabelled) get the score of the probe fitted on every labelled sample ("final").
Where the reply tokens' activations are at hand (stored as ``reply_all``, or computed by one
teacher-forced pass over the stored prompt and reply ids; see `TokenStates`), each token is scored
by the same probe (the held-out fold's for labelled samples) and reduced per sample to its mean,
max and last value; the tokens themselves go to ``probe_token_scores.parquet``.

Every score column is on one scale, whatever the method, layer or model (`ScoreScale`): **0 is the
probe's decision threshold** (above it the probe calls a reply deceptive) and **1 is the threshold
that flags 1 % of the honest samples** (``ProbeSettings.fpr``; of the control set where one was
given). The raw projection ``x . direction + bias`` stays in ``score_raw``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from deception_core import JSONObject

if TYPE_CHECKING:
    import pandas as pd

    from deception_core import Dataset, Sample
    from deception_probes.crossval import FoldPlan
    from deception_probes.methods import LinearProbe, ProbeMethod

SCORES_FILE = "probe_scores.parquet"
TOKEN_SCORES_FILE = "probe_token_scores.parquet"
REPLY_ALL = "reply_all"
#: the decision threshold on the score scale: above it the probe calls a reply deceptive
THRESHOLD = 0.0


@attrs.frozen
class ScoreScale:
    """The one scale of every score a user sees: ``score = score_raw / unit``.

    Why this scale: a raw projection means nothing out of context (on the quick start the mass-mean
    probe's run from about -140,000 to 235,000, and the range changes with the method, the layer and
    the model). Two anchors answer the two questions a reader asks of a score. 0 is the probe's own
    decision threshold (every method here puts it at raw 0: the balanced logistic regression's
    even odds, the mass-mean and LAT probes' midpoint between the class means), so the sign says what
    the probe decided, exactly as the balanced accuracy and the "probe disagrees" filter count it.
    1 is the threshold that flags ``fpr`` (1 %) of the honest samples, the field's operating point
    for a monitor (Apollo's probes flag 1 % of control chat), so a score above 1 is more deceptive-
    looking than 99 % of honest replies. The reference honest scores are the held-out scores of the
    honest samples (what the probe does on replies it did not train on), or the control set's
    scores under the final probe where a control set was given. A linear map keeps the order
    (AUROCs are unchanged) and the token scores of one reply comparable with its sample score. A
    calibrated probability was the alternative; with tens of samples per class and near-separable
    data its fit is unstable and it squashes the tail, which is where a monitor's decision lies.

    ``unit`` is the distance from the decision threshold to that 1 % threshold, so the 1 % threshold
    sits at +1 when it lies above the decision threshold (the usual case: the probe's own threshold
    flags more than 1 % of honest samples) and at -1 when the probe's threshold already flags fewer
    (cleanly separated classes); ``fpr_threshold`` says which. When the two coincide (or the
    reference is empty) the unit is the reference scores' standard deviation instead (``basis``).
    """

    unit: float
    reference: str
    n_reference: int
    fpr: float
    fpr_threshold_raw: float | None
    basis: str

    @classmethod
    def fit(cls, reference_raw: np.ndarray, fpr: float, reference: str) -> ScoreScale:
        """The scale from the raw scores of the reference (honest or control) samples."""
        values = np.asarray(reference_raw, dtype=np.float64)
        values = values[np.isfinite(values)]
        if not len(values):
            return cls(1.0, reference, 0, fpr, None, "no reference scores: the raw projection, unscaled")
        q = float(np.quantile(values, 1 - fpr, method="higher"))  # as `transfer.control_threshold`
        if abs(q) > 1e-9 * max(1.0, float(np.abs(values).max())):
            return cls(abs(q), reference, int(len(values)), fpr, q,
                       f"the threshold flagging {fpr:.0%} of the {reference} is at "
                       f"{'+1' if q > 0 else '-1'}")
        spread = float(values.std())
        return cls(spread if spread > 0 else 1.0, reference, int(len(values)), fpr, q,
                   f"the threshold flagging {fpr:.0%} of the {reference} coincides with the decision threshold: "
                   "one unit is their scores' standard deviation")

    @property
    def fpr_threshold(self) -> float | None:
        """Where the threshold flagging ``fpr`` of the reference lies on the scale (+1 or -1, or 0)."""
        return None if self.fpr_threshold_raw is None else self.fpr_threshold_raw / self.unit

    def apply(self, raw: np.ndarray) -> np.ndarray:
        return np.asarray(raw, dtype=np.float64) / self.unit

    def to_dict(self) -> JSONObject:
        return {"threshold": THRESHOLD, "unit_raw": self.unit, "reference": self.reference,
                "n_reference": self.n_reference, "fpr": self.fpr, "fpr_threshold": self.fpr_threshold,
                # with fewer than 1 / fpr reference scores the mark is simply their highest one
                "resolution_limited": self.n_reference < round(1 / self.fpr),
                "fpr_threshold_raw": self.fpr_threshold_raw, "basis": self.basis,
                "meaning": (f"score = score_raw / unit_raw: 0 is the probe's decision threshold (above: deceptive), "
                            f"1 the score that flags {self.fpr:.0%} of the {self.reference}")}


def _field(sample: Sample | Mapping[str, object], name: str) -> Any:
    return sample.get(name) if isinstance(sample, dict) else getattr(sample, name, None)


def stored_reply_tokens(dataset: Dataset, layer: int) -> Iterator[tuple[int, np.ndarray]] | None:
    """``(row, [n_tokens, d])`` of every sample from the stored ``reply_all`` activations; None without them."""
    matrix: np.ndarray | None = dataset.arrays.get(f"layer{layer}/{REPLY_ALL}")
    if matrix is None:
        return None

    def rows() -> Iterator[tuple[int, np.ndarray]]:
        for i, sample in enumerate(dataset.samples):
            start, length = _field(sample, "reply_all_offset"), _field(sample, "reply_all_length")
            if start is not None and length:
                yield i, np.asarray(matrix[start:start + length])
    return rows()


def _write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def sample_probes(method: ProbeMethod, X: np.ndarray, y: np.ndarray, plans: list[FoldPlan], hypers: list[float | None],
                  final: LinearProbe, rows: np.ndarray, n_samples: int, seed: int) -> list[LinearProbe]:
    """The probe that scores each sample of the dataset: its held-out fold's probe, else the final probe.

    The fold probes are refitted exactly as the cross-validation fitted them (same rows, hyper-parameter
    and seed), so their scores of the held-out rows are the cross-validated scores.
    """
    probes: list[LinearProbe] = [final] * n_samples
    for plan, hyper in zip(plans, hypers, strict=True):
        if not plan.usable:
            continue
        fold_probe = method.fit(X[plan.train], y[plan.train], hyper, seed)
        for i in rows[plan.test]:
            probes[int(i)] = fold_probe
    return probes


def write_score_files(dataset: Dataset, out_dir: Path, best: tuple[int, str, str], heldout: np.ndarray,
                      rows: np.ndarray, probes: list[LinearProbe], final: LinearProbe, scale: ScoreScale,
                      tokens: Iterable[tuple[int, np.ndarray]] | None = None) -> list[Path]:
    """Write ``probe_scores.parquet`` (and ``probe_token_scores.parquet`` given ``tokens``); returns the paths.

    ``heldout`` holds the cross-validated raw score of each labelled row (``rows``), NaN where no fold
    scored it; ``probes`` gives, per dataset row, the probe that scores its tokens (`sample_probes`);
    ``final`` is the probe fitted on every labelled sample; ``tokens`` yields ``(row, [n_tokens, d])``
    reply-token activations (`stored_reply_tokens`, or a teacher-forced pass). Every ``score`` column
    is on ``scale``; ``score_raw`` keeps the raw projection.
    """
    import pandas as pd

    layer, position, method = best
    samples = dataset.samples
    n = len(samples)
    raw = final.score(np.asarray(dataset.matrix(layer, position))) if n else np.zeros(0)
    source = np.array(["final"] * n, dtype=object)
    scored = ~np.isnan(heldout)
    raw[rows[scored]] = heldout[scored]
    source[rows[scored]] = "heldout"
    frame = pd.DataFrame({
        "row": np.arange(n, dtype=np.int64),
        "sample_id": pd.array([str(_field(s, "sample_id")) for s in samples], dtype="string"),
        "label": pd.array([str(_field(s, "label")) for s in samples], dtype="string"),
        "score": scale.apply(raw),
        "score_raw": raw,
        "score_source": pd.array(source.tolist(), dtype="string"),
        "method": pd.array([method] * n, dtype="string"),
        "layer": np.full(n, layer, dtype=np.int64),
        "position": pd.array([position] * n, dtype="string"),
    })
    paths = []
    reductions = {"token_score_mean": np.full(n, np.nan), "token_score_max": np.full(n, np.nan),
                  "token_score_last": np.full(n, np.nan)}
    if tokens is not None:
        columns: dict[str, list[float | None]] = {"row": [], "token_index": [], "token_id": [], "score": [], "score_raw": []}
        for i, states in tokens:
            if not len(states):
                continue
            values = probes[i].score(np.asarray(states, dtype=np.float64))
            scaled = scale.apply(values)
            reductions["token_score_mean"][i] = scaled.mean()
            reductions["token_score_max"][i] = scaled.max()
            reductions["token_score_last"][i] = scaled[-1]
            ids = _field(samples[i], "reply_ids")
            columns["row"] += [i] * len(values)
            columns["token_index"] += list(range(len(values)))
            columns["token_id"] += [int(ids[k]) if ids is not None and k < len(ids) else None
                                    for k in range(len(values))]
            columns["score"] += scaled.tolist()
            columns["score_raw"] += values.tolist()
        token_frame = pd.DataFrame(columns).astype({"row": "int64", "token_index": "int64", "token_id": "Int64",
                                                    "score": "float64", "score_raw": "float64"})
        token_frame = token_frame.sort_values(["row", "token_index"], kind="stable").reset_index(drop=True)
        paths.append(_write_parquet(token_frame, Path(out_dir) / TOKEN_SCORES_FILE))
    elif (Path(out_dir) / TOKEN_SCORES_FILE).is_file():  # an earlier analysis's, of another probe: stale now
        (Path(out_dir) / TOKEN_SCORES_FILE).unlink()
    for name, values in reductions.items():
        frame[name] = pd.array([None if np.isnan(v) else float(v) for v in values], dtype="Float64")
    paths.insert(0, _write_parquet(frame, Path(out_dir) / SCORES_FILE))
    return paths
