"""MLQA-style answer scoring for answers in any language (Lewis et al., 2020, MLQA's evaluation).

SQuAD's normalisation removes English articles and ASCII punctuation and splits on whitespace, so
an answer in a script written without spaces is one token: a Chinese answer with one wrong
character scores F1 0. MLQA's evaluation, which this module follows, differs in three ways:

* punctuation is every Unicode punctuation character (category ``P*``) and ASCII's;
* articles are the answer language's (``ARTICLES``; none for languages without them);
* characters of scripts written without spaces (CJK ideographs, kana, Thai, Lao, Khmer, Myanmar)
  are one token each, and the words between them stay whole (MLQA's "mixed segmentation").

Example: gold "北京大学", prediction "北京大字": 3 of 4 characters agree, F1 = 0.75; SQuAD's
whitespace F1 is 0.

Lower-casing here is for *scoring* answers only; models and tokenizers see the text as given.
"""

from __future__ import annotations

import re
import string
import unicodedata
from typing import Sequence

from .squad import token_f1

#: articles removed before scoring, per MLQA language code (MLQA's lists; de from its README)
ARTICLES = {
    "en": ("a", "an", "the"),
    "es": ("un", "una", "unos", "unas", "el", "la", "los", "las"),
    "de": ("der", "die", "das", "den", "dem", "des", "ein", "eine", "einer", "eines", "einem",
           "einen"),
    "vi": ("của", "là", "cái", "chiếc", "những"),
    "ar": ("ال",),  # a prefix, not a word: handled in _drop_articles
}
_ASCII_PUNCTUATION = frozenset(string.punctuation)
_NO_SPACES = (
    (0x3040, 0x30FF),    # hiragana, katakana
    (0x3400, 0x4DBF),    # CJK extension A
    (0x4E00, 0x9FFF),    # CJK unified ideographs
    (0xF900, 0xFAFF),    # CJK compatibility ideographs
    (0x20000, 0x2FA1F),  # CJK extensions B-F, compatibility supplement
    (0x0E00, 0x0EFF),    # Thai, Lao
    (0x1000, 0x109F),    # Myanmar
    (0x1780, 0x17FF),    # Khmer
)


def written_without_spaces(char: str) -> bool:
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _NO_SPACES)


def _drop_punctuation(text: str) -> str:
    return "".join(ch for ch in text
                   if not unicodedata.category(ch).startswith("P") and ch not in _ASCII_PUNCTUATION)


def _drop_articles(text: str, language: str) -> str:
    if language == "ar":
        return re.sub(r"(^|\s)ال", r"\1", text)
    words = ARTICLES.get(language)
    if not words:
        return text
    return re.sub(r"(^|\s)(" + "|".join(map(re.escape, words)) + r")(?=\s|$)", r"\1 ", text)


def normalize_answer(text: str, language: str = "en") -> str:
    """Lower-case, drop Unicode punctuation and the language's articles, squash whitespace."""
    text = _drop_punctuation(unicodedata.normalize("NFC", text).lower())
    return " ".join(_drop_articles(" ".join(text.split()), language).split())


def tokens(text: str, language: str = "en") -> list[str]:
    """Normalised tokens: whitespace words, with every no-space-script character its own token."""
    out: list[str] = []
    for word in normalize_answer(text, language).split():
        piece = ""
        for ch in word:
            if written_without_spaces(ch):
                if piece:
                    out.append(piece)
                    piece = ""
                out.append(ch)
            else:
                piece += ch
        if piece:
            out.append(piece)
    return out


def f1_score(gold_answers: Sequence[str], pred: str, language: str = "en") -> float:
    """Best token F1 of ``pred`` over the gold answers (no gold: gold is "")."""
    pred_toks = tokens(pred, language)
    return max(token_f1(tokens(g, language), pred_toks) for g in (list(gold_answers) or [""]))


def exact_score(gold_answers: Sequence[str], pred: str, language: str = "en") -> int:
    """1 when ``pred`` normalises to one of the gold answers, else 0."""
    norm = normalize_answer(pred, language)
    return int(any(normalize_answer(g, language) == norm for g in (list(gold_answers) or [""])))


def mlqa_metrics(golds: Sequence[Sequence[str]], preds: Sequence[str],
                 language: str) -> dict[str, float]:
    """Mean exact match and F1 (0-100, like SQuAD's) over questions."""
    n = len(preds)
    if n == 0:
        return {"mlqa_exact": 0.0, "mlqa_f1": 0.0}
    pairs = list(zip(golds, preds))
    return {"mlqa_exact": 100.0 * sum(exact_score(g, p, language) for g, p in pairs) / n,
            "mlqa_f1": 100.0 * sum(f1_score(g, p, language) for g, p in pairs) / n}
