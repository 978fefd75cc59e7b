"""Fill-mask inference: mask-only logits, windowed features, ranking of the vocabulary.

Only the logits at mask positions ever leave the model: :func:`masked_lm_forward` runs the
encoder, gathers the hidden states at the mask positions and applies the masked-LM head to those
alone, so a batch costs ``masks x vocabulary`` floats instead of ``batch x length x vocabulary``.

A mask stands for a word, so the tokenizer's special tokens ([CLS], [SEP], [PAD], [MASK], [UNK]
and any other it declares special; :func:`special_ids`) are never candidates: they are left out
of every ranking (answers, top-k, ranks in evaluation). Probabilities stay the model's own over
its whole vocabulary (softmax first, then the special tokens are dropped), as the transformers
pipeline reports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .masks import Window, mask_windows

#: names of the masked-LM head layers of a DistilBertForMaskedLM, applied in this order
DISTILBERT_HEAD = ("vocab_transform", "activation", "vocab_layer_norm", "vocab_projector")


@dataclass
class MaskLogits:
    """Logits at the mask positions of a batch, row by row (row-major order)."""

    logits: torch.Tensor         # (masks in the batch) x vocabulary
    counts: list[int]            # masks in each batch row


def mlm_head(model) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The masked-LM head as a function of hidden states, or None when the model hides it."""
    if all(hasattr(model, name) for name in DISTILBERT_HEAD):
        layers = [getattr(model, name) for name in DISTILBERT_HEAD]

        def head(hidden):
            for layer in layers:
                hidden = layer(hidden)
            return hidden
        return head
    for name in ("cls", "lm_head"):  # BERT-style and RoBERTa-style masked-LM heads
        if isinstance(getattr(model, name, None), torch.nn.Module):
            return getattr(model, name)
    return None


def masked_lm_forward(model, mask_token_id: int):
    """A forward pass returning :class:`MaskLogits` for the ``mask_token_id`` positions."""
    head = mlm_head(model)

    def forward(batch) -> MaskLogits:
        where = batch["input_ids"] == mask_token_id
        with torch.inference_mode():
            if head is None:  # a model without a reachable head: full logits, gathered at once
                logits = model(**batch).logits[where]
            else:
                hidden = model.base_model(**batch).last_hidden_state
                logits = head(hidden[where])
        return MaskLogits(logits, where.sum(dim=1).tolist())

    return forward


def log_probs(output: MaskLogits) -> torch.Tensor:
    return torch.log_softmax(output.logits.float(), dim=-1)


def special_ids(tokenizer, vocab_size: int) -> list[int]:
    """Ids below ``vocab_size`` of every token the tokenizer declares special, sorted.

    ``all_special_ids`` ([CLS], [SEP], [PAD], [MASK], [UNK] and additional special tokens) and
    any added token marked ``special``.
    """
    ids = set(tokenizer.all_special_ids)
    ids |= {i for i, token in getattr(tokenizer, "added_tokens_decoder", {}).items()
            if token.special}
    return sorted(i for i in ids if i is not None and 0 <= i < vocab_size)


def _without(values: torch.Tensor, excluded: Sequence[int]) -> torch.Tensor:
    """``values`` with the ``excluded`` ids at -inf: never ranked, never counted better."""
    if not len(excluded):
        return values
    return values.index_fill(1, torch.tensor(list(excluded), device=values.device), float("-inf"))


def word_log_probs(output: MaskLogits, excluded: Sequence[int]) -> torch.Tensor:
    """:func:`log_probs` with the ``excluded`` ids at -inf."""
    return _without(log_probs(output), excluded)


def word_logits(output: MaskLogits, excluded: Sequence[int]) -> torch.Tensor:
    """The logits with the ``excluded`` ids at -inf: what ranks are counted on (the same order as
    log-probabilities, without the rounding of subtracting a normaliser that the excluded ids'
    logits change)."""
    return _without(output.logits.float(), excluded)


def split_rows(values: torch.Tensor, counts: Sequence[int]) -> list[torch.Tensor]:
    return list(torch.split(values, list(counts)))


def ranks_of(row: torch.Tensor, candidates: Sequence[int]) -> int | None:
    """Best 1-based rank, in ``row``'s ranking of the vocabulary, of any candidate token."""
    if not candidates:
        return None
    values = row[list(candidates)]
    better = (row.unsqueeze(0) > values.unsqueeze(1)).sum(dim=1)
    return int(better.min()) + 1


