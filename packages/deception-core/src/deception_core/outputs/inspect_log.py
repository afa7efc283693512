"""Inspect eval logs (``inspect_ai``): a run written as one, and an Inspect log's dialogues read back.

Both directions go through inspect_ai's own log API (`inspect_ai.log.EvalLog`, ``write_eval_log``,
``read_eval_log``), so Inspect's own readers (``inspect view``, ``read_eval_log``, the samples data
frame of ``inspect_ai.analysis``) read the export. inspect_ai is the optional extra
``deception-core[inspect]``; it is imported only here, inside the functions, and a missing extra is
refused with the install command (exit 2).

Export (`write_inspect_log`): one Inspect sample per trial, id = the trial key.

* ``messages``: the trial's transcript, one message per line. The lines of the agent under study
  (the speaker of the focal utterances) are ``assistant`` messages, everyone else's ``user``
  messages that start with ``"<speaker>: "``. A focal utterance's message carries
  ``metadata["deception"]`` = its ``sample_id``, ``request_id``, ``round``, ``label``,
  ``rule_label``, ``judge_label`` and, where the run's analysis scored it, ``probe_score``; every
  message carries its line's ``speaker``, ``kind`` and ``round`` (and ``audience`` when the line
  was private). A trial with no transcript (a `deception capture` dataset) gets the prompt
  and the reply of each sample as a ``user`` and an ``assistant`` message.
* ``scores``: ``label``, ``rule_label``, ``judge_label`` and (with a score file) ``probe_score``,
  each an Inspect `Score` whose value maps the trial's focal utterances (by ``request_id``, else
  ``sample_id``) to their value; the judge's raw answers are the ``judge_label`` score's metadata.
* ``metadata``: ``scenario``, ``mode``, ``condition``, ``trial_index``, ``seed``, ``facts``,
  ``outcome`` and the focal utterances' ``sample_ids``.

Import (`read_inspect_records`): each sample's assistant messages become records of
`deception capture`'s data format: the messages before one are its ``messages``, its text the
``reply``; the label comes from ``metadata["deception"]["label"]`` (an export of this toolkit),
else ``ambiguous``; the group is the sample's id (its epochs together), the scenario the sample's ``scenario``
metadata or the log's task name.
"""

from __future__ import annotations

import datetime as _dt
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from importlib import metadata as _metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from deception_core.base.errors import UsageError
from deception_core.base.records import Sample, Trial
from deception_core.base.types import JSONObject, JSONValue
from deception_core.outputs.policy import publish_file

if TYPE_CHECKING:
    from inspect_ai.log import EvalLog, EvalSample
    from inspect_ai.model import ChatMessage

    from deception_core.store.dataset import Dataset

#: the install command a missing extra names
INSTALL = "pip install 'deception-core[inspect]'"
#: file suffixes Inspect reads and writes (the format follows the suffix)
SUFFIXES = (".eval", ".json")
#: the key of a message's metadata that holds this toolkit's record of a focal utterance
META_KEY = "deception"
#: which assistant messages `read_inspect_records` takes: every one, the last of each sample, or only
#: those this toolkit's export labelled (its focal utterances)
REPLIES = ("all", "last", "labelled")
LABELS = ("honest", "deceptive", "ambiguous")


def require_inspect() -> None:
    """Refuse (exit 2) when inspect_ai, the optional extra, is not installed."""
    try:
        import inspect_ai  # noqa: F401
    except ImportError:
        raise UsageError(f"Inspect logs need the optional extra inspect-ai, which is not installed; run "
                         f"{INSTALL} (or `bash scripts/bootstrap.sh --dev`)") from None


