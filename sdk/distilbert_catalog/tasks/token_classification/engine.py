"""Token classification mechanics as pure functions over token ids, offsets and numpy arrays.

* :func:`encode_texts` / :func:`encode_words` - tokenise raw strings or pre-tokenized sentences
  once, without special tokens, keeping each token's character span in the input and its word;
* :func:`window_spans` / :func:`window_features` - split a long token sequence into overlapping
  windows the model can take (never truncating), and merge per-window scores back
  (:func:`merge_windows`: every token is scored by the window where it has the most context);
* :func:`align_labels` - word tags to token labels for training (first sub-token or all);
* :func:`word_tags` - one predicted tag per word (its first sub-token), for evaluation;
* :func:`entities` - token scores to entity spans with the aggregation strategies of the
  transformers token-classification pipeline (none, simple, first, average, max).

Entity ``start``/``end`` are character offsets into the input string (for pre-tokenized input,
into its words joined by single spaces) and ``word`` is always ``text[start:end]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

IGNORE = -100  # the label id the loss ignores
STRATEGIES = ("none", "simple", "first", "average", "max")
SEPARATOR = " "  # joins pre-tokenized words into the text that entity offsets point into


@dataclass
class Encoded:
    """One input, tokenised without special tokens."""

    text: str
    input_ids: list[int]
    offsets: list[tuple[int, int]]  # character span of each token in ``text``
    word_ids: list[int]             # index of the word each token belongs to
    n_words: int

    def __len__(self) -> int:
        return len(self.input_ids)


def joined_spans(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The text of ``words`` joined by :data:`SEPARATOR` and each word's character span in it."""
    spans, start = [], 0
    for word in words:
        spans.append((start, start + len(word)))
        start += len(word) + len(SEPARATOR)
    return SEPARATOR.join(words), spans


def encode_texts(tokenizer, texts: Sequence[str]) -> list[Encoded]:
    """Raw strings; words are the tokenizer's pre-tokens (whitespace and punctuation split)."""
    if not texts:
        return []
    enc = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True,
                    verbose=False)
    out = []
    for i, text in enumerate(texts):
        word_ids = [w if w is not None else -1 for w in enc.word_ids(i)]
        n_words = max(word_ids, default=-1) + 1
        out.append(Encoded(text, list(enc["input_ids"][i]),
                           [tuple(o) for o in enc["offset_mapping"][i]], word_ids, n_words))
    return out


def encode_words(tokenizer, sentences: Sequence[Sequence[str]]) -> list[Encoded]:
    """Pre-tokenized sentences; words are the given ones, offsets point into the joined text."""
    if not sentences:
        return []
    enc = tokenizer([list(s) for s in sentences], is_split_into_words=True,
                    add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    out = []
    for i, words in enumerate(sentences):
        text, spans = joined_spans(words)
        word_ids = [w if w is not None else -1 for w in enc.word_ids(i)]
        offsets = [(spans[w][0] + a, spans[w][0] + b)
                   for w, (a, b) in zip(word_ids, enc["offset_mapping"][i])]
        out.append(Encoded(text, list(enc["input_ids"][i]), offsets, word_ids, len(words)))
    return out


@dataclass(frozen=True)
class Template:
    """The special tokens a model wraps one sequence in (e.g. ``[CLS] ... [SEP]``)."""

    prefix: list[int]
    suffix: list[int]

    @classmethod
    def of(cls, tokenizer) -> "Template":
        enc = tokenizer("a", return_special_tokens_mask=True)
        ids, mask = enc["input_ids"], enc["special_tokens_mask"]
        content = [i for i, m in enumerate(mask) if not m]
        if not content:
            raise RuntimeError("the tokenizer produced no content token for 'a'")
        return cls(list(ids[:content[0]]), list(ids[content[-1] + 1:]))

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.suffix)

    def wrap(self, ids: Sequence[int]) -> list[int]:
        return self.prefix + list(ids) + self.suffix


