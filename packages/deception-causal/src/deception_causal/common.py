"""What the four tests share: settings, the chosen prompts, generation under interventions,
labelling of generated replies, and a clean re-read (probe score and fluency) of each reply."""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import torch

from deception_causal import usable  # the module: tests count the calls of its choose_direction
from deception_causal.direction import NotComputable, direction_origin, origin_short, resolve_direction
from deception_causal.interventions import EditSites, RowEdit, position_vector, teacher_forced
from deception_causal.options import DEFAULT_SAMPLES
from deception_causal.selection import choose_prompts, trial_keys
from deception_causal.stats import random_unit_directions
from deception_causal.usable import (
    ABLATION_METHODS,
    NotTestable,
    dataset_mean,
    not_testable,
    selection_for,
    steering_unit,
    typical_norm,
)
from deception_core import (
    CausalContext,
    CausalTest,
    Condition,
    Dataset,
    GenerationRequest,
    JSONObject,
    JSONValue,
    JudgeRequest,
    ProbeDirection,
    Sample,
    Trial,
    progress_bar,
    rows_that_fit,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from deception_core import Scenario

log = logging.getLogger("deception")

RESULT_FORMAT_VERSION = 1

#: where steering and ablation act, per `CausalSettings.edit_sites`
EDIT_SITES = {
    "reply": "the last prompt token and every generated (or teacher-forced reply) token: where the probe reads, "
             "and the positions contrastive activation addition steers (after the prompt, Rimsky et al. 2024); "
             "the rest of the prompt is left as the model computed it",
    "all": "every position but the first (the attention sink), the prompt included, as Arditi et al. 2024 ablate",
}


@attrs.frozen
class CausalSettings:
    """Knobs of the causal tests."""

    n_random: int = 10  # random directions for effects measured on generated replies
    n_random_forward: int = 20  # random directions for teacher-forced (cheap) effects
    alphas: tuple[float, ...] = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0)  # x the steering unit x the scale factor
    batch_size: int = 16  # teacher-forced rows per forward pass (at least the run's --batch-size)
    # per reply; default: twice the prompt's original reply, at least min_new_tokens, at most the run's --max-tokens
    # (an intervened reply is labelled and scored by its opening; one that rambles to --max-tokens holds up its batch)
    max_new_tokens: int | None = None
    min_new_tokens: int = 32  # the shortest regenerated reply
    fluency_ratio: float = 4.0  # a reply whose perplexity exceeds ratio x its unsteered one is "broken"
    ablate_all_layers: bool = True  # also ablate the direction at many layers (beside the direction's own layer)
    # which layers that wider scope edits: "later_layers", the direction's layer and every later one (the
    # direction is then absent from its layer on); "all_layers", every layer (as Arditi et al. 2024). Layers
    # before the direction's add no removal of it (its layer is projected anyway), only damage: on Gemma-3-270M
    # random directions ablated at layers 0-3 raised the NLL by up to 1.6 nats/token; at layers 4-17 together
    # by 1.1 at most (none of 12 replies broken), at all 18 layers 9 of 12 broke
    wide_scope: str = "later_layers"
    # "spread": median distance of the samples from their mean (see `deception_causal.usable`);
    # "residual_norm": their median norm (dominated by outlier channels in most large models)
    steering_unit: str = "spread"
    # "mean": project the direction out about the dataset mean; "zero": about zero (Arditi et al. 2024)
    ablation: str = "mean"
    # where steering and ablation act: "reply", from the last prompt token on (that token and every
    # generated one, where the probe reads; contrastive activation addition's positions, Rimsky et al.
    # 2024), so each prompt's unedited part runs once for all conditions; "all", every position but the
    # first (the attention sink), as in Arditi et al. 2024, so every condition reruns the whole prompt
    edit_sites: str = "reply"
    # choosing a usable direction (`deception_causal.usable`): random controls must leave the model fluent
    max_random_broken: float = 0.25  # at most this fraction of replies broken by norm-matched random directions
    # steering's teacher-forced check passes a scale only at this fraction of max_random_broken: generated
    # replies compound the push (each steered token is fed back), so they break about twice as often as the
    # original replies teacher-forced under the same push (quick start: 15 % teacher-forced, 29.5 % generated)
    steering_check_share: float = 0.5
    # steering scales, x the steering unit; the largest at which the random controls stay fluent is found by
    # trying the largest first, then bisection (steps of about sqrt 2: within a factor 1.4 in at most four checks)
    scale_factors: tuple[float, ...] = (1.0, 0.7, 0.5, 0.35, 0.25, 0.18, 0.125)
    fluency_check_prompts: int = 4  # chosen prompts whose original replies the check teacher-forces
    # rows of a generation batch, whole prompts with every condition each (at least one prompt's; default:
    # 8 x the batch size, fewer where a GPU's free memory holds fewer rows' key/value caches): more rows
    # share each decoding step's pass over the weights, each costs its cache
    generation_rows: int | None = None
    samples: int = DEFAULT_SAMPLES  # prompts (or matched pairs) each test intervenes on: --causal-samples

    def __attrs_post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, got {self.samples}")
        if self.n_random < 10 or self.n_random_forward < 10:
            raise ValueError("the causal tests compare every effect with at least 10 random directions")
        if 0.0 not in self.alphas or not any(a > 0 for a in self.alphas) or not any(a < 0 for a in self.alphas):
            raise ValueError("steering alphas need 0 and values of both signs")
        if not 0.0 <= self.max_random_broken < 1.0:
            raise ValueError(f"max_random_broken must be in [0, 1), got {self.max_random_broken}")
        if not 0.0 < self.steering_check_share <= 1.0:
            raise ValueError(f"steering_check_share must be in (0, 1], got {self.steering_check_share}")
        if not self.scale_factors or any(f <= 0 for f in self.scale_factors) or \
                list(self.scale_factors) != sorted(self.scale_factors, reverse=True):
            raise ValueError(f"scale_factors must be positive and decreasing, got {list(self.scale_factors)}")
        if self.min_new_tokens < 1:
            raise ValueError(f"min_new_tokens must be at least 1, got {self.min_new_tokens}")
        if self.generation_rows is not None and self.generation_rows < 1:
            raise ValueError(f"generation_rows must be at least 1, got {self.generation_rows}")
        if self.fluency_check_prompts < 1:
            raise ValueError(f"fluency_check_prompts must be at least 1, got {self.fluency_check_prompts}")
        if self.steering_unit not in ("spread", "residual_norm"):
            raise ValueError(f"steering_unit must be 'spread' or 'residual_norm', got {self.steering_unit!r}")
        if self.wide_scope not in ("later_layers", "all_layers"):
            raise ValueError(f"wide_scope must be 'later_layers' or 'all_layers', got {self.wide_scope!r}")
        if self.edit_sites not in ("reply", "all"):
            raise ValueError(f"edit_sites must be 'reply' (from the last prompt token on) or 'all' (every position "
                             f"but the first), got {self.edit_sites!r}")
        if self.ablation not in ("mean", "zero"):
            raise ValueError(f"ablation must be 'mean' (about the dataset mean) or 'zero' (about zero), "
                             f"got {self.ablation!r}")


