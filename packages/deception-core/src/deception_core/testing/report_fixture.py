"""A synthetic run folder of any size, for the report's browser tests and its size/load benchmark.

It has what a real run folder has for the report (dataset, config.json, an analysis's results, the
score files of the probe analysis) with made-up text: replies are words from a small vocabulary,
tokenised one word per token, so `WordTokenizer` decodes the token ids without any model.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from deception_core.analyse.analyse import write_analysis_manifest
from deception_core.base.records import ANALYSES_MANIFEST, Sample, Trial, from_json
from deception_core.store.dataset import Dataset, atomic_write_text, read_dataset, write_dataset

SCENARIOS = ("scenario_a", "scenario_b", "scenario_c", "scenario_d", "scenario_e", "scenario_f")
CONDITIONS = {"emergent": ("high_incentive", "low_incentive"),
              "instructed": ("deceptive_instruction", "honest_instruction")}
_TEXT = ("I can offer you the item for forty coins because it cost me a lot and the quality is "
         "excellent so please accept this fair price today honestly it has no defects at all and "
         "my partner agreed we will deliver tomorrow without delay <b>&amp;</b> trust me")
WORDS = tuple(_TEXT.split())


class WordTokenizer:
    """Decodes the synthetic token ids (one id per word of `WORDS`, with a leading space)."""

    def decode(self, ids: list[int]) -> str:
        return "".join(" " + WORDS[i % len(WORDS)] for i in ids)


def _reply(rng: random.Random, n_tokens: int) -> tuple[str, list[int]]:
    ids = [rng.randrange(len(WORDS)) for _ in range(n_tokens)]
    return WordTokenizer().decode(ids).strip(), ids


def write_synthetic_run(out_dir: str | Path, *, trials: int = 50, rounds: int = 3, scenarios: int = 6,
                        reply_tokens: int = 60, d_model: int = 8, seed: int = 0,
                        token_scores: bool = True) -> Path:
    """Write a run folder with ``scenarios`` x 2 modes x 2 conditions x ``trials`` trials of ``rounds`` rounds."""
    out = Path(out_dir)
    rng = random.Random(seed)
    rows = _SyntheticRows()
    for scenario in SCENARIOS[:scenarios]:
        for mode, conditions in CONDITIONS.items():
            for condition in conditions:
                for index in range(trials):
                    _synthetic_trial(rows, rng, (scenario, mode, condition, index), rounds, reply_tokens)
    _write_synthetic_dataset(out, rows, scenarios, d_model, seed)
    config = {"config": {"model": "synthetic", "mode": "both", "trials": trials, "max_rounds": rounds,
                         "label_policy": "agree", "evaluator": "local"},
              "resolved": {"scenarios": list(SCENARIOS[:scenarios]), "layers": [1]}}
    atomic_write_text(out / "config.json", json.dumps(config, indent=2))
    _write_synthetic_probe_files(out, rows, token_scores)
    return out


@attrs.define
class _SyntheticRows:
    """What the synthetic trials accumulate: sample and trial records, per-token and per-sample scores."""

    samples: list[dict[str, Any]] = attrs.field(factory=list)
    trials: list[dict[str, Any]] = attrs.field(factory=list)
    token_rows: list[tuple[int, int, int, float]] = attrs.field(factory=list)
    score_rows: list[dict[str, Any]] = attrs.field(factory=list)


def _synthetic_trial(rows: _SyntheticRows, rng: random.Random, where: tuple[str, str, str, int], rounds: int,
                     reply_tokens: int) -> None:
    scenario, mode, condition, index = where
    key = f"{scenario}/{mode}/{condition}/{index:05d}"
    transcript: list[dict[str, Any]] = []
    secret = rng.randrange(10, 90)
    for round_ in range(1, rounds + 1):
        request_id = f"negotiator.act#r{round_}"
        transcript.append({"speaker": "Negotiator", "round": round_, "kind": "theory_of_mind",
                           "audience": ["game master"], "text": "They want a low price.",
                           "request_id": f"negotiator.tom#r{round_}"})
        text, ids = _reply(rng, reply_tokens)
        transcript.append({"speaker": "Negotiator", "round": round_, "kind": "say", "text": text,
                           "request_id": request_id})
        counter, _ = _reply(rng, reply_tokens // 2)
        transcript.append({"speaker": "Counterpart", "round": round_, "kind": "say", "text": counter,
                           "request_id": f"counterpart.act#r{round_}"})
        rule = rng.choice(("honest", "deceptive", "ambiguous"))
        judge = rule if rng.random() < 0.8 else rng.choice(("honest", "deceptive", "ambiguous"))
        row = len(rows.samples)
        rows.samples.append({
            "sample_id": f"{key}/{request_id}", "trial_key": key, "scenario": scenario,
            "mode": mode, "condition": condition, "trial_index": index, "trial_seed": index,
            "round": round_, "request_id": request_id, "caller": "negotiator.act",
            "prompt_text": f"You sell an item worth {secret} coins. Round {round_}.",
            "n_prompt_tokens": 40, "reply_text": text, "n_reply_tokens": len(ids),
            "stopped_by": "eos", "rule_label": rule,
            "rule_trace": f"claimed cost 40, true cost {secret}",
            "claims": {"cost": 40}, "judge_label": judge,
            "judge_raw": f"VERDICT: {judge.upper()}. Synthetic.", "judge_error": None,
            "agreement": judge == rule, "label": rule if rule == judge else "ambiguous",
            "belief": None, "self_report": None, "outcome": {"deal": True}, "row": row,
        })
        _synthetic_scores(rows, rng, row, ids)
    rows.trials.append({"trial_key": key, "scenario": scenario, "mode": mode, "condition": condition,
                        "index": index, "seed": index, "facts": {"true_cost": secret}, "transcript": transcript,
                        "outcome": {"deal": True}, "calls": []})


def _synthetic_scores(rows: _SyntheticRows, rng: random.Random, row: int, ids: list[int]) -> None:
    """Token scores around +1 (deceptive), -1 (honest) or 0 (ambiguous), and the sample's score row."""
    sample = rows.samples[-1]
    base = {"deceptive": 1.0, "honest": -1.0}.get(sample["label"], 0.0)
    scores = [base + rng.gauss(0, 1.2) for _ in ids]
    rows.token_rows += [(row, i, t, s) for i, (t, s) in enumerate(zip(ids, scores, strict=True))]
    labelled = sample["label"] != "ambiguous"
    rows.score_rows.append({
        "row": row, "sample_id": sample["sample_id"], "label": sample["label"],
        "score": float(np.mean(scores)), "score_source": "heldout" if labelled else "final",
        "method": "logistic", "layer": 1, "position": "reply_mean",
        "token_score_mean": float(np.mean(scores)), "token_score_max": float(np.max(scores)),
        "token_score_last": float(scores[-1]),
    })


