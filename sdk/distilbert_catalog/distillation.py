"""Knowledge distillation for every task: a smaller student trained on its teacher's outputs.

The workflow asks the task (never names it) for everything task-specific: its data checks, its
training features and collator, the outputs the student learns to match
(:meth:`Task.distill_outputs`) and the losses over them (:meth:`Task.distill_losses`: soft targets
where the task answers - sequence logits, label-bearing tokens, start/end logits per window,
masked positions - and its own loss on gold labels).

1. Data (labelled rows, an optional unlabelled *transfer set*, validation and evaluation rows) is
   validated before any model loads.
2. The student is the teacher cut down: embeddings, the task head and ``k`` of the teacher's ``n``
   layers (default: evenly spaced, ending at the last layer, layer ⌊(i+1)·n/k⌋-1 for student
   layer i: 6 -> 3 takes 1, 3, 5); or a given model (``student_model_path`` /
   ``student_model_name``) that reads the teacher's tokens.
3. Teacher outputs are computed once per training row and cached when every epoch feeds the row
   unchanged (:attr:`Task.distill_inputs_fixed`); otherwise (random masking, or a hidden-state
   loss) the teacher runs on each batch.
4. The Trainer (:class:`DistillationTrainer`, the fine-tuning Trainer with ``compute_loss``
   overridden) minimises ``alpha_ce`` · soft + ``alpha_task`` · task + ``alpha_cos`` · cosine.
5. Teacher and student are evaluated on the same data and timed in interleaved rounds on this
   CPU; ``metrics.json`` (stage ``distillation``) holds both and what the student kept.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import mlflow
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoTokenizer, PrinterCallback, set_seed

from .arguments import (DistillArgs, DistillDataArgs, TaskArguments, TeacherArgs, TrainingArgs,
                        split_names)
from .data import Data, load_data, load_split
from .errors import CatalogError
from .hardware import cpu_description
from .evaluation import timed_evaluations
from .inference import load_predictor
from .metrics_file import FILENAME as METRICS_FILE, write_metrics
from .mlflow_model import save_mlflow_model
from .modeling import resolve_model_source, weights_source
from .precision import choose_training_precision, default_device
from .ranks import current
from .tasks import get_task, record_task, task_for_config
from .tracking import configure_tracking, log_flat
from .training import (AdoptForeignBestCheckpoint, CatalogTrainer, ProgressLog, first_batch,
                       load_validation, training_arguments, with_lengths)

log = logging.getLogger(__name__)

#: extra columns of a training feature, and batch keys, the distillation adds
INDEX, LABELLED, TEACHER = "distill_index", "distill_labelled", "teacher."
#: a layer's index in a parameter name: DistilBERT's transformer.layer.3., BERT's encoder.layer.3.
LAYER = re.compile(r"(?:^|\.)layer\.(\d+)\.")


@dataclass
class DistillResult:
    model_dir: Path
    mlflow_model_dir: Path | None
    metrics_dir: Path
    metrics: dict[str, float]
    report: dict[str, Any]


# --- the student ------------------------------------------------------------------------------
def default_student_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """Evenly spaced teacher layers ending at the last one: ⌊(i+1)·n/k⌋-1 for i < k.

    6 -> 3: [1, 3, 5] (DistilBERT took one BERT layer out of two the same way); 6 -> 2: [2, 5];
    12 -> 6: [1, 3, 5, 7, 9, 11].
    """
    if not 1 <= student_layers <= teacher_layers:
        raise CatalogError(f"student_num_layers must be in 1..{teacher_layers} (the teacher's "
                           f"layers); got {student_layers}")
    return [(i + 1) * teacher_layers // student_layers - 1 for i in range(student_layers)]


def student_layer_choice(args: DistillArgs, teacher_layers: int) -> list[int]:
    """The teacher layers that initialise the student, from the arguments, checked."""
    if args.student_layers:
        try:
            layers = [int(v) for v in split_names(args.student_layers)]
        except ValueError:
            raise CatalogError(f"student_layers must be comma-separated layer numbers, e.g. "
                               f"1,3,5; got {args.student_layers!r}") from None
        if args.student_num_layers is not None and args.student_num_layers != len(layers):
            raise CatalogError(f"student_layers names {len(layers)} layers but "
                               f"student_num_layers is {args.student_num_layers}")
        bad = [v for v in layers if not 0 <= v < teacher_layers]
        if bad or len(set(layers)) != len(layers):
            raise CatalogError(f"student_layers {layers}: each must be a distinct teacher layer "
                               f"in 0..{teacher_layers - 1}")
        return layers
    k = args.student_num_layers if args.student_num_layers is not None \
        else (teacher_layers + 1) // 2
    return default_student_layers(teacher_layers, k)


def build_student(teacher, layers: list[int]):
    """The teacher with only ``layers`` (in that order): embeddings and head copied whole."""
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config)
    state = {}
    for key, value in teacher.state_dict().items():
        match = LAYER.search(key)
        if match is None:
            state[key] = value
        elif int(match.group(1)) in layers:
            position = str(layers.index(int(match.group(1))))
            state[key[:match.start(1)] + position + key[match.end(1):]] = value
    student.load_state_dict(state, strict=True)
    return student


def student_source(reference: str, teacher_config, tokenizer, weights: Mapping[str, float]
                   ) -> str:
    """Where a student given as a model (``student_model_path`` / ``student_model_name``) loads
    from, checked against the teacher before any weights load: the same vocabulary (the student
    reads the teacher's tokens), and the same hidden size where the cosine loss compares hidden
    states."""
    source, _ = resolve_model_source(reference)
    vocabulary = AutoTokenizer.from_pretrained(source).get_vocab()
    if vocabulary != tokenizer.get_vocab():
        raise CatalogError(f"student model {reference} has another tokenizer than the teacher "
                           f"({len(vocabulary)} against {len(tokenizer)} tokens, or the same "
                           "count with other ids): a student must read the teacher's tokens")
    width = hidden_size(AutoConfig.from_pretrained(source))
    teacher_width = hidden_size(teacher_config)
    if weights["alpha_cos"] > 0 and width != teacher_width:
        raise CatalogError(f"alpha_cos compares hidden states, but student model {reference} is "
                           f"{width} wide and the teacher {teacher_width}; set alpha_cos=0")
    return source


def num_layers(config) -> int:
    return int(config.num_hidden_layers)


def hidden_size(config) -> int:
    return int(config.hidden_size)


# --- teacher outputs, cached ------------------------------------------------------------------
def teacher_outputs(task, teacher, features, collator, batch_size: int) -> list[dict]:
    """The teacher's :meth:`Task.distill_outputs` for every feature, unpadded (features of one
    length are batched together, so nothing is cut or padded), in feature order."""
    accepted = forward_inputs(teacher) - set(task.label_keys)
    lengths = [len(ids) for ids in features["input_ids"]]
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    cache: list[dict | None] = [None] * len(lengths)
    teacher.eval()
    with torch.no_grad():
        start = 0
        while start < len(order):
            end = start
            while end < len(order) and end - start < batch_size and \
                    lengths[order[end]] == lengths[order[start]]:
                end += 1
            chunk = order[start:end]
            batch = collator([{k: v for k, v in features[i].items() if k in accepted}
                              for i in chunk])
            outputs = task.distill_outputs(teacher(**{k: v for k, v in batch.items()
                                                      if k in accepted}))
            for row, i in enumerate(chunk):
                cache[i] = {name: value[row].float().clone() for name, value in outputs.items()}
            start = end
    return cache


def pad_stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Stack tensors, padding each with zeros to the largest size along every dimension."""
    shape = [max(t.shape[d] for t in tensors) for d in range(tensors[0].dim())]
    out = tensors[0].new_zeros((len(tensors), *shape))
    for row, t in enumerate(tensors):
        out[(row, *(slice(0, n) for n in t.shape))] = t
    return out