def top_tokens_extract(top_k: int, with_ranks: bool = False, excluded: Sequence[int] = ()):
    """``extract`` for :meth:`Predictor.run`: per window, per mask, the top-k ids and probabilities.

    Ids in ``excluded`` (the special tokens) are neither returned nor counted in a rank. With
    ``with_ranks`` the batch carries ``candidates``: per window row, per mask, a tuple of
    candidate-id lists; each mask's result then also holds the best rank of each list.
    """
    def extract(output: MaskLogits, batch, lengths) -> list[list[dict]]:
        logp = word_log_probs(output, excluded)
        k = min(top_k, logp.shape[-1] - len(excluded))
        values, ids = logp.topk(k, dim=-1)
        scores = word_logits(output, excluded) if with_ranks else logp
        rows = []
        for r, (row_scores, row_values, row_ids) in enumerate(zip(
                split_rows(scores, output.counts), split_rows(values, output.counts),
                split_rows(ids, output.counts))):
            masks = []
            for j in range(row_ids.shape[0]):
                item = {"ids": row_ids[j].tolist(), "probs": row_values[j].exp().tolist()}
                if with_ranks:
                    item["ranks"] = [ranks_of(row_scores[j], c)
                                     for c in batch["candidates"][r][j]]
                masks.append(item)
            rows.append(masks)
        return rows

    return extract


def gold_log_prob_extract(output: MaskLogits, batch, lengths) -> list[float]:
    """``extract`` for pseudo-perplexity copies: one mask per row, its gold token's log-prob."""
    logp = log_probs(output)
    if output.counts != [1] * len(output.counts):
        raise ValueError(f"pseudo-perplexity copies must hold exactly one mask each; got "
                         f"{output.counts}")
    gold = torch.tensor(batch["gold"], device=logp.device)
    return logp.gather(1, gold.unsqueeze(1)).squeeze(1).tolist()


# --------------------------------------------------------------------------- features

@dataclass
class EncodedText:
    """One text's token ids (no special tokens), its mask positions and the windows reading it."""

    ids: list[int]
    positions: list[int]
    windows: list[Window] = field(default_factory=list)
    answers: list[tuple[int, int]] = field(default_factory=list)


def window_content(tokenizer, window_tokens: int) -> int:
    """Text tokens a window of ``window_tokens`` holds besides the special tokens."""
    return window_tokens - tokenizer.num_special_tokens_to_add(pair=False)


def model_window(model, tokenizer, limit: int | None = None) -> int:
    """Tokens per forward pass: the model's position limit, the tokenizer's, and ``limit``."""
    sizes = [getattr(model.config, "max_position_embeddings", None),
             getattr(tokenizer, "model_max_length", None), limit]
    return min(int(s) for s in sizes if s)


def encode_texts(tokenizer, texts: Sequence[str], content: int) -> list[EncodedText]:
    """Tokenise texts already written with the tokenizer's mask token; plan their windows."""
    ids_list = tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
    encoded = []
    for ids in ids_list:
        positions = [i for i, token in enumerate(ids) if token == tokenizer.mask_token_id]
        windows, answers = mask_windows(len(ids), positions, content)
        encoded.append(EncodedText(list(ids), positions, windows, answers))
    return encoded


def special_frame(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after one text ([CLS] ... [SEP])."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(plain) + 1):
        if full[i:i + len(plain)] == plain:
            return full[:i], full[i + len(plain):]
    raise ValueError("cannot find where this tokenizer puts a text between its special tokens")


def window_feature(frame: tuple[list[int], list[int]], ids: Sequence[int], window: Window
                   ) -> dict:
    prefix, suffix = frame
    input_ids = [*prefix, *ids[window.start:window.end], *suffix]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids)}


def pseudo_perplexity_features(tokenizer, ids: Sequence[int], content: int,
                               frame: tuple[list[int], list[int]] | None = None) -> list[dict]:
    """One copy of the text per token with that token masked, each read through its window."""
    frame = frame or special_frame(tokenizer)
    features = []
    for position, gold in enumerate(ids):
        masked = list(ids)
        masked[position] = tokenizer.mask_token_id
        (window,), _ = mask_windows(len(masked), [position], content)
        features.append({**window_feature(frame, masked, window), "gold": int(gold)})
    return features


# --------------------------------------------------------------------------- words

def plain_words(tokenizer, ids: Sequence[int]) -> list[str]:
    """Tokens as plain words: decoded one by one, stripped, WordPiece's ``##`` removed."""
    words = tokenizer.batch_decode([[int(i)] for i in ids])
    return [w.strip().removeprefix("##") for w in words]


@dataclass
class WordIndex:
    """Vocabulary tokens that can stand for a whole word, by plain word and by its lower case."""

    exact: dict[str, list[int]]
    lower: dict[str, list[int]]

    @classmethod
    def build(cls, tokenizer, vocab_size: int) -> "WordIndex":
        tokens = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
        words = tokenizer.batch_decode([[i] for i in range(vocab_size)])
        special = set(special_ids(tokenizer, vocab_size))
        exact: dict[str, list[int]] = {}
        lower: dict[str, list[int]] = {}
        for i, (token, word) in enumerate(zip(tokens, words)):
            word = word.strip()
            # a continuation piece (##ing) never stands for a whole word
            if i in special or token is None or token.startswith("##") or not word:
                continue
            exact.setdefault(word, []).append(i)
            lower.setdefault(word.lower(), []).append(i)
        return cls(exact, lower)

    def candidates(self, word: str) -> tuple[list[int], list[int]]:
        """(ids spelling ``word`` exactly, ids spelling it up to letter case)."""
        return self.exact.get(word, []), self.lower.get(word.lower(), [])
