"""What the four tests share: settings, the chosen prompts, generation under interventions,
labelling of generated replies, and a clean re-read (probe score and fluency) of each reply."""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import torch

from deception_causal.direction import NotComputable, ProbeDirection, resolve_direction
from deception_causal.interventions import RowEdit, as_interventions, position_vector, teacher_forced
from deception_causal.selection import choose_prompts, trial_keys
from deception_core.analysis import CausalContext, CausalTest

log = logging.getLogger("deception")

RESULT_FORMAT_VERSION = 1


@attrs.frozen
class CausalSettings:
    """Knobs of the causal tests (defaults follow SPEC section 8)."""

    n_random: int = 10  # random directions for effects measured on generated replies
    n_random_forward: int = 20  # random directions for teacher-forced (cheap) effects
    alphas: tuple[float, ...] = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0)  # x typical residual norm
    batch_size: int = 16  # generation and teacher-forced rows per forward pass (at least the run's --batch-size)
    max_new_tokens: int | None = None  # default: the run's --max-tokens
    fluency_ratio: float = 4.0  # a reply whose perplexity exceeds ratio x its unsteered one is "broken"
    ablate_all_layers: bool = True

    def __attrs_post_init__(self) -> None:
        if self.n_random < 10 or self.n_random_forward < 10:
            raise ValueError("the causal tests compare every effect with at least 10 random directions")
        if 0.0 not in self.alphas or not any(a > 0 for a in self.alphas) or not any(a < 0 for a in self.alphas):
            raise ValueError("steering alphas need 0 and values of both signs")


ConditionSpec = Mapping[int, tuple[np.ndarray | None, np.ndarray | None]]  # layer -> (project, add)


@attrs.define
class Generated:
    texts: list[str]
    reply_ids: list[tuple[int, ...]]


