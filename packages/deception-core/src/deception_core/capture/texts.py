"""Capture activations for any text: statements or dialogues a user brings, with a plain forward pass.

Input (JSONL, one object per line, or CSV with a header), one record per sample:

* ``text`` (a statement) or ``messages`` (a JSON list of ``{"role", "content"}``; in CSV a JSON string);
* ``reply`` (optional): the assistant reply to score after the prompt;
* ``label`` (optional): ``honest``, ``deceptive`` or ``ambiguous`` (default ``ambiguous``: not trained on);
* ``group`` (optional): samples of one group are kept on one side of every split (a dialogue, a
  statement pair); default: each sample is its own group;
* ``scenario`` and ``condition`` (optional): copied to the samples (default: the file's name and ``capture``).

What is read at each position (layer ``L`` is the output of decoder block ``L``, 0-based: Hugging Face's
``hidden_states[L + 1]``; the embeddings are not a layer):

* with a ``reply``: the prompt is ``text`` tokenised as is (with the tokenizer's special tokens) or
  ``messages`` rendered by the chat template with the generation prompt; ``last_prompt`` is the prompt's
  last token, ``reply_mean``/``reply_last`` the mean/last over the reply's tokens, exactly as a run
  records them (reply token ``k`` is the input at position ``n_prompt + k``);
* ``text`` without a reply: the statement itself is the scored span (the prompt is only the
  tokenizer's beginning-of-sequence token): ``reply_mean`` is the mean over the statement's tokens and
  ``reply_last`` its last token, as in the field's statement probes;
* ``messages`` without a reply: every position is the last prompt token (a reply of no tokens).

Nothing is generated. The result is a standard dataset (`deception_core.store.Dataset`), which
`deception analyze`, `deception merge` and ``--train-from``/``--control`` read like any run's.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from deception_core.base.errors import UsageError
from deception_core.base.records import Sample, Trial
from deception_core.base.types import JSONObject, Message
from deception_core.model.prompting import render_prompt
from deception_core.model.spec import context_length
from deception_core.store import Dataset
from deception_core.ui.progress import progress_bar

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from deception_core.model.surface import Model

log = logging.getLogger("deception")

LABELS = ("honest", "deceptive", "ambiguous")
POSITIONS = ("last_prompt", "reply_mean", "reply_last")


@attrs.frozen
class TextRecord:
    """One sample to capture (see the module docstring for the fields)."""

    text: str | None = None
    messages: tuple[Message, ...] | None = None
    reply: str | None = None
    label: str = "ambiguous"
    group: str | None = None
    scenario: str | None = None
    condition: str | None = None


def _kind_of(value: object) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__)


def _text(raw: dict[str, Any], name: str, where: str) -> str | None:
    """A field that holds text: a string (empty means absent); anything else is refused with the fix."""
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(f"{where}: '{name}' must be text (a JSON string), got {_kind_of(value)} ({value!r:.60}); "
                         "put it in quotes")
    return value or None


def _record(raw: dict[str, Any], where: str) -> TextRecord:
    known = {"text", "messages", "reply", "label", "group", "scenario", "condition"}
    if None in raw:  # csv.DictReader puts cells beyond the header under None
        raise UsageError(f"{where}: the row has more cells than the header; quote cells that hold commas")
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UsageError(f"{where}: unknown field(s) {unknown}; fields are {sorted(known)}")
    text = _text(raw, "text", where)
    messages = raw.get("messages") or None
    if (text is None) == (messages is None):
        raise UsageError(f"{where}: give exactly one of 'text' (a statement) or 'messages' (a chat)")
    if isinstance(messages, str):
        try:
            messages = json.loads(messages)
        except json.JSONDecodeError as error:
            raise UsageError(f"{where}: 'messages' is not a JSON list ({error})") from None
    parsed = None
    if messages is not None:
        if not isinstance(messages, list) or not all(
                isinstance(m, dict) and {"role", "content"} <= set(m)
                and isinstance(m["role"], str) and isinstance(m["content"], str) for m in messages):
            raise UsageError(f"{where}: 'messages' must be a list of {{\"role\", \"content\"}} objects whose "
                             "values are text")
        parsed = tuple(Message(m["role"], m["content"]) for m in messages)
    label = _text(raw, "label", where) or "ambiguous"
    if label not in LABELS:
        raise UsageError(f"{where}: label {label!r} is not one of {list(LABELS)}")
    group = raw.get("group")
    if isinstance(group, bool) or not isinstance(group, (str, int, type(None))):
        raise UsageError(f"{where}: 'group' must be text or a whole number, got {_kind_of(group)} ({group!r:.60})")
    return TextRecord(text, parsed, _text(raw, "reply", where), label,
                      None if group in (None, "") else str(group), _text(raw, "scenario", where),
                      _text(raw, "condition", where))


def text_records(raw: Sequence[dict[str, Any]], source: str) -> list[TextRecord]:
    """Records given as dicts (a registered statement set's), checked like a file's lines."""
    records = [_record(dict(r), f"{source} record {number}") for number, r in enumerate(raw, start=1)]
    if not records:
        raise UsageError(f"{source} holds no records")
    return records


def read_text_records(path: str | Path) -> list[TextRecord]:
    """Read a ``.jsonl`` or ``.csv`` file of records; refuses bad input with the line and the fix."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a directory; pass a .jsonl or .csv file of statements or dialogues")
    if not path.is_file():
        raise UsageError(f"{path} does not exist; pass a .jsonl or .csv file of statements or dialogues")
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise UsageError(f"{path}: unknown format {suffix!r}; use .jsonl or .csv")
    content = _decoded(path)
    records: list[TextRecord] = []
    if suffix == ".jsonl":
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as error:
                raise UsageError(f"{path}:{number}: not valid JSON ({error})") from None
            if not isinstance(raw, dict):
                raise UsageError(f"{path}:{number}: each line must be a JSON object")
            records.append(_record(raw, f"{path}:{number}"))
    else:
        try:
            for number, raw in enumerate(csv.DictReader(io.StringIO(content, newline="")), start=2):
                records.append(_record({k: v for k, v in raw.items() if v not in (None, "")}, f"{path}:{number}"))
        except csv.Error as error:
            raise UsageError(f"{path}: not a readable CSV file ({error}); write one header row, then one row per "
                             "record") from None
    if not records:
        raise UsageError(f"{path} holds no records")
    return records


