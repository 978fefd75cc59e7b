"""Component arguments, defined once.

Each catalog component's inputs are the fields of a few dataclasses. ``HfArgumentParser`` turns
them into the component's command line, and :mod:`distilbert_catalog.specs` turns the same fields
into the ``inputs:`` and ``command:`` of its ``spec.yaml``; a test proves the committed YAML is
exactly what the dataclasses generate. Field metadata: ``help`` (the description), ``type`` (the
Azure ML input type when it is not implied by the Python type, e.g. ``uri_folder``).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field
from typing import Literal, Optional

from .precision import BACKEND_CHOICES, BF16_MIN_SPEEDUP


def arg(default, help: str, azure_type: str | None = None):
    """A component input: ``default`` (``MISSING`` for a required input), description, type."""
    metadata = {"help": help}
    if azure_type:
        metadata["type"] = azure_type
    return field(metadata=metadata) if default is MISSING else field(default=default,
                                                                     metadata=metadata)


@dataclass
class ModelArgs:
    model_name: Optional[str] = arg(
        "distilbert-base-uncased",
        "Hugging Face hub id of the model to start from; used when no model folder is given.")
    pytorch_model_path: Optional[str] = arg(
        None, "A Hugging Face model folder (e.g. the pytorch_model_folder of an earlier job).",
        "custom_model")
    mlflow_model_path: Optional[str] = arg(
        None, "An MLflow model folder written by this catalog; takes precedence over the others.",
        "mlflow_model")

    @property
    def model(self) -> str:
        return self.mlflow_model_path or self.pytorch_model_path or self.model_name


@dataclass
class DatasetArgs:
    dataset_name: Optional[str] = arg(
        None, "Hugging Face hub dataset name, used when no local data folder is given.")
    dataset_config: Optional[str] = arg(None, "Hub dataset configuration name, if any.")


@dataclass
class FinetuneDataArgs(DatasetArgs):
    train_data: Optional[str] = arg(
        None, "Training data: a jsonl/csv/parquet file or a folder of them. In a folder, files "
        "named after the split (train.jsonl, validation.jsonl) are picked.", "uri_folder")
    validation_data: Optional[str] = arg(
        None, "Validation data (file or folder). Default: the validation split of train_data or "
        "of the hub dataset, when there is one.", "uri_folder")
    train_split: str = arg("train", "Split to train on.")
    validation_split: str = arg("validation", "Split to validate on.")


@dataclass
class EvaluateDataArgs(DatasetArgs):
    test_data: Optional[str] = arg(
        None, "Test data: a jsonl/csv/parquet file or a folder of them.", "uri_folder")
    test_split: str = arg("test", "Split to evaluate on.")


@dataclass
class TrainingArgs:
    num_train_epochs: float = arg(3.0, "Number of training epochs.")
    max_steps: int = arg(-1, "If positive, stop after this many optimisation steps.")
    learning_rate: float = arg(2e-5, "Peak learning rate of the AdamW optimiser.")
    per_device_train_batch_size: int = arg(16, "Training batch size per device.")
    per_device_eval_batch_size: int = arg(32, "Evaluation batch size per device.")
    gradient_accumulation_steps: int = arg(1, "Batches to accumulate before each optimiser step.")
    warmup_ratio: float = arg(0.0, "Share of training steps spent warming up the learning rate.")
    weight_decay: float = arg(0.0, "AdamW weight decay.")
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = arg(
        "linear", "Learning-rate schedule.")
    seed: int = arg(42, "Random seed for initialisation and data order.")
    precision: Literal["auto", "fp32", "bf16"] = arg(
        "auto", "Numeric precision; auto times a few training steps of the model on this "
        f"machine and trains in bf16 only where they ran at least {BF16_MIN_SPEEDUP}x as fast "
        "as fp32.")
    early_stopping: bool = arg(False, "Stop when metric_for_best_model stops improving.")
    early_stopping_patience: int = arg(1, "Evaluations without improvement before stopping.")
    metric_for_best_model: Optional[str] = arg(
        None, "Validation metric that picks the best checkpoint (default: the task's, e.g. "
        "accuracy for classification, span_f1 for question answering).")
    resume_from_checkpoint: Optional[str] = arg(
        None, "A Trainer checkpoint folder (or a folder of checkpoint-N folders) to resume from.",
        "uri_folder")
    save_total_limit: int = arg(1, "How many checkpoints to keep.")
    quantization_aware: bool = arg(
        False, "Fine-tune through the int8 backends' rounding (int8 weights per channel, uint8 "
        "inputs per batch, on the encoder's Linear layers), so that int8 serving gives the "
        "trained model's answers; the saved model stays float.")


@dataclass
class EvaluationArgs:
    batch_size: int = arg(32, "Most rows in one inference batch; length-sorted rows are cut "
                          "into batches by padding cost, at most 2,048 padded tokens each.")
    backend: Literal[BACKEND_CHOICES] = arg(
        "auto", "Inference backend; auto follows the model's quality-gate record (the fastest "
        "backend that passed, if measured on this kind of CPU), else the exact fp32.")


@dataclass
class GateArgs:
    candidates: str = arg(
        "bf16,int8,int8-vnni,onnx,onnx-int8", "Comma-separated backends to measure against "
        "fp32 (a backend passes if it is faster and within tolerance); those this machine "
        "cannot run (bf16 without native support, int8-vnni without AVX512-VNNI) are recorded "
        "as skipped.")
    tolerance: float = arg(
        0.5, "Points of the task's quality metric (QA F1; NER entity F1, accuracy and fill-mask "
        "top-1 in percent) a backend may lose against fp32 and still be kept.")
    rounds: int = arg(3, "Timed rounds per backend, interleaved with the others; medians kept.")
    batch_size: int = arg(32, "Most rows in one inference batch; length-sorted rows are cut "
                          "into batches by padding cost, at most 2,048 padded tokens each.")


@dataclass
class CardArgs:
    evaluation_result: str = arg(MISSING, "Evaluation output folder holding metrics.json.",
                                 "uri_folder")
    training_result: Optional[str] = arg(
        None, "Fine-tuning metrics folder (metrics.json with the training config).", "uri_folder")
    extra_evaluation_result: Optional[str] = arg(
        None, "Another evaluation of the same model (metrics.json folder), e.g. on a held-out set "
        "written in another style; the card adds its metrics.", "uri_folder")
    model_display_name: str = arg("distilbert-base-uncased", "Model name shown on the card.")
    card_template: Optional[str] = arg(
        None, "A folder with card.md.j2 and metadata.yaml to use instead of the catalog's.",
        "uri_folder")


# --- task-specific columns and sequence settings ------------------------------------------
@dataclass
class TextClassificationArgs:
    text_key: str = arg("text", "Column holding the input text.")
    label_key: str = arg("label", "Column holding the label (class id or label name).")
    label_names: Optional[str] = arg(
        None, "Comma-separated label names for integer labels, in id order "
        "(e.g. sadness,joy,love,anger,fear,surprise). Default: names stored with the dataset.")
    max_seq_length: int = arg(128, "Maximum tokens per input; longer texts are truncated.")

    @property
    def keys(self) -> dict[str, str]:
        return {"text_key": self.text_key, "label_key": self.label_key}

    @property
    def labels(self) -> list[str] | None:
        return [n.strip() for n in self.label_names.split(",")] if self.label_names else None


@dataclass
class QuestionAnsweringArgs:
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
    max_seq_length: int = arg(384, "Tokens per window (question + context slice + special "
                                   "tokens); longer contexts are split into overlapping windows.")
    doc_stride: int = arg(128, "Context tokens shared by two consecutive windows of a long "
                               "context.")
    max_query_length: int = arg(64, "Question tokens kept; longer questions are cut.")
    max_answer_length: int = arg(30, "Longest answer, in tokens.")
    n_best_size: int = arg(20, "Start and end candidates searched per window.")
    fix_answer_start: bool = arg(
        False, "When context[answer_start:answer_start+len(text)] is not the answer text, move "
        "answer_start to the nearest occurrence of the text instead of failing (an answer text "
        "that does not occur in the context is still an error).")

    def __post_init__(self):
        from .tasks.question_answering.engine import QAParams, validate_params

        validate_params(QAParams(max_seq_length=self.max_seq_length, doc_stride=self.doc_stride,
                                 max_query_length=self.max_query_length,
                                 n_best_size=self.n_best_size,
                                 max_answer_length=self.max_answer_length))
        if self.doc_stride >= self.max_seq_length - self.max_query_length:
            from .errors import CatalogError

            raise CatalogError(
                f"doc_stride={self.doc_stride} must be smaller than max_seq_length - "
                f"max_query_length = {self.max_seq_length - self.max_query_length} (minus the "
                "special tokens), or windows over a long context would not advance")
        if bool(self.answer_start_key) != bool(self.answer_text_key):
            from .errors import CatalogError

            raise CatalogError("give answer_start_key and answer_text_key together (flat answer "
                               "columns), or neither (the answers_key column)")

    @property
    def keys(self) -> dict:
        return {"question_key": self.question_key, "context_key": self.context_key,
                "answers_key": self.answers_key, "answer_start_key": self.answer_start_key,
                "answer_text_key": self.answer_text_key, "id_key": self.id_key,
                "fix_answer_start": self.fix_answer_start}


@dataclass
class QAEvaluationArgs(QuestionAnsweringArgs):
    """The question-answering columns and windowing, plus what only evaluation needs."""

    predictions_file: Optional[str] = arg(
        None, "Score these predictions instead of running a model: jsonl rows {id, "
        "prediction_text, no_answer_probability (optional)} or the official SQuAD JSON "
        "{id: answer text}. \"\" means no answer.", "uri_file")
    handle_impossible_answer: bool = arg(
        True, "Allow the empty (no answer) prediction, as SQuAD v2 needs; set false for SQuAD "
        "v1-style data where every question has an answer.")
    null_score_threshold: float = arg(
        0.0, "Predict no answer when null_score > best_span_score + null_score_threshold; "
        "positive values make no-answer rarer.")
    language: str = arg(
        "en", "Language code of the answers (en, es, de, ar, zh, ja, hi, vi, ...). Other than "
        "en, the metrics add mlqa_exact and mlqa_f1: MLQA-style scoring with the language's "
        "articles, Unicode punctuation and one token per character of scripts written without "
        "spaces.")


@dataclass
class FillMaskArgs:
    """Fill-mask evaluation data: the rcds/wikipedia-for-mask-filling schema or a plain table."""

    text_key: str = arg(
        "texts", "Column holding the text with mask markers (<mask>, [MASK] or [mask]); use "
        "input_string for a plain table.")
    masks_key: str = arg(
        "masks", "Column holding the true words: a list, one per mask in order "
        "(rcds/wikipedia-for-mask-filling), or one word for a text with one mask.")
    kinds_key: str = arg(
        "mask_kinds", "Optional column naming the kind of each masked word (noun, verb, name, "
        "...) for a per-kind breakdown; ignored when the data has no such column.")
    max_seq_length: int = arg(
        512, "Tokens per window (special tokens included, at most the model's maximum); a "
        "longer text is read through a window centred on each mask.")
    pseudo_perplexity_samples: int = arg(
        100, "Texts (a seeded random sample) whose pseudo-perplexity is computed by masking "
        "each token in turn; 0 skips it, a negative number uses every text.")

    @property
    def keys(self) -> dict[str, str]:
        return {"text_key": self.text_key, "masks_key": self.masks_key,
                "kinds_key": self.kinds_key}


@dataclass
class TokenClassificationArgs:
    tokens_key: str = arg("tokens", "Column holding each sentence as a list of words.")
    tags_key: str = arg("ner_tags", "Column holding one tag per word: an integer id or an IOB "
                                    "tag name (O, B-PER, I-PER, ...).")
    label_names: Optional[str] = arg(
        None, "Comma-separated tag names for integer tags, in id order (CoNLL-2003: "
        "O,B-PER,I-PER,B-ORG,I-ORG,B-LOC,I-LOC,B-MISC,I-MISC). Default: the names stored with "
        "the dataset (ClassLabel), or the tag names found in the data.")
    max_seq_length: int = arg(128, "Tokens per window, special tokens included; longer "
                                   "sentences are split into overlapping windows, never "
                                   "truncated.")
    stride: int = arg(32, "Tokens shared by two consecutive windows of a long sentence.")

    def __post_init__(self):
        if self.max_seq_length < 3 or not 0 <= self.stride < self.max_seq_length - 2:
            from .errors import CatalogError

            raise CatalogError(
                f"stride={self.stride} must be in 0..max_seq_length - 3 = "
                f"{self.max_seq_length - 3} (a window holds max_seq_length minus 2 special "
                "tokens), or windows over a long sentence would not advance")

    @property
    def keys(self) -> dict[str, str]:
        return {"tokens_key": self.tokens_key, "tags_key": self.tags_key}

    @property
    def labels(self) -> list[str] | None:
        return [n.strip() for n in self.label_names.split(",")] if self.label_names else None


@dataclass
class TokenClassificationFinetuneArgs(TokenClassificationArgs):
    """The token-classification columns and windows, plus what only fine-tuning needs."""

    label_all_tokens: bool = arg(
        False, "Train on every sub-token of a word (later sub-tokens of a B-X word as I-X) "
        "instead of only its first sub-token; predictions always read the first sub-token.")
