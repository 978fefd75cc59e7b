"""Tests for the SQuAD v2 evaluation (official evaluate-v2.0.py semantics)."""

from __future__ import annotations

import collections
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distilbert_catalog.errors import DataError
from distilbert_catalog.tasks.question_answering.squad import (
    exact_score,
    f1_score,
    normalize_answer,
    per_question,
    squad_v2_metrics,
    threshold_curve,
)


def ref(qid, *texts):
    """A reference row in the Hugging Face squad_v2 layout."""
    return {"id": qid, "answers": {"text": list(texts), "answer_start": [0] * len(texts)}}


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize("raw, expected", [
    ("The  Quick, brown-fox!", "quick brownfox"),       # lower, punctuation, article, spaces
    ("an apple a day", "apple day"),                    # articles a / an removed
    ("theater Anthem", "theater anthem"),               # only whole-word articles
    ("the-end", "theend"),                              # punctuation goes before articles
    ("  Tab\tand\nnewline  ", "tab and newline"),       # whitespace squashed
    ("$1,000.50", "100050"),
    ("em\u2014dash", "em\u2014dash"),                   # only ASCII punctuation is removed
    ("THE", ""),
    ("", ""),
])
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


def test_exact_and_f1_single_answers():
    assert exact_score(["The Eiffel Tower"], "eiffel tower!") == 1
    assert exact_score(["Eiffel Tower"], "Eiffel") == 0
    # gold [eiffel, tower], pred [eiffel]: common 1, P = 1/1, R = 1/2, F1 = 2*1*0.5/1.5 = 2/3
    assert f1_score(["Eiffel Tower"], "Eiffel") == pytest.approx(2 / 3, abs=1e-12)
    # gold [red, red, blue], pred [red, blue, blue, green]: common = min(2,1) + min(1,2) = 2,
    # P = 2/4, R = 2/3, F1 = 2 * (1/2) * (2/3) / (1/2 + 2/3) = (2/3) / (7/6) = 4/7
    assert f1_score(["red red blue"], "red blue blue green") == pytest.approx(4 / 7, abs=1e-12)
    assert f1_score(["Barack Obama"], "Bill Clinton") == 0.0


def test_multiple_gold_answers_take_the_max():
    gold = ["Barack Obama", "Obama", "President Obama"]
    # vs "Obama" exact -> 1
    assert exact_score(gold, "obama.") == 1
    # pred [president, barack, obama]: vs "Barack Obama": common 2, P = 2/3, R = 1 -> F1 0.8;
    # vs "President Obama": common 2, P = 2/3, R = 1 -> 0.8; vs "Obama": P = 1/3, R = 1 -> 0.5
    assert f1_score(gold, "President Barack Obama") == pytest.approx(0.8, abs=1e-12)
    assert exact_score(gold, "President Barack Obama") == 0


def test_empty_gold_means_no_answer():
    assert exact_score([], "") == 1 and f1_score([], "") == 1.0
    assert exact_score([], "Paris") == 0 and f1_score([], "Paris") == 0.0
    # gold answers that normalise to "" are dropped, leaving [""] as in the official script
    assert exact_score(["the", "."], "") == 1
    assert f1_score(["Paris"], "") == 0.0
    # a prediction that normalises to "" counts as no answer
    assert exact_score([], "The.") == 1 and f1_score([], "a") == 1.0


# --------------------------------------------------------------------------- full metrics

REFS = [ref("q1", "The Eiffel Tower", "Eiffel Tower"),
        ref("q2", "Barack Obama"),
        ref("q3"),
        ref("q4"),
        ref("q5", "1999")]
PREDS = {"q1": "eiffel tower!", "q2": "President Barack Obama", "q3": "", "q4": "Paris",
         "q5": "in 1998"}
# raw scores:   q1 exact 1 f1 1 | q2 exact 0 f1 0.8 | q3 (no answer, "") 1 1 |
#               q4 (no answer, "Paris") 0 0 | q5 0 0
PROBS = {"q1": 0.1, "q2": 0.4, "q3": 0.9, "q4": 0.8, "q5": 0.7}


def test_squad_v2_metrics_hasans_noans_split():
    m = squad_v2_metrics(REFS, PREDS)
    expected = {
        "exact": 40.0,                  # (1 + 0 + 1 + 0 + 0) / 5
        "f1": 56.0,                     # (1 + 0.8 + 1 + 0 + 0) / 5
        "total": 5,
        "HasAns_exact": 100 / 3,        # q1, q2, q5: 1 / 3
        "HasAns_f1": 60.0,              # (1 + 0.8 + 0) / 3
        "HasAns_total": 3,
        "NoAns_exact": 50.0,            # q3, q4: 1 / 2
        "NoAns_f1": 50.0,
        "NoAns_total": 2,
        # all probabilities 0.0, walked in prediction order from score = #NoAns = 2:
        # exact: q1 +1 -> 3 (best), q2 +0, q3 0 ("" pred), q4 -1, q5 +0 -> best 3 / 5
        "best_exact": 60.0, "best_exact_thresh": 0.0,
        # f1: q1 +1 -> 3, q2 +0.8 -> 3.8 (best), q3 0, q4 -1, q5 0 -> best 3.8 / 5
        "best_f1": 76.0, "best_f1_thresh": 0.0,
    }
    assert list(m) == list(expected)
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, abs=1e-9), key