class DistillCollator:
    """The task's collator, plus which rows carry gold labels and the cached teacher outputs.

    Features without :data:`INDEX` (evaluation batches) go to the task's collator unchanged.
    """

    def __init__(self, collator, cache: list[dict] | None):
        self.collator, self.cache = collator, cache

    def __call__(self, features: list[dict]) -> dict:
        if INDEX not in features[0]:
            return self.collator(features)
        extra = (INDEX, LABELLED, "length")
        batch = self.collator([{k: v for k, v in f.items() if k not in extra} for f in features])
        batch[LABELLED] = torch.tensor([bool(f[LABELLED]) for f in features])
        if self.cache is not None:
            rows = [self.cache[f[INDEX]] for f in features]
            for name in rows[0]:
                batch[TEACHER + name] = pad_stack([r[name] for r in rows])
        return batch


def hidden_cosine(teacher_hidden, student_hidden, attention_mask):
    """1 - cosine similarity of the last hidden states, averaged over the real tokens
    (DistilBERT's cosine loss; teacher and student need the same hidden size)."""
    keep = attention_mask.bool()
    t, s = teacher_hidden[keep], student_hidden[keep]
    if t.shape[-1] != s.shape[-1]:
        raise CatalogError(f"alpha_cos needs equal hidden sizes; the teacher has {t.shape[-1]}, "
                           f"the student {s.shape[-1]}")
    return (1 - F.cosine_similarity(s.float(), t.detach().float(), dim=-1)).mean()