def check_suffix(path: str | Path, flag: str) -> Path:
    """``path`` if its suffix names an Inspect log format (``.eval`` or ``.json``), else exit 2."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise UsageError(f"{flag} {path}: an Inspect log is a .eval (or .json) file; name it e.g. {path.stem}.eval")
    return path


@attrs.frozen
class ProbeScore:
    """The best probe's score of one sample, as the run's score file holds it."""

    score: float | None
    raw: float | None
    source: str | None


def _speakers(trial: Trial, focal: Mapping[str, Sample]) -> set[str]:
    """The names the agent under study speaks under: the speakers of the lines that are focal utterances."""
    return {str(line.get("speaker")) for line in trial.transcript
            if line.get("request_id") in focal and line.get("speaker") is not None}


def _focal_meta(sample: Sample, probe: ProbeScore | None) -> JSONObject:
    record: JSONObject = {"sample_id": sample.sample_id, "request_id": sample.request_id, "round": sample.round,
                          "label": sample.label, "rule_label": sample.rule_label, "judge_label": sample.judge_label}
    if probe is not None:
        record["probe_score"] = probe.score
    return record


def _messages(trial: Trial, samples: Sequence[Sample], probes: Mapping[int, ProbeScore] | None) -> list[ChatMessage]:
    """The trial's transcript as Inspect chat messages (see the module docstring)."""
    from inspect_ai.model import ChatMessageAssistant, ChatMessageUser

    def probe(sample: Sample) -> ProbeScore | None:
        return None if probes is None else probes.get(sample.row)

    messages: list[ChatMessage] = []
    if not trial.transcript:  # a capture: each sample's prompt and reply
        for sample in samples:
            messages.append(ChatMessageUser(content=sample.prompt_text, source="input"))
            messages.append(ChatMessageAssistant(content=sample.reply_text, source="generate",
                                                 metadata={META_KEY: _focal_meta(sample, probe(sample))}))
        return messages
    focal = {s.request_id: s for s in samples if s.request_id}
    agent = _speakers(trial, focal)
    placed: set[str] = set()
    for line in trial.transcript:
        text = str(line.get("text", ""))
        speaker = line.get("speaker")
        request_id = line.get("request_id")
        meta: dict[str, Any] = {key: line[key] for key in ("speaker", "kind", "round", "audience") if key in line}
        if isinstance(request_id, str) and request_id in focal and request_id not in placed:
            placed.add(request_id)
            sample = focal[request_id]
            meta[META_KEY] = _focal_meta(sample, probe(sample))
            messages.append(ChatMessageAssistant(content=text, source="generate", metadata=meta))
            continue
        if speaker is not None and str(speaker) in agent:
            messages.append(ChatMessageAssistant(content=text, source="generate", metadata=meta))
        else:
            content = f"{speaker}: {text}" if speaker is not None else text
            messages.append(ChatMessageUser(content=content, source="input", metadata=meta))
    for sample in samples:  # focal utterances the transcript does not show (a closing statement)
        if sample.request_id not in placed:
            messages.append(ChatMessageAssistant(content=sample.reply_text, source="generate",
                                                 metadata={META_KEY: _focal_meta(sample, probe(sample))}))
    return messages


def _scores(samples: Sequence[Sample], probes: Mapping[int, ProbeScore] | None) -> dict[str, Any]:
    """The trial's Inspect scores: per score, a mapping of its focal utterances to their values."""
    from inspect_ai.scorer import Score

    def key(sample: Sample) -> str:
        return sample.request_id or sample.sample_id

    scores = {
        "label": Score(value={key(s): s.label for s in samples}),
        "rule_label": Score(value={key(s): s.rule_label for s in samples},
                            metadata={"rule_trace": {key(s): s.rule_trace for s in samples}}),
        "judge_label": Score(value={key(s): s.judge_label for s in samples},
                             metadata={"judge_raw": {key(s): s.judge_raw for s in samples}}),
    }
    if probes is not None:
        found = {key(s): probes.get(s.row) for s in samples}
        scores["probe_score"] = Score(
            value={k: None if p is None else p.score for k, p in found.items()},
            metadata={"score_raw": {k: None if p is None else p.raw for k, p in found.items()},
                      "score_source": {k: None if p is None else p.source for k, p in found.items()}})
    return scores


