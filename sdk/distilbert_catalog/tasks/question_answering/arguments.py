"""Question-answering component arguments: columns, windowing, span search, evaluation.

The windowing and decoding defaults are the engine's (:class:`.engine.QAParams`, declared once);
the rule that a window must advance (``doc_stride`` below the context room) is the engine's too,
checked against the real tokenizer when one is loaded and, before that, with the fewest special
tokens a pair can have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ...arguments import TaskArguments, arg
from ...errors import CatalogError
from .engine import QAParams, validate_params

DEFAULTS = QAParams()


@dataclass
class QuestionAnsweringArgs(TaskArguments):
    question_key: str = arg("question", "Column holding the question.")
    context_key: str = arg("context", "Column holding the context passage the answer is taken "
                                      "from.")
    answers_key: str = arg(
        "answers", 'Column holding SQuAD answers {"text": [...], "answer_start": [...]}; empty '
        "lists mark an unanswerable question (SQuAD v2). Ignored when answer_start_key and "
        "answer_text_key are given.")
    answer_start_key: Optional[str] = arg(
        None, "Instead of answers_key: a column with the answer's character offset in the "
        "context (an integer, or a list of them; empty/null/-1 = unanswerable).")
    answer_text_key: Optional[str] = arg(
        None, "Instead of answers_key: a column with the answer text (a string, or a list of "
        "them; empty/null = unanswerable). Give it together with answer_start_key.")
    id_key: str = arg("id", "Column holding a unique question id; stable ids are generated when "
                            "the column is missing.")
    max_seq_length: int = arg(DEFAULTS.max_seq_length, "Tokens per window (question + context slice + special "
                                   "tokens); longer contexts are split into overlapping windows.")
    doc_stride: int = arg(DEFAULTS.doc_stride, "Context tokens shared by two consecutive windows of a long "
                               "context.")
    max_query_length: int = arg(DEFAULTS.max_query_length, "Question tokens kept; longer questions are cut.")
    max_answer_length: int = arg(DEFAULTS.max_answer_length, "Longest answer, in tokens.")
    n_best_size: int = arg(DEFAULTS.n_best_size, "Start and end candidates searched per window.")
    fix_answer_start: bool = arg(
        False, "When context[answer_start:answer_start+len(text)] is not the answer text, move "
        "answer_start to the nearest occurrence of the text instead of failing (an answer text "
        "that does not occur in the context is still an error).")

    def __post_init__(self):
        validate_params(self.qa_params(), PairTokens())  # BadRequest is a CatalogError
        if bool(self.answer_start_key) != bool(self.answer_text_key):
            raise CatalogError("give answer_start_key and answer_text_key together (flat answer "
                               "columns), or neither (the answers_key column)")

    def qa_params(self) -> QAParams:
        return QAParams(max_seq_length=self.max_seq_length, doc_stride=self.doc_stride,
                        max_query_length=self.max_query_length, n_best_size=self.n_best_size,
                        max_answer_length=self.max_answer_length)

    @property
    def keys(self) -> dict:
        return {"question_key": self.question_key, "context_key": self.context_key,
                "answers_key": self.answers_key, "answer_start_key": self.answer_start_key,
                "answer_text_key": self.answer_text_key, "id_key": self.id_key,
                "fix_answer_start": self.fix_answer_start}


@dataclass
class QADecisionArgs(QuestionAnsweringArgs):
    """The question-answering columns and windowing, plus how an answer is decided: what the
    distill component's teacher-vs-student report scores with, as evaluation does."""

    handle_impossible_answer: bool = arg(
        True, "Allow the empty (no answer) prediction, as SQuAD v2 needs; set false for SQuAD "
        "v1-style data where every question has an answer.")
    null_score_threshold: float = arg(
        0.0, "Predict no answer when null_score > best_span_score + null_score_threshold; "
        "positive values make no-answer rarer.")


@dataclass
class QAEvaluationArgs(QADecisionArgs):
    """The question-answering columns, windowing and decision, plus what only evaluation needs."""

    predictions_file: Optional[str] = arg(
        None, "Score these predictions instead of running a model: jsonl rows {id, "
        "prediction_text, no_answer_probability (optional)} or the official SQuAD JSON "
        "{id: answer text}. \"\" means no answer.", "uri_file")
    language: str = arg(
        "en", "Language code of the answers (en, es, de, ar, zh, ja, hi, vi, ...). Other than "
        "en, the metrics add mlqa_exact and mlqa_f1: MLQA-style scoring with the language's "
        "articles, Unicode punctuation and one token per character of scripts written without "
        "spaces.")


class PairTokens:
    """Before a model is loaded: a fast tokenizer adding the fewest special tokens a question and
    context pair can have (BERT's three), with no length limit of its own."""

    is_fast = True
    model_max_length = None

    @staticmethod
    def num_special_tokens_to_add(pair: bool = True) -> int:
        return 3 if pair else 2
