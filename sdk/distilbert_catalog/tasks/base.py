"""The task plug-in contract.

Training, evaluation, packaging, serving and model cards are written once and ask a :class:`Task`
for everything that differs between tasks: its columns and data validation, how to tokenise for
training, which model head to load, how to turn model outputs into answers, and its metrics.

A task is a folder ``tasks/<task>/`` (found by :mod:`distilbert_catalog.tasks`, never listed):
its ``__init__`` defines ``TASK``, an instance of its :class:`Task` subclass, which names its
argument dataclasses (``arguments.py``, on :class:`~distilbert_catalog.arguments.TaskArguments`),
its component descriptions, its request params (and the deployment limits bounding them) and
its model-card section (``card.md.j2`` next to it).
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..data import Data
from ..errors import BadRequest, CatalogError


@dataclass(frozen=True)
class Param:
    """A request parameter: its type, default and an optional check that returns an error text."""

    type: type
    default: Any
    help: str
    check: Callable[[Any], str | None] | None = None
    #: the deployment limit (a field of :class:`~distilbert_catalog.serving.limits.Limits`) that
    #: bounds this parameter's value, if any
    limit: str | None = None

    def parse(self, name: str, value: Any) -> Any:
        if self.type is bool:
            ok = isinstance(value, bool)
        elif self.type is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.type is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = isinstance(value, self.type)
        if not ok:
            raise BadRequest(f"params.{name} must be a {self.type.__name__} ({self.help}); "
                             f"got {value!r}")
        problem = self.check(value) if self.check else None
        if problem:
            raise BadRequest(f"params.{name} {problem}; got {value!r}")
        return self.type(value)


def positive(value) -> str | None:
    return None if value > 0 else "must be positive"


@dataclass
class EvalResult:
    """What a task's evaluation produced; :mod:`distilbert_catalog.evaluation` writes it out."""

    metrics: dict[str, float]
    rows: list[dict]
    details: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)