def _decoded(path: Path) -> str:
    """The file's text: UTF-8, with or without a byte-order mark; other bytes are refused with the line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise UsageError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); save the file "
            "as UTF-8 (a byte-order mark is fine)"
        ) from None


def _content_key(record: TextRecord) -> str:
    return json.dumps([record.text, None if record.messages is None else [[m.role, m.content] for m in record.messages],
                       record.reply])


def duplicates(records: Sequence[TextRecord]) -> list[list[int]]:
    """Indices (0-based) of records with the same text or messages and reply, one list per repeated content."""
    seen: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        seen.setdefault(_content_key(record), []).append(index)
    return [indices for indices in seen.values() if len(indices) > 1]


def record_groups(records: Sequence[TextRecord], name: str) -> list[str]:
    """Each record's group: its own (default: one group per record), with the groups of duplicate records
    joined into one, so copies of a record never sit on both sides of a split (held-out scores would
    then measure memorised copies, not generalisation)."""
    base = [r.group if r.group is not None else f"{name}/{index:06d}" for index, r in enumerate(records)]
    parent = {group: group for group in base}

    def root(group: str) -> str:
        while parent[group] != group:
            parent[group] = parent[parent[group]]
            group = parent[group]
        return group

    for indices in duplicates(records):
        first = root(base[indices[0]])
        for index in indices[1:]:
            other = root(base[index])
            if other != first:
                parent[other] = first
    return [root(group) for group in base]


def describe_duplicates(records: Sequence[TextRecord], source: str) -> str | None:
    """A warning naming the repeated records (1-based) and what capture does with them, or None."""
    repeated = duplicates(records)
    if not repeated:
        return None
    shown = "; ".join("records " + ", ".join(str(i + 1) for i in indices) for indices in repeated[:5])
    more = f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
    return (f"{source}: {sum(len(i) - 1 for i in repeated)} duplicate record(s) (the same text or messages and "
            f"reply: {shown}{more}). Each set of copies is put into one group, so grouped cross-validation keeps "
            "copies on one side of every split instead of scoring a memorised copy as held out; remove the copies "
            "from the data to count each statement once")


def token_counts(tokenizer: PreTrainedTokenizerBase, records: Sequence[TextRecord]) -> list[tuple[list[int], list[int]]]:
    """Each record's (prompt ids, scored span ids), as `capture_texts` feeds them to the model."""
    return [_tokens(tokenizer, record) for record in records]


