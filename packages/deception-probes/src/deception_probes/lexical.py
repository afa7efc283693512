"""The lexical baseline: how far the words of the texts alone separate the labels.

A bag-of-words detector (word unigrams and bigrams weighted by TF-IDF, then balanced L2 logistic
regression) is trained and scored on exactly the probes' outer folds; its ``C``, and whether to weight
by inverse document frequency at all, are chosen on the same grouped validation folds. It is reported
with the probes' statistics (held-out AUROC with its trial-clustered interval, balanced accuracy,
recall at the FPR target). The text is the sample's reply, or, where a sample has no reply (a bare
statement), its prompt. Each fold's vocabulary and weights come from its training texts only.

The IDF weighting is a choice, not a given: it up-weights words seen in few training texts, which on
a few hundred texts lets the classifier memorise single texts by their rare words. With a word that
decides the label planted in 120 texts of random words, TF-IDF scored AUROC 0.69-0.95 on held-out
texts and plain (sublinear, normalised) term frequencies 1.00; on real texts, where the telling
phrases recur, IDF can help. The validation folds choose.

Why: a probe that separates deceptive from honest completions may be reading their words ("family
emergency", "my grandmother") rather than anything the model represents about deception; the
embeddings of the first layer already carry those words. When the words alone do about as well, a
high probe AUROC says little about the model.

The warning: the best probe should beat the words by a clear margin, meaning that the paired,
trial-clustered 95% interval of (probe AUROC - lexical AUROC), on the same held-out samples, lies
above zero AND the difference is at least ``MARGIN`` (0.05). The interval alone is not enough, since
on thousands of samples a lead of 0.01 is "significant" and still says the words explain almost
everything; the point estimate alone is not enough, since on a few hundred samples a lead of 0.05 is
within the noise. The probe compared is the best cell's held-out scores (chosen on validation
folds, so if anything flattered): when even it fails the margin, the table says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from deception_core import JSONObject, JSONValue, json_number, json_object
from deception_probes.metrics import auroc, auroc_ci, auroc_difference_ci, balanced_accuracy, recall_at_fpr
from deception_probes.splits import FoldPlan, both_classes

if TYPE_CHECKING:
    from deception_core import Sample
    from deception_probes.settings import ProbeSettings

#: the (IDF weighting, inverse regularisation strength C) pairs chosen from on the validation folds, in
#: the order that breaks ties (plain term frequencies, stronger regularisation first)
GRID: tuple[tuple[bool, float], ...] = tuple((idf, c) for idf in (False, True) for c in (0.1, 1.0, 10.0))
DEFAULT = (False, 1.0)
#: how far the best probe must lead the lexical baseline (AUROC points, with its 95% interval above 0)
MARGIN = 0.05
TOP_WORDS = 10
METHOD = ("word unigrams and bigrams (vocabulary from each fold's training texts), sublinear term frequencies "
          "with or without IDF weighting, + balanced L2 logistic regression; IDF and C chosen on the probes' "
          "validation folds; trained and scored on the probes' outer folds")


def _field(sample: Sample | Mapping[str, object], name: str) -> Any:
    return sample.get(name) if isinstance(sample, dict) else getattr(sample, name, None)


def sample_texts(samples: Sequence[Sample | Mapping[str, object]], rows: np.ndarray) -> tuple[list[str], dict[str, int]]:
    """The text of each of ``rows``: its reply, or its prompt where it has no reply; and how many of each."""
    texts, sources = [], {"reply": 0, "prompt": 0, "none": 0}
    for i in rows:
        reply = str(_field(samples[int(i)], "reply_text") or "").strip()
        prompt = str(_field(samples[int(i)], "prompt_text") or "").strip()
        text = reply or prompt
        sources["reply" if reply else "prompt" if prompt else "none"] += 1
        texts.append(text)
    return texts, sources


@attrs.frozen
class LexicalModel:
    """A fitted bag-of-words detector: ``score(texts)`` gives log-odds (higher = more deceptive)."""

    vectorizer: Any  # sklearn TfidfVectorizer
    classifier: Any  # sklearn LogisticRegression
    idf: bool
    C: float

    @classmethod
    def fit(cls, texts: Sequence[str], y: np.ndarray, hyper: tuple[bool, float], seed: int) -> LexicalModel:
        """Fit on ``texts`` with labels ``y`` (1 = deceptive) and ``hyper`` = (IDF weighting, C); ValueError
        when the texts hold no word."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        idf, C = hyper
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, use_idf=idf, dtype=np.float64)
        features = vectorizer.fit_transform(list(texts))  # ValueError("empty vocabulary ...") without words
        classifier = LogisticRegression(C=C, class_weight="balanced", solver="liblinear", random_state=seed)
        classifier.fit(features, np.asarray(y))
        return cls(vectorizer, classifier, idf, C)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.classifier.decision_function(self.vectorizer.transform(list(texts))), dtype=np.float64)

    def top_words(self, n: int = TOP_WORDS) -> dict[str, list[str]]:
        """The terms with the largest weights towards each label."""
        names = self.vectorizer.get_feature_names_out()
        weights = self.classifier.coef_.ravel()
        order = np.argsort(weights, kind="stable")
        return {"deceptive": [str(names[i]) for i in order[::-1][:n] if weights[i] > 0],
                "honest": [str(names[i]) for i in order[:n] if weights[i] < 0]}