ConditionSpec = Mapping[int, tuple[np.ndarray | None, np.ndarray | None]]  # layer -> (project, add)
#: a generation condition: (name, direction kind: none/probe/random, fields for its record, its edits)
NamedCondition = tuple[str, str, JSONObject, ConditionSpec]


@attrs.define
class Generated:
    texts: list[str]
    reply_ids: list[tuple[int, ...]]


class CausalRun:
    """The prompts, direction and helpers of one causal test on one run."""

    def __init__(self, context: CausalContext, settings: CausalSettings, rows: Sequence[int] | None = None,
                 direction: ProbeDirection | None = None, select: str | None = None) -> None:
        """``select``: the test ("ablation" or "steering") whose direction the run's one fluency
        selection decides (`deception_causal.usable`); raises `deception_causal.usable.NotTestable`
        when no candidate keeps that test's random controls fluent."""

        self.context = context
        self.settings = settings
        self.dataset = context.dataset
        self.seed = int(getattr(context.config, "seed", 0))
        if len(self.dataset) == 0:
            raise NotComputable("the dataset is empty")
        n = settings.samples
        self.n_requested = n
        self.rows = list(rows) if rows is not None else choose_prompts(self.dataset, n, self.seed)
        self.direction = direction or resolve_direction(self.dataset, context.direction,
                                                        trial_keys(self.dataset, self.rows))
        self.hf = context.model.hf_model
        tokenizer = context.model.tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.prompts = [self.dataset.prompt_ids(r) for r in self.rows]
        placed = context.run.placement if context.run is not None else None  # None outside a run
        self.batch_size = max(1, settings.batch_size, placed.batch_size if placed is not None else 1)
        self.scale_factor = settings.scale_factors[0]
        self.selection: JSONObject | None = None
        if select is not None:
            shared = shared_selection(self, getattr(context, "alternatives", ()))
            choice = shared.for_test(select)
            if choice.direction is None:
                raise not_testable(choice, shared.record, select)
            self.direction, self.scale_factor = choice.direction, choice.scale_factor
            self.selection = selection_for(shared.record, select)
        self.d_model = int(self.direction.vector.shape[0])
        self.unit = self.direction.unit
        self.strength_unit = steering_unit(self.dataset, self.direction, settings.steering_unit)
        self.max_new = settings.max_new_tokens or int(context.config.max_tokens)
        tokenizer = context.model.tokenizer
        self.max_new_per_prompt = [self.max_new if settings.max_new_tokens else min(
            self.max_new, max(settings.min_new_tokens, 2 * len(stored_reply(self.dataset, r, tokenizer))))
            for r in self.rows]
        if any(self.dataset.samples[r].reply_ids is None for r in self.rows):
            log.warning("causal: this dataset (schema 1) stores no reply token ids; the original replies are "
                        "re-tokenised from their text, which need not give the tokens the model generated")
        self.trials = {t.trial_key: t for t in self.dataset.trials}
        self.stops = [stop_strings(self.trials.get(self.dataset.samples[r].trial_key)) for r in self.rows]
        self.sites: EditSites = "reply" if settings.edit_sites == "reply" else "all"
        self._means: dict[int, np.ndarray] = {}
        self.mean_sources: dict[int, str] = {}

    def fluency_checks(self) -> list[tuple[list[int], list[int]]]:
        """(prompt, original reply) of the first chosen prompts with a stored reply, for the fluency check."""
        checks = []
        for row, prompt in zip(self.rows, self.prompts, strict=True):
            reply = stored_reply(self.dataset, row, self.context.model.tokenizer)
            if reply:
                checks.append((list(prompt), reply))
            if len(checks) == self.settings.fluency_check_prompts:
                break
        return checks

    def check_randoms(self, d: int) -> np.ndarray:
        return random_unit_directions(d, self.settings.n_random, self.seed * 1000 + 9)

    # ---- bookkeeping ------------------------------------------------------------------
    def typical_norm(self) -> float:
        """Median residual norm at the direction's layer over the run's samples."""

        return typical_norm(self.dataset, self.direction)

    def steering_scale(self) -> float:
        """What alpha 1 adds: the steering unit's value times the factor the direction selection chose."""
        return self.strength_unit.value * self.scale_factor

    def layer_means(self, layers: Sequence[int]) -> dict[int, np.ndarray] | None:
        """The centre of mean ablation at each of ``layers`` (None under ``ablation="zero"``): the
        dataset's mean state where it holds the layer; elsewhere the mean over the chosen prompts'
        positions (all but the first, the attention sink) of a clean pass."""
        if self.settings.ablation != "mean":
            return None

        missing = [layer for layer in layers if layer not in self._means]
        for layer in [m for m in missing if m in self.dataset.layers]:
            self._means[layer] = dataset_mean(self.dataset, attrs.evolve(self.direction, layer=layer))
            self.mean_sources[layer] = "dataset mean (last prompt token)"
        missing = [layer for layer in missing if layer not in self._means]
        if missing:
            out = teacher_forced(self.hf, self.prompts, [[] for _ in self.prompts], record=missing, pad_id=self.pad_id,
                                 chunk=self.batch_size)
            for layer in missing:
                states = torch.cat([h[1:] for h in out.hidden[layer]])
                self._means[layer] = states.double().mean(dim=0).numpy()
                self.mean_sources[layer] = "mean over the chosen prompts' positions (layer not captured)"
        return {layer: self._means[layer] for layer in layers}

    def random_units(self, n: int, salt: int) -> np.ndarray:
        return random_unit_directions(self.d_model, n, self.seed * 1000 + salt, avoid=self.unit)

    def units_record(self) -> JSONObject:
        """Which units and which ablation this result used, and why (see `deception_causal.usable`)."""

        return {"steering_unit": {**self.strength_unit.describe(), "scale_factor": self.scale_factor,
                                  "alpha_one_adds": self.steering_scale(),
                                  "residual_norm": self.typical_norm()},
                "ablation": {"name": self.settings.ablation, "method": ABLATION_METHODS[self.settings.ablation],
                             "centre_sources": {str(k): v for k, v in sorted(self.mean_sources.items())}},
                "edit_sites": {"name": self.settings.edit_sites, "positions": EDIT_SITES[self.settings.edit_sites]},
                "random_controls": "unit directions orthogonal to u, scaled like the probe direction's edit, so each "
                                   "adds (or removes) a vector of the same norm as the probe direction's",
                "why": "outlier channels (huge, nearly constant dimensions) dominate the residual norm but not the "
                       "data's variation: strengths in units of the spread, and ablation about the mean, keep "
                       "norm-matched random controls fluent, so effects are compared with a meaningful null"}

    def prompts_record(self) -> JSONObject:
        samples = self.dataset.samples
        return {
            "n_requested": self.n_requested,
            "n_used": len(self.rows),
            "rows": list(self.rows),
            "sample_ids": [samples[r].sample_id for r in self.rows],
            "labels": [samples[r].label for r in self.rows],
            "conditions": [samples[r].condition for r in self.rows],
            "scenarios": [samples[r].scenario for r in self.rows],
        }

    def base_record(self, name: str) -> JSONObject:
        return {"format_version": RESULT_FORMAT_VERSION, "test": name, "status": "ok",
                "direction": self.direction.describe(), "direction_origin": direction_origin(self.direction),
                "direction_origin_short": origin_short(self.direction),
                "direction_selection": self.selection, "units": self.units_record(),
                "prompts": self.prompts_record(),
                "settings": {**attrs.asdict(self.settings), "max_new_tokens_used": self.max_new_per_prompt,
                             "stop_strings": sorted(set().union(*self.stops)) if self.stops else [],
                             "sampling": {"temperature": getattr(self.context.sampling, "temperature", None),
                                          "top_p": getattr(self.context.sampling, "top_p", None),
                                          "seeds": "one per prompt, shared by every condition"}}}

    # ---- generation ---------------------------------------------------------------------
    def generate(self, conditions: Sequence[ConditionSpec]) -> list[Generated]:
        """Generate a reply for every chosen prompt under each condition (same seed per prompt
        across conditions, so differences come from the intervention, not from sampling).

        At most ``generation_rows`` rows decode at once (`deception_core.Model.generate_conditions`):
        a prompt's conditions start together, under ``edit_sites="reply"`` its unedited part runs
        once for all of them, and finished rows leave the batch to the next prompts' conditions."""

        sampling = self.context.sampling
        if sampling is None:
            raise RuntimeError("causal tests generate with the run's sampling settings; the context has none")
        n_cond = len(conditions)
        rows = self.settings.generation_rows or 8 * self.batch_size
        fit = rows_that_fit(self.hf, max(len(p) for p in self.prompts) + self.max_new + 1)
        if fit is not None and self.settings.generation_rows is None:
            rows = min(rows, fit)  # a GPU's free memory bounds the default, not a number asked for
        started = time.monotonic()
        total = n_cond * len(self.rows)
        bar = progress_bar(total, f"causal replies ({n_cond} conditions)", "reply")
        shown, logged = [0], [started]

        def finished(n: int) -> None:
            bar.update(n - shown[0])
            shown[0] = n
            if time.monotonic() - logged[0] > 30 and n < total:
                logged[0] = time.monotonic()
                log.info("causal: %d/%d replies generated (%d conditions x %d prompts), %.0f s", n, total, n_cond,
                         len(self.rows), time.monotonic() - started)

        requests = [GenerationRequest(tuple(self.prompts[i]), self.max_new_per_prompt[i],
                                      seed=self.seed + 7919 * self.rows[i], capture=False, stop=self.stops[i])
                    for i in range(len(self.rows))]
        tiled = {layer: edit.take([c for _ in requests for c in range(n_cond)])
                 for layer, edit in self._condition_edits(conditions).items()}
        results = self.context.model.generate_conditions(requests, tiled, n_cond, sampling, sites=self.sites,
                                                         rows=max(rows, n_cond), progress=finished)
        finished(total)
        bar.close()
        log.info("causal: %d replies generated in %.0f s", total, time.monotonic() - started)
        return [Generated([results[i * n_cond + c].text for i in range(len(self.rows))],
                          [tuple(results[i * n_cond + c].reply_ids) for i in range(len(self.rows))])
                for c in range(n_cond)]

    def _condition_edits(self, specs: Sequence[ConditionSpec]) -> dict[int, RowEdit]:
        """Each layer's edit, one row per condition. Under ``edit_sites="all"`` the prompt's first
        token (the attention sink) is left alone; under ``"reply"`` the edits' first call sees the
        last prompt token only, which they edit."""
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
                                   add=add if add.abs().sum() > 0 else None, keep_first=self.sites == "all")
        return edits

    # ---- labelling and re-reading -------------------------------------------------------
    def row_context(self, row: int) -> tuple[Sample, Scenario | None, Trial | None]:
        """A dataset row's sample, its scenario plugin (None if not installed) and its trial record."""
        sample = self.dataset.samples[row]
        return sample, self.context.scenarios.get(sample.scenario), self.trials.get(sample.trial_key)

    def rule_labels(self, texts: Sequence[str]) -> list[str]:
        """The scenario rule's label of each generated reply, against that trial's private facts."""

        labels = []
        for row, text in zip(self.rows, texts, strict=True):
            sample, scenario, trial = self.row_context(row)
            if scenario is None or trial is None:
                labels.append("ambiguous")
                continue
            verdict = scenario.rule_verdict(trial.facts, Condition(sample.condition), text, None)
            labels.append(verdict.label.value)
        return labels

    def judge_labels(self, texts: Sequence[str]) -> list[str] | None:
        """The run's evaluator on each reply (None without an evaluator or when it fails)."""
        evaluator = self.context.evaluator
        if evaluator is None:
            return None

        requests = []
        for row, text in zip(self.rows, texts, strict=True):
            sample, scenario, trial = self.row_context(row)
            if scenario is None or trial is None:
                return None
            dialogue = []
            for turn in trial.transcript:
                if turn.get("request_id") == sample.request_id:
                    break
                dialogue.append({"speaker": str(turn.get("speaker")), "text": str(turn.get("text"))})
            requests.append(JudgeRequest(sample.scenario, scenario.describe_facts(trial.facts),
                                         scenario.judge_question(trial.facts), tuple(dialogue), text))
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
        pairs = [(i, tuple(r)) for replies in conditions for i, r in enumerate(replies)]
        distinct = list(dict.fromkeys(pairs))  # a reply that several conditions gave is read once
        out = teacher_forced(self.hf, [self.prompts[i] for i, _ in distinct], [list(r) for _, r in distinct],
                             record=[layer], pad_id=self.pad_id, chunk=self.batch_size)
        read: dict[tuple[int, tuple[int, ...]], tuple[float, float]] = {}
        for (i, reply), lp, hidden in zip(distinct, out.reply_logprobs, out.hidden[layer], strict=True):
            vector = position_vector(hidden, len(self.prompts[i]), position).double().numpy()
            read[(i, reply)] = (float(self.direction.score(vector[None, :])[0]),
                                float(-lp.mean()) if lp.numel() else float("nan"))
        scores = [read[pair][0] for pair in pairs]
        nll = [read[pair][1] for pair in pairs]
        n = len(self.prompts)
        return [{"probe_score": scores[i * n:(i + 1) * n], "nll": nll[i * n:(i + 1) * n]}
                for i in range(len(conditions))]


