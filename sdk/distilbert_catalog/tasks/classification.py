"""Sequence classification shared by the tasks that label a whole input (one text, or a pair).

:class:`SequenceClassification` is written once over :attr:`~SequenceClassification.text_columns`:
one column (text classification) or two (a sentence pair, encoded as the tokenizer's pair). A task
folder names its columns, request inputs, descriptions and example; the data checks, training
features, prediction and evaluation (accuracy, precision/recall/F1 averages, per-label report, log
loss, confusion matrix and its plot) are the same code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from transformers import DataCollatorWithPadding

from ..backends import to_numpy
from ..data import Data, is_text, rename_columns
from ..errors import DataError
from .base import EvalResult, Param, cross_entropy, soft_target_loss
from .labels import LabelledTask, expected_label, is_label, label_ids

LABEL = "label"


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class SequenceClassification(LabelledTask):
    """One label per input: the input is :attr:`text_columns` (one text or a pair of texts)."""

    head = "ForSequenceClassification"
    label_column = LABEL
    #: canonical data column -> the argument naming the user's column, in tokenizer order
    text_columns: Mapping[str, str]
    #: the argument naming the label column
    label_key = "label_key"
    params = {
        "top_k": Param(int, 1, "how many labels to return per input, best first",
                       lambda k: None if k >= 1 else "must be at least 1", limit="max_top_k"),
    }
    default_metric_for_best_model = "accuracy"
    quality_metric = "accuracy"
    answer_fields = ("predicted",)
    example_labels = ("negative", "positive")

    # --- data -----------------------------------------------------------------------------
    def prepare_data(self, data: Data, keys: Mapping[str, str], labels: list[str] | None,
                     require_labels: bool = True) -> Data:
        mapping = {keys.get(key) or canonical: canonical
                   for canonical, key in self.text_columns.items()}
        if require_labels:
            mapping[keys.get(self.label_key) or LABEL] = LABEL
        for user, canonical in mapping.items():
            if user != canonical and canonical in data.dataset.column_names:
                data.dataset = data.dataset.remove_columns(canonical)
        data = rename_columns(data, mapping)
        for column in self.text_columns:
            data.check_rows(column, is_text, "a non-empty string")
        if require_labels:
            data.check_rows(LABEL, lambda v: is_label(v, labels), expected_label(labels))
        return data

    # --- training -------------------------------------------------------------------------
    def encode(self, tokenizer, columns: list[list[str]], max_length: int):
        """Tokenise one text per row, or a pair (``text``, ``text_pair``) per row."""
        return tokenizer(*columns, truncation=True, max_length=max_length)

    def train_features(self, data: Data, tokenizer, max_seq_length: int, labels, settings):
        def tokenize(batch):
            encoded = self.encode(tokenizer, [batch[c] for c in self.text_columns],
                                  max_seq_length)
            encoded["labels"] = label_ids(batch[LABEL], labels)
            return encoded

        return data.dataset.map(tokenize, batched=True,
                                remove_columns=data.dataset.column_names)

    def collator(self, tokenizer, settings=None):
        return DataCollatorWithPadding(tokenizer)

    def trainer_metrics(self, labels, eval_features=None):
        def compute(eval_pred) -> dict[str, float]:
            from sklearn import metrics as skm  # scikit-learn loads only where it scores

            predicted = np.argmax(eval_pred.predictions, axis=-1)
            gold = eval_pred.label_ids
            return {"accuracy": float(skm.accuracy_score(gold, predicted)),
                    "f1_macro": float(skm.f1_score(gold, predicted, average="macro",
                                                   zero_division=0))}
        return compute

    # --- distillation ---------------------------------------------------------------------
    def prepare_unlabelled(self, data: Data, keys: Mapping[str, str], labels: list[str] | None
                           ) -> Data:
        data = self.prepare_data(data, keys, labels, require_labels=False)
        return self.with_placeholder_labels(data, LABEL, [0] * len(data))

    def distill_losses(self, teacher, student, batch, labelled, temperature):
        """Soft targets over the labels of every row; cross-entropy on the labelled rows."""
        logits = student["logits"]
        return {"soft": soft_target_loss(teacher["logits"], logits, temperature),
                "task": cross_entropy(logits, batch["labels"].masked_fill(~labelled, -100))}

    # --- inference ------------------------------------------------------------------------
    def probabilities(self, predictor, columns: list[list[str]]) -> np.ndarray:
        max_length = min(predictor.tokenizer.model_max_length, 512)
        encoded = self.encode(predictor.tokenizer, columns, max_length)
        keys = list(encoded.keys())
        features = [{k: encoded[k][i] for k in keys} for i in range(len(encoded["input_ids"]))]
        logits = predictor.run(features, lambda out, batch, lengths: list(to_numpy(out.logits)))
        return softmax(np.stack(logits)) if logits else np.zeros((0, 0))

    def predict(self, predictor, rows: list[dict], params: dict) -> list:
        probs = self.probabilities(predictor, [[row[c] for row in rows]
                                               for c in self.input_columns])
        id2label = predictor.model.config.id2label
        top_k = min(params.get("top_k", 1), probs.shape[-1] if len(probs) else 1)
        answers = []
        for row in probs:
            best = np.argsort(-row, kind="stable")[:top_k]
            ranked = [{"label": id2label[int(i)], "score": float(row[i])} for i in best]
            answers.append(ranked[0] if params.get("top_k", 1) == 1 else ranked)
        return answers

    def evaluate(self, predictor, data: Data, out_dir: Path, settings: Mapping[str, Any]
                 ) -> EvalResult:
        from sklearn import metrics as skm

        columns = [list(data.dataset[c]) for c in self.text_columns]
        probs = self.probabilities(predictor, columns)
        id2label = {int(i): name for i, name in predictor.model.config.id2label.items()}
        model_labels = [id2label[i] for i in range(len(id2label))]
        data_labels = settings.get("labels") or model_labels
        gold = [data_labels[v] if isinstance(v, int) else v for v in list(data.dataset[LABEL])]
        unknown = sorted(set(gold) - set(model_labels))
        if unknown:
            raise DataError(f"gold labels {unknown} are not labels of the model "
                            f"({model_labels}); pass label names that match the model",
                            source=data.sources[0][0], column=LABEL)
        gold_ids = np.array([model_labels.index(g) for g in gold])
        predicted = probs.argmax(axis=-1)
        label_ids_ = list(range(len(model_labels)))
        metrics = {"accuracy": float(skm.accuracy_score(gold_ids, predicted))}
        for average in ("macro", "micro", "weighted"):
            p, r, f, _ = skm.precision_recall_fscore_support(
                gold_ids, predicted, labels=label_ids_, average=average, zero_division=0)
            metrics |= {f"precision_{average}": float(p), f"recall_{average}": float(r),
                        f"f1_{average}": float(f)}
        metrics["log_loss"] = float(skm.log_loss(gold_ids, probs, labels=label_ids_))
        report = skm.classification_report(gold_ids, predicted, labels=label_ids_,
                                           target_names=model_labels, output_dict=True,
                                           zero_division=0)
        per_class = {name: {k: float(v) for k, v in report[name].items()} for name in model_labels}
        matrix = skm.confusion_matrix(gold_ids, predicted, labels=label_ids_)
        (out_dir / "confusion_matrix.json").write_text(json.dumps(
            {"labels": model_labels, "matrix": matrix.tolist()}, indent=2))
        plot_confusion_matrix(matrix, model_labels, out_dir / "confusion_matrix.png")
        rows = [{**{c: values[i] for c, values in zip(self.text_columns, columns)},
                 "label": g, "predicted": model_labels[p], "score": float(pr[p])}
                for i, (g, p, pr) in enumerate(zip(gold, predicted, probs))]
        return EvalResult(metrics=metrics, rows=rows,
                          details={"per_class": per_class, "labels": model_labels},
                          artifacts={"confusion_matrix": "confusion_matrix.json",
                                     "confusion_matrix_plot": "confusion_matrix.png"})


def plot_confusion_matrix(matrix: np.ndarray, labels: list[str], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    from sklearn.metrics import ConfusionMatrixDisplay
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.2 * len(labels) + 1.5))
    ConfusionMatrixDisplay(matrix, display_labels=labels).plot(ax=ax, colorbar=False,
                                                               xticks_rotation=45)
    ax.set_title("Confusion matrix (test split)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
