"""Token classification: named-entity recognition on the CoNLL-2003 schema ``tokens,ner_tags``.

The task plug-in (:class:`TokenClassification`) ties two pure modules to the task-agnostic
training, evaluation, packaging and serving code:

* :mod:`.engine` - tokenisation with offsets, windows for long inputs, label alignment,
  word tags and the entity aggregation strategies;
* :mod:`.metrics` - entity-level precision, recall and F1 as conlleval computes them.

Canonical columns after :meth:`TokenClassification.prepare_data`: ``tokens`` (a list of words),
``ner_tags`` (one tag per word, an id or a name) and ``id`` when the data has one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from transformers import DataCollatorForTokenClassification

from ...data import Data, is_text, rename_columns
from ...errors import BadRequest, DataError
from ...backends import to_numpy
from ..base import EvalResult, Param, cross_entropy, positive, soft_target_loss
from ..labels import LabelledTask, expected_label, is_label, label_ids
from . import engine
from .arguments import TokenClassificationArgs, TokenClassificationFinetuneArgs
from .metrics import SCHEME, entity_scores

TOKENS, TAGS, ID = "tokens", "ner_tags", "id"
PLOT = "per_type_f1.png"
#: tag prefixes the CoNLL scorer understands (IOB1/IOB2, and IOBES)
PREFIXES = ("B", "I", "E", "S")

#: the catalog's seed request (the model card and MLflow signature show it)
SEED_REQUEST = {"input_string": ["George Washington went to Washington.",
                                 "Ada Lindqvist joined the Bank of England in London."]}


def valid_tag_name(name: str) -> bool:
    """``O``, or a prefix from :data:`PREFIXES`, a dash and a non-empty type (``B-PER``)."""
    if name == "O":
        return True
    prefix, _, kind = name.partition("-")
    return prefix in PREFIXES and bool(kind)


def tag_order(name: str) -> tuple:
    """``O`` first, then by type, and within a type B, I, E, S (CoNLL-2003's own order)."""
    if name == "O":
        return (0, "", 0)
    prefix, _, kind = name.partition("-")
    return (1, kind, PREFIXES.index(prefix) if prefix in PREFIXES else len(PREFIXES))


class TokenClassification(LabelledTask):
    """One tag per word (IOB2 named-entity tags); answers are entity spans with offsets."""

    name = "token-classification"
    title = "token classification (NER)"
    head = "ForTokenClassification"
    finetune_args = TokenClassificationFinetuneArgs
    evaluate_args = TokenClassificationArgs
    finetune_description = (
        "Fine-tunes DistilBERT for named-entity recognition on CoNLL-2003-style data (tokens: a "
        "list of words, ner_tags: one IOB tag per word, as ids or names) with the Hugging Face "
        "Trainer. Each word's first sub-token carries its tag; sentences longer than "
        "max_seq_length are split into overlapping windows. Every row is checked before the "
        "model loads; checkpoints are picked by entity-level F1 on validation (conlleval).")
    evaluate_description = (
        "Evaluates named-entity recognition as the CoNLL-2003 scorer (conlleval) does: "
        "entity-level precision, recall and F1 (micro and per entity type) and token accuracy; "
        "writes every sentence's gold and predicted tags and a per-type F1 plot.")
    intended_use = (
        "Named-entity recognition in English text: tagging people, organisations, places and "
        "other names (CoNLL-2003's PER, ORG, LOC, MISC, or the tag set it was fine-tuned on), "
        "with character offsets into the input, e.g. to index, redact or link names in news and "
        "business documents.")
    example_labels = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
    label_column = TAGS
    per_item = True
    input_columns = ("input_string",)
    input_aliases = {"text": "input_string", "inputs": "input_string", "tokens": "input_string"}
    params = {
        "aggregation_strategy": Param(
            str, "simple", "how tokens become entities: none (every token), simple (the "
                           "transformers pipeline's grouping), first, average or max (one tag "
                           "per word, from its first/averaged/most confident sub-token)",
            lambda s: None if s in engine.STRATEGIES else f"must be one of "
                                                          f"{list(engine.STRATEGIES)}"),
        "max_seq_len": Param(int, 512, "tokens per window, special tokens included; longer "
                                       "inputs are split into overlapping windows", positive),
        "stride": Param(int, 128, "tokens shared by neighbouring windows of a long input",
                        lambda s: None if s >= 0 else "must be 0 or more"),
    }
    #: checkpoints are chosen by entity-level F1 on the validation sentences (conlleval)
    default_metric_for_best_model = "f1"
    quality_metric = "f1"  # entity-level, micro
    answer_fields = ("predicted_tags",)

    # --- data -----------------------------------------------------------------------------
    def order_label_names(self, names: set[str]) -> list[str]:
        return sorted(names, key=tag_order)

    def label_names(self, data: Data, given: list[str] | None) -> list[str]:
        names = super().label_names(data, given)
        source = data.sources[0][0] if data.sources else None
        if not given and all(n.isdigit() for n in names):
            raise DataError(
                "ner_tags are integer ids but the data does not name them; pass label_names "
                "in id order (CoNLL-2003: O,B-PER,I-PER,B-ORG,I-ORG,B-LOC,I-LOC,B-MISC,I-MISC)",
                source=source, column=TAGS)
        bad = [n for n in names if not valid_tag_name(n)]
        if bad:
            raise DataError(f"tag names {bad} are not IOB tags; use O and B-TYPE / I-TYPE "
                            f"(E-/S- also work), e.g. B-PER, I-PER", source=source, column=TAGS)
        if len(set(names)) != len(names):
            raise DataError(f"tag names repeat: {names}", source=source, column=TAGS)
        return names

    def prepare_data(self, data: Data, keys: Mapping[str, str], labels: list[str] | None,
                     require_labels: bool = True) -> Data:
        mapping = {keys.get("tokens_key") or TOKENS: TOKENS}
        if require_labels:
            mapping[keys.get("tags_key") or TAGS] = TAGS
        for user, canonical in mapping.items():
            if user != canonical and canonical in data.dataset.column_names:
                data.dataset = data.dataset.remove_columns(canonical)
        data = rename_columns(data, mapping)
        sentences = list(data.dataset[TOKENS])
        for index, words in enumerate(sentences):
            if not isinstance(words, (list, tuple)):
                raise data.error(index, TOKENS, f"expected a list of words, got {words!r}")
            if not words:
                raise data.error(index, TOKENS, "the sentence is empty; every row needs at "
                                                "least one word")
            for k, word in enumerate(words):
                if not is_text(word):
                    raise data.error(index, TOKENS, f"word {k} is {word!r}; every word must be "
                                                    "a non-empty string")
        if require_labels:
            for index, (words, tags) in enumerate(zip(sentences, data.dataset[TAGS])):
                if not isinstance(tags, (list, tuple)):
                    raise data.error(index, TAGS, f"expected a list of tags, got {tags!r}")
                if len(tags) != len(words):
                    raise data.error(index, TAGS, f"{len(tags)} tags for {len(words)} words; "
                                                  "give exactly one tag per word")
                for k, tag in enumerate(tags):
                    if not is_label(tag, labels):
                        raise data.error(index, TAGS, f"tag {k} ({tokens_at(words, k)}) is "
                                                      f"{tag!r}; expected {expected_label(labels)}")
        return data

    # --- training -------------------------------------------------------------------------
    def train_features(self, data: Data, tokenizer, max_seq_length: int, labels, settings):
        """One feature per window of every sentence, with its token labels and bookkeeping:
        ``example_index`` (the sentence), ``word_index`` (per position, the word whose first
        sub-token it is, else -1) and ``context`` (how far that token is from a window edge)."""
        stride = int(settings.get("stride") or 0)
        label_all = bool(settings.get("label_all_tokens"))
        template = engine.Template.of(tokenizer)
        _check_window(max_seq_length, stride, template)
        continuation = engine.continuation_label(labels)

        def tokenize(batch, indices):
            encoded = engine.encode_words(tokenizer, batch[TOKENS])
            out: dict[str, list] = {k: [] for k in ("input_ids", "attention_mask", "labels",
                                                    "example_index", "word_index", "context")}
            pad = [engine.IGNORE] * len(template.prefix), [engine.IGNORE] * len(template.suffix)
            for enc, tags, index in zip(encoded, batch[TAGS], indices):
                token_labels = engine.align_labels(enc, label_ids(tags, labels),
                                                   label_all_tokens=label_all,
                                                   continuation=continuation)
                first = set(engine.first_tokens(enc))
                spans = engine.window_spans(len(enc), max_seq_length - template.n_special,
                                            stride)
                for span in spans:
                    start, end = span
                    ids = template.wrap(enc.input_ids[start:end])
                    out["input_ids"].append(ids)
                    out["attention_mask"].append([1] * len(ids))
                    out["labels"].append(pad[0] + token_labels[start:end] + pad[1])
                    out["example_index"].append(index)
                    words = [enc.word_ids[p] if p in first else -1 for p in range(start, end)]
                    out["word_index"].append(pad[0] + words + pad[1])
                    contexts = [engine.context(p, span, len(enc)) for p in range(start, end)]
                    out["context"].append(pad[0] + contexts + pad[1])
            return out

        return data.dataset.map(tokenize, batched=True, with_indices=True,
                                remove_columns=data.dataset.column_names)

    def collator(self, tokenizer, settings=None):
        return DataCollatorForTokenClassification(tokenizer)

    def loss_function(self):
        return token_mean_loss

    # --- distillation ---------------------------------------------------------------------
    def prepare_unlabelled(self, data: Data, keys: Mapping[str, str], labels: list[str] | None
                           ) -> Data:
        data = self.prepare_data(data, keys, labels, require_labels=False)
        return self.with_placeholder_labels(data, TAGS, [[0] * len(words)
                                                         for words in data.dataset[TOKENS]])

    def distill_losses(self, teacher, student, batch, labelled, temperature):
        """Soft targets on the label-bearing tokens (each word's first sub-token, the ones
        predictions read); cross-entropy on those of the labelled rows."""
        logits, gold = student["logits"], batch["labels"]
        bearing = gold != engine.IGNORE
        task = cross_entropy(logits.flatten(0, 1),
                             gold.masked_fill(~labelled[:, None], engine.IGNORE).flatten(),
                             engine.IGNORE)
        return {"soft": soft_target_loss(teacher["logits"][bearing], logits[bearing],
                                         temperature), "task": task}

    def preprocess_logits_for_metrics(self, settings):
        def best_label(logits, labels):
            logits = logits[0] if isinstance(logits, tuple) else logits
            return logits.argmax(dim=-1)
        return best_label

    def trainer_metrics(self, labels, eval_features=None):
        """Entity F1 of whole validation sentences: each word takes the prediction of its first
        sub-token in the window where that token has the most context."""
        if eval_features is None:
            return None
        examples = list(eval_features["example_index"])
        word_index = list(eval_features["word_index"])
        contexts = list(eval_features["context"])
        gold_labels = list(eval_features["labels"])

        def compute(eval_pred) -> dict[str, float]:
            predictions = np.asarray(eval_pred.predictions)
            label_ids = np.asarray(eval_pred.label_ids)
            if len(predictions) != len(examples) or any(
                    list(label_ids[k][:len(gold)]) != list(gold)
                    for k, gold in enumerate(gold_labels)):
                raise RuntimeError("validation predictions are not in feature order; entity "
                                   "F1 needs the Trainer to evaluate sequentially")
            words: dict[int, dict[int, tuple[int, str, str]]] = {}
            for k, example in enumerate(examples):
                sentence = words.setdefault(example, {})
                for p, word in enumerate(word_index[k]):
                    if word < 0:
                        continue
                    if word not in sentence or contexts[k][p] > sentence[word][0]:
                        sentence[word] = (contexts[k][p], labels[gold_labels[k][p]],
                                          labels[int(predictions[k][p])])
            gold = [[sentence[w][1] for w in sorted(sentence)] for sentence in words.values()]
            predicted = [[sentence[w][2] for w in sorted(sentence)]
                         for sentence in words.values()]
            return entity_scores(gold, predicted)["metrics"]

        return compute

    # --- inference ------------------------------------------------------------------------
    def validate_row(self, row: dict, index: int) -> dict:
        """A non-empty string, or a pre-tokenized sentence: a non-empty list of words."""
        value = row["input_string"]
        if isinstance(value, str):
            if not value.strip():
                raise BadRequest(f"input_string[{index}] is empty; send non-empty text or a "
                                 "list of words")
            return row
        if isinstance(value, np.ndarray):  # a list column read from parquet
            value = value.tolist()
        if isinstance(value, (list, tuple)):
            if not value:
                raise BadRequest(f"input_string[{index}] is an empty list of words; send at "
                                 "least one word")
            for k, word in enumerate(value):
                if not is_text(word):
                    raise BadRequest(f"input_string[{index}][{k}] must be a non-empty string "
                                     f"(a word); got {word!r}")
            return {**row, "input_string": list(value)}
        raise BadRequest(f"input_string[{index}] must be a string or a list of words; got "
                         f"{value!r}")

    def scores(self, predictor, encoded: Sequence[engine.Encoded], max_seq_length: int,
               stride: int) -> list[np.ndarray]:
        """Label probabilities per token of every encoded input (windows run in batches)."""
        template = engine.Template.of(predictor.tokenizer)
        _check_window(max_seq_length, stride, template, BadRequest)
        windows = engine.window_features(encoded, template, max_seq_length, stride)
        left = getattr(predictor.tokenizer, "padding_side", "right") == "left"
        prefix, suffix = len(template.prefix), len(template.suffix)

        def extract(output, batch, lengths):
            logits = to_numpy(output.logits)
            rows = [row[-n:] if left else row[:n] for row, n in zip(logits, lengths)]
            return [engine.softmax(row[prefix:len(row) - suffix]) for row in rows]

        window_scores = predictor.run([w.features for w in windows], extract) if windows else []
        return engine.merge_windows(encoded, windows, window_scores)

    def model_window(self, predictor, requested: int) -> int:
        """The window length: the request's, capped by what the model can take."""
        limits = [requested, getattr(predictor.model.config, "max_position_embeddings", None),
                  getattr(predictor.tokenizer, "model_max_length", None)]
        return min(v for v in limits if isinstance(v, int) and v > 0)

    def predict(self, predictor, rows: list[dict], params: dict) -> list:
        strategy = params.get("aggregation_strategy", "simple")
        max_len = self.model_window(predictor, params.get("max_seq_len", 512))
        stride = params.get("stride", self.params["stride"].default)
        room = max_len - engine.Template.of(predictor.tokenizer).n_special
        if stride == self.params["stride"].default and stride >= room:
            stride = max(0, room // 4)  # the default adapts to short windows; a chosen one not
        texts = [(i, r["input_string"]) for i, r in enumerate(rows)
                 if isinstance(r["input_string"], str)]
        sentences = [(i, r["input_string"]) for i, r in enumerate(rows)
                     if not isinstance(r["input_string"], str)]
        encoded: list[engine.Encoded | None] = [None] * len(rows)
        for (i, _), enc in zip(texts, engine.encode_texts(predictor.tokenizer,
                                                          [t for _, t in texts])):
            encoded[i] = enc
        for (i, _), enc in zip(sentences, engine.encode_words(predictor.tokenizer,
                                                              [s for _, s in sentences])):
            encoded[i] = enc
        scores = self.scores(predictor, encoded, max_len, stride)
        id2label = _id2label(predictor)
        return [engine.entities(enc, s, id2label, strategy) for enc, s in zip(encoded, scores)]

    # --- evaluation -----------------------------------------------------------------------
    def evaluate(self, predictor, data: Data, out_dir: Path, settings: Mapping[str, Any]
                 ) -> EvalResult:
        id2label = _id2label(predictor)
        model_labels = [id2label[i] for i in range(len(id2label))]
        data_labels = settings.get("labels") or model_labels
        sentences = [list(s) for s in data.dataset[TOKENS]]
        gold = []
        for index, tags in enumerate(data.dataset[TAGS]):
            for t in tags:
                if not isinstance(t, str) and not 0 <= t < len(data_labels):
                    raise data.error(index, TAGS, f"tag id {t} is not one of the model's "
                                                  f"{len(data_labels)} labels {data_labels}")
            gold.append([t if isinstance(t, str) else data_labels[t] for t in tags])
        unknown = sorted({t for tags in gold for t in tags} - set(model_labels))
        if unknown:
            raise DataError(f"gold tags {unknown} are not labels of the model "
                            f"({model_labels}); pass label_names that match the model",
                            source=data.sources[0][0], column=TAGS)
        max_len = self.model_window(predictor, int(settings.get("max_seq_length") or 512))
        stride = int(settings.get("stride") or 0)
        encoded = engine.encode_words(predictor.tokenizer, sentences)
        scores = self.scores(predictor, encoded, max_len, stride)
        predicted = [engine.word_tags(enc, s, id2label) for enc, s in zip(encoded, scores)]
        result = entity_scores(gold, predicted)
        plot_per_type_f1(result["per_type"], result["metrics"]["f1"], out_dir / PLOT)
        ids = list(data.dataset[ID]) if ID in data.dataset.column_names else \
            list(range(len(sentences)))
        rows = [{"id": i, "tokens": words, "gold_tags": g, "predicted_tags": p}
                for i, words, g, p in zip(ids, sentences, gold, predicted)]
        details = {"per_type": result["per_type"], "counts": result["counts"],
                   "labels": model_labels, "scheme": SCHEME}
        return EvalResult(metrics=result["metrics"], rows=rows, details=details,
                          artifacts={"per_type_f1_plot": PLOT})

    def example_request(self) -> dict[str, list]:
        return {k: list(v) for k, v in SEED_REQUEST.items()}


def tokens_at(words: Sequence[str], k: int) -> str:
    return f"word {words[k]!r}" if k < len(words) else "beyond the last word"


def _id2label(predictor) -> dict[int, str]:
    return {int(i): name for i, name in predictor.model.config.id2label.items()}


def _check_window(max_seq_length: int, stride: int, template: engine.Template,
                  error: type[Exception] = DataError) -> None:
    room = max_seq_length - template.n_special
    if room < 1:
        raise error(f"max_seq_length={max_seq_length} leaves no room for words next to the "
                    f"{template.n_special} special tokens")
    if not 0 <= stride < room:
        raise error(f"stride={stride} must be in 0..{room - 1}: smaller than the "
                    f"{room} word tokens a window of {max_seq_length} holds, or windows over a "
                    "long input would not advance")


def plot_per_type_f1(per_type: Mapping[str, Mapping[str, float]], f1: float, path: Path) -> None:
    """Horizontal bars: entity F1 per type with its gold count, and the micro F1 as a line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    types = sorted(per_type)
    fig, ax = plt.subplots(figsize=(6.4, 1.0 + 0.5 * max(len(types), 1)))
    values = [per_type[t]["f1"] for t in types]
    bars = ax.barh(types, values, color="tab:blue")
    for bar, kind in zip(bars, types):
        ax.text(min(bar.get_width() + 0.01, 0.9), bar.get_y() + bar.get_height() / 2,
                f"{per_type[kind]['f1']:.2f} (n={per_type[kind]['support']})", va="center",
                fontsize=8)
    ax.axvline(f1, color="grey", linestyle=":", label=f"micro F1 {f1:.2f}")
    ax.set_xlim(0, 1.0)
    ax.set_xlabel("entity F1 (test split)")
    ax.set_title("Entity F1 per type")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


TASK = TokenClassification()


def token_mean_loss(outputs, labels, num_items_in_batch=None):
    """Cross-entropy over the labelled tokens (label -100: ignored) of the whole optimiser step:
    summed here, divided by the step's labelled tokens on every rank and accumulated batch (the
    Trainer counts them), so 2 processes x 8 sentences train as 1 x 16 whatever the sentences'
    lengths. Without a count (a lone batch), the batch's own mean."""
    import torch.nn.functional as F

    logits = outputs["logits"]
    total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                            ignore_index=engine.IGNORE, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else \
        labels.ne(engine.IGNORE).sum().clamp(min=1)
    return total / count