_SHARED: list[tuple[tuple[object, ...], usable.Selection]] = []  # the last selection, with the objects it was made for


def shared_selection(run: CausalRun, alternatives: Sequence[ProbeDirection]) -> usable.Selection:
    """The run's one fluency selection (`deception_causal.usable.choose_direction`), shared by
    ablation and steering: the second test of a run reuses the first one's instead of repeating
    the same teacher-forced checks. It is keyed on the very objects it was made from (dataset,
    model, directions, settings, prompts), so another run, or other settings, get their own."""

    key = (run.dataset, run.hf, run.context.direction, *alternatives, run.settings, run.seed, tuple(run.rows))
    for held, selection in _SHARED:
        if len(held) == len(key) and all(a is b or (isinstance(a, (int, tuple, CausalSettings)) and a == b)
                                         for a, b in zip(held, key, strict=True)):
            log.info("causal: reusing this run's direction selection")
            return selection
    started = time.monotonic()
    selection = usable.choose_direction(run.dataset, run.hf, run.direction, alternatives, run.fluency_checks(),
                                        run.check_randoms, run.settings, run.pad_id, run.batch_size)
    log.info("causal: direction selection took %.0f s", time.monotonic() - started)
    _SHARED[:] = [(key, selection)]
    return selection


class GenerationTest(CausalTest):
    """A causal test on the run's chosen prompts and probe direction: subclasses build the result
    from a `CausalRun`; a run that cannot support the test gets an honest not-computable record."""

    name = "generation"
    settings_class = CausalSettings

    def __init__(self, settings: CausalSettings | None = None) -> None:
        self.settings = settings or CausalSettings()

    def run(self, context: CausalContext) -> JSONObject:
        try:
            run = CausalRun(context, self.settings, select=self.name)
        except NotTestable as reason:
            untestable: JSONObject = jsonable(not_computable(self.name, str(reason),
                                                                 direction_selection=reason.selection))
            return untestable
        except NotComputable as reason:
            return not_computable(self.name, str(reason))
        record: JSONObject = jsonable(self.result(run))
        return record

    @abc.abstractmethod
    def result(self, run: CausalRun) -> JSONObject:
        """The test's JSON-ready record (``jsonable`` is applied by `run`)."""