def _write_synthetic_dataset(out: Path, rows: _SyntheticRows, scenarios: int, d_model: int, seed: int) -> None:
    n = len(rows.samples)
    arrays: dict[str, np.ndarray]
    arrays = {"layer1/reply_mean": np.random.default_rng(seed).normal(size=(n, d_model)).astype(np.float32),
              "prompt_ids/values": np.zeros(0, np.int32), "prompt_ids/offsets": np.zeros(n + 1, np.int64)}
    meta = {"model": {"id": "synthetic", "n_layers": 2, "d_model": d_model}, "layers": [1],
            "positions": ["reply_mean"], "capture_backend": "hf", "scenarios": list(SCENARIOS[:scenarios])}
    records = [from_json(Sample, sample) for sample in rows.samples]
    write_dataset(out / "dataset", Dataset(meta, records, [from_json(Trial, t) for t in rows.trials], arrays))


def _write_synthetic_probe_files(out: Path, rows: _SyntheticRows, token_scores: bool) -> None:
    """A minimal analysis results file and the score files the report reads, recorded in ``analyses.json``."""
    import pandas as pd

    cells = [{"layer": 1, "position": "reply_mean", "method": m,
              "auroc": {"value": 0.8, "ci_low": 0.75, "ci_high": 0.85}, "balanced_accuracy": 0.72,
              "recall_at_fpr": {"value": 0.3}} for m in ("logistic", "mass_mean")]
    atomic_write_text(out / "synthetic_results.json", json.dumps({"status": "ok", "cells": cells, "reasons": [],
                                                                   "best": {"method": "logistic", "layer": 1,
                                                                            "position": "reply_mean"}}))
    pd.DataFrame(rows.score_rows).to_parquet(out / "synthetic_scores.parquet", index=False)
    outputs = {"results": "synthetic_results.json", "scores": "synthetic_scores.parquet"}
    if token_scores:
        frame = pd.DataFrame(rows.token_rows, columns=["row", "token_index", "token_id", "score"])
        frame.to_parquet(out / "synthetic_token_scores.parquet", index=False)
        outputs["token_scores"] = "synthetic_token_scores.parquet"
    record_outputs(out, outputs)


