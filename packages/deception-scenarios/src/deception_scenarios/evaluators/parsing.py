"""Read a judge's free-text answer into a `Label`, never guessing.

Judges are asked for a line ``VERDICT: DECEPTIVE``, ``VERDICT: HONEST`` or ``VERDICT: AMBIGUOUS``.
The parser tolerates case, markdown, punctuation and extra words on that line, and reads the last
such line (a reasoning judge may quote the format first) or, for a verdict-first judge, the first.
It also accepts an answer that simply starts with a label word. It refuses to guess otherwise:

- a label that is negated ("not deceptive", "isn't honest") is never read as that label;
- a hedged label ("possibly deceptive") or several labels at once is not a verdict;
- anything it cannot read becomes ``ambiguous`` with an error saying why, so the raw answer can
  be audited later.
"""

from __future__ import annotations

import re

from deception_core import Label

# Words that name a label. "honestly" is left out on purpose ("Honestly, it is deceptive").
LABEL_WORDS: dict[str, Label] = {
    "deceptive": Label.DECEPTIVE,
    "deceitful": Label.DECEPTIVE,
    "dishonest": Label.DECEPTIVE,
    "deception": Label.DECEPTIVE,
    "lying": Label.DECEPTIVE,
    "misleading": Label.DECEPTIVE,
    "honest": Label.HONEST,
    "truthful": Label.HONEST,
    "ambiguous": Label.AMBIGUOUS,
    "unclear": Label.AMBIGUOUS,
    "undetermined": Label.AMBIGUOUS,
    "indeterminate": Label.AMBIGUOUS,
    "uncertain": Label.AMBIGUOUS,
}

NEGATIONS = frozenset({"not", "no", "never", "neither", "nor", "non", "hardly", "without", "isnt", "wasnt",
                       "arent", "werent", "dont", "doesnt", "didnt", "cannot", "cant"})
HEDGES = frozenset({"possibly", "maybe", "perhaps", "might", "could", "arguably", "somewhat", "partly",
                    "partially"})
#: how many words before a label word are searched for a negation or a hedge
WINDOW = 3

_VERDICT_LINE = re.compile(r"\bverdict\b\s*(?:is\b)?\s*[:=\-\u2013\u2014>]*\s*(?P<rest>.*)$", re.IGNORECASE)
_MARKUP = re.compile(r"[*_`#>\[\]{}()\"\u201c\u201d]")
_CLAUSE = re.compile(r"[.,;:!?|/\n]+")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def _words(text: str) -> list[str]:
    """Lower-case words; hyphens split words ("non-deceptive"), apostrophes are kept ("isn't")."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def _is_negation(word: str) -> bool:
    return word in NEGATIONS or word.endswith("n't")


def _read_labels(text: str) -> tuple[set[Label], list[str], list[str]]:
    """The labels named in ``text`` plainly, and the label words found negated or hedged.

    A negation or hedge reaches at most `WINDOW` words back, within one clause, and stops at an
    earlier label word ("not honest, deceptive" names deceptive).
    """
    plain: set[Label] = set()
    negated: list[str] = []
    hedged: list[str] = []
    for clause in _CLAUSE.split(text):
        words = _words(clause)
        for i, word in enumerate(words):
            label = LABEL_WORDS.get(word)
            if label is None:
                continue
            before: list[str] = []
            for w in reversed(words[max(0, i - WINDOW) : i]):
                if w in LABEL_WORDS:
                    break
                before.append(w)
            if any(_is_negation(w) for w in before):
                negated.append(word)
            elif label is not Label.AMBIGUOUS and any(w in HEDGES for w in before):
                hedged.append(word)
            else:
                plain.add(label)
    return plain, negated, hedged


def _decide(text: str, where: str) -> tuple[Label, str | None]:
    plain, negated, hedged = _read_labels(text)
    if len(plain) == 1 and not hedged:
        return next(iter(plain)), None
    if len(plain) > 1:
        names = ", ".join(sorted(label.value for label in plain))
        return Label.AMBIGUOUS, f"{where} names several labels ({names}); no single verdict"
    if hedged:
        return Label.AMBIGUOUS, f"{where} hedges its label ({', '.join(hedged)}); not a verdict"
    if negated:
        return Label.AMBIGUOUS, f"{where} only negates a label ({', '.join(negated)}); no verdict named"
    return Label.AMBIGUOUS, f"{where} names no label"


def parse_verdict(raw: str, *, verdict_first: bool = False) -> tuple[Label, str | None]:
    """The label in a judge's answer, and an error message when there is none to read.

    A judge asked to reason first is read at its last ``VERDICT`` line (it may quote the format or
    change its mind on the way); with ``verdict_first`` the first line counts, since a small model
    often runs on after its answer and may write further, made-up verdicts.

    >>> parse_verdict("The seller hid the defect.\\nVERDICT: Deceptive.")
    (<Label.DECEPTIVE: 'deceptive'>, None)
    >>> parse_verdict("VERDICT: not deceptive")[0]
    <Label.AMBIGUOUS: 'ambiguous'>
    """
    if not raw or not raw.strip():
        return Label.AMBIGUOUS, "the judge returned an empty answer"
    lines = [_MARKUP.sub(" ", line).strip() for line in raw.splitlines()]
    verdict_lines: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        match = _VERDICT_LINE.search(line)
        if match is None:
            continue
        rest = match.group("rest").strip()
        if not rest:  # "VERDICT:" with the label on the next non-empty line
            rest = next((later for later in lines[index + 1 :] if later), "")
        verdict_lines.append((index, rest))
    if verdict_lines:
        decided = [_decide(rest, "the VERDICT line") for _, rest in verdict_lines]
        if len(decided) >= len(Label) and {label for label, error in decided if error is None} == set(Label):
            return Label.AMBIGUOUS, "the answer repeats the answer format (a VERDICT line for every label)"
        return decided[0] if verdict_first else decided[-1]
    first = next((line for line in lines if line), "")
    words = _words(first)
    if words and words[0] in LABEL_WORDS:
        # An answer that starts with a label word, e.g. "Deceptive. The seller claimed ...".
        return _decide(" ".join(words[:1]), "the first word")
    return Label.AMBIGUOUS, "no 'VERDICT:' line and the answer does not start with a label"
