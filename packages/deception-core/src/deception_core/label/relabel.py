"""`deception relabel`: judge the stored focal utterances again, without playing the games again.

The judge gets exactly what it got during the run (the scenario's private facts and question, the
public dialogue up to the utterance, the utterance), rebuilt from ``trials.jsonl``. Each sample
keeps its previous labels in ``label_history`` (newest last) and records the judge now used in
``judge``; ``meta.json`` records the re-labelling under ``labelling``. Judge answers are cached in
the run folder (`CACHE_FILE`, keyed by the judge's identity and the request it was asked), so
re-running costs no judge call, and the run's model is loaded only when an answer is missing.
The new dataset is written next to the old one and swapped in by renaming directories.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from deception_core.analyse.analyse import run_analyses
from deception_core.base.errors import NotApplied, UsageError
from deception_core.base.records import AnalysisReport, Sample, from_json, to_json
from deception_core.base.registry import Kind, Registry
from deception_core.base.types import JSONObject, JudgeVerdict, Label, Message, RuleVerdict, combine_labels
from deception_core.capture.reply_states import REPLY_STATES_OPTION, TeacherForcedReplyStates
from deception_core.config.components import build_evaluator
from deception_core.config.run import LABEL_POLICIES, RELABEL_MAX_JUDGE_FAILURES
from deception_core.contracts.capture import CaptureBackend, CaptureSpec
from deception_core.contracts.evaluator import ChoiceScorer, Evaluator, EvaluatorContext, JudgeRequest
from deception_core.model import surface  # the module: tests replace its load_model
from deception_core.model.device import resolve_device, resolve_dtype
from deception_core.model.spec import ModelSpec
from deception_core.outputs.files import label_table
from deception_core.play import play  # the module: tests replace its choice_scorer
from deception_core.plugins import get_plugin_set
from deception_core.report import write_report
from deception_core.store.dataset import Dataset, atomic_write_text, read_dataset, resolve_dataset_dir, write_dataset
from deception_core.store.fields import field
from deception_core.store.recorded import recorded_run_config
from deception_core.ui.progress import progress_bar

if TYPE_CHECKING:
    from deception_core.model.surface import Model
    from deception_core.plugins import PluginSet

log = logging.getLogger("deception")

CACHE_FILE = "judge_cache.jsonl"
HISTORY_FIELDS = ("label", "rule_label", "judge_label", "judge_raw", "judge_error", "agreement", "judge")


def dialogue_until(transcript: Sequence[Mapping[str, object]], request_id: str) -> list[dict[str, str]]:
    """The public dialogue up to and including ``request_id``, as the run's game gave it to the judge.

    Games that tag their turns (``kind``) show the judge only what was said aloud (``say``); games
    that do not tag them show every turn (`deception_core.contracts.scenario.Game.dialogue_until`).
    """
    tagged = any("kind" in turn for turn in transcript)
    out: list[dict[str, str]] = []
    for turn in transcript:
        if not tagged or turn.get("kind") == "say":
            out.append({"speaker": str(turn["speaker"]), "text": str(turn["text"])})
        if turn.get("request_id") == request_id:
            break
    return out


def request_key(judge: Mapping[str, object], request: JudgeRequest) -> str:
    payload = json.dumps({"judge": judge, "request": attrs.asdict(request)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def read_cache(path: Path) -> dict[str, JSONObject]:
    """The cached answers in ``path`` by key; a damaged line is refused like a damaged dataset (exit 2)."""
    entries: dict[str, JSONObject] = {}
    if not path.exists():
        return entries
    if not path.is_file():
        raise UsageError(f"{path} is not a file; relabel keeps its judge answers there. Move it away and re-run")
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a text file (not UTF-8); delete it and re-run (its answers are asked "
                         "again, nothing else is lost)") from None
    labels = {label.value for label in Label}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            entry = None
        if not (isinstance(entry, dict) and isinstance(entry.get("key"), str) and entry.get("label") in labels
                and isinstance(entry.get("raw"), str) and entry.get("error") is None):
            raise UsageError(
                f"{path}:{number} is damaged (each line must be a cached judge answer written by relabel: a JSON "
                "object with key, label, raw). Delete that line, or the whole file: the answers in it are asked "
                "again, nothing else is lost"
            )
        entries[entry["key"]] = entry
    return entries


class CachedJudge:
    """Answers from the cache file when the same judge was asked the same request before."""

    #: requests per judge call, as a run judges a wave (a progress bar counts them)
    chunk = 64

    def __init__(self, evaluator: Evaluator, identity: JSONObject, path: Path,
                 entries: dict[str, JSONObject] | None = None) -> None:
        self.evaluator, self.identity, self.path = evaluator, identity, path
        self.entries: dict[str, JSONObject] = read_cache(path) if entries is None else dict(entries)
        self.hits = self.misses = self.failed = 0
        self.first_error: str | None = None

    def judge_many(self, requests: Sequence[JudgeRequest]) -> list[JudgeVerdict]:
        keys = [request_key(self.identity, r) for r in requests]
        missing = [i for i, k in enumerate(keys) if k not in self.entries]
        self.hits += len(requests) - len(missing)
        self.misses += len(missing)
        answers: dict[int, JudgeVerdict] = {}
        bar = progress_bar(len(missing), "judging", "utterance")
        for start in range(0, len(missing), self.chunk):  # the cache is saved after each chunk
            part = missing[start:start + self.chunk]
            fresh = self.evaluator.judge_many([requests[i] for i in part])
            new_entries = 0
            for i, verdict in zip(part, fresh, strict=True):
                if verdict.error is None:  # failed calls are retried next time
                    self.entries[keys[i]] = {"key": keys[i], "judge": self.identity, "label": verdict.label.value,
                                             "raw": verdict.raw, "error": None}
                    new_entries += 1
                else:
                    self.failed += 1
                    self.first_error = self.first_error or verdict.error
            if new_entries:
                self._save()
            answers.update(zip(part, fresh, strict=True))
            bar.update(len(part))
        bar.close()
        out = []
        for i, key in enumerate(keys):
            if i in answers:
                out.append(answers[i])
            else:
                entry = self.entries[key]
                # read_cache admits only answers with a string ``raw`` and no error
                out.append(JudgeVerdict(Label(entry["label"]), str(entry["raw"])))
        return out

    def _save(self) -> None:
        atomic_write_text(self.path, "".join(json.dumps(e, sort_keys=True) + "\n" for e in self.entries.values()))


class _LazyModel:
    """The run's model and a capture backend, loaded on the first judge call that needs them."""

    def __init__(self, run_config: dict[str, Any], registry: Registry, model: Model | None = None) -> None:
        self.run_config, self.registry, self.model = run_config, registry, model
        self.backend: CaptureBackend | None = None
        self.loads = 0
        self.scorer: ChoiceScorer | None = None  # one scorer, so a judge's opening is run once per relabel

    def get_backend(self) -> CaptureBackend:
        if self.backend is None:
            if self.model is None:
                device = resolve_device(self.run_config.get("device", "auto"))
                dtype = resolve_dtype(self.run_config.get("dtype", "float32"), device)
                log.info("relabel: loading %s for the judge", self.run_config["model"])
                self.model = surface.load_model(ModelSpec.parse(self.run_config["model"]), device=device, dtype=dtype,
                                        revision=self.run_config.get("revision"))
                self.loads += 1
            backend_cls = self.registry.get(Kind.CAPTURE_BACKEND, "hf").load()
            self.backend = backend_cls(self.model, CaptureSpec((), ()))
        return self.backend

    def generate_text(self, conversations: Sequence[Sequence[Message]], max_new_tokens: int) -> list[str]:
        return play.text_generator(self.get_backend(), 4)(conversations, max_new_tokens)

    def score_choices(self, conversations: Sequence[Sequence[Message]], choices: Sequence[str],
                      opening: Sequence[Message] = ()) -> list[list[float]]:
        if self.scorer is None:
            self.scorer = play.choice_scorer(self.get_backend(), 4)
        return self.scorer(conversations, choices, opening)

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()