def fit_context(tokens: Sequence[tuple[list[int], list[int]]], limit: int | None, truncate: bool,
                source: str = "the data") -> list[tuple[list[int], list[int]]]:
    """``tokens`` checked against the model's context of ``limit`` positions.

    Longer records are refused (naming them, their length and the fix), or with ``truncate`` their
    scored span is cut to fit (a prompt that alone does not fit is refused either way).
    """
    if limit is None:
        return list(tokens)
    long = [(i, len(p) + len(s)) for i, (p, s) in enumerate(tokens) if len(p) + len(s) > limit]
    if not long:
        return list(tokens)
    shown = ", ".join(f"record {i + 1} ({n} tokens)" for i, n in long[:5]) + (
        f" and {len(long) - 5} more" if len(long) > 5 else "")
    no_room = [i for i, _ in long if len(tokens[i][0]) >= limit]
    if not truncate or no_room:
        fix = ("its prompt alone fills the context: shorten it" if truncate else
               "shorten or split them, or pass --truncate to keep each one's first tokens that fit")
        raise UsageError(f"{source}: {len(long)} record(s) are longer than the model's context of {limit} tokens "
                         f"({shown}); {fix}")
    return [(p, s[:limit - len(p)]) for p, s in tokens]


def _tokens(tokenizer: PreTrainedTokenizerBase, record: TextRecord) -> tuple[list[int], list[int]]:
    """(prompt ids, scored span ids) of a record; see the module docstring."""

    reply = [] if record.reply is None else [int(i) for i in tokenizer(record.reply, add_special_tokens=False)["input_ids"]]
    if record.messages is not None:
        return render_prompt(tokenizer, record.messages), reply
    assert record.text is not None
    text_ids = [int(i) for i in tokenizer(record.text, add_special_tokens=True)["input_ids"]]
    if record.reply is not None:
        return text_ids, reply
    bos = [int(i) for i in tokenizer("", add_special_tokens=True)["input_ids"]]
    if bos and text_ids[: len(bos)] == bos:
        return bos, text_ids[len(bos):]
    return text_ids[:1], text_ids[1:]


def _vectors(states: np.ndarray, n_prompt: int, n_span: int) -> dict[str, np.ndarray]:
    """``states``: ``[seq, n_layers, d]`` of one row; the three positions as ``[n_layers, d]``."""
    last_prompt = states[n_prompt - 1]
    if n_span == 0:
        return {"last_prompt": last_prompt, "reply_mean": last_prompt, "reply_last": last_prompt}
    span = states[n_prompt:n_prompt + n_span]
    return {"last_prompt": last_prompt, "reply_mean": span.mean(axis=0), "reply_last": span[-1]}


def forward_states(model: Model, sequences: Sequence[Sequence[int]], layers: Sequence[int],
                   batch_size: int = 8, progress: str | None = None) -> list[np.ndarray]:
    """Per sequence, ``[seq, len(layers), d]`` float32: the given decoder blocks' states, as HF's
    ``hidden_states[L + 1]`` reports them (`Model.run_with_cache` with ``final_norm=True``: the last
    block after the model's final norm, which is what this command has always stored).

    Right-padded batches with an attention mask (a row's states equal an unpadded pass).
    ``progress``: the unit a progress bar counts (on a terminal).
    """

    bar = progress_bar(len(sequences) if progress else 0, "capture", progress or "it")
    try:
        cache = model.run_with_cache(sequences, layers=layers, batch_size=batch_size, final_norm=True, bar=bar)
    finally:
        bar.close()
    return [states.numpy() for states in cache.states]