def _trial_metadata(trial: Trial, samples: Sequence[Sample]) -> dict[str, Any]:
    return {"scenario": trial.scenario, "mode": trial.mode, "condition": trial.condition,
            "trial_index": trial.index, "seed": trial.seed, "facts": dict(trial.facts),
            "outcome": dict(trial.outcome), "sample_ids": [s.sample_id for s in samples]}


def _inspect_sample(trial: Trial, samples: Sequence[Sample], probes: Mapping[int, ProbeScore] | None,
                    model: str) -> EvalSample:
    from inspect_ai.log import EvalSample
    from inspect_ai.model import ChatMessageAssistant, ModelOutput

    messages = _messages(trial, samples, probes)
    first_reply = next((i for i, m in enumerate(messages) if isinstance(m, ChatMessageAssistant)), len(messages))
    opening = messages[:first_reply]
    last = next((m for m in reversed(messages) if isinstance(m, ChatMessageAssistant)), None)
    return EvalSample(
        id=trial.trial_key, epoch=1,
        input=opening if opening else f"{trial.scenario} ({trial.mode}, {trial.condition}), trial {trial.index}",
        target="", messages=messages,
        output=ModelOutput.from_content(model, last.text) if last is not None else ModelOutput(model=model),
        scores=_scores(samples, probes), metadata=_trial_metadata(trial, samples),
    )


def _versions() -> dict[str, str]:
    out = {}
    for name in ("deception-core", "inspect_ai"):
        try:
            out[name] = _metadata.version(name)
        except _metadata.PackageNotFoundError:
            continue
    return out


def build_inspect_log(dataset: Dataset, probes: Mapping[int, ProbeScore] | None, name: str,
                      location: str = "") -> EvalLog:
    """The run's `EvalLog`: one sample per trial (in the dataset's trial order), see the module docstring.

    ``probes``: the best probe's score by sample row (None when the run has no score file);
    ``name``: the run's name (the log's dataset name).
    """
    require_inspect()
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalMetric, EvalResults, EvalScore, EvalSpec

    by_trial: dict[str, list[Sample]] = {}
    for sample in dataset.samples:
        by_trial.setdefault(sample.trial_key, []).append(sample)
    trials = [t for t in dataset.trials if t.trial_key in by_trial]
    known = {t.trial_key for t in trials}
    trials += [Trial(trial_key=key, scenario=s[0].scenario, mode=s[0].mode, condition=s[0].condition)
               for key, s in by_trial.items() if key not in known]  # samples whose trial was not stored
    model = dataset.meta.model_id
    samples = [_inspect_sample(t, by_trial[t.trial_key], probes, model) for t in trials]
    labels = [s.label for s in dataset.samples]
    counts = {label: EvalMetric(name=label, value=labels.count(label)) for label in LABELS}
    scenarios = sorted({t.scenario for t in trials})
    created = dataset.meta.created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    spec = EvalSpec(created=created, task="deception/" + "+".join(scenarios), model=model,
                    dataset=EvalDataset(name=name, location=location, samples=len(samples),
                                        sample_ids=[t.trial_key for t in trials]),
                    config=EvalConfig(), packages=_versions(),
                    metadata={"deception": {"layers": list(dataset.meta.layers),
                                            "positions": list(dataset.meta.positions),
                                            "n_samples": len(dataset.samples),
                                            "result_config": dataset.meta.result_config}})
    results = EvalResults(total_samples=len(samples), completed_samples=len(samples),
                          scores=[EvalScore(name="label", scorer="deception", scored_samples=len(samples),
                                            metrics=counts)])
    return EvalLog(status="success", eval=spec, samples=samples, results=results)


def write_inspect_log(dataset: Dataset, probes: Mapping[int, ProbeScore] | None, path: str | Path,
                      overwrite: bool = False, name: str = "run", location: str = "") -> Path:
    """Write the run as an Inspect eval log at ``path`` (``.eval`` or ``.json``), atomically: inspect_ai
    writes it to a temporary folder, the finished file is then published (`publish_file`)."""
    path = check_suffix(path, "--output")
    log = build_inspect_log(dataset, probes, name, location)
    from inspect_ai.log import write_eval_log

    with tempfile.TemporaryDirectory(prefix="deception-inspect-") as tmp:
        staged = Path(tmp) / f"log{path.suffix.lower()}"
        write_eval_log(log, str(staged))
        data = staged.read_bytes()
    publish_file(path, data, overwrite)
    return path