@attrs.define
class RelabelResult:
    dataset: Dataset
    evaluator: str
    label_policy: str
    changed: int
    cache_hits: int
    cache_misses: int
    model_loads: int
    analyses: dict[str, AnalysisReport] = attrs.field(factory=dict)
    #: samples that kept their earlier labels because the judge failed on them
    kept: int = 0

    def __repr__(self) -> str:
        return (f"<RelabelResult {len(self.dataset)} samples by {self.evaluator} ({self.label_policy}): "
                f"{self.changed} label(s) changed, cache {self.cache_hits} hit(s) / {self.cache_misses} miss(es)>")


def _check_relabelable(dataset: Dataset, dataset_dir: Path, registry: Registry) -> None:
    """Refuse datasets with nothing a judge can re-check: `deception capture` data, unknown scenarios."""
    if dataset.meta.capture_backend == "forward" or (
            dataset.samples and all(str(field(s, "mode")) == "capture" for s in dataset.samples)):
        raise UsageError(
            f"{dataset_dir} was written by `deception capture`: its labels come from the data file, and no game "
            "holds private facts a judge could check them against, so there is nothing to re-judge. To change "
            "its labels, edit the 'label' field of the data file and capture it again"
        )
    missing = sorted({str(field(s, "scenario")) for s in dataset.samples} - set(registry.names(Kind.SCENARIO)))
    if missing:
        raise UsageError(
            f"{dataset_dir}: the scenario(s) {missing} of its samples are not registered here, so their facts and "
            "questions cannot be rebuilt for the judge; install the plugin that provides them "
            "(`deception scenarios` lists what is registered)"
        )