def window_spans(n_tokens: int, max_content: int, stride: int) -> list[tuple[int, int]]:
    """``[start, end)`` token ranges of at most ``max_content`` tokens covering ``n_tokens``.

    Consecutive windows share ``stride`` tokens. A sequence that fits is one window.
    """
    if max_content < 1:
        raise ValueError(f"windows need room for at least one token; got {max_content}")
    if not 0 <= stride < max_content:
        raise ValueError(f"stride must be in 0..{max_content - 1} (tokens per window minus "
                         f"one); got {stride}")
    if n_tokens <= max_content:
        return [(0, n_tokens)]
    spans, start = [], 0
    while True:
        end = min(start + max_content, n_tokens)
        spans.append((start, end))
        if end == n_tokens:
            return spans
        start += max_content - stride


def context(position: int, span: tuple[int, int], n_tokens: int) -> int:
    """How much context token ``position`` has in window ``span`` (the nearer window edge).

    An edge that is also the edge of the whole sequence does not limit the context.
    """
    start, end = span
    left = position - start if start > 0 else n_tokens
    right = end - 1 - position if end < n_tokens else n_tokens
    return min(left, right)


@dataclass
class Window:
    """One model input cut from an encoded input: its row, token range and features."""

    row: int
    span: tuple[int, int]
    features: dict[str, list[int]]


def window_features(encoded: Sequence[Encoded], template: Template, max_seq_length: int,
                    stride: int) -> list[Window]:
    """Every input's windows, wrapped in the model's special tokens, in input order."""
    max_content = max_seq_length - template.n_special
    windows = []
    for row, enc in enumerate(encoded):
        for start, end in window_spans(len(enc), max_content, stride):
            ids = template.wrap(enc.input_ids[start:end])
            windows.append(Window(row, (start, end),
                                  {"input_ids": ids, "attention_mask": [1] * len(ids)}))
    return windows


