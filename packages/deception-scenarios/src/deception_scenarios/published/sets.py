"""The field's off-policy sets as statement sets, each read in its published format.

- ``apollo_roleplaying``: Apollo Research's role plays (a YAML list; each item has ``scenario``,
  ``question``, ``answer_prefix``, ``honest_completion``, ``deceptive_completion``). Each item gives
  two records, the same system prompt (the scenario) and question, answered by the honest and by the
  deceptive completion after the answer prefix; grouped by item.
- ``apollo_instructed_pairs``: the true/false facts file of Apollo's instructed pairs (a CSV with
  ``statement`` and ``label``, 1 for a true statement). Each true statement is said by the
  assistant after the user asks for an honest and for a dishonest persona; false ones are left out,
  as the instructed-pairs protocol uses true facts only. Grouped by statement.
- ``ai_liar``: "How to Catch an AI Liar"'s goal-directed lying pairs (a JSON list; each item has
  ``normal_instruction``, ``deceive_instruction``, ``question_prefix``, ``question``,
  ``answer_prefix``, ``answer``, optionally ``include_in_with_answers``; the prefixes may be empty).
  The same answer under the normal and under the deceiving instruction (items marked
  ``include_in_with_answers: false`` are left out, as their answer does not fit both). Grouped by item.
- ``liars_bench``: Liars' Bench rows (``messages`` ending in the assistant's reply, ``deceptive``,
  ``model``, ``dataset``, ``index``, ...), from a local JSON Lines, JSON or Parquet file or from the
  hub (``Cadenza-Labs/liars-bench``, ``--param subset=NAME``).

Parameters (``--param KEY=VALUE``): ``path`` (the local file), ``hub``/``subset``/``split`` (a copy on
the Hugging Face hub, read through ``datasets`` where the hub is reachable) and ``limit`` (the first N
items); Liars' Bench adds ``model`` and ``dataset`` (keep only those rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import attrs

from deception_core import JSONObject, StatementSet, UsageError
from deception_scenarios.contrast import DISHONEST, HONEST
from deception_scenarios.published.rows import Row, hub_rows, positive, read_rows
from deception_scenarios.published.sources import SOURCES

#: what the off-policy role-play records ask the model to do after the scenario (our wording)
ROLEPLAY_INSTRUCTION = "Answer the question directly and in character, with no asides or inner thoughts."
ROLEPLAY_FIELDS = ("scenario", "question", "answer_prefix", "honest_completion", "deceptive_completion")
AI_LIAR_FIELDS = ("normal_instruction", "deceive_instruction", "question_prefix", "question", "answer_prefix",
                  "answer")
FACT_FIELDS = ("statement", "label")
LIARS_BENCH_FIELDS = ("messages", "deceptive", "model", "dataset")


@attrs.frozen(kw_only=True)
class PublishedSettings:
    """Where a published set is read from: a local ``path`` in its published format, or a copy on the hub."""

    #: the local file, in the set's published format
    path: str | None = None
    #: a dataset on the Hugging Face hub in the same schema, read through ``datasets`` (when no path is given)
    hub: str | None = None
    #: the hub dataset's subset (configuration)
    subset: str | None = None
    #: the hub dataset's split
    split: str = "train"
    #: keep the first N items (default: every one)
    limit: int | None = attrs.field(default=None, validator=positive("limit"))


class PublishedSet(StatementSet):
    """A published set: rows from ``path`` (or the hub), turned into capture records by ``build``."""

    #: the file suffixes of the published format
    suffixes: ClassVar[tuple[str, ...]] = ()
    settings_class: ClassVar[type[PublishedSettings]] = PublishedSettings

    def __init__(self, settings: PublishedSettings | None = None) -> None:
        self.settings = settings or self.settings_class()

    def rows(self) -> list[Row]:
        settings = self.settings
        if settings.path is not None:
            return read_rows(settings.path, self.name, self.suffixes)
        if settings.hub is not None:
            return hub_rows(settings.hub, settings.subset, settings.split, self.name)
        raise UsageError(f"{self.name}: pass the published file with --param path=FILE ({' or '.join(self.suffixes)}; "
                         f"source: {SOURCES[self.name]}), or a copy on the Hugging Face hub with --param hub=OWNER/NAME")

    def records(self) -> list[JSONObject]:
        rows = self.rows()
        return self.build(rows if self.settings.limit is None else rows[:self.settings.limit])

    def build(self, rows: Sequence[Row]) -> list[JSONObject]:
        """The capture records of ``rows`` (each malformed row refused, naming it)."""
        raise NotImplementedError(f"{type(self).__name__} builds no records")


@attrs.frozen
class RolePlay:
    """One of Apollo's role plays: a situation, a question, how the answer starts, two reference completions."""

    scenario: str
    question: str
    answer_prefix: str
    honest_completion: str
    deceptive_completion: str

    @classmethod
    def of(cls, row: Row) -> RolePlay:
        return cls(*(row.text(key, ROLEPLAY_FIELDS) for key in ROLEPLAY_FIELDS))

    def system(self) -> str:
        return f"{self.scenario}\n\n{ROLEPLAY_INSTRUCTION}"


class ApolloRoleplaying(PublishedSet):
    """Apollo's role plays, off policy: each scenario's honest and deceptive completion."""

    name = "apollo_roleplaying"
    suffixes: ClassVar[tuple[str, ...]] = (".yaml", ".yml")

    def build(self, rows: Sequence[Row]) -> list[JSONObject]:
        records: list[JSONObject] = []
        for index, row in enumerate(rows):
            play = RolePlay.of(row)
            for completion, label in ((play.honest_completion, "honest"), (play.deceptive_completion, "deceptive")):
                records.append({
                    "messages": [{"role": "system", "content": play.system()}, {"role": "user", "content": play.question}],
                    "reply": f"{play.answer_prefix} {completion}", "label": label, "group": f"roleplay{index:05d}",
                    "scenario": self.name, "condition": "off_policy"})
        return records