def relabel(run_dir: str | Path, *, evaluator: str | None = None, label_policy: str | None = None,
            analyze: bool = True, plugins: PluginSet | None = None, model: Model | None = None, report: bool | None = None,
            max_failures: float = RELABEL_MAX_JUDGE_FAILURES) -> RelabelResult:
    """Re-judge every focal utterance of the run in ``run_dir`` (see the module docstring).

    A sample whose judge call fails keeps its earlier labels. When more than ``max_failures`` (a
    share) of the calls made fail, nothing is applied: `NotApplied` (exit 1) names what was kept.
    """

    run_dir = Path(run_dir)
    dataset_dir = resolve_dataset_dir(run_dir)
    run_dir = dataset_dir.parent if dataset_dir.name == "dataset" else run_dir
    dataset = read_dataset(dataset_dir)
    run_config = recorded_run_config(run_dir, dataset)
    plugins = plugins or get_plugin_set()
    registry = plugins.registry
    evaluator = evaluator or run_config.get("evaluator") or "local"
    policy = label_policy or run_config.get("label_policy") or "agree"
    if policy not in LABEL_POLICIES:
        raise UsageError(f"--label-policy must be one of {', '.join(LABEL_POLICIES)}; got {policy!r}")
    if not 0 <= max_failures <= 1:
        raise UsageError(f"--max-judge-failures must be a share between 0 and 1; got {max_failures}")
    evaluator_cls = registry.get(Kind.EVALUATOR, evaluator).load()  # unknown names fail here, nothing written
    evaluator_cls.check_environment()
    _check_relabelable(dataset, dataset_dir, registry)
    cache_entries = read_cache(run_dir / CACHE_FILE)  # a damaged cache is refused before the judge runs
    requests = _judge_requests(dataset, registry, dataset_dir)

    lazy = _LazyModel(run_config, registry, model)
    judge = _build_judge(evaluator, evaluator_cls, run_config, lazy)
    judge.preflight()
    identity: JSONObject = {"evaluator": evaluator, "judge_model": getattr(judge, "model", None)}
    if evaluator == "local":
        identity["judge_model"] = run_config.get("model")
    cached = CachedJudge(judge, identity, run_dir / CACHE_FILE, cache_entries)
    try:
        verdicts = cached.judge_many(requests)
    finally:
        lazy.close()
    _refuse_when_the_judge_failed(cached, dataset, dataset_dir, evaluator, max_failures, run_config)

    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    previous = {k: v for k, v in (dataset.meta.labelling or {"evaluator": run_config.get("evaluator"),
                                                                     "label_policy": run_config.get("label_policy")}
                                  ).items() if k != "previous"}
    samples, changed, kept = _relabelled_samples(dataset, verdicts, policy, identity, previous, now)
    if kept:
        log.warning("relabel: the judge failed on %d sample(s); they keep their earlier labels (first error: %s)",
                    kept, cached.first_error)
    meta = attrs.evolve(dataset.meta, labelling={"evaluator": evaluator, "judge": identity, "label_policy": policy,
                                                 "relabelled_at": now, "changed": changed,
                                                 "kept_after_judge_failure": kept, "previous": previous})
    new = Dataset(meta, samples, dataset.trials, dataset.arrays)
    _swap_in(dataset_dir, new)
    log.info("relabel: %d of %d label(s) changed; judge cache %d hit(s), %d miss(es)",
             changed, len(samples), cached.hits, cached.misses)
    result = RelabelResult(new, evaluator, policy, changed, cached.hits, cached.misses, lazy.loads, kept=kept)
    if analyze:
        result.analyses = _reanalyse(registry, new, run_dir, run_config, lazy.model)
    if report if report is not None else (run_dir / "report.html").is_file():
        write_report(run_dir)
    return result


