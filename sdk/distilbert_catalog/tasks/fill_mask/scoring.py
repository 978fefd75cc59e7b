"""Fill-mask metrics from ranks and log-probabilities. Pure functions over plain numbers.

A mask stands for one whole word. The model fills it with one vocabulary token, so a prediction
is right when the token, written as a plain word (WordPiece ``##`` removed), equals the true word.
The *rank* of a mask is the 1-based position, in the model's ranking of its whole vocabulary, of
the first token that spells the true word (``None`` when no single token does: a word the
tokenizer splits into pieces, or a capitalised word for an uncased model in the case-sensitive
metrics). Such a mask counts as a miss everywhere: the metrics measure what a user of the
fill-mask endpoint gets back, not a per-piece score.

Worked example: ranks ``[1, 3, None, 7]`` give ``top1_accuracy`` 1/4 = 0.25, ``top5_accuracy``
2/4 = 0.5 and ``mrr`` (1 + 1/3 + 0 + 1/7) / 4 = 0.369.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

Rank = "int | None"


def hits_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of masks whose true word is among the model's top ``k`` tokens."""
    if not ranks:
        return float("nan")
    return sum(r is not None and r <= k for r in ranks) / len(ranks)


def mean_reciprocal_rank(ranks: Sequence[int | None]) -> float:
    """Mean of 1/rank over masks, 0 for a mask no single token spells."""
    if not ranks:
        return float("nan")
    return sum(1.0 / r for r in ranks if r is not None) / len(ranks)


def rank_metrics(ranks: Sequence[int | None], suffix: str = "", ks: Iterable[int] = (1, 5)
                 ) -> dict[str, float]:
    """``top{k}_accuracy{suffix}`` for each k and ``mrr{suffix}``."""
    metrics = {f"top{k}_accuracy{suffix}": hits_at(ranks, k) for k in ks}
    metrics[f"mrr{suffix}"] = mean_reciprocal_rank(ranks)
    return metrics


def accuracy_curve(ranks: Sequence[int | None], max_k: int = 10) -> list[float]:
    """Top-k accuracy for k = 1 .. max_k."""
    return [hits_at(ranks, k) for k in range(1, max_k + 1)]


def pseudo_perplexity(log_likelihoods: Sequence[float], n_tokens: Sequence[int]) -> float:
    """Corpus pseudo-perplexity (Salazar et al., 2020): ``exp(-sum PLL / number of tokens)``.

    ``log_likelihoods[i]`` is text i's pseudo-log-likelihood: the sum, over its tokens t, of
    ``log P(token t | the text with only token t masked)`` (natural log); ``n_tokens[i]`` is how
    many tokens were scored. Example: two texts with PLL -2.0 (2 tokens) and -4.0 (2 tokens) give
    exp(6 / 4) = 4.4817.
    """
    total = sum(n_tokens)
    if total == 0:
        return float("nan")
    return math.exp(-sum(log_likelihoods) / total)