def merge_windows(encoded: Sequence[Encoded], windows: Sequence[Window],
                  window_scores: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per input, one score row per token, each from the window where it has most context.

    ``window_scores[k]`` holds one row per content token of ``windows[k]`` (special tokens
    already removed).
    """
    merged = [np.zeros((len(enc), 0), dtype=np.float32) for enc in encoded]
    best = [np.full(len(enc), -1) for enc in encoded]
    for window, scores in zip(windows, window_scores):
        enc = encoded[window.row]
        start, end = window.span
        if merged[window.row].shape[1] != scores.shape[-1]:
            merged[window.row] = np.zeros((len(enc), scores.shape[-1]), dtype=np.float32)
        for k, position in enumerate(range(start, end)):
            c = context(position, window.span, len(enc))
            if c > best[window.row][position]:
                best[window.row][position] = c
                merged[window.row][position] = scores[k]
    return merged


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, computed as the transformers pipeline does."""
    shifted = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------- training labels

def continuation_label(labels: Sequence[str]) -> list[int]:
    """For every label id, the id a word's later sub-tokens get with ``label_all_tokens``:
    ``B-X`` becomes ``I-X`` when the tag set has it, anything else stays."""
    index = {name: i for i, name in enumerate(labels)}
    return [index.get("I-" + name[2:], i) if name.startswith("B-") else i
            for i, name in enumerate(labels)]


def align_labels(enc: Encoded, word_labels: Sequence[int], *, label_all_tokens: bool = False,
                 continuation: Sequence[int] | None = None) -> list[int]:
    """One label per token: the word's label on its first sub-token, :data:`IGNORE` (or, with
    ``label_all_tokens``, the word's continuation label) on the others."""
    out, previous = [], -1
    for word in enc.word_ids:
        if word < 0:
            out.append(IGNORE)
        elif word != previous:
            out.append(int(word_labels[word]))
        else:
            label = int(word_labels[word])
            out.append((continuation[label] if continuation else label) if label_all_tokens
                       else IGNORE)
        previous = word
    return out


def first_tokens(enc: Encoded) -> list[int]:
    """Per word, the index of its first token (-1 for a word that produced no token)."""
    first = [-1] * enc.n_words
    for position, word in enumerate(enc.word_ids):
        if word >= 0 and first[word] < 0:
            first[word] = position
    return first


def word_tags(enc: Encoded, scores: np.ndarray, id2label: Mapping[int, str],
              default: str = "O") -> list[str]:
    """One tag per word: the best label of its first sub-token (``default`` for a word without
    tokens, e.g. a lone zero-width character)."""
    return [id2label[int(np.argmax(scores[t]))] if t >= 0 else default
            for t in first_tokens(enc)]


# --------------------------------------------------------------------------- aggregation

def split_tag(tag: str) -> tuple[str, str]:
    """(``B``/``I``, type) the way the transformers pipeline reads a tag; ``O`` is ("I", "O")."""
    if tag.startswith("B-"):
        return "B", tag[2:]
    if tag.startswith("I-"):
        return "I", tag[2:]
    return "I", tag


def _units(enc: Encoded, scores: np.ndarray, id2label: Mapping[int, str], strategy: str
           ) -> list[tuple[str, float, int, int]]:
    """(tag, score, start, end) per token (none, simple) or per word (first, average, max)."""
    tokens = [t for t in range(len(enc)) if enc.offsets[t][1] > enc.offsets[t][0]]
    if strategy in ("none", "simple"):
        units = []
        for t in tokens:
            best = int(np.argmax(scores[t]))
            units.append((id2label[best], float(scores[t][best]), *enc.offsets[t]))
        return units
    groups: list[list[int]] = []
    for t in tokens:
        if groups and enc.word_ids[t] == enc.word_ids[groups[-1][-1]]:
            groups[-1].append(t)
        else:
            groups.append([t])
    units = []
    for group in groups:
        if strategy == "first":
            row = scores[group[0]]
        elif strategy == "max":
            row = scores[max(group, key=lambda t: scores[t].max())]
        elif strategy == "average":
            row = np.nanmean(scores[group], axis=0)
        else:
            raise ValueError(f"unknown aggregation strategy {strategy!r}; use one of "
                             f"{list(STRATEGIES)}")
        best = int(np.argmax(row))
        units.append((id2label[best], float(row[best]), enc.offsets[group[0]][0],
                      enc.offsets[group[-1]][1]))
    return units


def entities(enc: Encoded, scores: np.ndarray, id2label: Mapping[int, str],
             strategy: str = "simple", ignore: Sequence[str] = ("O",)) -> list[dict]:
    """Entity spans of one input, best-first in reading order.

    ``none``: every token with its own tag. ``simple``: neighbouring tokens grouped like the
    transformers pipeline does (a ``B-`` tag or a change of type starts a new entity; the
    score is the mean of the token scores). ``first``/``average``/``max``: each word takes the
    tag of its first sub-token / of its averaged scores / of its most confident sub-token,
    then words are grouped as in ``simple``. Tags in ``ignore`` are dropped.
    """
    units = _units(enc, scores, id2label, strategy)
    if strategy == "none":
        return [_entity(enc.text, tag, score, start, end)
                for tag, score, start, end in units if tag not in ignore]
    groups: list[list[tuple[str, float, int, int]]] = []
    for unit in units:
        bi, kind = split_tag(unit[0])
        if groups and bi != "B" and split_tag(groups[-1][-1][0])[1] == kind:
            groups[-1].append(unit)
        else:
            groups.append([unit])
    out = []
    for group in groups:
        kind = group[0][0].split("-", 1)[-1]
        if kind in ignore:
            continue
        score = float(np.nanmean([u[1] for u in group]))
        out.append(_entity(enc.text, kind, score, group[0][2], group[-1][3]))
    return out


def _entity(text: str, group: str, score: float, start: int, end: int) -> dict:
    return {"entity_group": group, "score": score, "word": text[start:end], "start": int(start),
            "end": int(end)}