def _refuse_when_the_judge_failed(cached: CachedJudge, dataset: Dataset, dataset_dir: Path, evaluator: str,
                                  max_failures: float, run_config: Mapping[str, object]) -> None:
    """`NotApplied` when more than ``max_failures`` of the judge calls made failed: nothing is applied."""
    asked = cached.misses
    if not cached.failed or cached.failed <= max_failures * asked:
        return
    earlier = (dataset.meta.labelling or {}).get("evaluator") or run_config.get("evaluator") or "the run's judge"
    saved = asked - cached.failed
    raise NotApplied(
        f"relabel: the {evaluator} judge failed on {cached.failed} of the {asked} call(s) it was asked "
        f"(more than {max_failures:.0%}; first error: {cached.first_error}). Nothing was applied: {dataset_dir} "
        f"keeps its {len(dataset)} earlier label(s) (by {earlier}), and the analyses and report are unchanged"
        + (f"; the {saved} answer(s) that came back are cached in {CACHE_FILE}, so a re-run asks only the failed "
           "ones" if saved else "")
        + ". Fix the judge (the error above) and re-run, or raise --max-judge-failures to apply the answers that came back"
    )


def _build_judge(name: str, evaluator_cls: type, run_config: dict[str, Any], lazy: _LazyModel) -> Evaluator:
    """The judge, with the settings the run recorded for it when it is the run's own judge (else its defaults)."""

    recorded = ((run_config.get("components") or {}).get(Kind.EVALUATOR.value) or {}).get(name, {})
    params = recorded if name == run_config.get("evaluator") else {}
    context = EvaluatorContext(generate_text=lazy.generate_text, score_choices=lazy.score_choices)
    judge: Evaluator = build_evaluator(name, evaluator_cls, params, context)
    return judge