def test_best_thresholds_with_no_answer_probs():
    m = squad_v2_metrics(REFS, PREDS, no_answer_probs=PROBS)
    # default threshold 1.0: no probability exceeds it, so exact/f1 are the raw 40 / 56
    assert m["exact"] == pytest.approx(40.0) and m["f1"] == pytest.approx(56.0)
    # walk by rising probability q1 .1, q2 .4, q5 .7, q4 .8, q3 .9 starting from 2:
    # exact: q1 +1 -> 3 @0.1 (best), q2 +0, q5 +0, q4 -1, q3 0 -> 60.0 @ 0.1
    # f1:    q1 +1 -> 3 @0.1, q2 +0.8 -> 3.8 @0.4 (best), q5 0, q4 -1, q3 0 -> 76.0 @ 0.4
    assert m["best_exact"] == pytest.approx(60.0) and m["best_exact_thresh"] == 0.1
    assert m["best_f1"] == pytest.approx(76.0) and m["best_f1_thresh"] == 0.4


def test_no_answer_threshold_turns_confident_questions_into_no_answer():
    m = squad_v2_metrics(REFS, PREDS, no_answer_probs=PROBS, no_answer_threshold=0.5)
    # p > 0.5 -> q3, q4 (no-answer questions) score 1, q5 (answerable) scores 0
    # exact: q1 1, q2 0, q3 1, q4 1, q5 0 = 3 / 5 ; f1: 1 + 0.8 + 1 + 1 + 0 = 3.8 / 5
    assert m["exact"] == pytest.approx(60.0) and m["f1"] == pytest.approx(76.0)
    assert m["HasAns_exact"] == pytest.approx(100 / 3) and m["HasAns_f1"] == pytest.approx(60.0)
    assert m["NoAns_exact"] == pytest.approx(100.0) and m["NoAns_f1"] == pytest.approx(100.0)


def test_threshold_curve():
    thresholds, f1s = threshold_curve(REFS, PREDS, PROBS)
    # t answers p <= t with the raw F1, the rest score 1 if no-answer else 0:
    # 0.1: 1 + 0 + 0 + 1 + 1 = 3 | 0.4: 1 + .8 + 0 + 1 + 1 = 3.8 | 0.7: q5 raw 0 -> 3.8
    # 0.8: q4 raw 0 -> 2.8 | 0.9: q3 raw 1 -> 2.8
    assert thresholds == [0.1, 0.4, 0.7, 0.8, 0.9]
    assert f1s == pytest.approx([60.0, 76.0, 76.0, 56.0, 56.0])
    for t, f1 in zip(thresholds, f1s):
        assert squad_v2_metrics(REFS, PREDS, PROBS, no_answer_threshold=t)["f1"] == \
            pytest.approx(f1)
    # ties collapse to one point
    tied = {"q1": 0.2, "q2": 0.2, "q3": 0.5, "q4": 0.5, "q5": 0.2}
    assert threshold_curve(REFS, PREDS, tied)[0] == [0.2, 0.5]


def test_squad_v1_style_data_has_no_noans_keys():
    refs = [ref("a", "Denver Broncos"), ref("b", "Santa Clara, California", "Santa Clara")]
    preds = {"a": "the Denver Broncos", "b": "Santa Clara", "extra": "ignored"}
    m = squad_v2_metrics(refs, preds)
    assert not any(k.startswith("NoAns") for k in m)
    # a: exact after normalisation (article dropped); b: exact vs the second gold
    assert m["exact"] == 100.0 and m["f1"] == 100.0 and m["total"] == 2
    assert m["HasAns_total"] == 2
    assert m["best_exact"] == 100.0 and m["best_exact_thresh"] == 0.0


def test_all_unanswerable_has_no_hasans_keys():
    m = squad_v2_metrics([ref("x"), ref("y")], {"x": "", "y": "something"})
    assert not any(k.startswith("HasAns") for k in m)
    assert m["exact"] == 50.0 and m["NoAns_total"] == 2


def test_per_question_rows():
    rows = per_question(REFS, PREDS, PROBS)
    assert [r["id"] for r in rows] == ["q1", "q2", "q3", "q4", "q5"]
    assert rows[1] == {"id": "q2", "prediction": "President Barack Obama",
                       "gold": ["Barack Obama"], "exact": 0, "f1": pytest.approx(0.8),
                       "has_answer": True, "no_answer_prob": 0.4}
    assert rows[2]["has_answer"] is False and rows[2]["exact"] == 1
    assert [r["no_answer_prob"] for r in per_question(REFS, PREDS)] == [0.0] * 5


