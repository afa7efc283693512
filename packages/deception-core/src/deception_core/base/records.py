"""Typed records that flow between the stages of a run.

A run plays trials (`Trial`), turns each focal utterance into a `Sample`, analyses the samples
(an analysis may expose the linear read-out it chose as a `ProbeDirection`), and runs causal tests
(`CausalResult`). The stages pass these values in memory; they become JSON (or arrays) only at
the edge: the dataset store, the checkpoint shards and the result writers.

Sample fields are named like the keys of ``samples.jsonl``. The reply's token ids
(``reply_ids``) travel with the sample in memory and are stored in the dataset as a ragged
array, like the prompt's ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, SupportsInt, TypeVar

import attrs
import numpy as np
import numpy.typing as npt

from deception_core.base.types import JSONObject


class RecordError(ValueError):
    """A stored record that does not match its type (unknown or missing fields)."""


def _dicts(value: Iterable[JSONObject]) -> tuple[JSONObject, ...]:
    return tuple(value)


def _ids(value: Iterable[SupportsInt] | None) -> tuple[int, ...] | None:
    return None if value is None else tuple(int(i) for i in value)


@attrs.frozen(kw_only=True)
class Sample:
    """One focal utterance of the agent under study: where it came from, what it said, its labels.

    ``caller`` names the generation call that produced it (``negotiator.act`` ...) and ``tag`` its
    place in the trial (``r1``, ``r2`` ... or ``final``); ``request_id`` is unique within the trial.
    ``row`` indexes the dataset's activation arrays; ``reply_all_offset``/``reply_all_length``
    slice the every-reply-token arrays when those were captured.
    """

    trial_key: str
    label: str
    sample_id: str = ""
    scenario: str = ""
    mode: str = ""
    condition: str = ""
    trial_index: int = 0
    trial_seed: int = 0
    round: int = 0
    request_id: str = ""
    caller: str = ""
    tag: str = ""
    prompt_text: str = ""
    n_prompt_tokens: int = 0
    reply_text: str = ""
    n_reply_tokens: int = 0
    stopped_by: str | None = None
    rule_label: str | None = None
    rule_trace: str | None = None
    claims: JSONObject = attrs.field(factory=dict)
    judge_label: str | None = None
    judge_raw: str | None = None
    judge_error: str | None = None
    agreement: bool | None = None
    belief: str | None = None
    self_report: str | None = None
    outcome: JSONObject = attrs.field(factory=dict)
    sae_reconstruction_mse: dict[str, float] | None = None  # per position, with --sae
    sae_l0: dict[str, int] | None = None  # active SAE features per position, with --sae
    row: int = 0
    reply_all_offset: int | None = None
    reply_all_length: int | None = None
    reply_ids: tuple[int, ...] | None = attrs.field(default=None, converter=_ids, eq=True)
    #: earlier labellings, oldest first (`deception relabel` appends one before it changes the labels)
    label_history: tuple[JSONObject, ...] = attrs.field(default=(), converter=_dicts)
    #: the judge that gave ``judge_label`` when it was set by `deception relabel` (name, model; never a key)
    judge: JSONObject | None = None


@attrs.frozen(kw_only=True)
class Trial:
    """One played trial: its private facts, full transcript, outcome and generation calls."""

    trial_key: str
    scenario: str = ""
    mode: str = ""
    condition: str = ""
    index: int = 0
    seed: int = 0
    facts: JSONObject = attrs.field(factory=dict)
    transcript: tuple[JSONObject, ...] = attrs.field(default=(), converter=_dicts)
    outcome: JSONObject = attrs.field(factory=dict)
    calls: tuple[JSONObject, ...] = attrs.field(default=(), converter=_dicts)


#: Sample fields kept out of ``samples.jsonl`` (stored as ragged arrays instead).
SAMPLE_ARRAY_FIELDS = ("reply_ids",)

R = TypeVar("R", Sample, Trial)


def to_json(record: Sample | Trial) -> dict[str, Any]:
    """A record as a JSON-ready mapping (sample token ids are left to the array store)."""
    out = attrs.asdict(record, recurse=False)
    for name in SAMPLE_ARRAY_FIELDS:
        out.pop(name, None)
    if isinstance(record, Trial):
        out["transcript"], out["calls"] = list(record.transcript), list(record.calls)
    return out


def from_json(cls: type[R], data: Mapping[str, Any], **extra: Any) -> R:
    """The record of type ``cls`` stored as ``data``; unknown fields are refused (the schema is versioned)."""
    names = {field.name for field in attrs.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise RecordError(f"a stored {cls.__name__} has unknown field(s) {unknown}; known fields: {sorted(names)}")
    try:
        return cls(**{**data, **extra})
    except TypeError as error:
        raise RecordError(f"a stored {cls.__name__} does not match its type ({error})") from None


def _float_vector(value: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return np.asarray(value, dtype=np.float64).ravel()


@attrs.frozen
class ProbeDirection:
    """A linear read-out in raw activation space: ``score(x) = x . vector + bias``.

    ``source`` says how it was obtained (``probe`` for a fitted probe, ``difference_of_means``...)
    and ``provenance`` the details a reader needs to trust it (method, fit rows, held-out AUROC).
    """

    layer: int
    position: str
    vector: npt.NDArray[np.float64] = attrs.field(converter=_float_vector)
    bias: float = 0.0
    source: str = "probe"
    provenance: JSONObject = attrs.field(factory=dict)

    @property
    def unit(self) -> npt.NDArray[np.float64]:
        return np.asarray(self.vector / np.linalg.norm(self.vector), dtype=np.float64)

    def score(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.asarray(np.asarray(X, dtype=np.float64) @ self.vector + self.bias, dtype=np.float64)

    def describe(self) -> JSONObject:
        return {"source": self.source, "layer": self.layer, "position": self.position,
                "norm": float(np.linalg.norm(self.vector)), "bias": self.bias, **self.provenance}


@attrs.define
class AnalysisReport:
    """What an analysis produced: its JSON results, a console table, the files it wrote and, when it
    chose one, the direction it reads deception along (causal tests intervene on it), handed over as a
    value, never read back from the files; ``alternatives``: the next-best read-outs, best first, which
    the causal tests fall back on when random directions at the chosen one already break the model."""

    results: JSONObject
    table: str
    files: list[str] = attrs.field(factory=list)
    direction: ProbeDirection | None = None
    alternatives: tuple[ProbeDirection, ...] = ()
    #: which of its files plays which role for readers such as the report (a role of `OUTPUT_ROLES` ->
    #: file name in the run folder); the runner records it in ``analyses.json``
    outputs: dict[str, str] = attrs.field(factory=dict)


#: roles an analysis's files can play: its JSON results (``best.threshold`` is the decision threshold),
#: per-sample scores and per-token scores (Parquet, schemas in `deception_core.report.inputs`), and the
#: generalisation matrix's JSON (`deception analyze --matrix`)
OUTPUT_ROLES = ("results", "scores", "token_scores", "matrix")
#: the run folder's record of each analysis's files by role (written after the analyses run)
ANALYSES_MANIFEST = "analyses.json"


@attrs.frozen
class CausalResult:
    """A causal test's JSON-ready record; ``status`` is ``ok`` or ``not_computable``."""

    test: str
    record: JSONObject

    @property
    def status(self) -> str:
        return str(self.record.get("status", "ok"))