def read_inspect_log(path: str | Path) -> EvalLog:
    """The Inspect log at ``path`` with its samples; a missing, malformed or non-Inspect file is refused
    (exit 2) with the problem named."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} does not exist (or is not a file); pass an Inspect log (.eval or .json)")
    check_suffix(path, "path")
    require_inspect()
    from inspect_ai.log import read_eval_log

    if path.suffix.lower() == ".eval" and not zipfile.is_zipfile(path):
        raise UsageError(f"{path} is not an Inspect .eval log (a .eval log is a zip archive); pass a log that "
                         "Inspect wrote (`inspect view` lists them)")
    try:
        log = read_eval_log(str(path), resolve_attachments=True)
    except Exception as error:  # inspect_ai raises many kinds (JSON, zip, validation): all mean a bad file
        reason = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
        raise UsageError(f"{path} is not a readable Inspect eval log ({type(error).__name__}: {reason}); pass a "
                         "log that Inspect wrote") from None
    if not log.samples:
        raise UsageError(f"{path}: the Inspect log holds no samples (it was written without them, e.g. with "
                         "--no-log-samples, or the eval did not finish any); nothing to capture")
    return log


def _label(message: ChatMessage) -> str:
    record = (message.metadata or {}).get(META_KEY)
    label = record.get("label") if isinstance(record, Mapping) else None
    return label if label in LABELS else "ambiguous"


def _role_and_text(message: ChatMessage) -> tuple[str, str]:
    """The message as `deception capture` reads one: system, user and assistant keep their roles; a tool's
    result is text the model reads, a user turn."""
    role = message.role if message.role in ("system", "user", "assistant") else "user"
    return role, message.text


def read_inspect_records(path: str | Path, replies: str = "all") -> list[JSONObject]:
    """The dialogues of the Inspect log at ``path`` as `deception capture` records (see the module docstring).

    ``replies``: ``all`` (every assistant message with text), ``last`` (the last one of each sample) or
    ``labelled`` (only the messages this toolkit's export labelled: its focal utterances).
    """
    if replies not in REPLIES:
        raise UsageError(f"replies must be one of {', '.join(REPLIES)}; got {replies!r}")
    log = read_inspect_log(path)
    task = log.eval.task or Path(path).stem
    records: list[JSONObject] = []
    for sample in log.samples or []:
        metadata = sample.metadata or {}
        scenario = metadata.get("scenario") if isinstance(metadata.get("scenario"), str) else None
        condition = metadata.get("condition") if isinstance(metadata.get("condition"), str) else None
        group = str(sample.id)  # every epoch of a sample in one group: the same prompt on one side of a split
        turns = [_role_and_text(m) for m in sample.messages]
        chosen = [i for i, m in enumerate(sample.messages) if m.role == "assistant" and m.text.strip()]
        if replies == "last":
            chosen = chosen[-1:]
        elif replies == "labelled":
            chosen = [i for i in chosen if isinstance((sample.messages[i].metadata or {}).get(META_KEY), Mapping)]
        for index in chosen:
            context: list[JSONValue] = [{"role": role, "content": text} for role, text in turns[:index]]
            if not context:  # an assistant message that opens the sample: the reply to an empty user turn
                context = [{"role": "user", "content": ""}]
            records.append({"messages": context, "reply": turns[index][1], "label": _label(sample.messages[index]),
                            "group": group, "scenario": scenario or task, "condition": condition or "inspect"})
    if not records:
        which = {"all": "assistant messages with text", "last": "assistant messages with text",
                 "labelled": "messages labelled by `deception export --format inspect` (try replies=all)"}[replies]
        raise UsageError(f"{path}: no sample of the Inspect log has {which}; nothing to capture")
    return records
