"""Reading checkable claims out of free text, without the classic lexical traps.

Every scenario rule is built from these pieces:

* `find_numbers` reads digits (``45``, ``$9,000``, ``9k``) and numbers written as words
  (``forty-five``, ``a hundred and twenty``, ``nine thousand``);
* `has_word` matches whole words or phrases only, so ``ac`` is not found in ``accept`` or
  ``back``;
* `clauses` splits a reply into clauses, the scope of negations and hedges;
* `is_negated` / `is_hedged` decide whether a clause denies or softens what it says;
* `quantity_claims` turns clauses such as "I won't go below forty" into a relation on a private
  quantity (``>= 40``), which a rule can then check against the facts.

A hedged claim ("maybe around 40") is not checkable and is reported as such, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

import attrs

UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
        "eighty": 80, "ninety": 90}
SCALES = {"hundred": 100, "thousand": 1000}
NUMBER_WORDS = {**UNITS, **TENS, **SCALES, "a": None, "and": None}

NEGATIONS = ("not", "no", "never", "nothing", "none", "nobody", "neither", "nor", "cannot", "without", "hardly")
HEDGES = ("maybe", "perhaps", "around", "about", "roughly", "approximately", "probably", "possibly", "might",
          "i think", "i guess", "i suppose", "somewhere", "or so", "more or less", "give or take", "ish",
          "not sure", "could be", "something like")

_DIGITS = re.compile(r"(?<![\w.])\$?\s?(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(\s?k\b)?")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_CLAUSE_SPLIT = re.compile(
    r"[!?;\n]+|\.+(?!\d)|,(?!\d{3}\b)|\bbut\b|\bhowever\b|\bthough\b|\bwhereas\b|\band\b(?=\s+(?:you|i|we|they|he|she|it|then)\b)",
    re.IGNORECASE,
)


@attrs.frozen
class Number:
    value: float
    start: int
    end: int
    text: str


def find_numbers(text: str) -> list[Number]:
    """Every number in ``text``, in order, whether written in digits or in words."""
    found: list[Number] = []
    for m in _DIGITS.finditer(text):
        raw = m.group(1).replace(",", "")
        value = float(raw) * (1000 if m.group(2) else 1)
        found.append(Number(value, m.start(), m.end(), m.group(0).strip()))
    found.extend(_word_numbers(text))
    return sorted(found, key=lambda n: n.start)


def _word_numbers(text: str) -> list[Number]:
    """Numbers spelled out: runs of number words, joined by spaces, hyphens or 'and'."""
    tokens = [(m.group(0).lower(), m.start(), m.end()) for m in re.finditer(r"[A-Za-z]+", text)]
    out: list[Number] = []
    i = 0
    while i < len(tokens):
        word = tokens[i][0]
        if word not in UNITS and word not in TENS and not (word == "a" and _next_is(tokens, i, SCALES)):
            i += 1
            continue
        total, current, j, last_end = 0, 0, i, tokens[i][2]
        used_any = False
        while j < len(tokens):
            w, start, end = tokens[j]
            gap = text[last_end:start] if j > i else ""
            if j > i and not re.fullmatch(r"[\s-]*", gap):
                break
            if w in UNITS:
                current += UNITS[w]
            elif w in TENS:
                current += TENS[w]
            elif w in SCALES:
                current = max(current, 1) * SCALES[w]
                if SCALES[w] >= 1000:
                    total, current = total + current, 0
            elif w == "a" and j == i:
                current = 0
            elif w == "and" and used_any and j + 1 < len(tokens) and (tokens[j + 1][0] in UNITS or tokens[j + 1][0] in TENS):
                pass
            else:
                break
            if w not in ("a", "and"):
                used_any = True
            last_end = end
            j += 1
        if used_any and text[tokens[i][1]:last_end].lower() != "one":  # "the one I want" is no number
            value = total + current
            out.append(Number(float(value), tokens[i][1], last_end, text[tokens[i][1]:last_end]))
        i = max(j, i + 1)
    return out


def _next_is(tokens: Sequence[tuple[str, int, int]], i: int, words: Collection[str]) -> bool:
    return i + 1 < len(tokens) and tokens[i + 1][0] in words


def has_word(text: str, words: Iterable[str]) -> bool:
    """True if any of ``words`` (single words or phrases) occurs as whole words in ``text``."""
    return any(word_span(text, w) is not None for w in words)


def word_span(text: str, phrase: str) -> tuple[int, int] | None:
    """Where ``phrase`` occurs as whole words (case-insensitive), or None."""
    pattern = r"(?<![A-Za-z0-9])" + r"\s+".join(re.escape(p) for p in phrase.split()) + r"(?![A-Za-z0-9])"
    m = re.search(pattern, text, re.IGNORECASE)
    return (m.start(), m.end()) if m else None


def clauses(text: str) -> list[str]:
    """The clauses of ``text`` (split at sentence ends, commas, 'but', 'however' ...)."""
    return [c.strip() for c in _CLAUSE_SPLIT.split(text) if c and c.strip()]


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def is_negated(text: str) -> bool:
    """Whether ``text`` (usually the part of a clause before a claim) contains a negation."""
    tokens = words(text)
    return any(t in NEGATIONS or t.endswith("n't") for t in tokens)


def is_hedged(text: str) -> bool:
    """Whether ``text`` softens its claim ("maybe", "around", "I think" ...): then it is not checkable."""
    return has_word(text, HEDGES) or bool(re.search(r"\d\s*-?ish\b", text, re.IGNORECASE))


# relations between a private quantity Q and a stated number x
EQ, GE, LE, GT, LT, NE = "==", ">=", "<=", ">", "<", "!="
FLIP = {EQ: NE, NE: EQ, GE: LT, LT: GE, LE: GT, GT: LE}

#: direction phrases, read as "the private quantity is <relation> the number"
DIRECTION_CUES: tuple[tuple[str, str], ...] = (
    ("less than", LT), ("lower than", LT), ("fewer than", LT), ("below", LT), ("under", LT), ("short of", LT),
    ("more than", GT), ("higher than", GT), ("longer than", GT), ("greater than", GT), ("above", GT),
    ("over", GT), ("beyond", GT),
    ("at least", GE), ("at most", LE), ("up to", LE), ("within", LE),
)


_DIRECTIONS = {phrase for phrase, _ in DIRECTION_CUES}


@attrs.frozen
class QuantityClaim:
    """``quantity <relation> value``, as stated in ``clause`` (``hedged`` claims are not checkable)."""

    value: float
    relation: str
    clause: str
    hedged: bool
    cue: str

    def holds(self, truth: float, tolerance: float = 0.0) -> bool:
        if self.relation == EQ:
            return abs(truth - self.value) <= tolerance
        if self.relation == NE:
            return abs(truth - self.value) > tolerance
        if self.relation == GE:
            return truth >= self.value - tolerance
        if self.relation == LE:
            return truth <= self.value + tolerance
        if self.relation == GT:
            return truth > self.value - tolerance
        return truth < self.value + tolerance

    def describe(self) -> str:
        hedge = " (hedged)" if self.hedged else ""
        return f"'{self.clause}' -> Q {self.relation} {self.value:g} [cue {self.cue!r}]{hedge}"


def _last_cue(prefix: str, cues: Sequence[tuple[str, str]]) -> tuple[str, str, int] | None:
    """The cue that ends closest to the end of ``prefix`` (the number follows it)."""
    best: tuple[str, str, int] | None = None
    for phrase, relation in cues:
        pattern = r"(?<![A-Za-z0-9])" + r"\s+".join(re.escape(p) for p in phrase.split()) + r"(?![A-Za-z0-9])"
        for m in re.finditer(pattern, prefix, re.IGNORECASE):
            if best is None or m.end() > best[2]:
                best = (phrase, relation, m.end())
    return best


def quantity_claims(
    text: str,
    topic: Sequence[str],
    cues: Sequence[tuple[str, str]] = (),
    *,
    lo: float = float("-inf"),
    hi: float = float("inf"),
    unit_scale: Sequence[tuple[str, float]] = (),
    default_relation: str | None = EQ,
    require_unit: bool = False,
    exclude: Callable[[str, Number], bool] | None = None,
    priority: Sequence[tuple[str, str]] = (),
) -> list[QuantityClaim]:
    """Claims about one private quantity, read clause by clause.

    A clause counts only if it mentions one of ``topic`` (whole words) or one of the ``cues``.
    For each number in range, the relation comes from the nearest direction or scenario cue before
    it (``default_relation`` when there is none; None drops such numbers), flipped when the clause
    is negated before the number ("I won't go below 40" is ``>= 40``). ``unit_scale`` converts units
    that follow a number (("week", 7) turns "two weeks" into 14); with ``require_unit`` a number
    without one of those units is ignored. The second number of a split ("60/40") and numbers
    ``exclude(clause, number)`` rejects are not read as claims. A ``priority`` cue anywhere before
    the number wins over later scenario cues ("the least I would accept is 40" is ``== 40``), but
    not over a direction cue that follows it.
    """
    claims: list[QuantityClaim] = []
    all_cues = tuple(cues) + tuple(priority) + DIRECTION_CUES
    for clause in clauses(text):
        if not (has_word(clause, topic) or has_word(clause, [c for c, _ in (*cues, *priority)])):
            continue
        for number in find_numbers(clause):
            if clause[:number.start].rstrip().endswith("/") or (exclude and exclude(clause, number)):
                continue
            value = number.value
            tail = clause[number.end:number.end + 12].lower()
            scaled = False
            for unit, scale in unit_scale:
                if re.match(rf"\s*-?\s*{re.escape(unit)}", tail):
                    value, scaled = value * scale, True
                    break
            if require_unit and not scaled:
                continue
            if not lo <= value <= hi:
                continue
            prefix = clause[:number.start]
            cue = _last_cue(prefix, all_cues)
            strong = _last_cue(prefix, priority) if priority else None
            if strong and cue and not (cue[0] in _DIRECTIONS and cue[2] > strong[2]):
                cue = strong
            relation = cue[1] if cue else default_relation
            if relation is None:
                continue
            if is_negated(prefix):
                relation = FLIP[relation]
            claims.append(QuantityClaim(value, relation, clause, is_hedged(clause), cue[0] if cue else "none"))
    return claims


def first_choice(text: str, options: Mapping[str, Sequence[str]]) -> str | None:
    """The option whose keyword appears first (whole words), ignoring negated mentions.

    Used to read a move or a vote ("COOPERATE", "plan C"). A negated mention ("not DEFECT")
    counts for nothing; if only negated mentions exist, the answer is unreadable (None).
    """
    best: tuple[int, str] | None = None
    for clause in clauses(text) or [text]:
        offset = text.find(clause)
        for option, keys in options.items():
            for key in keys:
                span = word_span(clause, key)
                if span is None or is_negated(clause[:span[0]]):
                    continue
                position = offset + span[0]
                if best is None or position < best[0]:
                    best = (position, option)
    return best[1] if best else None