class DistillationTrainer(CatalogTrainer):
    """The fine-tuning Trainer with the distillation loss, through its public ``compute_loss``.

    Training batches (from :class:`DistillCollator`) get ``alpha_ce`` · soft targets +
    ``alpha_task`` · the task's loss on labelled rows + ``alpha_cos`` · hidden cosine; evaluation
    batches keep the model's own loss, so checkpoints are chosen as in fine-tuning.
    """

    #: the loss is a per-batch mean: the Trainer divides it by the accumulation steps
    loss_is_scaled_for_ga = False

    def __init__(self, task, *args, teacher, weights: Mapping[str, float], temperature: float,
                 **kwargs):
        super().__init__(task, *args, **kwargs)
        self.teacher = teacher.eval()
        self.weights, self.temperature = dict(weights), temperature

    def only_model_inputs(self, dataset, keep: tuple[str, ...] = ()):
        """The model's inputs plus the rows' distillation columns (for :class:`DistillCollator`)."""
        return super().only_model_inputs(dataset, keep=(*keep, INDEX, LABELLED))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if LABELLED not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        inputs = dict(inputs)
        labelled = inputs.pop(LABELLED)
        teacher = {k[len(TEACHER):]: inputs.pop(k) for k in list(inputs) if k.startswith(TEACHER)}
        forward = {k: v for k, v in inputs.items() if k not in self.task.label_keys}
        cosine = self.weights["alpha_cos"] > 0
        outputs = model(**forward, output_hidden_states=cosine)
        student = self.task.distill_outputs(outputs)
        teacher_out = None
        if cosine or (not teacher and self.weights["alpha_ce"] > 0):
            with torch.no_grad():
                teacher_out = self.teacher(**forward, output_hidden_states=cosine)
            teacher = teacher or self.task.distill_outputs(teacher_out)
        elif not teacher:  # no soft-target term: the teacher need not run
            teacher = {name: value.detach() for name, value in student.items()}
        losses = self.task.distill_losses(teacher, student, inputs, labelled, self.temperature)
        loss = self.weights["alpha_ce"] * losses["soft"] + \
            self.weights["alpha_task"] * losses["task"]
        if cosine:
            loss = loss + self.weights["alpha_cos"] * hidden_cosine(
                teacher_out.hidden_states[-1], outputs.hidden_states[-1],
                forward["attention_mask"])
        return (loss, outputs) if return_outputs else loss


def forward_inputs(model) -> set[str]:
    import inspect

    return set(inspect.signature(model.forward).parameters)