class Task(ABC):
    """One catalog task. Subclasses are stateless singletons, one per task folder (``TASK``)."""

    name: str
    #: how the task is named in component titles, e.g. "token classification (NER)"
    title: str
    #: the argument dataclass of the task's fine-tune component (None: no fine-tune component)
    finetune_args: type | None = None
    #: the argument dataclass of the task's evaluate and gate components
    evaluate_args: type
    #: component descriptions (spec.yaml ``description``)
    finetune_description: str = ""
    evaluate_description: str
    #: the model card's "Intended use" paragraph
    intended_use: str
    #: label names a freshly initialised head gets when a test or the quickstart builds one
    #: (``tiny.with_task_head``); None for heads without labels
    example_labels: tuple[str, ...] | None = None
    #: whether a model folder that records no task (``config.json`` without ``catalog_task``,
    #: saved before tasks were recorded) and has this task's head is taken for this task; one
    #: task per head may claim it
    default_for_head: bool = True
    #: the request columns a scoring request carries per row, e.g. ("input_string",)
    input_columns: tuple[str, ...]
    #: other names accepted for those columns in requests, e.g. {"text": "input_string"}
    input_aliases: Mapping[str, str] = {}
    #: request parameters accepted by :meth:`predict`
    params: Mapping[str, Param] = {}
    #: the metric Trainer uses to pick the best checkpoint when the user does not choose
    default_metric_for_best_model: str = "loss"
    #: the evaluation metric the quality gate holds faster backends to, and how many points one
    #: unit of it is worth (100 for a 0-1 share; 1 for a 0-100 score such as SQuAD F1)
    quality_metric: str
    quality_points: float = 100.0
    #: the fields of an evaluation row (:attr:`EvalResult.rows`) that are the model's answer: the
    #: quality gate counts the examples whose answer a backend changes (scores aside)
    answer_fields: tuple[str, ...]
    #: the model head, as the ``config.architectures`` suffix it is saved with (e.g.
    #: "ForTokenClassification"); names the ``AutoModel...`` class and tells a plain Hugging
    #: Face model folder's task (``tasks.task_for_config``)
    head: str

    # --- the task folder ----------------------------------------------------------------------
    @classmethod
    def folder(cls) -> Path:
        """The task's folder (where its ``card.md.j2`` and arguments live)."""
        return Path(inspect.getfile(cls)).resolve().parent

    def card_section(self) -> Path:
        """The task's model-card section: a Jinja template rendered inside the catalog card."""
        return self.folder() / "card.md.j2"

    # --- data -----------------------------------------------------------------------------
    @abstractmethod
    def prepare_data(self, data: Data, keys: Mapping[str, str], labels: list[str] | None) -> Data:
        """Map user columns to canonical ones and validate every row (raise DataError)."""

    def label_names(self, data: Data, given: list[str] | None) -> list[str] | None:
        """Label names learned from training data (classification tasks); None otherwise."""
        return None

    # --- training -------------------------------------------------------------------------
    def model_class(self):
        """The ``AutoModelFor...`` class for this task's head (from :attr:`head`)."""
        import transformers

        return getattr(transformers, "AutoModel" + self.head)

    def model_kwargs(self, labels: list[str] | None) -> dict:
        return {}

    @abstractmethod
    def train_features(self, data: Data, tokenizer, max_seq_length: int, labels, settings):
        """Tokenised ``datasets.Dataset`` for the Trainer (unpadded: the collator pads)."""

    @abstractmethod
    def collator(self, tokenizer, settings: Mapping[str, Any]):
        """A data collator that pads each batch dynamically (``settings``: the task arguments)."""

    def loss_function(self) -> Callable | None:
        """The Trainer's ``compute_loss_func`` ``(outputs, labels, num_items_in_batch) -> loss``,
        or None for the model's own loss.

        The model's loss is a mean over the examples of a batch; under DDP every rank has as many
        examples and the ranks' gradients are averaged, so that is the global batch's mean. A
        task whose loss is a mean over *tokens* (ranks hold different numbers of labelled tokens)
        returns a function dividing its summed loss by ``num_items_in_batch``, the labelled
        items of the whole optimiser step that the Trainer counts across ranks and accumulated
        batches: the mean one process with the whole global batch computes.
        """
        return None

    def trainer_metrics(self, labels, eval_features=None) -> Callable | None:
        """``compute_metrics`` for the Trainer's evaluations, or None.

        ``eval_features`` is the validation feature dataset exactly as :meth:`train_features` made
        it, bookkeeping columns included, in the order the Trainer evaluates it (training
        evaluates in dataset order), so prediction ``i`` belongs to ``eval_features[i]``: a task
        can turn window-level outputs back into row-level answers and score its real metric.
        """
        return None

    def preprocess_logits_for_metrics(self, settings: Mapping[str, Any]) -> Callable | None:
        """Reduce each evaluation batch's logits before the Trainer gathers them, or None.

        ``(logits, labels) -> tensor``; e.g. an argmax, so evaluation keeps one id per token
        instead of a score per label (or per vocabulary word) for every token.
        """
        return None

    def finalize_metrics(self, metrics: Mapping[str, float], prefix: str) -> dict[str, float]:
        """Metrics computed from a finished evaluation's metrics, added to them (or {}).

        Called on every Trainer evaluation (``prefix`` "eval_"), logged with its metrics before
        the best checkpoint is chosen (the hook runs after ``on_evaluate`` callbacks, so early
        stopping watches the Trainer's own metrics); e.g. perplexity from ``eval_loss``, which
        ``compute_metrics`` never sees.
        """
        return {}

    # --- inference ------------------------------------------------------------------------
    def forward_fn(self, model, tokenizer):
        """The forward pass a :class:`~distilbert_catalog.inference.Predictor` runs for this task.

        The default runs the whole model. A task whose head output is too big to keep for every
        token (fill-mask: a vocabulary of logits per position) returns a forward that computes
        only what its ``extract`` reads. The Predictor keeps it as ``forward_fn``, still
        swappable.
        """
        from ..backends import torch_forward

        return torch_forward(model)

    def parse_params(self, params: Mapping[str, Any]) -> dict:
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            raise BadRequest(f"unknown params {unknown}; {self.name} accepts "
                             f"{sorted(self.params) or 'no params'}")
        parsed = {name: spec.default for name, spec in self.params.items()}
        parsed.update({name: self.params[name].parse(name, v) for name, v in params.items()})
        return parsed

    def validate_row(self, row: dict, index: int) -> dict:
        """Check one request row (input column -> value) and return it as :meth:`predict` wants it.

        Raise :class:`BadRequest` naming the item (``column[index]``) and what to send instead.
        Request parsing and batch scoring call this for every row, so one bad row can be reported
        (or, in batch scoring, become an error row) without touching the others. The default
        wants a non-empty string in every input column.
        """
        for column in self.input_columns:
            value = row[column]
            if not isinstance(value, str):
                raise BadRequest(f"{column}[{index}] must be a string; got {json.dumps(value)}")
            if not value.strip():
                raise BadRequest(f"{column}[{index}] is empty; send non-empty text")
        return row

    @abstractmethod
    def predict(self, predictor, rows: list[dict], params: dict) -> list:
        """One JSON-ready answer per request row."""

    def predictions_source(self, settings: Mapping[str, Any]) -> str | None:
        """A file of predictions the evaluation scores instead of running a model, or None.

        Evaluation then passes ``predictor=None`` to :meth:`evaluate`; the quality gate, which
        must run the model, refuses it. The default: a task always runs a model.
        """
        return None

    @abstractmethod
    def evaluate(self, predictor, data: Data, out_dir: Path, settings: Mapping[str, Any]
                 ) -> EvalResult:
        """Predict on ``data`` and compute the task's metrics; write task plots into out_dir.

        ``predictor`` is None when :meth:`predictions_source` names predictions to score instead.
        """

    @abstractmethod
    def example_request(self) -> dict[str, list]:
        """A small request (columns → values) for signatures, cards and docs."""

    # --- distillation (asked by :mod:`distilbert_catalog.distillation`) --------------------
    #: the argument dataclass of the task's distill component (default: the fine-tune one)
    distill_args: type | None = None
    #: the batch keys that hold training labels (passed to a model's forward as its loss input)
    label_keys: tuple[str, ...] = ("labels",)
    #: loss weights when the user gives none: soft targets, the task's own loss, hidden-state
    #: cosine (DistilBERT: 5, 2, 1 for masked-LM pre-training; HF's SQuAD recipe: 0.5, 0.5, 0)
    distill_weights: Mapping[str, float] = {"alpha_ce": 0.5, "alpha_task": 0.5, "alpha_cos": 0.0}
    #: whether a training row gives the same model input every epoch, so the teacher's outputs
    #: can be computed once and cached (False where the collator masks at random each batch)
    distill_inputs_fixed: bool = True
    #: whether the distill component's training data carries the task's labels (False: raw
    #: inputs, read by :meth:`prepare_unlabelled`, as masked-LM text)
    distill_train_labels: bool = True

    def distill_arguments(self) -> type | None:
        """The distill component's task arguments, or None: the task has no distill component."""
        return self.distill_args or self.finetune_args

    def prepare_unlabelled(self, data: Data, keys: Mapping[str, Any],
                           labels: list[str] | None) -> Data:
        """Validate rows that carry no labels (a distillation transfer set: the teacher labels
        them) and give each a placeholder label :meth:`train_features` accepts; distillation
        marks these rows unlabelled, so a placeholder never reaches a loss."""
        raise CatalogError(f"{self.name} takes no unlabelled transfer data")

    @staticmethod
    def with_placeholder_labels(data: Data, column: str, placeholders: list) -> Data:
        """``data`` with ``column`` (whatever it held) replaced by ``placeholders``, one per row:
        what :meth:`prepare_unlabelled` gives rows whose labels the teacher provides."""
        if column in data.dataset.column_names:
            data.dataset = data.dataset.remove_columns(column)
        data.dataset = data.dataset.add_column(column, placeholders)
        return data

    def distill_outputs(self, outputs) -> dict[str, Any]:
        """The output tensors of a forward pass the student learns to match, by name, each with
        the batch first (and the sequence second, when it has one): cached for the teacher."""
        return {"logits": outputs.logits}

    def distill_losses(self, teacher: Mapping[str, Any], student: Mapping[str, Any],
                       batch: Mapping[str, Any], labelled, temperature: float) -> dict[str, Any]:
        """``{"soft": ..., "task": ...}``: the soft-target loss of the student's outputs against
        the teacher's (:func:`soft_target_loss` over the positions the task answers at) and the
        task's own loss on the gold labels of the ``labelled`` rows (a bool tensor per row).
        ``batch`` holds the labels under :attr:`label_keys`; teacher outputs past a row's end
        are zeros."""
        raise CatalogError(f"{self.name} has no distillation losses")


def soft_target_loss(teacher_logits, student_logits, temperature: float):
    """T² · KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over rows (``(N, C)`` each;
    the class dimension last). Hinton et al.'s soft targets, as DistilBERT trains its student:
    T² keeps the gradient scale of the soft term independent of T."""
    import torch.nn.functional as F

    if teacher_logits.numel() == 0:
        return student_logits.sum() * 0.0
    t = teacher_logits.detach().float() / temperature
    s = student_logits.float() / temperature
    return F.kl_div(F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1), reduction="batchmean",
                    log_target=True) * temperature ** 2


def cross_entropy(logits, targets, ignore_index: int = -100):
    """Mean cross-entropy over the targets that are not ``ignore_index`` (0 when there are none,
    so a batch of unlabelled rows adds no task loss)."""
    import torch.nn.functional as F

    keep = targets != ignore_index
    if not bool(keep.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[keep].float(), targets[keep])