class CausalRun:
    """The prompts, direction and helpers of one causal test on one run."""

    def __init__(self, context: Any, settings: CausalSettings, rows: Sequence[int] | None = None,
                 direction: ProbeDirection | None = None) -> None:
        self.context = context
        self.settings = settings
        self.dataset = context.dataset
        self.seed = int(getattr(context.config, "seed", 0))
        if len(self.dataset) == 0:
            raise NotComputable("the dataset is empty")
        n = int(getattr(context.config, "causal_samples", 20))
        self.n_requested = n
        self.rows = list(rows) if rows is not None else choose_prompts(self.dataset, n, self.seed)
        self.direction = direction or resolve_direction(self.dataset, context.probe_results, context.out_dir,
                                                        trial_keys(self.dataset, self.rows))
        self.hf = context.model.hf_model
        tokenizer = context.model.tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.d_model = int(self.direction.vector.shape[0])
        self.unit = self.direction.unit
        self.prompts = [self.dataset.prompt_ids(r) for r in self.rows]
        run_batch = getattr(context.config, "batch_size", 1)  # the run resolves "auto" before the causal tests
        self.batch_size = max(1, settings.batch_size, run_batch if isinstance(run_batch, int) else 1)
        self.max_new = settings.max_new_tokens or int(context.config.max_tokens)
        self.trials = {t["trial_key"]: t for t in self.dataset.trials}
        self.stops = [stop_strings(self.trials.get(self.dataset.samples[r]["trial_key"], {})) for r in self.rows]

    # ---- bookkeeping ------------------------------------------------------------------
    def typical_norm(self) -> float:
        """Median residual norm at the direction's layer over the run's samples (steering scale)."""
        positions = self.dataset.positions
        position = "last_prompt" if "last_prompt" in positions else self.direction.position
        X = np.asarray(self.dataset.matrix(self.direction.layer, position), dtype=np.float64)
        return float(np.median(np.linalg.norm(X, axis=1)))

    def random_units(self, n: int, salt: int) -> np.ndarray:
        from deception_causal.stats import random_unit_directions

        return random_unit_directions(self.d_model, n, self.seed * 1000 + salt, avoid=self.unit)

    def prompts_record(self) -> dict[str, Any]:
        samples = self.dataset.samples
        return {
            "n_requested": self.n_requested,
            "n_used": len(self.rows),
            "rows": list(self.rows),
            "sample_ids": [samples[r].get("sample_id") for r in self.rows],
            "labels": [samples[r]["label"] for r in self.rows],
            "conditions": [samples[r]["condition"] for r in self.rows],
            "scenarios": [samples[r]["scenario"] for r in self.rows],
        }

    def base_record(self, name: str) -> dict[str, Any]:
        return {"format_version": RESULT_FORMAT_VERSION, "test": name, "status": "ok",
                "direction": self.direction.describe(), "prompts": self.prompts_record(),
                "settings": {**attrs.asdict(self.settings), "max_new_tokens_used": self.max_new,
                             "stop_strings": sorted(set().union(*self.stops)) if self.stops else [],
                             "sampling": {"temperature": getattr(self.context.sampling, "temperature", None),
                                          "top_p": getattr(self.context.sampling, "top_p", None),
                                          "seeds": "one per prompt, shared by every condition"}}}

    # ---- generation ---------------------------------------------------------------------
    def generate(self, conditions: Sequence[ConditionSpec]) -> list[Generated]:
        """Generate a reply for every chosen prompt under each condition (same seed per prompt
        across conditions, so differences come from the intervention, not from sampling)."""
        from deception_core.capture.base import GenerationRequest

        jobs = [(c, i) for c in range(len(conditions)) for i in range(len(self.rows))]
        texts: dict[tuple[int, int], str] = {}
        ids: dict[tuple[int, int], tuple[int, ...]] = {}
        size = self.batch_size
        started = time.monotonic()
        from deception_core.progress import progress_bar

        bar = progress_bar(len(jobs), f"causal replies ({len(conditions)} conditions)", "reply")
        for start in range(0, len(jobs), size):
            if start:
                log.info("causal: %d/%d replies generated (%d conditions x %d prompts), %.0f s", start, len(jobs),
                         len(conditions), len(self.rows), time.monotonic() - started)
            chunk = jobs[start:start + size]
            requests = [GenerationRequest(tuple(self.prompts[i]), self.max_new, seed=self.seed + 7919 * self.rows[i],
                                          capture=False, stop=self.stops[i]) for _, i in chunk]
            edits = self._chunk_edits([conditions[c] for c, _ in chunk])
            results = self.context.backend.generate(requests, self.context.sampling, as_interventions(edits))
            for job, result in zip(chunk, results):
                texts[job], ids[job] = result.text, tuple(result.reply_ids)
            bar.update(len(chunk))
        bar.close()
        return [Generated([texts[(c, i)] for i in range(len(self.rows))], [ids[(c, i)] for i in range(len(self.rows))])
                for c in range(len(conditions))]

    def _chunk_edits(self, specs: Sequence[ConditionSpec]) -> dict[int, RowEdit]:
        layers = sorted({layer for spec in specs for layer in spec})
        edits: dict[int, RowEdit] = {}
        for layer in layers:
            project = torch.zeros(len(specs), self.d_model)
            add = torch.zeros(len(specs), self.d_model)
            for row, spec in enumerate(specs):
                p, a = spec.get(layer, (None, None))
                if p is not None:
                    project[row] = torch.as_tensor(np.asarray(p, dtype=np.float32))
                if a is not None:
                    add[row] = torch.as_tensor(np.asarray(a, dtype=np.float32))
            edits[layer] = RowEdit(project=project if project.abs().sum() > 0 else None,
                                   add=add if add.abs().sum() > 0 else None)
        return edits

    # ---- labelling and re-reading -------------------------------------------------------
    def row_context(self, row: int) -> tuple[dict[str, Any], Any, dict[str, Any] | None]:
        """A dataset row's sample, its scenario plugin (None if not installed) and its trial record."""
        sample = self.dataset.samples[row]
        return sample, self.context.scenarios.get(sample["scenario"]), self.trials.get(sample["trial_key"])

    def rule_labels(self, texts: Sequence[str]) -> list[str]:
        """The scenario rule's label of each generated reply, against that trial's private facts."""
        from deception_core.types import Condition

        labels = []
        for row, text in zip(self.rows, texts):
            sample, scenario, trial = self.row_context(row)
            if scenario is None or trial is None:
                labels.append("ambiguous")
                continue
            verdict = scenario.rule_verdict(trial["facts"], Condition(sample["condition"]), text, None)
            labels.append(verdict.label.value)
        return labels

    def judge_labels(self, texts: Sequence[str]) -> list[str] | None:
        """The run's evaluator on each reply (None without an evaluator or when it fails)."""
        evaluator = self.context.evaluator
        if evaluator is None:
            return None
        from deception_core.evaluator import JudgeRequest

        requests = []
        for row, text in zip(self.rows, texts):
            sample, scenario, trial = self.row_context(row)
            if scenario is None or trial is None:
                return None
            dialogue = []
            for turn in trial.get("transcript", []):
                if turn.get("request_id") == sample.get("request_id"):
                    break
                dialogue.append({"speaker": str(turn.get("speaker")), "text": str(turn.get("text"))})
            requests.append(JudgeRequest(sample["scenario"], scenario.describe_facts(trial["facts"]),
                                         scenario.judge_question(trial["facts"]), tuple(dialogue), text))
        try:
            return [v.label.value for v in evaluator.judge_many(requests)]
        except Exception as error:  # a judge outage must not lose the causal results
            log.warning("causal: the evaluator failed on intervened replies (%s); rule labels only", error)
            return None

    def reread(self, replies: Sequence[Sequence[int]]) -> dict[str, list[float]]:
        """Clean re-read of one reply per chosen prompt (see `reread_many`)."""
        return self.reread_many([replies])[0]

    def reread_many(self, conditions: Sequence[Sequence[Sequence[int]]]) -> list[dict[str, list[float]]]:
        """Clean (unintervened) teacher-forced passes over prompt + reply, for every condition's
        replies (one per chosen prompt) at once: the probe's score of each reply and its mean
        negative log-likelihood (fluency: a broken model's output has a high NLL under the
        unsteered model)."""
        position = self.direction.position
        if position == "last_prompt":
            position = "reply_mean"  # the prompt's state cannot change with the reply
        layer = self.direction.layer
        prompts = [p for _ in conditions for p in self.prompts]
        replies = [list(r) for replies in conditions for r in replies]
        out = teacher_forced(self.hf, prompts, replies, record=[layer], pad_id=self.pad_id,
                             chunk=self.batch_size)
        scores, nll = [], []
        for prompt, lp, hidden in zip(prompts, out.reply_logprobs, out.hidden[layer]):
            vector = position_vector(hidden, len(prompt), position).double().numpy()
            scores.append(float(self.direction.score(vector[None, :])[0]))
            nll.append(float(-lp.mean()) if lp.numel() else float("nan"))
        n = len(self.prompts)
        return [{"probe_score": scores[i * n:(i + 1) * n], "nll": nll[i * n:(i + 1) * n]}
                for i in range(len(conditions))]