# --- data --------------------------------------------------------------------------------------
def distill_data(task, data: DistillDataArgs, task_args: TaskArguments,
                 teacher_labels: list[str] | None):
    """Training rows (labelled), transfer rows (unlabelled), validation and evaluation rows, all
    validated; and the label names (the user's, else the teacher's, so ids mean what the
    teacher's head means)."""
    given = task_args.labels or teacher_labels
    train = load_split(data.train_data, data, data.train_split)
    if task.distill_train_labels:
        train = task.prepare_data(train, task_args.keys, given)
        labels = task.label_names(train, given)
    else:
        train = task.prepare_unlabelled(train, task_args.keys, None)
        labels = None
    transfer = None
    if data.transfer_data:
        transfer = task.prepare_unlabelled(load_data(data.transfer_data), task_args.keys, labels)
    validation = load_validation(data)
    if validation is not None:
        validation = (task.prepare_data(validation, task_args.keys, labels)
                      if task.distill_train_labels
                      else task.prepare_unlabelled(validation, task_args.keys, labels))
    test = None
    if data.test_data:
        test = task.prepare_data(load_data(data.test_data, split=data.test_split),
                                 task_args.keys, labels)
    elif validation is not None and task.distill_train_labels:
        test = validation
    return train, transfer, validation, test, labels


def teacher_label_names(config) -> list[str] | None:
    """The teacher head's label names in id order (None for a head without labels)."""
    id2label = getattr(config, "id2label", None) or {}
    names = [id2label.get(i, id2label.get(str(i))) for i in range(len(id2label))]
    return names if names and None not in names else None


def check_teacher(task, config, reference: str) -> None:
    """The teacher must be a model of the component's task."""
    try:
        recorded = task_for_config(config)
    except ValueError:
        recorded = None
    if recorded != task.name:
        raise CatalogError(f"teacher_model_path {reference} is a {recorded or 'unknown-task'} "
                           f"model, not a {task.name} model; give a teacher fine-tuned for "
                           f"{task.name}")


