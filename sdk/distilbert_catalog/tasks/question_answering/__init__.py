"""Extractive question answering: windowing, span decoding and SQuAD v2 metrics.

The task plug-in (:class:`QuestionAnswering`) ties three pure modules to the task-agnostic
training, evaluation, packaging and serving code:

* :mod:`.engine` - question/context windowing, training labels, n-best span decoding;
* :mod:`.squad` - the official SQuAD v2 metrics;
* :mod:`.predictions` - reading a predictions file made elsewhere;
* :mod:`.plots` - the F1-against-no-answer-threshold plot;
* this module - data columns and validation, request parameters and evaluation.

Canonical columns after :meth:`QuestionAnswering.prepare_data`: ``id`` (generated when the data
has none), ``title`` (when the data has one), ``context``, ``question`` and ``answers``
(``{"text": [...], "answer_start": [...]}``, empty lists for an unanswerable question).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from transformers import DataCollatorWithPadding

from ...data import Data, is_text
from ...errors import BadRequest, DataError
from ...backends import to_numpy
from ..base import EvalResult, Param, Task, cross_entropy, positive, soft_target_loss
from . import engine, mlqa, squad
from .arguments import DEFAULTS, QADecisionArgs, QAEvaluationArgs, QuestionAnsweringArgs
from .plots import curve_with_origin, plot_threshold_curve
from .predictions import read_predictions

ID, TITLE, CONTEXT, QUESTION, ANSWERS = "id", "title", "context", "question", "answers"
PLOT = "f1_vs_no_answer_threshold.png"
CURVE = "threshold_curve.json"

#: the catalog's seed request (the model card and MLflow signature show it)
SEED_REQUEST = {
    "question": ["What is my name?", "Where do I live?"],
    "context": ["My name is John and I live in Seattle.",
                "My name is Ravi and I live in Hyderabad."],
}


def _non_negative(value) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def _finite(value) -> str | None:
    return None if np.isfinite(value) else "must be a finite number"


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _missing(value) -> bool:
    """An empty flat-answer cell: None, "", or NaN (an empty csv cell)."""
    return value is None or value == "" or (isinstance(value, float) and np.isnan(value))


def stable_id(index: int, question: str, context: str) -> str:
    """A deterministic id for a row without one (same data, same ids)."""
    digest = hashlib.sha1(f"{index}\x00{question}\x00{context}".encode()).hexdigest()
    return digest[:24]


def nearest_occurrence(context: str, text: str, start: int) -> int | None:
    """Start of the occurrence of ``text`` in ``context`` closest to ``start`` (None if none)."""
    best, position = None, context.find(text)
    while position != -1:
        if best is None or abs(position - start) < abs(best - start):
            best = position
        position = context.find(text, position + 1)
    return best


class QuestionAnswering(Task):
    """SQuAD-style extractive QA: the answer is a character span of the context, or none."""

    name = "question-answering"
    title = "extractive question answering"
    head = "ForQuestionAnswering"
    finetune_args = QuestionAnsweringArgs
    evaluate_args = QAEvaluationArgs
    finetune_description = (
        "Fine-tunes DistilBERT for extractive question answering on SQuAD-style data (id, title, "
        "context, question, answers{text[], answer_start[]}; v1 or v2, where empty answers mark "
        "an unanswerable question) with the Hugging Face Trainer. Long contexts are split into "
        "overlapping windows; answer offsets are checked before the model is loaded.")
    evaluate_description = (
        "Evaluates extractive question answering with the official SQuAD v2 metrics: exact and "
        "F1, HasAns/NoAns, best_exact/best_f1 and their no-answer thresholds (SQuAD v1 numbers "
        "when every question has an answer). Scores a model, or a predictions file from any "
        "model; writes per-question results and a plot of F1 against the no-answer threshold.")
    intended_use = (
        "Extractive question answering over English passages: the answer is a span of the given "
        "context, or no answer when the context does not contain one.")
    input_columns = (QUESTION, CONTEXT)
    input_aliases = {"questions": QUESTION, "contexts": CONTEXT}
    params = {
        "top_k": Param(int, 1, "answers returned per question, best first",
                       lambda k: None if k >= 1 else "must be at least 1", limit="max_top_k"),
        "max_answer_len": Param(int, DEFAULTS.max_answer_length, "longest answer, in tokens",
                                positive),
        "handle_impossible_answer": Param(bool, False, "allow the empty (no answer) answer"),
        "doc_stride": Param(int, DEFAULTS.doc_stride, "context tokens shared by neighbouring "
                            "windows of a long context", _non_negative),
        "max_seq_len": Param(int, DEFAULTS.max_seq_length, "tokens per window, special tokens "
                             "included", positive),
        "max_question_len": Param(int, DEFAULTS.max_query_length, "question tokens kept",
                                  positive),
        "null_score_threshold": Param(float, DEFAULTS.null_score_threshold,
                                      "no answer wins when null_score > "
                                      "best_span_score + null_score_threshold",
                                      _finite),
    }
    #: validation loss keeps rising while answers still improve (over-confident logits), so
    #: checkpoints are chosen by the window-level span F1 of :meth:`trainer_metrics`
    default_metric_for_best_model = "span_f1"
    quality_metric, quality_points = "f1", 1.0  # SQuAD F1 is already in points (0-100)
    answer_fields = ("prediction",)

    # --- data -----------------------------------------------------------------------------
    def prepare_data(self, data: Data, keys: Mapping[str, Any], labels: list[str] | None) -> Data:
        import datasets  # loaded on first use: a scoring process never needs it

        question_key = keys.get("question_key") or QUESTION
        context_key = keys.get("context_key") or CONTEXT
        start_key, text_key = keys.get("answer_start_key"), keys.get("answer_text_key")
        flat = bool(start_key or text_key)
        if flat and not (start_key and text_key):
            raise DataError("give answer_start_key and answer_text_key together",
                            source=data.sources[0][0])
        answer_columns = [start_key, text_key] if flat else [keys.get("answers_key") or ANSWERS]
        data.require_columns([question_key, context_key, *answer_columns])
        id_key = keys.get("id_key") or ID
        fix = bool(keys.get("fix_answer_start", False))
        columns = data.dataset.column_names

        questions = list(data.dataset[question_key])
        contexts = list(data.dataset[context_key])
        for column, values in ((question_key, questions), (context_key, contexts)):
            for index, value in enumerate(values):
                if not is_text(value):
                    raise data.error(index, column, f"expected a non-empty string, got {value!r}")
        if flat:
            raw = list(zip(data.dataset[text_key], data.dataset[start_key]))
            answers = [self._flat_answers(data, i, text, start, text_key, start_key)
                       for i, (text, start) in enumerate(raw)]
            answer_column = start_key
        else:
            answer_column = answer_columns[0]
            answers = [self._struct_answers(data, i, value, answer_column)
                       for i, value in enumerate(data.dataset[answer_column])]
        for index, (context, answer) in enumerate(zip(contexts, answers)):
            self._align(data, index, context, answer, answer_column, fix)

        if id_key in columns:
            ids = [str(v) if _is_int(v) else v for v in data.dataset[id_key]]
            seen: dict[str, int] = {}
            for index, qid in enumerate(ids):
                if not is_text(qid):
                    raise data.error(index, id_key, f"expected a non-empty id, got {qid!r}")
                if qid in seen:
                    source, row = data.locate(seen[qid])
                    raise data.error(index, id_key, f"duplicate id {qid!r} (also at {source} "
                                                    f"row {row}); ids must be unique")
                seen[qid] = index
        else:
            ids = [stable_id(i, q, c) for i, (q, c) in enumerate(zip(questions, contexts))]

        table: dict[str, list] = {ID: ids}
        features = {ID: datasets.Value("string")}
        if TITLE in columns:
            table[TITLE] = ["" if t is None else str(t) for t in data.dataset[TITLE]]
            features[TITLE] = datasets.Value("string")
        table |= {CONTEXT: contexts, QUESTION: questions, ANSWERS: answers}
        features |= {CONTEXT: datasets.Value("string"), QUESTION: datasets.Value("string"),
                     ANSWERS: {"text": datasets.Sequence(datasets.Value("string")),
                               "answer_start": datasets.Sequence(datasets.Value("int64"))}}
        data.dataset = datasets.Dataset.from_dict(table, features=datasets.Features(features))
        return data

    @staticmethod
    def _struct_answers(data: Data, index: int, value, column: str) -> dict:
        shape = 'a SQuAD answers object {"text": [str, ...], "answer_start": [int, ...]}'
        if not isinstance(value, Mapping) or "text" not in value or "answer_start" not in value:
            raise data.error(index, column, f"expected {shape}, got {value!r}")
        texts, starts = value["text"], value["answer_start"]
        if not isinstance(texts, (list, tuple)) or not isinstance(starts, (list, tuple)):
            raise data.error(index, column, f"expected {shape}, got {value!r}")
        if len(texts) != len(starts):
            raise data.error(index, column, f"'text' has {len(texts)} entries but "
                                            f"'answer_start' has {len(starts)}; give one start "
                                            "per answer text")
        for text, start in zip(texts, starts):
            if not is_text(text):
                raise data.error(index, column, f"answer texts must be non-empty strings, got "
                                                f"{text!r} (use empty lists for an unanswerable "
                                                "question)")
            if not _is_int(start) or start < 0:
                raise data.error(index, column, f"answer_start must be a non-negative integer, "
                                                f"got {start!r}")
        return {"text": list(texts), "answer_start": [int(s) for s in starts]}

    @staticmethod
    def _flat_answers(data: Data, index: int, text, start, text_key: str,
                      start_key: str) -> dict:
        texts = list(text) if isinstance(text, (list, tuple)) else \
            [] if _missing(text) else [text]
        starts = list(start) if isinstance(start, (list, tuple)) else \
            [] if _missing(start) or (_is_int(start) and start == -1) else [start]
        # csv columns with empty cells load as floats: 17.0 is the offset 17
        starts = [int(s) if isinstance(s, float) and s.is_integer() else s for s in starts]
        if len(texts) != len(starts):
            raise data.error(index, start_key, f"{len(texts)} answer text(s) in '{text_key}' "
                                               f"but {len(starts)} answer_start value(s); an "
                                               "unanswerable row has neither")
        for t in texts:
            if not is_text(t):
                raise data.error(index, text_key, f"expected a non-empty answer string, got "
                                                  f"{t!r}")
        for s in starts:
            if not _is_int(s) or s < 0:
                raise data.error(index, start_key, f"expected a non-negative integer "
                                                   f"character offset, got {s!r}")
        return {"text": texts, "answer_start": [int(s) for s in starts]}

    @staticmethod
    def _align(data: Data, index: int, context: str, answer: dict, column: str,
               fix: bool) -> None:
        """Check every answer is ``context[start:start+len(text)]``; optionally move starts."""
        for k, (text, start) in enumerate(zip(answer["text"], answer["answer_start"])):
            if context[start:start + len(text)] == text:
                continue
            found = context[start:start + len(text)]
            if not fix:
                raise data.error(index, column, (
                    f"answer {k} {text!r} is not at answer_start {start}: the context has "
                    f"{found!r} there. Fix the offset, or set fix_answer_start=true to move it "
                    "to the nearest occurrence of the text"))
            nearest = nearest_occurrence(context, text, start)
            if nearest is None:
                raise data.error(index, column, (
                    f"answer {k} {text!r} does not occur in the context, so answer_start "
                    f"{start} cannot be fixed"))
            answer["answer_start"][k] = nearest

    # --- training -------------------------------------------------------------------------
    @staticmethod
    def qa_params(settings: Mapping[str, Any], **overrides) -> engine.QAParams:
        """Engine settings from component arguments (missing ones keep the engine defaults)."""
        names = {"max_seq_length", "doc_stride", "max_query_length", "n_best_size",
                 "max_answer_length", "handle_impossible_answer", "null_score_threshold"}
        given = {k: settings[k] for k in names if settings.get(k) is not None}
        return engine.QAParams(**{**given, **overrides})

    def train_features(self, data: Data, tokenizer, max_seq_length: int, labels, settings):
        params = self.qa_params(settings, max_seq_length=max_seq_length)
        engine.validate_params(params, tokenizer)

        def tokenize(batch):
            return engine.prepare_train_features(tokenizer, batch[QUESTION], batch[CONTEXT],
                                                 batch[ANSWERS], params)

        return data.dataset.map(tokenize, batched=True, remove_columns=data.dataset.column_names)

    def collator(self, tokenizer, settings=None):
        return DataCollatorWithPadding(tokenizer)

    def trainer_metrics(self, labels, eval_features=None):
        return window_span_metrics

    # --- distillation (HF's SQuAD distillation: KL on start and end logits per window) -----
    label_keys = ("start_positions", "end_positions")
    distill_args = QADecisionArgs

    def prepare_unlabelled(self, data: Data, keys: Mapping[str, Any],
                           labels: list[str] | None) -> Data:
        """Questions and contexts without answers; each gets the empty (no-answer) answer."""
        answer_keys = {keys.get("answers_key") or ANSWERS, keys.get("answer_start_key"),
                       keys.get("answer_text_key"), ANSWERS}
        present = [c for c in data.dataset.column_names if c in answer_keys]
        if present:
            data.dataset = data.dataset.remove_columns(present)
        data.dataset = data.dataset.add_column(ANSWERS, [{"text": [], "answer_start": []}] *
                                               len(data))
        return self.prepare_data(data, {**keys, "answers_key": ANSWERS, "answer_start_key": None,
                                        "answer_text_key": None}, labels)

    def distill_outputs(self, outputs) -> dict[str, Any]:
        return {"start_logits": outputs.start_logits, "end_logits": outputs.end_logits}

    def distill_losses(self, teacher, student, batch, labelled, temperature):
        """Soft targets over each window's positions (padding left out), for the start and the
        end; the task loss is the Trainer's, (start + end) / 2, on the labelled windows."""
        padding = batch["attention_mask"] == 0
        soft, task = 0.0, 0.0
        for end in ("start", "end"):
            s = student[f"{end}_logits"].masked_fill(padding, -1e4)
            t = teacher[f"{end}_logits"].masked_fill(padding, -1e4)
            soft = soft + soft_target_loss(t, s, temperature) / 2
            gold = batch[f"{end}_positions"].masked_fill(~labelled, -100)
            task = task + cross_entropy(s, gold) / 2
        return {"soft": soft, "task": task}

    # --- inference ------------------------------------------------------------------------
    def run_engine(self, predictor, questions: list[str], contexts: list[str],
                   params: engine.QAParams) -> list[engine.ExampleResult]:
        """Window every question/context pair, run all windows in batches, decode spans."""
        engine.validate_params(params, predictor.tokenizer)
        windows = engine.encode(predictor.tokenizer, questions, contexts, params)
        left = getattr(predictor.tokenizer, "padding_side", "right") == "left"

        def extract(output, batch, lengths):
            starts, ends = to_numpy(output.start_logits), to_numpy(output.end_logits)
            return [(s[-n:], e[-n:]) if left else (s[:n], e[:n])
                    for s, e, n in zip(starts, ends, lengths)]

        logits = predictor.run(windows.features, extract) if len(windows) else []
        return engine.postprocess([s for s, _ in logits], [e for _, e in logits], windows,
                                  contexts, params)

    def request_params(self, predictor, params: Mapping[str, Any]) -> engine.QAParams:
        """Request params (already type-checked) -> engine settings, checked for this model."""
        values = {name: params.get(name, spec.default) for name, spec in self.params.items()}
        max_seq = values["max_seq_len"]
        model_max = getattr(predictor.tokenizer, "model_max_length", None) or max_seq
        if max_seq == self.params["max_seq_len"].default and model_max < max_seq:
            max_seq = model_max  # the default adapts to short models; an explicit value does not
        qa = engine.QAParams(max_seq_length=max_seq, doc_stride=values["doc_stride"],
                             max_query_length=values["max_question_len"],
                             max_answer_length=values["max_answer_len"], top_k=values["top_k"],
                             handle_impossible_answer=values["handle_impossible_answer"],
                             null_score_threshold=float(values["null_score_threshold"]))
        engine.validate_params(qa, predictor.tokenizer)
        return qa

    @staticmethod
    def check_question_lengths(tokenizer, questions: list[str], qa: engine.QAParams) -> None:
        """Serving rule for long questions: an error, never a silent cut.

        Training and evaluation cut questions to ``max_query_length`` tokens (the SQuAD
        recipe); a request whose question is longer gets a 400 naming the question, its length
        and the largest ``max_question_len`` its ``max_seq_len``/``doc_stride`` allow.
        """
        lengths = [len(ids) for ids in tokenizer(
            [q.lstrip() for q in questions], add_special_tokens=False)["input_ids"]]
        special = tokenizer.num_special_tokens_to_add(pair=True)
        largest = qa.max_seq_length - special - qa.doc_stride - 1
        for i, n in enumerate(lengths):
            if n > qa.max_query_length:
                raise BadRequest(
                    f"question[{i}] has {n} tokens, more than max_question_len="
                    f"{qa.max_query_length}; shorten the question, or raise "
                    f"params.max_question_len (at most {largest} with max_seq_len="
                    f"{qa.max_seq_length} and doc_stride={qa.doc_stride})")

    def predict(self, predictor, rows: list[dict], params: dict) -> list:
        for i, row in enumerate(rows):
            for column in self.input_columns:
                if not is_text(row.get(column)):
                    raise BadRequest(f"{column}[{i}] must be a non-empty string; got "
                                     f"{row.get(column)!r}")
        qa = self.request_params(predictor, params)
        self.check_question_lengths(predictor.tokenizer, [r[QUESTION] for r in rows], qa)
        results = self.run_engine(predictor, [r[QUESTION] for r in rows],
                                  [r[CONTEXT] for r in rows], qa)
        answers = engine.to_answer_lists(results)
        return [ranked[0] if qa.top_k == 1 else ranked for ranked in answers]

    # --- evaluation -----------------------------------------------------------------------
    def predictions_source(self, settings: Mapping[str, Any]) -> str | None:
        return settings.get("predictions_file") or None

    def evaluate(self, predictor, data: Data, out_dir: Path, settings: Mapping[str, Any]
                 ) -> EvalResult:
        references = [{"id": qid, "answers": answers}
                      for qid, answers in zip(data.dataset[ID], data.dataset[ANSWERS])]
        span_predictions = None
        if predictor is None:
            predictions, na_probs = read_predictions(self.predictions_source(settings))
        else:
            params = self.qa_params(settings, top_k=1)
            results = self.run_engine(predictor, list(data.dataset[QUESTION]),
                                      list(data.dataset[CONTEXT]), params)
            predictions = {r["id"]: res.prediction_text for r, res in zip(references, results)}
            na_probs = {r["id"]: res.no_answer_prob for r, res in zip(references, results)}
            # the best non-empty span of every question, for the threshold curve
            span_predictions = {
                r["id"]: next((a["answer"] for a in self._spans(res)), "")
                for r, res in zip(references, results)}
        official = squad.squad_v2_metrics(references, predictions, na_probs)
        has_no_answer = "NoAns_total" in official
        metrics = {k: float(v) for k, v in official.items()}
        if not has_no_answer:
            metrics["exact_match"] = metrics["exact"]  # the SQuAD v1 name
        if settings.get("language", "en") != "en":
            gold = {r["id"]: r["answers"]["text"] for r in references}
            metrics.update(mlqa.mlqa_metrics([gold[q] for q in gold],
                                             [predictions[q] for q in gold], settings["language"]))
        rows = squad.per_question(references, predictions, na_probs)
        for row, question in zip(rows, data.dataset[QUESTION]):
            row["question"] = question

        curve_predictions = span_predictions or predictions
        thresholds, f1s = squad.threshold_curve(references, curve_predictions,
                                                na_probs or {q: 0.0 for q in predictions})
        thresholds, f1s = curve_with_origin(
            thresholds, f1s, official.get("NoAns_total", 0) / official["total"])
        best = int(np.argmax(f1s))
        (out_dir / CURVE).write_text(json.dumps(
            {"predictions": "best span" if span_predictions else "predictions file",
             "no_answer_threshold": thresholds, "f1": f1s}) + "\n")
        plot_threshold_curve(
            thresholds, f1s, official["f1"], out_dir / PLOT,
            "F1 against the no-answer threshold" + (" (best spans)" if span_predictions else ""))
        counts = {"total": official["total"],
                  "has_answer": official.get("HasAns_total", 0),
                  "no_answer": official.get("NoAns_total", 0)}
        details = {
            "squad_version": "v2" if has_no_answer else "v1",
            "counts": counts,
            "has_answer": _block(official, "HasAns"),
            "no_answer": _block(official, "NoAns"),
            "thresholds": {k: official[k] for k in ("best_exact", "best_exact_thresh",
                                                    "best_f1", "best_f1_thresh")},
            "threshold_curve": {"predictions": "best span" if span_predictions
                                else "predictions file", "best_f1": f1s[best],
                                "best_threshold": thresholds[best]},
            "no_answer_probabilities": na_probs is not None,
            "decision": None if predictor is None else {
                "handle_impossible_answer": params.handle_impossible_answer,
                "null_score_threshold": params.null_score_threshold},
        }
        return EvalResult(metrics=metrics, rows=rows, details=details,
                          artifacts={"threshold_plot": PLOT, "threshold_curve": CURVE})

    @staticmethod
    def _spans(result: engine.ExampleResult):
        return (a for a in result.answers if a["answer"])

    def example_request(self) -> dict[str, list]:
        return {k: list(v) for k, v in SEED_REQUEST.items()}


