"""SQuAD v2.0 evaluation, numerically identical to the official ``evaluate-v2.0.py``.

References are ``{"id": ..., "answers": {"text": [...], "answer_start": [...]}}`` rows (the
Hugging Face ``squad``/``squad_v2`` layout); predictions map id -> answer text ("" means
"no answer"); ``no_answer_probs`` map id -> the model's probability that there is no answer.

Differences from the official script, all on inputs it does not handle:

* A reference id without a prediction raises :class:`DataError` naming the ids.  The
  official script prints "Missing prediction for <id>", leaves the id out of ``exact``/``f1``
  and ``total``, and then fails with a KeyError while computing HasAns/NoAns, so no official
  number exists for such input.
* ``best_exact``/``best_f1`` (and their thresholds) are always reported; without
  ``no_answer_probs`` every probability is 0.0, as in the official script's default (it only
  prints them when given a probability file).
* Duplicate reference ids, non-string predictions and no-answer probabilities missing for a
  reference id raise :class:`DataError` instead of failing later.

Predictions for ids not in the references are ignored, as in the official script.
"""

from __future__ import annotations

import collections
import re
import string
from typing import Any, Mapping, Sequence

import numpy as np

from distilbert_catalog.errors import DataError

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


# --------------------------------------------------------------------------- answer scoring


def normalize_answer(text: str) -> str:
    """Lower-case, drop ASCII punctuation, drop the articles a/an/the, squash whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(text: str) -> list[str]:
    """Normalised word tokens of ``text``."""
    return normalize_answer(text).split() if text else []


def _exact_one(gold: str, pred: str) -> int:
    """1 when gold and prediction normalise to the same string, else 0."""
    return int(normalize_answer(gold) == normalize_answer(pred))


def _f1_one(gold: str, pred: str) -> float:
    """Token-overlap F1 of one gold answer and a prediction (1/0 if either is empty)."""
    return token_f1(_tokens(gold), _tokens(pred))


def token_f1(gold_toks: Sequence[str], pred_toks: Sequence[str]) -> float:
    """F1 of the token overlap (as multisets); 1/0 if either side is empty."""
    if not gold_toks or not pred_toks:
        return float(gold_toks == pred_toks)
    same = sum((collections.Counter(gold_toks) & collections.Counter(pred_toks)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_toks), same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def _gold_texts(gold_answers: Sequence[str]) -> list[str]:
    """Gold answers that survive normalisation, or [""] (the only answer to "no answer")."""
    kept = [a for a in gold_answers if normalize_answer(a)]
    return kept or [""]


def exact_score(gold_answers: Sequence[str], pred: str) -> int:
    """Exact match (0/1) of ``pred`` against the best gold answer; no gold means gold is ""."""
    return max(_exact_one(g, pred) for g in _gold_texts(gold_answers))


def f1_score(gold_answers: Sequence[str], pred: str) -> float:
    """Token F1 (0..1) of ``pred`` against the best gold answer; no gold means gold is ""."""
    return max(_f1_one(g, pred) for g in _gold_texts(gold_answers))


# --------------------------------------------------------------------------- input checks


def _gold_by_id(references: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Map id -> gold answer texts, in reference order; DataError for malformed rows."""
    if len(references) == 0:
        raise DataError("no references to evaluate against")
    gold: dict[str, list[str]] = {}
    for row, ref in enumerate(references):
        try:
            qid, texts = ref["id"], list(ref["answers"]["text"])
        except (KeyError, TypeError):
            raise DataError('references need {"id", "answers": {"text": [...]}}',
                            row=row) from None
        if qid in gold:
            raise DataError(f"duplicate reference id {qid!r}", row=row, column="id")
        gold[qid] = texts
    return gold