def _judge_requests(dataset: Dataset, registry: Registry, dataset_dir: Path) -> list[JudgeRequest]:
    """One request per sample: the scenario's facts and question, and the dialogue up to the utterance."""
    names = sorted({str(field(s, "scenario")) for s in dataset.samples})
    scenarios = {name: registry.get(Kind.SCENARIO, name).load()() for name in names}
    trials = {str(field(t, "trial_key")): t for t in dataset.trials}
    requests = []
    for sample in dataset.samples:
        trial = trials.get(str(field(sample, "trial_key")))
        if trial is None:
            raise UsageError(f"{dataset_dir}: sample {field(sample, 'sample_id')} has no trial in trials.jsonl; "
                             "the dataset is incomplete")
        scenario = scenarios[str(field(sample, "scenario"))]
        facts = field(trial, "facts")
        requests.append(JudgeRequest(
            str(field(sample, "scenario")), scenario.describe_facts(facts), scenario.judge_question(facts),
            tuple(dialogue_until(field(trial, "transcript") or [], str(field(sample, "request_id")))),
            str(field(sample, "reply_text"))))
    return requests


def _relabelled_samples(dataset: Dataset, verdicts: Sequence[JudgeVerdict], policy: str, identity: JSONObject,
                        previous: JSONObject, now: str) -> tuple[list[Sample], int, int]:
    """Each sample with the new verdict and label, its old ones appended to ``label_history``; how many
    changed, and how many kept their earlier labels because the judge failed on them."""
    samples, changed, kept = [], 0, 0
    for sample, verdict in zip(dataset.samples, verdicts, strict=True):
        if verdict.error is not None:  # no answer: an "ambiguous" here would be the judge's failure, not a verdict
            samples.append(sample)
            kept += 1
            continue
        record = to_json(sample)
        entry = {k: record.get(k) for k in HISTORY_FIELDS if k in record}
        entry.update(evaluator=record.get("judge", {}).get("evaluator") if isinstance(record.get("judge"), dict)
                     else previous.get("evaluator"), label_policy=previous.get("label_policy"), replaced_at=now)
        trace = str(record.get("rule_trace") or "")
        rule = (RuleVerdict(Label(record["rule_label"]), trace) if record.get("rule_label") is not None
                else RuleVerdict(Label.AMBIGUOUS, trace, checkable=False))  # no rule label: no rule could check
        final = combine_labels(rule, verdict, policy).value
        changed += final != record.get("label")
        record.update(
            label_history=[*(record.get("label_history") or []), entry],
            judge=identity, judge_label=verdict.label.value, judge_raw=verdict.raw, judge_error=verdict.error,
            agreement=verdict.label is rule.label if rule.checkable else None, label=final)
        samples.append(from_json(Sample, record, reply_ids=sample.reply_ids))
    return samples, changed, kept


def _reanalyse(registry: Registry, dataset: Dataset, run_dir: Path, run_config: dict[str, Any],
               model: Model | None = None) -> dict[str, AnalysisReport]:
    """The analyses again on the relabelled dataset, with the run's seed and analysis settings; the
    reply tokens are scored again where the judge loaded the model (else from stored ``reply_all`` only)."""

    options: dict[str, Any] = {"seed": int(run_config.get("seed") or 0)}
    if model is not None:
        options[REPLY_STATES_OPTION] = TeacherForcedReplyStates(model)
    analyses = run_analyses(registry, dataset, run_dir, options,
                            (run_config.get("components") or {}).get(Kind.ANALYSIS.value))
    text = "\n".join([label_table(dataset)] + [f"\n[{n}]\n{r.table}" for n, r in analyses.items()])
    atomic_write_text(run_dir / "analysis_summary.txt", text + "\n")
    return analyses


def _swap_in(dataset_dir: Path, dataset: Dataset) -> None:
    """Write ``dataset`` beside ``dataset_dir``, then put it in its place by two renames.

    The old directory is removed only once the new one is in place; its labels live on in each
    sample's ``label_history``.
    """
    staging = dataset_dir.with_name(f".{dataset_dir.name}.relabel-new")
    retired = dataset_dir.with_name(f".{dataset_dir.name}.relabel-old")
    for leftover in (staging, retired):
        if leftover.exists():
            shutil.rmtree(leftover)
    write_dataset(staging, dataset)
    dataset_dir.rename(retired)
    staging.rename(dataset_dir)
    shutil.rmtree(retired)