def _choose(texts: list[str], y: np.ndarray, plan: FoldPlan, seed: int) -> tuple[bool, float]:
    """The (IDF, C) with the best mean validation AUROC on the fold's validation folds (ties: grid order)."""
    train = plan.train
    per_hyper: dict[tuple[bool, float], list[float]] = {h: [] for h in GRID}
    for inner_train, inner_val in plan.inner:
        itr, iva = train[inner_train], train[inner_val]
        if not both_classes(y[itr]) or not both_classes(y[iva]):
            continue
        for hyper in GRID:
            model = LexicalModel.fit([texts[i] for i in itr], y[itr], hyper, seed)
            value = auroc(model.score([texts[i] for i in iva]), y[iva])
            if value is not None:
                per_hyper[hyper].append(value)
    means = {h: float(np.mean(v)) for h, v in per_hyper.items() if v}
    return max(means, key=lambda h: means[h]) if means else DEFAULT


def _not_computable(reason: str, sources: dict[str, int]) -> JSONObject:
    return {"status": "not computable", "reason": reason, "method": METHOD, "text_sources": dict(sources),
            "auroc": None, "balanced_accuracy": None, "recall_at_fpr": None, "fold_aurocs": [], "hypers": [],
            "n_scored": 0, "probe": None, "probe_auroc": None, "difference": None, "margin": MARGIN,
            "top_words": None, "warning": None}


def lexical_baseline(samples: Sequence[Sample | Mapping[str, object]], rows: np.ndarray, y: np.ndarray,
                     groups: np.ndarray, plans: list[FoldPlan], settings: ProbeSettings,
                     probe_scores: np.ndarray | None, probe: JSONObject) -> JSONObject:
    """The lexical detector's held-out figures on the probes' folds, the best probe's on the same samples,
    probe minus lexical with a paired interval, and a warning when the probe's lead is not clear."""
    texts, sources = sample_texts(samples, rows)
    if not any(texts):
        return _not_computable("the samples hold no text (no reply and no prompt)", sources)
    scores = np.full(len(y), np.nan)
    chosen: list[tuple[bool, float] | None] = []
    try:
        for plan in plans:
            if not plan.usable:
                chosen.append(None)
                continue
            hyper = _choose(texts, y, plan, settings.seed)
            model = LexicalModel.fit([texts[i] for i in plan.train], y[plan.train], hyper, settings.seed)
            scores[plan.test] = model.score([texts[i] for i in plan.test])
            chosen.append(hyper)
        final = LexicalModel.fit(texts, y, most_common_hyper([h for h in chosen if h is not None]), settings.seed)
    except ValueError as error:  # a training side whose texts hold no word
        return _not_computable(f"no words to train on: {error}", sources)
    mask = ~np.isnan(scores)
    metric = auroc_ci(scores[mask], y[mask], groups[mask]) if mask.any() else None
    if metric is None:
        return _not_computable("no outer fold scored both classes", sources)
    entry: JSONObject = {
        "status": "ok", "reason": None, "method": METHOD, "text_sources": dict(sources),
        "auroc": metric,
        "balanced_accuracy": balanced_accuracy(scores[mask], y[mask]),
        "recall_at_fpr": recall_at_fpr(scores[mask], y[mask], settings.fpr),
        "fold_aurocs": [auroc(scores[p.test], y[p.test]) if p.usable else None for p in plans],
        "hypers": [None if h is None else {"idf": h[0], "C": h[1]} for h in chosen], "n_scored": int(mask.sum()), "probe": probe,
        "probe_auroc": None, "difference": None, "margin": MARGIN,
        "top_words": dict(final.top_words()), "warning": None,
    }
    if probe_scores is not None:
        both = mask & ~np.isnan(probe_scores)
        if both.any():
            entry["probe_auroc"] = auroc_ci(probe_scores[both], y[both], groups[both])
            entry["difference"] = auroc_difference_ci(probe_scores[both], scores[both], y[both], groups[both])
            entry["warning"] = margin_warning(entry["difference"], json_number(json_object(metric)["value"]))
    return entry


def most_common_hyper(values: list[tuple[bool, float]]) -> tuple[bool, float]:
    """The (IDF, C) the outer folds chose most often (the first such on a tie; the default when none)."""
    from collections import Counter

    return Counter(values).most_common(1)[0][0] if values else DEFAULT


def margin_warning(difference: JSONValue, lexical_auroc: float) -> str | None:
    """The warning when the probe's lead over the words is not clear (see the module docstring), else None."""
    if difference is None:
        return None
    diff = json_object(difference)
    value = json_number(diff["value"])
    low = diff.get("ci_low")
    interval = "" if low is None else f" [{json_number(low):+.2f},{json_number(diff['ci_high']):+.2f}]"
    if value >= MARGIN and low is not None and json_number(low) > 0:
        return None
    return (f"the best probe leads the words alone (lexical AUROC {lexical_auroc:.2f}) by {value:+.2f}{interval}, "
            f"short of a clear margin (+{MARGIN:.2f} with the 95% interval above 0): what the probes read may be "
            "the texts' wording rather than the model's state; compare on texts whose honest and deceptive "
            "versions share their words")