def capture_texts(model: Model, records: Sequence[TextRecord], layers: Sequence[int] | None = None,
                  positions: Sequence[str] = POSITIONS, batch_size: int = 8, name: str = "capture",
                  truncate: bool = False) -> Dataset:
    """Capture ``records`` with ``model`` (`deception_core.model.surface.Model`); returns a `Dataset`.

    ``layers``: decoder blocks (0-based; default every block); ``name``: the default scenario name.
    Records longer than the model's context are refused, or with ``truncate`` cut to fit
    (`fit_context`); copies of a record share one group (`record_groups`).
    """

    layers = list(range(model.n_layers)) if layers is None else [int(layer) for layer in layers]
    bad = [layer for layer in layers if not 0 <= layer < model.n_layers]
    if bad:
        raise UsageError(f"layers {bad} do not exist: {model.model_id} has decoder blocks 0..{model.n_layers - 1}")
    unknown = [p for p in positions if p not in POSITIONS]
    if unknown:
        raise UsageError(f"positions {unknown} cannot be captured from texts; choose from {list(POSITIONS)}")
    tokenizer = model.tokenizer
    limit = context_length(model.hf_model.config.to_dict())
    measured = token_counts(tokenizer, records)
    tokens = fit_context(measured, limit, truncate)
    n_truncated = sum(len(a[1]) != len(b[1]) for a, b in zip(measured, tokens, strict=True))
    groups = record_groups(records, name)
    note = describe_duplicates(records, name)  # `deception capture` prints it before the model loads
    if note:
        log.info("%s", note)
    states = forward_states(model, [p + s for p, s in tokens], layers, batch_size, progress="text")
    rows: dict[str, list[np.ndarray]] = {f"layer{layer}/{p}": [] for layer in layers for p in positions}
    samples: list[Sample] = []
    rounds: dict[str, int] = {}
    for index, (record, (prompt, span), row_states) in enumerate(zip(records, tokens, states, strict=True)):
        vectors = _vectors(row_states, len(prompt), len(span))
        for position in positions:
            for i, layer in enumerate(layers):
                rows[f"layer{layer}/{position}"].append(vectors[position][i])
        group = groups[index]
        rounds[group] = rounds.get(group, 0) + 1
        samples.append(Sample(
            row=index, sample_id=f"{name}/{index:06d}", trial_key=group,
            scenario=record.scenario or name, mode="capture", condition=record.condition or "capture",
            round=rounds[group], label=record.label if record.label is not None else "ambiguous",
            rule_label=record.label, judge_label=None,
            prompt_text=str(tokenizer.decode(prompt, skip_special_tokens=False)),
            reply_text=record.reply if record.reply is not None else ((record.text or "") if record.messages is None else ""),
            n_prompt_tokens=len(prompt), n_reply_tokens=len(span), reply_ids=tuple(span),
        ))
    arrays = {key: np.stack(values).astype(np.float32) for key, values in rows.items()}
    prompts = [np.asarray(p, dtype=np.int32) for p, _ in tokens]
    arrays["prompt_ids/values"] = np.concatenate(prompts) if prompts else np.zeros(0, np.int32)
    arrays["prompt_ids/offsets"] = np.concatenate([[0], np.cumsum([len(p) for p in prompts])]).astype(np.int64)
    meta: JSONObject = {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "model": model.describe(), "layers": layers, "positions": list(positions),
            "capture_backend": "forward", "scenarios": sorted({s.scenario for s in samples}),
            "result_config": {"model": model.model_id, "dtype": model.dtype, "layers": layers,
                              "positions": list(positions)}}
    if n_truncated:
        meta["truncated_records"] = n_truncated  # cut to the model's context with truncate=True
    first: dict[str, Sample] = {}
    for sample in samples:
        first.setdefault(sample.trial_key, sample)
    trials = [Trial(trial_key=key, scenario=s.scenario, mode="capture", condition=s.condition)
              for key, s in first.items()]
    return Dataset(meta, samples, trials, arrays)