def _check_predictions(gold: Mapping[str, list[str]], predictions: Mapping[str, Any]) -> None:
    """DataError naming the reference ids without a prediction, or with a non-string one."""
    missing = [qid for qid in gold if qid not in predictions]
    if missing:
        shown = ", ".join(repr(q) for q in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DataError(f"missing prediction for {len(missing)} question(s): {shown}{more}; "
                        'predict "" for no answer')
    for qid in gold:
        if not isinstance(predictions[qid], str):
            raise DataError(f"prediction for {qid!r} must be a string, "
                            f"got {type(predictions[qid]).__name__}")


def _na_probs(gold: Mapping[str, list[str]], predictions: Mapping[str, Any],
              no_answer_probs: Mapping[str, float] | None) -> dict[str, float]:
    """The no-answer probabilities (official default: 0.0 for every predicted id)."""
    if no_answer_probs is None:
        return {qid: 0.0 for qid in predictions}
    missing = [qid for qid in gold if qid not in no_answer_probs]
    if missing:
        raise DataError(f"no_answer_probs lacks {len(missing)} question id(s), e.g. "
                        f"{missing[0]!r}; give a probability for every question")
    return dict(no_answer_probs)


def _raw_scores(gold: Mapping[str, list[str]], predictions: Mapping[str, str]
                ) -> tuple[dict[str, int], dict[str, float]]:
    """Per-id exact and F1 scores before any no-answer threshold."""
    exact = {qid: exact_score(texts, predictions[qid]) for qid, texts in gold.items()}
    f1 = {qid: f1_score(texts, predictions[qid]) for qid, texts in gold.items()}
    return exact, f1


# --------------------------------------------------------------------------- official metrics


def _apply_threshold(scores: Mapping[str, float], na_probs: Mapping[str, float],
                     has_ans: Mapping[str, bool], threshold: float) -> dict[str, float]:
    """Scores after predicting "no answer" wherever ``na_prob > threshold``."""
    return {qid: float(not has_ans[qid]) if na_probs[qid] > threshold else s
            for qid, s in scores.items()}


def _eval_block(exact: Mapping[str, float], f1: Mapping[str, float],
                qids: Sequence[str]) -> dict[str, Any]:
    """exact/f1 (0-100) and total over ``qids``."""
    total = len(qids)
    return {"exact": 100.0 * sum(exact[q] for q in qids) / total,
            "f1": 100.0 * sum(f1[q] for q in qids) / total,
            "total": total}


def _best_threshold(predictions: Mapping[str, str], scores: Mapping[str, float],
                    na_probs: Mapping[str, float], has_ans: Mapping[str, bool]
                    ) -> tuple[float, float]:
    """The official ``find_best_thresh``: best score (0-100) and its no-answer threshold.

    Start from "abstain on everything" (NoAns questions right), then answer questions in
    order of rising no-answer probability, keeping the best running score.
    """
    current = sum(1 for v in has_ans.values() if not v)
    best, best_thresh = current, 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if has_ans[qid]:
            diff = scores[qid]
        else:
            diff = -1 if predictions[qid] else 0
        current += diff
        if current > best:
            best, best_thresh = current, na_probs[qid]
    return 100.0 * best / len(scores), best_thresh


def squad_v2_metrics(references: Sequence[Mapping[str, Any]], predictions: Mapping[str, str],
                     no_answer_probs: Mapping[str, float] | None = None,
                     no_answer_threshold: float = 1.0) -> dict[str, Any]:
    """The official SQuAD v2 numbers (0-100): exact, f1, total, HasAns_*, NoAns_*, best_*.

    A question counts as "no answer" when ``no_answer_probs[id] > no_answer_threshold``.
    HasAns_*/NoAns_* keys appear only when such questions exist (v1-style data: no NoAns_*).
    """
    gold = _gold_by_id(references)
    _check_predictions(gold, predictions)
    na_probs = _na_probs(gold, predictions, no_answer_probs)
    has_ans = {qid: bool(texts) for qid, texts in gold.items()}
    exact_raw, f1_raw = _raw_scores(gold, predictions)
    exact = _apply_threshold(exact_raw, na_probs, has_ans, no_answer_threshold)
    f1 = _apply_threshold(f1_raw, na_probs, has_ans, no_answer_threshold)
    out = _eval_block(exact, f1, list(gold))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [q for q, v in has_ans.items() if v == wanted]
        if qids:
            out.update({f"{prefix}_{k}": v for k, v in _eval_block(exact, f1, qids).items()})
    out["best_exact"], out["best_exact_thresh"] = _best_threshold(
        predictions, exact_raw, na_probs, has_ans)
    out["best_f1"], out["best_f1_thresh"] = _best_threshold(
        predictions, f1_raw, na_probs, has_ans)
    return out


# --------------------------------------------------------------------------- analysis helpers


def threshold_curve(references: Sequence[Mapping[str, Any]], predictions: Mapping[str, str],
                    no_answer_probs: Mapping[str, float]) -> tuple[list[float], list[float]]:
    """Overall F1 (0-100) at each distinct no-answer probability used as the threshold.

    At threshold ``t`` a question is answered "" when its probability is above ``t`` (the
    ``no_answer_threshold`` rule of :func:`squad_v2_metrics`), so ``f1s[i]`` equals
    ``squad_v2_metrics(..., no_answer_threshold=thresholds[i])["f1"]``.  Thresholds rise;
    the last point answers every question (the raw F1).
    """
    gold = _gold_by_id(references)
    _check_predictions(gold, predictions)
    na_probs = _na_probs(gold, predictions, no_answer_probs)
    _, f1_raw = _raw_scores(gold, predictions)
    qids = list(gold)
    probs = np.array([float(na_probs[q]) for q in qids])
    abstain = np.array([float(not gold[q]) for q in qids])  # score when answering ""
    gain = np.array([f1_raw[q] for q in qids]) - abstain      # change when answering instead
    order = np.argsort(probs, kind="stable")
    cumulative = abstain.sum() + np.cumsum(gain[order])
    sorted_probs = probs[order]
    thresholds = np.unique(sorted_probs)
    last = np.searchsorted(sorted_probs, thresholds, side="right") - 1
    return thresholds.tolist(), (100.0 * cumulative[last] / len(qids)).tolist()


def per_question(references: Sequence[Mapping[str, Any]], predictions: Mapping[str, str],
                 no_answer_probs: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """One row per reference: id, prediction, gold, exact (0/1), f1 (0-1), has_answer,
    no_answer_prob (0.0 when not given).  Scores are raw, before any no-answer threshold."""
    gold = _gold_by_id(references)
    _check_predictions(gold, predictions)
    na_probs = _na_probs(gold, predictions, no_answer_probs)
    return [{"id": qid, "prediction": predictions[qid], "gold": list(texts),
             "exact": exact_score(texts, predictions[qid]),
             "f1": f1_score(texts, predictions[qid]),
             "has_answer": bool(texts), "no_answer_prob": float(na_probs.get(qid, 0.0))}
            for qid, texts in gold.items()]