class GenerationTest(CausalTest):
    """A causal test on the run's chosen prompts and probe direction: subclasses build the result
    from a `CausalRun`; a run that cannot support the test gets an honest not-computable record."""

    name = "generation"

    def __init__(self, settings: CausalSettings | None = None) -> None:
        self.settings = settings or CausalSettings()

    def run(self, context: CausalContext) -> dict[str, Any]:
        try:
            run = CausalRun(context, self.settings)
        except NotComputable as reason:
            return not_computable(self.name, str(reason))
        return jsonable(self.result(run))

    @abc.abstractmethod
    def result(self, run: CausalRun) -> dict[str, Any]:
        """The test's JSON-ready record (``jsonable`` is applied by `run`)."""


def stop_strings(trial: dict[str, Any]) -> tuple[str, ...]:
    """Stop strings for regenerating a turn, rebuilt from the trial (the dataset does not store the
    original request's): a blank line, or a line that opens another turn of a speaker of this trial."""
    speakers = dict.fromkeys(["You", *(str(t.get("speaker")) for t in trial.get("transcript", []) if t.get("speaker"))])
    return ("\n\n", *(f"\n{name}:" for name in speakers), "\n(")


def not_computable(name: str, reason: str, **extra: Any) -> dict[str, Any]:
    """The honest result when the data cannot support a test."""
    return {"format_version": RESULT_FORMAT_VERSION, "test": name, "status": "not_computable", "reason": reason,
            "summary": f"{name}: not computable ({reason})", **extra}


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays converted, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def deceptive_indicator(labels: Sequence[str]) -> np.ndarray:
    return np.array([1.0 if v == "deceptive" else 0.0 for v in labels])


def label_sign(label: str) -> int:
    """+1 for a deceptive reply, -1 for an honest one, 0 otherwise."""
    return {"deceptive": 1, "honest": -1}.get(label, 0)