def test_missing_prediction_names_the_id():
    preds = dict(PREDS)
    del preds["q4"]
    with pytest.raises(DataError, match="missing prediction for 1 question.*'q4'"):
        squad_v2_metrics(REFS, preds)
    with pytest.raises(ValueError):
        per_question(REFS, preds)


def test_bad_inputs_raise_data_errors():
    with pytest.raises(DataError, match="duplicate reference id 'q1'"):
        squad_v2_metrics([ref("q1", "a"), ref("q1", "b")], {"q1": "a"})
    with pytest.raises(DataError, match="no_answer_probs lacks"):
        squad_v2_metrics(REFS, PREDS, no_answer_probs={"q1": 0.5})
    with pytest.raises(DataError, match="must be a string"):
        squad_v2_metrics([ref("q1", "a")], {"q1": None})
    with pytest.raises(DataError, match="no references"):
        squad_v2_metrics([], {})


# --------------------------------------------------------------------------- oracle comparison
# An independent transcription of evaluate-v2.0.py's logic over its nested JSON layout
# (data -> paragraphs -> qas), used to check squad_v2_metrics on random inputs to 1e-6.


def _oracle_norm(s):
    s = "".join(c for c in s.lower() if c not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())


def _oracle_f1(gold, pred):
    g = _oracle_norm(gold).split() if gold else []
    p = _oracle_norm(pred).split() if pred else []
    if not g or not p:
        return int(g == p)
    same = sum((collections.Counter(g) & collections.Counter(p)).values())
    if same == 0:
        return 0
    prec, rec = same / len(p), same / len(g)
    return 2 * prec * rec / (prec + rec)


def _oracle(dataset, preds, na_probs, thresh):
    has_ans, exact_raw, f1_raw = {}, {}, {}
    for article in dataset:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                has_ans[qa["id"]] = bool(qa["answers"])
                golds = [a["text"] for a in qa["answers"] if _oracle_norm(a["text"])] or [""]
                exact_raw[qa["id"]] = max(int(_oracle_norm(g) == _oracle_norm(preds[qa["id"]]))
                                          for g in golds)
                f1_raw[qa["id"]] = max(_oracle_f1(g, preds[qa["id"]]) for g in golds)

    def apply(scores):
        return {k: float(not has_ans[k]) if na_probs[k] > thresh else v
                for k, v in scores.items()}

    def block(ex, f1, ids):
        return {"exact": 100.0 * sum(ex[k] for k in ids) / len(ids),
                "f1": 100.0 * sum(f1[k] for k in ids) / len(ids), "total": len(ids)}

    def best(scores):
        cur = best_score = sum(1 for v in has_ans.values() if not v)
        best_t = 0.0
        for k in sorted(na_probs, key=lambda q: na_probs[q]):
            if k not in scores:
                continue
            cur += scores[k] if has_ans[k] else (-1 if preds[k] else 0)
            if cur > best_score:
                best_score, best_t = cur, na_probs[k]
        return 100.0 * best_score / len(scores), best_t

    ex, f1 = apply(exact_raw), apply(f1_raw)
    out = block(ex, f1, list(exact_raw))
    for name, flag in (("HasAns", True), ("NoAns", False)):
        ids = [k for k, v in has_ans.items() if v == flag]
        if ids:
            out.update({f"{name}_{k}": v for k, v in block(ex, f1, ids).items()})
    out["best_exact"], out["best_exact_thresh"] = best(exact_raw)
    out["best_f1"], out["best_f1_thresh"] = best(f1_raw)
    return out


_WORDS = st.sampled_from(["the", "a", "An", "cat", "Cat.", "dog", "dog,", "red", "blue",
                          "1999", "(x)", "e\u0301", "", "!"])
_ANSWER = st.lists(_WORDS, min_size=0, max_size=5).map(" ".join)


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(st.lists(_ANSWER, max_size=3), _ANSWER,
                               st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0])),
                     min_size=1, max_size=12),
       thresh=st.sampled_from([0.0, 0.3, 0.5, 1.0]), with_probs=st.booleans())
def test_matches_official_logic(rows, thresh, with_probs):
    refs = [ref(f"id{i}", *golds) for i, (golds, _, _) in enumerate(rows)]
    preds = {f"id{i}": pred for i, (_, pred, _) in enumerate(rows)}
    probs = {f"id{i}": p for i, (_, _, p) in enumerate(rows)} if with_probs else None
    dataset = [{"paragraphs": [{"qas": [{"id": r["id"], "answers": [
        {"text": t} for t in r["answers"]["text"]]} for r in refs]}]}]
    expected = _oracle(dataset, preds, probs or {k: 0.0 for k in preds}, thresh)
    got = squad_v2_metrics(refs, preds, probs, no_answer_threshold=thresh)
    assert list(got) == list(expected)
    for key in expected:
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key
    if with_probs:
        ts, f1s = threshold_curve(refs, preds, probs)
        for t, f1 in zip(ts, f1s):
            assert _oracle(dataset, preds, probs, t)["f1"] == pytest.approx(f1, abs=1e-6)