def stop_strings(trial: Trial | None) -> tuple[str, ...]:
    """Stop strings for regenerating a turn, rebuilt from the trial (the dataset does not store the
    original request's): a blank line, or a line that opens another turn of a speaker of this trial."""
    transcript = trial.transcript if trial is not None else ()
    speakers = dict.fromkeys(["You", *(str(t.get("speaker")) for t in transcript if t.get("speaker"))])
    return ("\n\n", *(f"\n{name}:" for name in speakers), "\n(")


def stored_reply(dataset: Dataset, row: int, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The token ids the model generated for sample ``row``.

    The game stores the reply's text with its whitespace collapsed, so re-tokenising the text is not
    the reply the model produced; datasets of schema 2 on store the generated ids, which are used.
    Schema 1 datasets have only the text: it is re-tokenised (`CausalRun` warns about it).
    """
    sample = dataset.samples[row]
    if sample.reply_ids is not None:
        return list(sample.reply_ids)
    return list(tokenizer.encode(sample.reply_text, add_special_tokens=False))


def not_computable(name: str, reason: str, **extra: JSONValue) -> JSONObject:
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


def labelled_replies(run: CausalRun) -> list[tuple[list[int], list[int], int]]:
    """(prompt ids, stored reply ids, label sign) of the run's prompts whose sample is labelled and
    has a reply: the rows the teacher-forced measures score."""
    labelled = []
    for row, prompt in zip(run.rows, run.prompts, strict=True):
        sign = label_sign(run.dataset.samples[row].label)
        reply = stored_reply(run.dataset, row, run.context.model.tokenizer)
        if sign != 0 and reply:
            labelled.append((prompt, reply, sign))
    return labelled
