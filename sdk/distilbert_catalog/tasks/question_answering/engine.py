"""Extractive question answering pre- and post-processing (no model calls).

The flow is::

    windows = encode(tokenizer, questions, contexts, params)
    # the caller pads batches of ``windows.features`` with ``tokenizer.pad`` (right padding)
    # and runs the model to get start/end logits, one row per window
    results = postprocess(start_logits, end_logits, windows, contexts, params)
    catalog = to_answer_lists(results)        # [[{"score", "start", "end", "answer"}, ...], ...]

Long contexts are split into overlapping windows of at most ``max_seq_length`` tokens
(``[CLS] question [SEP] context-slice [SEP]`` for BERT-like tokenizers).  ``doc_stride`` is
the number of context tokens two neighbouring windows *share* (the Hugging Face fast
tokenizer meaning of ``stride``), not the step between window starts.

Span scores are probabilities: per window, the start and end logits are each soft-maxed over
the window's context tokens plus the CLS token, and a span ``(i, j)`` scores
``p_start[i] * p_end[j]``.  The *null score* of a window is ``p_start[CLS] * p_end[CLS]``;
the null score of an example is the minimum over its windows (the window most confident
that the answer is somewhere in it decides).

Null-answer rule (``handle_impossible_answer=True``): the null answer
``{"score": null_score, "start": 0, "end": 0, "answer": ""}`` is ranked among the span
answers by the key ``null_score - null_score_threshold`` (spans are ranked by their score),
so the top answer is "" exactly when ``null_score > best_span_score + null_score_threshold``.
A positive threshold makes "" rarer, a negative one more frequent.  Without
``handle_impossible_answer`` an empty answer is never returned, except for an example
none of whose windows holds a valid span (e.g. an empty context): it gets the null answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from distilbert_catalog.errors import BadRequest, DataError

@dataclass(frozen=True)
class QAParams:
    """Windowing and decoding settings for extractive QA.

    max_seq_length: tokens per window, special tokens included.
    doc_stride: context tokens shared by two consecutive windows of one example.
    max_query_length: question tokens kept (longer questions are cut at a token boundary).
    n_best_size: start and end candidates taken per window.
    max_answer_length: longest answer, in tokens.
    top_k: answers returned per example.
    handle_impossible_answer: allow the empty ("no answer") prediction.
    null_score_threshold: "" wins when null_score > best_span_score + null_score_threshold.
    """

    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    top_k: int = 1
    handle_impossible_answer: bool = False
    null_score_threshold: float = 0.0


@dataclass(frozen=True)
class Windows:
    """Tokenised windows of (question, context) pairs, one entry per window.

    features: model inputs per window exactly as the tokenizer returns them (only keys in
        ``tokenizer.model_input_names``), unpadded, ready for ``tokenizer.pad``.
    example_index: index of the example (question/context pair) each window comes from.
    context_offsets: per window and token, the ``(start, end)`` character span of the token
        in the original context string, or None for question, special and padding tokens.
    cls_index: position of the CLS token in each window (the "no answer" position).
    """

    features: list[dict[str, list[int]]]
    example_index: list[int]
    context_offsets: list[list[tuple[int, int] | None]]
    cls_index: list[int]

    def __len__(self) -> int:
        return len(self.features)

    @property
    def input_ids(self) -> list[list[int]]:
        """Token ids per window."""
        return [f["input_ids"] for f in self.features]

    @property
    def attention_mask(self) -> list[list[int]]:
        """Attention mask per window (all ones: windows are unpadded)."""
        return [f.get("attention_mask", [1] * len(f["input_ids"])) for f in self.features]


@dataclass(frozen=True)
class ExampleResult:
    """Decoded answers of one example.

    answers: up to ``top_k`` dicts ``{"score", "start", "end", "answer"}``, best first, with
        ``answer == context[start:end]``.
    null_score: min over the example's windows of ``p_start[CLS] * p_end[CLS]``.
    best_span_score: score of the best non-empty span, or None when no window has one.
    """

    answers: list[dict[str, Any]]
    null_score: float
    best_span_score: float | None

    @property
    def prediction_text(self) -> str:
        """Text of the top answer ("" for the null answer)."""
        return self.answers[0]["answer"] if self.answers else ""

    @property
    def no_answer_prob(self) -> float:
        """A SQuAD v2 ``na_prob`` in [0, 1]: ``null / (null + best_span)``.

        It is above 0.5 exactly when ``null_score > best_span_score`` (the default decision
        rule), and 1.0 when the example has no valid span at all.
        """
        if self.best_span_score is None:
            return 1.0
        total = self.null_score + self.best_span_score
        return 0.5 if total <= 0.0 else self.null_score / total


# --------------------------------------------------------------------------- validation


def _check_int(name: str, value: Any, minimum: int) -> None:
    """Raise BadRequest unless ``value`` is an int >= minimum (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise BadRequest(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        kind = "positive" if minimum == 1 else f">= {minimum}"
        raise BadRequest(f"{name} must be {kind}, got {value}")


def validate_params(params: QAParams, tokenizer: Any = None) -> None:
    """Check ``params`` (and, given a tokenizer, their fit to it); raise BadRequest if bad.

    Rules: sizes are positive integers (doc_stride may be 0); ``max_seq_length`` is at most
    ``tokenizer.model_max_length``; every window must keep more than ``doc_stride`` context
    tokens, i.e. ``doc_stride < max_seq_length - max_query_length - special tokens for a pair``.
    """
    for name in ("max_seq_length", "max_query_length", "n_best_size", "max_answer_length",
                 "top_k"):
        _check_int(name, getattr(params, name), 1)
    _check_int("doc_stride", params.doc_stride, 0)
    if not isinstance(params.handle_impossible_answer, (bool, np.bool_)):
        raise BadRequest("handle_impossible_answer must be true or false, "
                         f"got {params.handle_impossible_answer!r}")
    threshold = params.null_score_threshold
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) \
            or not math.isfinite(threshold):
        raise BadRequest(f"null_score_threshold must be a finite number, got {threshold!r}")
    if tokenizer is None:
        return
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("question answering needs a fast tokenizer (character offsets); "
                         f"{type(tokenizer).__name__} is not one")
    model_max = getattr(tokenizer, "model_max_length", None)
    if model_max is not None and params.max_seq_length > model_max:
        raise BadRequest(f"max_seq_length={params.max_seq_length} is larger than the model "
                         f"maximum {model_max}; use max_seq_length <= {model_max}")
    special = tokenizer.num_special_tokens_to_add(pair=True)
    room = params.max_seq_length - params.max_query_length - special
    if room <= 0:
        raise BadRequest(
            f"max_seq_length={params.max_seq_length} leaves no room for the context after a "
            f"question of max_query_length={params.max_query_length} tokens and {special} "
            f"special tokens; raise max_seq_length or lower max_query_length")
    if params.doc_stride >= room:
        raise BadRequest(
            f"doc_stride={params.doc_stride} must be smaller than max_seq_length - "
            f"max_query_length - {special} special tokens = {room} (the context tokens a window "
            f"can hold), or windows would not advance; use doc_stride <= {room - 1}, "
            f"e.g. {room // 2}")


def _check_texts(questions: Sequence[str], contexts: Sequence[str]) -> None:
    """Raise BadRequest unless questions and contexts are equally long lists of strings."""
    if isinstance(questions, str) or isinstance(contexts, str):
        raise BadRequest("questions and contexts must be lists of strings, not single strings")
    if len(questions) != len(contexts):
        raise BadRequest(f"got {len(questions)} questions but {len(contexts)} contexts; "
                         "give one context per question")
    for kind, texts in (("question", questions), ("context", contexts)):
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise BadRequest(f"{kind} {i} must be a string, got {type(text).__name__}")


# --------------------------------------------------------------------------- encoding


def _fits(tokenizer: Any, text: str, limit: int) -> bool:
    """True when ``text`` tokenises to at most ``limit`` tokens (no special tokens)."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= limit


def truncate_questions(tokenizer: Any, questions: Sequence[str],
                       max_query_length: int) -> list[str]:
    """Cut each question after its ``max_query_length``-th token, at that token's end offset.

    Leading whitespace is dropped.  If a cut inside a word re-tokenises into more tokens,
    the cut moves back one token at a time until the prefix fits.
    """
    stripped = [q.lstrip() for q in questions]
    if not stripped:
        return []
    enc = tokenizer(stripped, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for q, ids, offsets in zip(stripped, enc["input_ids"], enc["offset_mapping"]):
        keep = max_query_length
        if len(ids) <= keep:
            out.append(q)
            continue
        cut = ""
        while keep > 0:
            cut = q[: offsets[keep - 1][1]].rstrip()
            if _fits(tokenizer, cut, max_query_length):
                break
            keep -= 1
        out.append(cut if keep > 0 else "")
    return out


def _cls_position(input_ids: list[int], cls_token_id: int | None) -> int:
    """Index of the CLS token in a window (0 when the tokenizer has none)."""
    if cls_token_id is not None and cls_token_id in input_ids:
        return input_ids.index(cls_token_id)
    return 0


def encode(tokenizer: Any, questions: Sequence[str], contexts: Sequence[str],
           params: QAParams = QAParams()) -> Windows:
    """Tokenise (question, context) pairs into overlapping windows over the context.

    Questions are cut to ``max_query_length`` tokens; contexts are split with
    ``truncation="only_second"`` and ``stride=doc_stride``.  Nothing is padded.
    """
    validate_params(params, tokenizer)
    _check_texts(questions, contexts)
    if len(questions) == 0:
        return Windows([], [], [], [])
    cut_questions = truncate_questions(tokenizer, questions, params.max_query_length)
    enc = tokenizer(cut_questions, list(contexts), truncation="only_second",
                    max_length=params.max_seq_length, stride=params.doc_stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True,
                    padding=False)
    keys = [k for k in tokenizer.model_input_names if k in enc]
    features, offsets, cls_index = [], [], []
    for w in range(len(enc["input_ids"])):
        feature = {k: list(enc[k][w]) for k in keys}
        sequence_ids = enc.sequence_ids(w)
        offsets.append([tuple(int(x) for x in o) if s == 1 else None
                        for o, s in zip(enc["offset_mapping"][w], sequence_ids)])
        cls_index.append(_cls_position(feature["input_ids"], tokenizer.cls_token_id))
        features.append(feature)
    return Windows(features, [int(i) for i in enc["overflow_to_sample_mapping"]],
                   offsets, cls_index)


# --------------------------------------------------------------------------- decoding


def _masked_softmax(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Softmax over the ``allowed`` positions; other positions get probability 0."""
    masked = np.where(allowed, logits, -np.inf)
    shifted = np.exp(masked - masked[allowed].max())
    return shifted / shifted.sum()


def _window_logits(logits: Any, length: int, window: int, which: str) -> np.ndarray:
    """The first ``length`` logits of one window as float64; padding beyond is ignored."""
    row = np.asarray(logits, dtype=np.float64).reshape(-1)
    if row.shape[0] < length:
        raise RuntimeError(f"window {window} has {length} tokens but only {row.shape[0]} "
                         f"{which} logits; pass one logit per token (padding is ignored)")
    return row[:length]


def _window_spans(p_start: np.ndarray, p_end: np.ndarray,
                  offsets: list[tuple[int, int] | None], context: str,
                  params: QAParams) -> list[tuple[int, int, float]]:
    """Valid ``(char_start, char_end, score)`` spans from the top start/end candidates."""
    ctx = np.flatnonzero([o is not None for o in offsets])
    if ctx.size == 0:
        return []
    k = min(params.n_best_size, ctx.size)
    starts = ctx[np.argsort(-p_start[ctx], kind="stable")[:k]]
    ends = ctx[np.argsort(-p_end[ctx], kind="stable")[:k]]
    s_grid, e_grid = np.meshgrid(starts, ends, indexing="ij")
    valid = (s_grid <= e_grid) & (e_grid - s_grid + 1 <= params.max_answer_length)
    spans = []
    for s_tok, e_tok in zip(s_grid[valid], e_grid[valid]):
        char_start, char_end = offsets[s_tok][0], offsets[e_tok][1]
        if char_end <= char_start or not context[char_start:char_end].strip():
            continue
        spans.append((char_start, char_end, float(p_start[s_tok] * p_end[e_tok])))
    return spans


def _decode_window(start: Any, end: Any, windows: Windows, w: int, context: str,
                   params: QAParams) -> tuple[float, list[tuple[int, int, float]]]:
    """Null score and candidate spans of window ``w``."""
    offsets = windows.context_offsets[w]
    cls = windows.cls_index[w]
    s = _window_logits(start, len(offsets), w, "start")
    e = _window_logits(end, len(offsets), w, "end")
    allowed = np.array([o is not None for o in offsets])
    allowed[cls] = True
    if not (np.isfinite(s[allowed]).all() and np.isfinite(e[allowed]).all()):
        raise RuntimeError(f"window {w} has non-finite start/end logits at context or CLS "
                         "positions; check the model output")
    p_start, p_end = _masked_softmax(s, allowed), _masked_softmax(e, allowed)
    null = float(p_start[cls] * p_end[cls])
    return null, _window_spans(p_start, p_end, offsets, context, params)


def _rank_answers(spans: dict[tuple[int, int], float], null_score: float, context: str,
                  params: QAParams) -> list[dict[str, Any]]:
    """Top-k answer dicts from merged spans, adding the null answer per the null rule."""
    null_answer = {"score": null_score, "start": 0, "end": 0, "answer": ""}
    if not spans:
        return [null_answer]
    ranked = [(score, {"score": score, "start": s, "end": e, "answer": context[s:e]})
              for (s, e), score in spans.items()]
    if params.handle_impossible_answer:
        ranked.append((null_score - params.null_score_threshold, null_answer))
    ranked.sort(key=lambda item: (-item[0], item[1]["start"], item[1]["end"]))
    return [answer for _, answer in ranked[: params.top_k]]


def postprocess(start_logits: Sequence[Any], end_logits: Sequence[Any], windows: Windows,
                contexts: Sequence[str], params: QAParams = QAParams()) -> list[ExampleResult]:
    """Turn per-window start/end logits into ranked answers per example.

    ``start_logits[w]``/``end_logits[w]`` hold window ``w``'s logits (lists, numpy rows or a
    2-D array); rows may be right-padded longer than the window.  Spans identical in
    characters (e.g. from overlapping windows) are merged keeping the best score.
    """
    validate_params(params)
    if len(start_logits) != len(windows) or len(end_logits) != len(windows):
        raise RuntimeError(f"got {len(start_logits)} start and {len(end_logits)} end logit rows "
                         f"for {len(windows)} windows; pass one row per window")
    if windows.example_index and max(windows.example_index) >= len(contexts):
        raise RuntimeError(f"windows refer to example {max(windows.example_index)} but only "
                         f"{len(contexts)} contexts were given; pass the contexts used in encode")
    nulls: list[float] = [math.inf] * len(contexts)
    spans: list[dict[tuple[int, int], float]] = [{} for _ in contexts]
    for w, example in enumerate(windows.example_index):
        null, found = _decode_window(start_logits[w], end_logits[w], windows, w,
                                     contexts[example], params)
        nulls[example] = min(nulls[example], null)
        merged = spans[example]
        for s, e, score in found:
            if score > merged.get((s, e), -1.0):
                merged[(s, e)] = score
    results = []
    for example, context in enumerate(contexts):
        null = nulls[example] if math.isfinite(nulls[example]) else 1.0
        best = max(spans[example].values()) if spans[example] else None
        answers = _rank_answers(spans[example], null, context, params)
        results.append(ExampleResult(answers, null, best))
    return results


def to_answer_lists(results: Sequence[ExampleResult]) -> list[list[dict[str, Any]]]:
    """The catalog output: per example, the list of answer dicts (best first)."""
    return [[dict(a) for a in r.answers] for r in results]


# --------------------------------------------------------------------------- training


def _answer_char_span(row: int, context: str,
                      answer: Mapping[str, Any]) -> tuple[int, int] | None:
    """Character span of the first gold answer (whitespace-trimmed), None if unanswerable."""
    try:
        texts, starts = answer["text"], answer["answer_start"]
    except (KeyError, TypeError):
        raise DataError('answers must be {"text": [...], "answer_start": [...]}',
                        row=row, column="answers") from None
    if len(texts) == 0:
        return None
    if len(starts) == 0:
        raise DataError("answer text given without answer_start", row=row, column="answers")
    text, start = texts[0], starts[0]
    if not isinstance(text, str) or isinstance(start, bool) \
            or not isinstance(start, (int, np.integer)):
        raise DataError("answer text must be a string and answer_start an integer",
                        row=row, column="answers")
    if start < 0 or context[start:start + len(text)] != text:
        found = context[start:start + len(text)] if start >= 0 else ""
        raise DataError(f"answer_start {start} does not point at the answer {text!r} "
                        f"(the context has {found!r} there); fix answer_start or the text",
                        row=row, column="answers")
    stripped = text.strip()
    if not stripped:
        raise DataError("answer text is empty or blank; use empty text/answer_start lists "
                        "for an unanswerable question", row=row, column="answers")
    lead = len(text) - len(text.lstrip())
    return start + lead, start + lead + len(stripped)


def _label_window(offsets: list[tuple[int, int] | None], cls: int,
                  span: tuple[int, int] | None) -> tuple[int, int]:
    """Start/end token labels for one window: the answer tokens, or CLS if not fully inside."""
    ctx = [i for i, o in enumerate(offsets) if o is not None]
    if span is None or not ctx:
        return cls, cls
    char_start, char_end = span
    if offsets[ctx[0]][0] > char_start or offsets[ctx[-1]][1] < char_end:
        return cls, cls
    start_tok = max(i for i in ctx if offsets[i][0] <= char_start)
    end_tok = min(i for i in ctx if i >= start_tok and offsets[i][1] >= char_end)
    return start_tok, end_tok


def prepare_train_features(tokenizer: Any, questions: Sequence[str], contexts: Sequence[str],
                           answers: Sequence[Mapping[str, Any]],
                           params: QAParams = QAParams()) -> dict[str, list]:
    """SQuAD-style training features: model inputs plus ``start_positions``/``end_positions``.

    Each window is labelled with the token indices of the first gold answer, or with the CLS
    index when the answer is not fully inside the window or the example has no answer
    (``{"text": [], "answer_start": []}``).  Raises DataError for misaligned answers.
    """
    if len(answers) != len(contexts):
        raise ValueError(f"got {len(answers)} answers for {len(contexts)} contexts; "
                         "give one answers entry per example")
    _check_texts(questions, contexts)
    spans = [_answer_char_span(i, c, a) for i, (c, a) in enumerate(zip(contexts, answers))]
    windows = encode(tokenizer, questions, contexts, params)
    keys = [k for k in tokenizer.model_input_names
            if not windows.features or k in windows.features[0]]
    out: dict[str, list] = {k: [f[k] for f in windows.features] for k in keys}
    labels = [_label_window(offsets, cls, spans[example]) for offsets, cls, example in
              zip(windows.context_offsets, windows.cls_index, windows.example_index)]
    out["start_positions"] = [s for s, _ in labels]
    out["end_positions"] = [e for _, e in labels]
    return out