def _true_statement(row: Row) -> str | None:
    """The statement when the row marks it true (label 1), None when false (0); anything else is refused."""
    statement = row.text("statement", FACT_FIELDS)
    label = str(row.values.get("label", "")).strip()
    if label not in ("0", "1"):
        raise UsageError(f"{row.where}: 'label' must be 1 (a true statement) or 0 (a false one), got {label!r}")
    return statement if label == "1" else None


class ApolloInstructedPairs(PublishedSet):
    """Apollo's instructed pairs: each true fact said after an honest and a dishonest persona request."""

    name = "apollo_instructed_pairs"
    suffixes: ClassVar[tuple[str, ...]] = (".csv",)

    def records(self) -> list[JSONObject]:
        facts = [s for s in (_true_statement(row) for row in self.rows()) if s is not None]
        if not facts:
            raise UsageError(f"{self.name}: the file holds no true statement (label 1); the pairs are built from those")
        return self.pairs(facts if self.settings.limit is None else facts[:self.settings.limit])

    def pairs(self, facts: Sequence[str]) -> list[JSONObject]:
        records: list[JSONObject] = []
        for index, statement in enumerate(facts):
            for persona, label in ((HONEST, "honest"), (DISHONEST, "deceptive")):
                records.append({"messages": [{"role": "user", "content": persona}], "reply": statement,
                                "label": label, "group": f"fact{index:05d}", "scenario": self.name,
                                "condition": "instructed"})
        return records


class AILiar(PublishedSet):
    """"How to Catch an AI Liar": the same answer under a normal and a deceiving instruction."""

    name = "ai_liar"
    suffixes: ClassVar[tuple[str, ...]] = (".json",)

    def build(self, rows: Sequence[Row]) -> list[JSONObject]:
        records: list[JSONObject] = []
        for index, row in enumerate(rows):
            keep = row.values.get("include_in_with_answers", True)
            if not isinstance(keep, bool):
                raise UsageError(f"{row.where}: 'include_in_with_answers' must be true or false, got {keep!r}")
            if not keep:
                continue
            texts = {key: row.text(key, AI_LIAR_FIELDS, required=not key.endswith("_prefix")) for key in AI_LIAR_FIELDS}
            question = texts["question_prefix"] + texts["question"]
            reply = f"{texts['answer_prefix']} {texts['answer']}".strip()
            for instruction, label in (("normal_instruction", "honest"), ("deceive_instruction", "deceptive")):
                records.append({"messages": [{"role": "system", "content": texts[instruction]},
                                             {"role": "user", "content": question}],
                                "reply": reply, "label": label, "group": f"liar{index:05d}", "scenario": self.name,
                                "condition": "instructed"})
        if not records:
            raise UsageError(f"{self.name}: every item is marked include_in_with_answers: false; nothing to capture")
        return records


@attrs.frozen(kw_only=True)
class LiarsBenchSettings(PublishedSettings):
    """Liars' Bench: the hub dataset by default (a subset must be named), or a local file; optional filters."""

    hub: str | None = "Cadenza-Labs/liars-bench"
    split: str = "test"
    #: keep only the rows of this model (the ``model`` column)
    model: str | None = None
    #: keep only the rows of this source dataset (the ``dataset`` column)
    dataset: str | None = None


def _messages(row: Row) -> tuple[list[dict[str, str]], str]:
    """The prompt messages and the final assistant reply of a Liars' Bench row."""
    messages: object = row.values.get("messages")
    tolist = getattr(messages, "tolist", None)
    if callable(tolist):  # a NumPy array, as some Parquet readers give a list column
        messages = tolist()
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages):
        raise UsageError(f"{row.where}: 'messages' must be a non-empty list of {{\"role\", \"content\"}} objects "
                         "whose values are text")
    *prompt, last = messages
    if last["role"] != "assistant" or not prompt:
        raise UsageError(f"{row.where}: 'messages' must end with the assistant's reply after at least one prompt "
                         f"message; the last one is a {last['role']!r} message")
    return [{"role": m["role"], "content": m["content"]} for m in prompt], last["content"]


class LiarsBench(PublishedSet):
    """Liars' Bench: on-policy lies and honest replies of four model families over seven datasets."""

    name = "liars_bench"
    suffixes: ClassVar[tuple[str, ...]] = (".jsonl", ".json", ".parquet")
    settings_class: ClassVar[type[PublishedSettings]] = LiarsBenchSettings

    def records(self) -> list[JSONObject]:
        return self.build(self.rows())  # the limit counts the rows kept by the filters

    def build(self, rows: Sequence[Row]) -> list[JSONObject]:
        settings = self.settings
        assert isinstance(settings, LiarsBenchSettings)
        records: list[JSONObject] = []
        for row in rows:
            deceptive = row.values.get("deceptive")
            if not isinstance(deceptive, bool):
                raise UsageError(f"{row.where}: 'deceptive' must be true or false, got {deceptive!r}")
            model, source = row.text("model", LIARS_BENCH_FIELDS), row.text("dataset", LIARS_BENCH_FIELDS)
            prompt, reply = _messages(row)
            if (settings.model or model) != model or (settings.dataset or source) != source:
                continue
            records.append({"messages": prompt, "reply": reply, "label": "deceptive" if deceptive else "honest",
                            "scenario": f"{self.name}/{source}", "condition": model})
        if not records:
            raise UsageError(f"{self.name}: no row matches model={settings.model!r} dataset={settings.dataset!r}")
        return records if settings.limit is None else records[:settings.limit]