# --- the workflow ------------------------------------------------------------------------------
def distill(task_name: str, teacher_args: TeacherArgs, data: DistillDataArgs,
            task_args: TaskArguments, options: DistillArgs, training: TrainingArgs, *,
            model_dir: str | Path, mlflow_model_dir: str | Path | None,
            metrics_dir: str | Path) -> DistillResult:
    """Distil the teacher into a smaller student for ``task_name``; write the student, its MLflow
    model and ``metrics.json`` with the teacher-vs-student report."""
    task = get_task(task_name)
    model_dir, metrics_dir = Path(model_dir), Path(metrics_dir)
    if options.temperature <= 0:
        raise CatalogError(f"temperature must be positive; got {options.temperature}")
    weights = options.weights(dict(task.distill_weights))
    if any(w < 0 for w in weights.values()) or not any(weights.values()):
        raise CatalogError(f"loss weights must be non-negative and not all 0; got {weights}")

    # 1. The teacher's config (no weights yet), then data, validated before any model loads.
    source, _ = resolve_model_source(teacher_args.teacher_model_path)
    config = AutoConfig.from_pretrained(source)
    check_teacher(task, config, teacher_args.teacher_model_path)
    if options.student_model and (options.student_layers or options.student_num_layers):
        raise CatalogError("give either a student model (student_model_path or "
                           "student_model_name) or the teacher layers to cut it from "
                           "(student_layers, student_num_layers), not both")
    layers = None if options.student_model else student_layer_choice(options, num_layers(config))
    train, transfer, validation, test, labels = distill_data(task, data, task_args,
                                                             teacher_label_names(config))
    if labels is not None and len(config.id2label) != len(labels):
        raise CatalogError(f"the data has {len(labels)} labels {labels} but the teacher "
                           f"answers {len(config.id2label)} ({list(config.id2label.values())})")

    # 2. Teacher and student.
    set_seed(training.seed)
    tokenizer = AutoTokenizer.from_pretrained(source)
    given = (student_source(options.student_model, config, tokenizer, weights)
             if options.student_model else None)
    teacher = task.model_class().from_pretrained(source)
    if given:  # its task head is loaded where it matches the teacher's labels, new otherwise
        student = task.model_class().from_pretrained(given, **task.model_kwargs(labels))
        start = {"student_model": weights_source(options.student_model)}
    else:
        student = build_student(teacher, layers)
        start = {"student_layers": layers}
    provenance = {k: v for k, v in (getattr(teacher.config, "catalog_provenance", None)
                                    or {}).items()
                  if k not in ("student_layers", "student_model")}  # the teacher's own start
    student.config.catalog_provenance = {
        **provenance, "distilled_from": weights_source(teacher_args.teacher_model_path),
        **start}
    record_task(student.config, task)

    # 3. Features: labelled and transfer rows together, each marked; teacher outputs cached.
    settings = task_args.settings()
    parts = [(train, task.distill_train_labels)] + ([(transfer, False)] if transfer else [])
    feature_sets = []
    for part, labelled in parts:
        features = task.train_features(part, tokenizer, task_args.max_seq_length, labels,
                                       settings)
        keep = forward_inputs(student) | set(task.label_keys)
        features = features.remove_columns([c for c in features.column_names if c not in keep])
        feature_sets.append(features.add_column(LABELLED, [labelled] * len(features)))
    import datasets

    train_features = datasets.concatenate_datasets(feature_sets)
    train_features = with_lengths(train_features.add_column(INDEX, list(range(len(
        train_features)))))
    eval_features = (task.train_features(validation, tokenizer, task_args.max_seq_length,
                                         labels, settings) if validation is not None else None)
    collator = task.collator(tokenizer, settings)
    cached = task.distill_inputs_fixed and weights["alpha_cos"] == 0 and weights["alpha_ce"] > 0
    started = time.monotonic()
    cache = teacher_outputs(task, teacher, train_features, collator,
                            training.per_device_eval_batch_size) if cached else None
    teacher_seconds = time.monotonic() - started
    if cached:
        print(f"teacher outputs cached for {len(train_features)} training features "
              f"({teacher_seconds:.0f}s)", flush=True)

    precision = choose_training_precision(
        training.precision, student,
        first_batch(train_features, collator, student, training.per_device_train_batch_size),
        default_device())
    has_eval = eval_features is not None
    args = training_arguments(training, model_dir, task, precision, has_eval, current(),
                              remove_unused_columns=False)
    trainer = DistillationTrainer(
        task, model=student, args=args, data_collator=DistillCollator(collator, cache),
        train_dataset=train_features, eval_dataset=eval_features, processing_class=tokenizer,
        compute_metrics=task.trainer_metrics(labels, eval_features),
        preprocess_logits_for_metrics=task.preprocess_logits_for_metrics(settings),
        callbacks=[AdoptForeignBestCheckpoint(), ProgressLog()],
        teacher=teacher.to(student.device), weights=weights, temperature=options.temperature)
    trainer.remove_callback(PrinterCallback)

    configure_tracking()
    run_config = {**dataclasses.asdict(training), **settings, **dataclasses.asdict(options),
                  **weights, "model": teacher_args.teacher_model_path,
                  "teacher_model": teacher_args.teacher_model_path, "student_layers": layers,
                  "student_model": options.student_model,
                  "teacher_layers": num_layers(config), "teacher_outputs_cached": cached,
                  "labels": labels, **precision.as_config(), "train_examples": len(train),
                  "transfer_examples": len(transfer) if transfer is not None else 0,
                  "validation_examples": len(validation) if validation is not None else 0}
    with mlflow.start_run(nested=mlflow.active_run() is not None):
        mlflow.set_tags({"task": task.name, "stage": "distillation"})
        output = trainer.train()
        metrics = {k: float(v) for k, v in output.metrics.items() if isinstance(v, (int, float))}
        if has_eval:
            metrics |= {k: float(v) for k, v in trainer.evaluate().items()
                        if isinstance(v, (int, float))}
        trainer.save_model(str(model_dir))
        report = compare(task, source, model_dir, test, settings, options.speed_rounds,
                         metrics_dir) if test is not None else \
            sizes(teacher, source, trainer.model, model_dir)
        metrics |= report_metrics(task, report)
        log_flat(metrics, "final.")
        write_metrics(metrics_dir, task=task.name, stage="distillation", model=str(model_dir),
                      dataset=data.dataset_name or data.train_data,
                      split=data.test_split if data.test_data else data.validation_split,
                      n_examples=len(test) if test is not None else 0, metrics=metrics,
                      details={"distillation": report}, config=run_config)
        mlflow.log_artifact(str(metrics_dir / METRICS_FILE))
        mlflow_dir = None
        if mlflow_model_dir:
            mlflow_dir = save_mlflow_model(model_dir, mlflow_model_dir, task_name=task.name)
    return DistillResult(model_dir, mlflow_dir, metrics_dir, metrics, report)


