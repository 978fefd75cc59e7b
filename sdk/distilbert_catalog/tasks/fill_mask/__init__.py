"""Fill-mask: predict the word behind each mask of a text with a masked-language model.

The catalog's base checkpoints (distilbert-base-uncased, -cased, -multilingual-cased) are
masked-LM models, so this task serves and evaluates them as they are (no fine-tune component).

* :mod:`.masks` - mask spellings and the windows a long text is read through (pure);
* :mod:`.engine` - mask-only logits, features, vocabulary ranking;
* :mod:`.scoring` - top-k accuracy, MRR and pseudo-perplexity (pure);
* this module - data columns and validation, request rows and params, answers, evaluation.

Answers (online and batch): one object per input text, whose keys ``"0" .. "k-1"`` are ranks,
best first. For a text with one mask each value is a token as a plain word (no ``##``, no
spaces): ``{"0": "capital"}``. A special token ([CLS], [SEP], [PAD], [MASK], [UNK], ...) is never
a word, so it is never offered, nor counted in a rank in evaluation. For a text with several masks each value is a list with one word
per mask, in text order - ``{"0": ["river", "sea"], "1": ["road", "lake"]}`` - and every mask is
ranked on its own, with the other masks still masked (as the transformers pipeline does), so
``"0"`` holds each mask's best word. The shape is the same for every input, so batch output keeps
one column per rank. With ``return_scores`` each word becomes ``{"token_str", "score", "token"}``
(score: the token's probability at that mask; token: its id).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ...data import Data, is_text, rename_columns
from ...errors import BadRequest, CatalogError
from ..base import EvalResult, Param, Task, cross_entropy, soft_target_loss
from . import engine, scoring
from .arguments import FillMaskArgs, FillMaskDistillArgs
from .masks import count_masks, fill_masks, to_model_masks

TEXTS, MASKS, KINDS = "texts", "masks", "mask_kinds"
#: raw text to distil on (one passage per row)
TEXT = "text"
INPUT = "input_string"
PLOT, CURVE = "top_k_accuracy.png", "top_k_accuracy.json"
#: DistilBERT reads at most 512 tokens, two of them special: no window holds more masks
MAX_MASKS = 510
#: predictions kept per mask in predictions.jsonl (top-1 and top-5 metrics read them)
KEEP = 5
SEED_REQUEST = {INPUT: ["Paris is the [MASK] of France.", "Today is a [MASK] day!"]}


def _at_least_one(value) -> str | None:
    return None if value >= 1 else "must be at least 1"


class FillMask(Task):
    name = "fill-mask"
    title = "fill-mask"
    head = "ForMaskedLM"
    evaluate_args = FillMaskArgs
    evaluate_description = (
        "Evaluates a masked-language model (e.g. a base checkpoint) on texts with masked words "
        "(rcds/wikipedia-for-mask-filling schema, or input_string + true word): top-1 and top-5 "
        "accuracy with exact and any letter case, mean reciprocal rank, and pseudo-perplexity "
        "of the unmasked texts (each token masked in turn). Writes per-text predictions and a "
        "top-k accuracy plot.")
    intended_use = (
        "Predicting a masked word in English text ([MASK] or <mask>), as the pre-trained "
        "checkpoint does out of the box: probing what the model knows, suggesting words, and "
        "checking a checkpoint before fine-tuning it. One vocabulary token per mask, so words the "
        "tokenizer splits are out of reach.")
    quality_metric = "top1_accuracy"
    answer_fields = ("masks",)  # per mask: the top-k words and the true word's rank
    input_columns = (INPUT,)
    input_aliases = {"text": INPUT, "inputs": INPUT, TEXTS: INPUT}
    params = {
        "top_k": Param(int, 1, "tokens returned per mask, best first", _at_least_one,
                       limit="max_top_k"),
        "return_scores": Param(bool, False, "return {token_str, score, token} per rank instead "
                                            "of the word alone"),
    }

    # --- data -----------------------------------------------------------------------------
    def prepare_data(self, data: Data, keys: Mapping[str, Any], labels: list[str] | None) -> Data:
        """Canonical columns ``texts``, ``masks`` (list of true words) and ``mask_kinds``.

        ``texts`` holds mask markers (``<mask>``, ``[MASK]`` or ``[mask]``); ``masks`` the true
        words in order, as a list (the rcds/wikipedia-for-mask-filling schema) or, for one mask,
        a plain string (an ``input_string`` + ground-truth table). ``mask_kinds`` (optional) names
        the kind of each masked word for a per-kind breakdown.
        """
        import datasets  # loaded on first use: a scoring process never needs it

        text_key = keys.get("text_key") or TEXTS
        masks_key = keys.get("masks_key") or MASKS
        data.require_columns([text_key, masks_key])
        kinds_key = keys.get("kinds_key") or KINDS
        has_kinds = kinds_key in data.dataset.column_names
        texts, golds, kinds = [], [], []
        for index, (text, truth) in enumerate(zip(data.dataset[text_key],
                                                  data.dataset[masks_key])):
            if not is_text(text):
                raise data.error(index, text_key, f"expected a non-empty string, got {text!r}")
            words = [truth] if isinstance(truth, str) else truth
            if not isinstance(words, (list, tuple)) or not words or \
                    not all(is_text(w) for w in words):
                raise data.error(index, masks_key, f"expected the true word (a non-empty string) "
                                                   f"or a list of them, got {truth!r}")
            n = count_masks(text)
            if n != len(words):
                raise data.error(index, masks_key, (
                    f"the text has {n} mask marker(s) ({', '.join(['<mask>', '[MASK]'])}) but "
                    f"{len(words)} true word(s) {list(words)}; give one word per mask, in order"))
            texts.append(text)
            golds.append([w.strip() for w in words])
        if has_kinds:
            for index, (value, words) in enumerate(zip(data.dataset[kinds_key], golds)):
                if not isinstance(value, (list, tuple)) or len(value) != len(words) or \
                        not all(isinstance(v, str) for v in value):
                    raise data.error(index, kinds_key, f"expected one kind name per mask "
                                                       f"({len(words)}), got {value!r}")
                kinds.append(list(value))
        table = {TEXTS: texts, MASKS: golds}
        features = {TEXTS: datasets.Value("string"),
                    MASKS: datasets.Sequence(datasets.Value("string"))}
        if has_kinds:
            table[KINDS] = kinds
            features[KINDS] = datasets.Sequence(datasets.Value("string"))
        data.dataset = datasets.Dataset.from_dict(table, features=datasets.Features(features))
        return data

    # --- training: masked-LM distillation on raw text (no fine-tune component) ------------
    distill_args = FillMaskDistillArgs
    #: the DistilBERT triple loss: soft targets on masked positions, masked LM, hidden cosine
    distill_weights = {"alpha_ce": 5.0, "alpha_task": 2.0, "alpha_cos": 1.0}
    #: the collator masks anew every batch, so the teacher runs on each batch as it comes
    distill_inputs_fixed = False
    #: distillation trains on raw text: its "labels" are the masked words themselves
    distill_train_labels = False

    def prepare_unlabelled(self, data: Data, keys: Mapping[str, Any],
                           labels: list[str] | None) -> Data:
        """Raw text, one passage per row (``train_text_key``), as canonical ``text``."""
        key = keys.get("train_text_key") or TEXT
        if key != TEXT and TEXT in data.dataset.column_names:
            data.dataset = data.dataset.remove_columns(TEXT)
        data = rename_columns(data, {key: TEXT})
        data.check_rows(TEXT, is_text, "a non-empty string")
        return data

    def train_features(self, data: Data, tokenizer, max_seq_length: int, labels, settings):
        return data.dataset.map(
            lambda batch: tokenizer(batch[TEXT], truncation=True, max_length=max_seq_length,
                                    return_special_tokens_mask=True),
            batched=True, remove_columns=data.dataset.column_names)

    def collator(self, tokenizer, settings=None):
        from transformers import DataCollatorForLanguageModeling

        return DataCollatorForLanguageModeling(
            tokenizer, mlm_probability=float((settings or {}).get("mlm_probability") or 0.15))

    def distill_losses(self, teacher, student, batch, labelled, temperature):
        """Soft targets over the vocabulary at the masked positions; the masked-LM loss."""
        logits, gold = student["logits"], batch["labels"]
        masked = gold != -100
        return {"soft": soft_target_loss(teacher["logits"][masked], logits[masked],
                                         temperature),
                "task": cross_entropy(logits[masked], gold[masked])}

    # --- inference ------------------------------------------------------------------------
    def forward_fn(self, model, tokenizer):
        if tokenizer.mask_token_id is None:
            raise CatalogError(f"the tokenizer of this model has no mask token, so it cannot be "
                               f"a {self.name} model")
        return engine.masked_lm_forward(model, tokenizer.mask_token_id)

    def validate_row(self, row: dict, index: int) -> dict:
        text = row[INPUT]
        if not isinstance(text, str):
            raise BadRequest(f"{INPUT}[{index}] must be a string; got {json.dumps(text)}")
        if not text.strip():
            raise BadRequest(f"{INPUT}[{index}] is empty; send a text with a mask, e.g. "
                             f"{SEED_REQUEST[INPUT][0]!r}")
        n = count_masks(text)
        if n == 0:
            raise BadRequest(f"{INPUT}[{index}] has no mask; write [MASK] (or <mask>) where the "
                             f"word to predict goes, e.g. {SEED_REQUEST[INPUT][0]!r}")
        if n > MAX_MASKS:
            raise BadRequest(f"{INPUT}[{index}] has {n} masks; at most {MAX_MASKS} fit in the "
                             f"model's 512-token window - split the text")
        return row

    def encode(self, predictor, texts: list[str], window: int | None = None
               ) -> tuple[list[engine.EncodedText], int]:
        """Tokenised texts with their windows; ``content`` is the text tokens per window."""
        tokenizer = predictor.tokenizer
        content = engine.window_content(tokenizer,
                                        engine.model_window(predictor.model, tokenizer, window))
        rewritten = [to_model_masks(t, tokenizer.mask_token) for t in texts]
        return engine.encode_texts(tokenizer, rewritten, content), content

    def mask_predictions(self, predictor, encoded: list[engine.EncodedText], top_k: int,
                         candidates: list[list[tuple[list[int], list[int]]]] | None = None
                         ) -> list[list[dict]]:
        """Per text, per mask: ``{"ids", "probs"}`` (and ``"ranks"`` given candidates)."""
        frame = engine.special_frame(predictor.tokenizer)
        features, owners = [], []
        for t, text in enumerate(encoded):
            for window in text.windows:
                feature = engine.window_feature(frame, text.ids, window)
                if candidates is not None:
                    slot = {p: m for m, p in enumerate(text.positions)}
                    feature["candidates"] = [candidates[t][slot[p]] for p in window.masks]
                features.append(feature)
            owners.append(len(features) - len(text.windows))
        excluded = engine.special_ids(predictor.tokenizer, predictor.model.config.vocab_size)
        extract = engine.top_tokens_extract(top_k, with_ranks=candidates is not None,
                                            excluded=excluded)
        results = predictor.run(features, extract,
                                carry=("candidates",) if candidates is not None else ())
        return [[results[first + w][slot] for w, slot in text.answers]
                for first, text in zip(owners, encoded)]

    def predict(self, predictor, rows: list[dict], params: dict) -> list:
        texts = [row[INPUT] for row in rows]
        encoded, content = self.encode(predictor, texts)
        for index, text in enumerate(encoded):
            if not text.positions:  # validate_row saw a marker; the tokenizer must see a mask
                raise BadRequest(f"{INPUT}[{index}] has no mask the model can read; write "
                                 f"[MASK] or <mask> as a word of its own")
            if len(text.positions) > content:
                raise BadRequest(f"{INPUT}[{index}] has {len(text.positions)} masks; at most "
                                 f"{content} fit in this model's window - split the text")
        top_k = params.get("top_k", 1)
        scores = params.get("return_scores", False)
        answers = []
        for per_mask in self.mask_predictions(predictor, encoded, top_k):
            ranked = [self._ranked(predictor.tokenizer, m, scores) for m in per_mask]
            answers.append({str(rank): ranked[0][rank] if len(ranked) == 1
                            else [mask[rank] for mask in ranked]
                            for rank in range(len(ranked[0]))})
        return answers

    @staticmethod
    def _ranked(tokenizer, mask: dict, scores: bool) -> list:
        """One mask's top tokens, best first: plain words, or {token_str, score, token}."""
        words = engine.plain_words(tokenizer, mask["ids"])
        if not scores:
            return words
        return [{"token_str": word, "score": float(p), "token": int(i)}
                for word, p, i in zip(words, mask["probs"], mask["ids"])]

    # --- evaluation -----------------------------------------------------------------------
    def evaluate(self, predictor, data: Data, out_dir: Path, settings: Mapping[str, Any]
                 ) -> EvalResult:
        tokenizer = predictor.tokenizer
        texts, golds = list(data.dataset[TEXTS]), list(data.dataset[MASKS])
        kinds = list(data.dataset[KINDS]) if KINDS in data.dataset.column_names else None
        encoded, content = self.encode(predictor, texts, settings.get("max_seq_length"))
        for index, (text, words) in enumerate(zip(encoded, golds)):
            if len(text.positions) != len(words):
                raise data.error(index, TEXTS, (
                    f"the tokenizer reads {len(text.positions)} mask(s) in this text but it has "
                    f"{len(words)} true word(s); write each mask as a word of its own"))
        index = engine.WordIndex.build(tokenizer, predictor.model.config.vocab_size)
        candidates = [[index.candidates(w) for w in words] for words in golds]
        predicted = self.mask_predictions(predictor, encoded, KEEP, candidates)

        cased, uncased, single, rows = [], [], [], []
        for t, (text, words, per_mask) in enumerate(zip(texts, golds, predicted)):
            row_masks = []
            for m, (word, result) in enumerate(zip(words, per_mask)):
                rank, rank_uncased = result["ranks"]
                cased.append(rank)
                uncased.append(rank_uncased)
                single.append(bool(candidates[t][m][1]))
                row_masks.append({"true": word, **({"kind": kinds[t][m]} if kinds else {}),
                                  "predicted": engine.plain_words(tokenizer, result["ids"]),
                                  "rank": rank, "rank_uncased": rank_uncased})
            rows.append({"text": text, "masks": row_masks})

        metrics = {**scoring.rank_metrics(cased), **scoring.rank_metrics(uncased, "_uncased"),
                   "single_token_share": float(np.mean(single))}
        details: dict[str, Any] = {"n_masks": len(cased), "window_tokens": content}
        pppl = self.pseudo_perplexity(predictor, texts, golds, content, settings)
        if pppl is not None:
            metrics["pseudo_perplexity"] = pppl.pop("pseudo_perplexity")
            details["pseudo_perplexity"] = pppl
        if kinds:
            flat_kinds = [k for row in kinds for k in row]
            details["per_kind"] = {
                kind: {"n": sum(k == kind for k in flat_kinds),
                       **scoring.rank_metrics([r for r, k in zip(cased, flat_kinds) if k == kind]),
                       **scoring.rank_metrics([r for r, k in zip(uncased, flat_kinds)
                                               if k == kind], "_uncased")}
                for kind in sorted(set(flat_kinds))}
        curve = {"k": list(range(1, 11)), "accuracy": scoring.accuracy_curve(cased),
                 "accuracy_uncased": scoring.accuracy_curve(uncased)}
        (out_dir / CURVE).write_text(json.dumps(curve) + "\n")
        from .plots import plot_accuracy
        plot_accuracy(curve, details.get("per_kind"), out_dir / PLOT)
        return EvalResult(metrics=metrics, rows=rows, details=details,
                          artifacts={"accuracy_plot": PLOT, "accuracy_curve": CURVE})

    def pseudo_perplexity(self, predictor, texts: list[str], golds: list[list[str]],
                          content: int, settings: Mapping[str, Any]) -> dict | None:
        """Pseudo-perplexity of the unmasked texts over a seeded sample (None when disabled)."""
        size = settings.get("pseudo_perplexity_samples", 100)
        if size == 0:
            return None
        chosen = list(range(len(texts)))
        if 0 < size < len(texts):
            rng = np.random.default_rng(settings.get("seed", 42))
            chosen = sorted(rng.choice(len(texts), size=size, replace=False).tolist())
        tokenizer = predictor.tokenizer
        unmasked = [fill_masks(texts[i], golds[i]) for i in chosen]
        ids = tokenizer(unmasked, add_special_tokens=False)["input_ids"]
        features, owner = [], []
        frame = engine.special_frame(tokenizer)
        for t, text_ids in enumerate(ids):
            copies = engine.pseudo_perplexity_features(tokenizer, text_ids, content, frame)
            features += copies
            owner += [t] * len(copies)
        log_probs = predictor.run(features, engine.gold_log_prob_extract, carry=("gold",))
        pll = [0.0] * len(ids)
        for t, value in zip(owner, log_probs):
            pll[t] += value
        n_tokens = [len(x) for x in ids]
        return {"pseudo_perplexity": scoring.pseudo_perplexity(pll, n_tokens),
                "texts": len(ids), "tokens": sum(n_tokens),
                "pseudo_log_likelihood_per_token": sum(pll) / max(1, sum(n_tokens))}

    def example_request(self) -> dict[str, list]:
        return {k: list(v) for k, v in SEED_REQUEST.items()}


TASK = FillMask()
