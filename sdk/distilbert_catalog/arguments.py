"""Component arguments, defined once.

Each catalog component's inputs are the fields of a few dataclasses: the shared ones here (model,
data, training, evaluation, gate, card) and the task's own, in ``tasks/<task>/arguments.py`` on the
:class:`TaskArguments` protocol. ``HfArgumentParser`` turns them into the component's command line,
and :mod:`distilbert_catalog.components` turns the same fields into the ``inputs:`` and
``command:`` of its ``spec.yaml``; a test proves the committed YAML is exactly what the
dataclasses generate. Field metadata: ``help`` (the description), ``type`` (the
Azure ML input type when it is not implied by the Python type, e.g. ``uri_folder``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import MISSING, asdict, dataclass, field
from typing import Any, Literal, Optional

from .defaults import INFERENCE_BATCH_SIZE
from .precision import BACKEND_CHOICES, BF16_MIN_SPEEDUP


def arg(default, help: str, azure_type: str | None = None):
    """A component input: ``default`` (``MISSING`` for a required input), description, type."""
    metadata = {"help": help}
    if azure_type:
        metadata["type"] = azure_type
    return field(metadata=metadata) if default is MISSING else field(default=default,
                                                                     metadata=metadata)


def split_names(text: str | None) -> list[str] | None:
    """Comma-separated names (``label_names``) as a list, or None when not given."""
    return [n.strip() for n in text.split(",")] if text else None


class TaskArguments(ABC):
    """What training, evaluation and the gate read from a task's argument dataclass.

    Every task's argument dataclasses (``tasks/<task>/arguments.py``) derive from this class; the
    shared workflows read nothing else from them.
    """

    #: tokens per input (or per window, for tasks that window long inputs)
    max_seq_length: int

    @property
    @abstractmethod
    def keys(self) -> dict[str, Any]:
        """The column names and data options the task's ``prepare_data`` takes."""

    @property
    def labels(self) -> list[str] | None:
        """Label names in id order given by the user, or None (names come from the data)."""
        return None

    def settings(self) -> dict[str, Any]:
        """Every argument plus ``labels``: what the task's training and evaluation read."""
        return {**asdict(self), "labels": self.labels}


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
class TeacherArgs:
    teacher_model_path: str = arg(
        MISSING, "The teacher: a Hugging Face model folder or an MLflow model from this catalog, "
        "fine-tuned for the task (e.g. the mlflow_model_folder of a fine-tune job).",
        "custom_model")


@dataclass
class DistillDataArgs(FinetuneDataArgs):
    transfer_data: Optional[str] = arg(
        None, "Unlabelled inputs (file or folder, the training data's columns without labels) "
        "the teacher labels with soft targets, trained on beside the labelled rows.",
        "uri_folder")
    test_data: Optional[str] = arg(
        None, "Evaluation data for the teacher-vs-student report (file or folder): both models' "
        "task metric and speed. Default: the validation data.", "uri_folder")
    test_split: str = arg("test", "Split of test_data to evaluate on.")


@dataclass
class DistillArgs:
    student_num_layers: Optional[int] = arg(
        None, "Transformer layers of the student. Default: half the teacher's (rounded up).")
    student_layers: Optional[str] = arg(
        None, "Comma-separated teacher layers (0-based) that initialise the student's layers, "
        "in order, e.g. 1,3,5. Default: evenly spaced, ending at the teacher's last layer "
        "(layer floor((i+1)*n/k)-1 for student layer i of k, teacher of n: 6 -> 3 takes 1,3,5).")
    student_model_name: Optional[str] = arg(
        None, "Hugging Face hub id of a model to start the student from instead of the teacher's "
        "layers; it must use the teacher's tokenizer (vocabulary).")
    student_model_path: Optional[str] = arg(
        None, "A Hugging Face model folder or an MLflow model from this catalog to start the "
        "student from instead of the teacher's layers (same tokenizer as the teacher); takes "
        "precedence over student_model_name.", "custom_model")
    temperature: float = arg(2.0, "Softmax temperature of the soft targets (both models).")
    alpha_ce: Optional[float] = arg(
        None, "Weight of the soft-target loss (T^2 KL to the teacher's distribution). Default: "
        "the task's (docs/distillation.md).")
    alpha_task: Optional[float] = arg(
        None, "Weight of the task's own loss on gold labels (masked LM for fill-mask). Default: "
        "the task's.")
    alpha_cos: Optional[float] = arg(
        None, "Weight of the cosine loss aligning the student's last hidden states with the "
        "teacher's (equal hidden sizes). Default: the task's.")
    speed_rounds: int = arg(3, "Timed rounds per model in the report, teacher and student "
                               "interleaved; medians kept.")

    @property
    def student_model(self) -> str | None:
        """The model the student starts from, if not cut from the teacher."""
        return self.student_model_path or self.student_model_name

    def weights(self, defaults: dict[str, float]) -> dict[str, float]:
        """The loss weights: those given, else the task's ``defaults``."""
        return {name: float(defaults[name] if getattr(self, name) is None
                             else getattr(self, name)) for name in defaults}


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


BATCH_SIZE_HELP = ("Most rows in one inference batch; length-sorted rows are cut into batches by "
                   "padding cost, at most 2,048 padded tokens each.")


@dataclass
class EvaluationArgs:
    batch_size: int = arg(INFERENCE_BATCH_SIZE, BATCH_SIZE_HELP)
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
    batch_size: int = arg(INFERENCE_BATCH_SIZE, BATCH_SIZE_HELP)


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