# --- the teacher-vs-student report ---------------------------------------------------------------
def size_on_disk(folder: str | Path) -> int:
    """Bytes of the model's weight files in ``folder``."""
    return sum(p.stat().st_size for p in Path(folder).iterdir()
               if p.suffix in (".safetensors", ".bin") and p.is_file())


def sizes(teacher, teacher_dir, student, student_dir) -> dict[str, Any]:
    return {"teacher": {"layers": num_layers(teacher.config),
                        "parameters": int(teacher.num_parameters()),
                        "size_bytes": size_on_disk(teacher_dir)},
            "student": {"layers": num_layers(student.config),
                        "parameters": int(student.num_parameters()),
                        "size_bytes": size_on_disk(student_dir),
                        **start_of(student.config.catalog_provenance)}}


def start_of(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """What the student started from: the teacher's layers, or a given model."""
    if provenance.get("student_layers") is not None:
        return {"layers_from_teacher": list(provenance["student_layers"])}
    return {"started_from": provenance["student_model"]}


def compare(task, teacher_dir, student_dir, test: Data, settings: Mapping[str, Any],
            rounds: int, out_dir: Path) -> dict[str, Any]:
    """Both models on the same data and CPU: the task's metric, then evaluation time and
    one-request latency in interleaved rounds (teacher, student, teacher, ...), fp32 both."""
    if rounds < 1:
        raise CatalogError(f"speed_rounds must be at least 1; got {rounds}")
    predictors = {"teacher": load_predictor(teacher_dir, task_name=task.name, backend="fp32"),
                  "student": load_predictor(student_dir, task_name=task.name, backend="fp32")}
    request = task.example_request()
    rows = [dict(zip(request, values)) for values in zip(*request.values())]
    params = task.parse_params({})
    for predictor in predictors.values():  # first-call costs out of the timings
        predictor.predict(rows, params)
    seconds, first = timed_evaluations(task, predictors, test, settings, rounds)
    quality = {name: {k: float(v) for k, v in r.metrics.items()} for name, r in first.items()}
    latency: dict[str, list[float]] = {name: [] for name in predictors}
    for _ in range(rounds):
        for name, predictor in predictors.items():
            for row in rows:
                started = time.perf_counter()
                predictor.predict([row], params)
                latency[name].append(time.perf_counter() - started)
    report = sizes(predictors["teacher"].model, teacher_dir, predictors["student"].model,
                   student_dir)
    metric = task.quality_metric
    for name in predictors:
        median = statistics.median(seconds[name])
        report[name] |= {"metric": quality[name][metric], "metrics": quality[name],
                         "seconds_median": round(median, 4),
                         "seconds_range": [round(min(seconds[name]), 4),
                                           round(max(seconds[name]), 4)],
                         "examples_per_second": round(len(test) / median, 2),
                         "latency_ms_median": round(1000 * statistics.median(latency[name]), 2)}
    t, s = report["teacher"], report["student"]
    report |= {"metric": metric, "examples": len(test), "rounds": rounds,
               "kept": s["metric"] / t["metric"] if t["metric"] else None,
               "speed_ratio": round(t["seconds_median"] / s["seconds_median"], 3),
               "latency_ratio": round(t["latency_ms_median"] / s["latency_ms_median"], 3),
               "parameters_ratio": round(s["parameters"] / t["parameters"], 4),
               "cpu": cpu_description(), "torch_threads": torch.get_num_threads(),
               "backend": "fp32"}
    return report


def report_metrics(task, report: Mapping[str, Any]) -> dict[str, float]:
    """The report's headline numbers as flat metrics (those that were measured)."""
    found = {"student_parameters": report["student"]["parameters"],
             "teacher_parameters": report["teacher"]["parameters"],
             "student_size_bytes": report["student"]["size_bytes"],
             "teacher_size_bytes": report["teacher"]["size_bytes"]}
    if "metric" in report:
        metric = report["metric"]
        found |= {f"teacher_{metric}": report["teacher"]["metric"],
                  f"student_{metric}": report["student"]["metric"],
                  "speed_ratio": report["speed_ratio"], "latency_ratio": report["latency_ratio"]}
        if report["kept"] is not None:
            found["kept"] = report["kept"]
    return {k: float(v) for k, v in found.items()}