def record_outputs(run_dir: Path, outputs: dict[str, str]) -> None:
    """Put a stand-in analysis, first, in the run folder's ``analyses.json`` with these files by role."""

    path = Path(run_dir) / ANALYSES_MANIFEST
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    earlier = manifest.get("analyses", {})
    analyses = {"synthetic": outputs, **{k: v["outputs"] for k, v in earlier.items() if k != "synthetic"}}
    files = [*manifest.get("sha256", {}), *(name for roles in analyses.values() for name in roles.values())]
    write_analysis_manifest(Path(run_dir), analyses, files)


def write_contract_scores(run_dir: str | Path, seed: int = 0) -> Path:
    """Score files in the report's score schema for an existing run folder (random scores, for tests).

    ``synthetic_scores.parquet`` gets one row per sample; ``synthetic_token_scores.parquet`` one row per
    reply token where the run kept every reply token (``reply_all``), with the token ids of
    ``reply_ids`` when the samples hold them (null otherwise).
    """
    import pandas as pd

    run_dir = Path(run_dir)
    dataset = read_dataset(run_dir)
    rng = np.random.default_rng(seed)
    rows, tokens = [], []
    for sample in dataset.samples:
        row = sample.row
        n = int(sample.reply_all_length or 0)
        token_scores = rng.normal(size=n)
        ids: Sequence[int | None] = sample.reply_ids or [None] * n
        tokens += [(row, i, ids[i] if i < len(ids) else None, float(s)) for i, s in enumerate(token_scores)]
        rows.append({"row": row, "sample_id": sample.sample_id, "label": sample.label,
                     "score": float(rng.normal()), "score_source": "heldout" if sample.label != "ambiguous" else "final",
                     "method": "logistic", "layer": dataset.layers[-1], "position": "reply_mean",
                     "token_score_mean": float(token_scores.mean()) if n else None,
                     "token_score_max": float(token_scores.max()) if n else None,
                     "token_score_last": float(token_scores[-1]) if n else None})
    pd.DataFrame(rows).to_parquet(run_dir / "synthetic_scores.parquet", index=False)
    outputs = {"scores": "synthetic_scores.parquet"}
    if tokens:
        frame = pd.DataFrame(tokens, columns=["row", "token_index", "token_id", "score"])
        frame["token_id"] = frame["token_id"].astype("Int64")
        frame.to_parquet(run_dir / "synthetic_token_scores.parquet", index=False)
        outputs["token_scores"] = "synthetic_token_scores.parquet"
    record_outputs(run_dir, outputs)
    return run_dir