def window_span_metrics(eval_pred) -> dict[str, float]:
    """Validation metrics the Trainer can compute from window logits alone (no offsets).

    Per window, the predicted span is (argmax start, argmax end) over the whole window and the
    gold span is the labelled one (the CLS position for windows without the answer).
    ``span_exact``: both ends right; ``span_f1``: token-overlap F1 of the two spans (an empty
    prediction, end before start, scores 0), averaged over windows - a cheap proxy of SQuAD F1.
    """
    start_logits, end_logits = eval_pred.predictions[:2]
    gold_start, gold_end = (np.asarray(x).reshape(-1) for x in eval_pred.label_ids[:2])
    start = np.asarray(start_logits).argmax(axis=-1).reshape(-1)
    end = np.asarray(end_logits).argmax(axis=-1).reshape(-1)
    overlap = np.clip(np.minimum(end, gold_end) - np.maximum(start, gold_start) + 1, 0, None)
    predicted = np.clip(end - start + 1, 0, None)
    gold = gold_end - gold_start + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(overlap > 0, 2 * overlap / (predicted + gold), 0.0)
    return {"span_exact": float(np.mean((start == gold_start) & (end == gold_end))),
            "span_f1": float(np.mean(f1))}


def _block(official: Mapping[str, Any], prefix: str) -> dict[str, float] | None:
    if f"{prefix}_total" not in official:
        return None
    return {k: official[f"{prefix}_{k}"] for k in ("exact", "f1", "total")}


TASK = QuestionAnswering()
