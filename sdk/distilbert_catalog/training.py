"""Task-agnostic fine-tuning with the Hugging Face Trainer, on one process or under PyTorch DDP.

Order matters: arguments and every data row are validated before a model is loaded, so a bad
dataset fails in seconds with the file, row and column, never after half an epoch.

Distributed (``torchrun``, an Azure ML ``distribution: {type: pytorch}`` job, the local runner's
``--process-count``): every rank reads the six variables of :mod:`distilbert_catalog.ranks` and
nothing else. The global batch is ``per_device_train_batch_size`` x processes x nodes x
``gradient_accumulation_steps``, and a run on N processes takes the same optimiser steps on the
same examples as one process with an N times larger per-device batch: the training order is
drawn for the global batch (:meth:`CatalogTrainer.get_train_dataloader`), each rank takes its
share of every global batch, and the loss is the global batch's mean (DDP averages the ranks'
gradients; a task whose loss is a mean over tokens normalises by the tokens of all ranks,
:meth:`Task.loss_function`). Rank 0 alone writes checkpoints, the model, the MLflow model,
``metrics.json`` and MLflow tracking, and prints progress; evaluation gathers every rank's
predictions in dataset order and drops the samples the last batch was padded with.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import mlflow
from torch.utils.data import DataLoader
from transformers import (AutoTokenizer, EarlyStoppingCallback, PrinterCallback, Trainer,
                          TrainerCallback, TrainingArguments, set_seed)
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import get_last_checkpoint

from .arguments import FinetuneDataArgs, ModelArgs, TaskArguments, TrainingArgs
from .data import Data, load_data, load_split, split_files
from .errors import CatalogError, DataError
from .metrics_file import FILENAME as METRICS_FILE, write_metrics
from .mlflow_model import save_mlflow_model
from .modeling import resolve_model_source, weights_source
from .precision import choose_training_precision, default_device
from .qat import quantization_aware
from .ranks import current, from_main, join_process_group
from .tasks import get_task, record_task
from .tracking import configure_tracking, log_flat

log = logging.getLogger(__name__)


@dataclass
class FinetuneResult:
    model_dir: Path
    mlflow_model_dir: Path | None
    metrics_dir: Path
    metrics: dict[str, float]


def load_validation(data_args: FinetuneDataArgs) -> Data | None:
    """Validation data if there is any; never rows of the training files."""
    if data_args.validation_data:
        return load_data(data_args.validation_data, split=data_args.validation_split)
    if data_args.train_data:
        if Path(data_args.train_data).is_dir() and split_files(data_args.train_data,
                                                               data_args.validation_split):
            return load_data(data_args.train_data, split=data_args.validation_split)
        return None
    try:
        return load_split(None, data_args, data_args.validation_split)
    except DataError:
        log.warning("no '%s' split in %s: training without validation",
                    data_args.validation_split, data_args.dataset_name)
        return None


def finetune(task_name: str, model: ModelArgs, data: FinetuneDataArgs, task_args: TaskArguments,
             training: TrainingArgs, *, model_dir: str | Path, mlflow_model_dir: str | Path | None,
             metrics_dir: str | Path) -> FinetuneResult:
    """Fine-tune ``model`` on ``data`` for ``task_name``; write the model, MLflow model, metrics."""
    task = get_task(task_name)
    model_dir, metrics_dir = Path(model_dir), Path(metrics_dir)
    if not current().is_main:  # progress once: rank 0's
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.logging.set_verbosity_error()

    # 1. Data: load and validate everything before touching the model.
    train = load_split(data.train_data, data, data.train_split)
    given_labels = task_args.labels
    train = task.prepare_data(train, task_args.keys, given_labels)
    labels = task.label_names(train, given_labels)
    validation = load_validation(data)
    if validation is not None:
        validation = task.prepare_data(validation, task_args.keys, labels)

    # 2. The process group (under DDP; gloo on CPU), model and tokenizer.
    rank = join_process_group("gloo" if default_device() == "cpu" else "nccl")
    source, _ = resolve_model_source(model.model)
    set_seed(training.seed)
    tokenizer = AutoTokenizer.from_pretrained(source)
    net = task.model_class().from_pretrained(source, **task.model_kwargs(labels))
    if not getattr(net.config, "catalog_provenance", None):  # kept in the fine-tuned config.json
        net.config.catalog_provenance = {"source_model": weights_source(model.model)}
    record_task(net.config, task)  # config.json says what the model was trained for

    # 3. Features (unpadded; the collator pads per batch).
    settings = task_args.settings()
    train_features = with_lengths(task.train_features(train, tokenizer, task_args.max_seq_length,
                                                      labels, settings))
    eval_features = (task.train_features(validation, tokenizer, task_args.max_seq_length, labels,
                                         settings) if validation is not None else None)

    collator = task.collator(tokenizer, settings)
    precision = None
    if rank.is_main:  # every rank trains in the precision rank 0 measured
        precision = choose_training_precision(
            training.precision, net,
            first_batch(train_features, collator, net, training.per_device_train_batch_size),
            default_device())
    precision = from_main(precision)

    has_eval = eval_features is not None
    args = training_arguments(training, model_dir, task, precision, has_eval, rank)
    callbacks: list[TrainerCallback] = [AdoptForeignBestCheckpoint(), ProgressLog()]
    if training.early_stopping:
        if not has_eval:
            raise CatalogError("early_stopping needs validation data (validation_data or a "
                               "validation split)")
        callbacks.append(EarlyStoppingCallback(training.early_stopping_patience))
    trainer = CatalogTrainer(
        task, model=net, args=args, data_collator=collator,
        train_dataset=train_features, eval_dataset=eval_features, processing_class=tokenizer,
        compute_metrics=task.trainer_metrics(labels, eval_features),
        compute_loss_func=task.loss_function(),
        preprocess_logits_for_metrics=task.preprocess_logits_for_metrics(settings),
        callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # ProgressLog prints the same logs, readably

    config = {**dataclasses.asdict(training), **settings, "model": model.model,
              "labels": labels, **precision.as_config(),
              "train_examples": len(train),
              "validation_examples": len(validation) if validation is not None else 0,
              "world_size": rank.world_size,
              "global_train_batch_size": global_batch_size(training, rank.world_size)}
    if rank.is_main:
        configure_tracking()
    with mlflow.start_run(nested=mlflow.active_run() is not None) if rank.is_main \
            else nullcontext():
        if rank.is_main:
            mlflow.set_tags({"task": task.name, "stage": "finetune"})
        with quantization_aware(net.base_model) if training.quantization_aware else nullcontext():
            output = trainer.train(resume_from_checkpoint=resolve_checkpoint(
                training.resume_from_checkpoint))
            metrics = {k: float(v) for k, v in output.metrics.items()
                       if isinstance(v, (int, float))}
            if has_eval:  # with quantization_aware: the int8-simulated model's metrics
                metrics |= {k: float(v) for k, v in trainer.evaluate().items()
                            if isinstance(v, (int, float))}
        trainer.save_model(str(model_dir))  # writes on rank 0 only
        if not rank.is_main:
            return FinetuneResult(model_dir, None, metrics_dir, metrics)
        log_flat(metrics, "final.")
        write_metrics(metrics_dir, task=task.name, stage="finetune", model=model.model,
                      dataset=data.dataset_name or data.train_data,
                      split=data.validation_split if has_eval else data.train_split,
                      n_examples=len(validation) if has_eval else len(train),
                      metrics=metrics, config=config)
        mlflow.log_artifact(str(metrics_dir / METRICS_FILE))
        mlflow_dir = None
        if mlflow_model_dir:
            mlflow_dir = save_mlflow_model(model_dir, mlflow_model_dir, task_name=task.name)
    return FinetuneResult(model_dir, mlflow_dir, metrics_dir, metrics)


def global_batch_size(training: TrainingArgs, world_size: int) -> int:
    """Examples per optimiser step: per-device batch x processes x gradient accumulation."""
    return (training.per_device_train_batch_size * world_size
            * training.gradient_accumulation_steps)


def training_arguments(training: TrainingArgs, model_dir: Path, task, precision, has_eval: bool,
                       rank, **overrides) -> TrainingArguments:
    """The Trainer's arguments from the component's training arguments (checkpoints under
    ``model_dir/checkpoints``; evaluation and best-model choice each epoch when there is
    validation data; gloo/nccl when ``rank`` is distributed)."""
    metric = training.metric_for_best_model or task.default_metric_for_best_model
    return TrainingArguments(**{**dict(
        output_dir=str(model_dir / "checkpoints"),
        num_train_epochs=training.num_train_epochs,
        max_steps=training.max_steps,
        learning_rate=training.learning_rate,
        per_device_train_batch_size=training.per_device_train_batch_size,
        per_device_eval_batch_size=training.per_device_eval_batch_size,
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        warmup_steps=training.warmup_ratio,  # a float in [0, 1) is a ratio of all steps
        weight_decay=training.weight_decay,
        lr_scheduler_type=training.lr_scheduler_type,
        seed=training.seed,
        bf16=precision.precision == "bf16",
        use_cpu=default_device() == "cpu",
        ddp_backend=("gloo" if default_device() == "cpu" else "nccl") if rank.distributed
        else None,
        ddp_find_unused_parameters=False,  # every parameter of the task heads takes part
        train_sampling_strategy="group_by_length",
        eval_strategy="epoch" if has_eval else "no",
        save_strategy="epoch",
        save_total_limit=training.save_total_limit,
        load_best_model_at_end=has_eval,
        metric_for_best_model=metric if has_eval else None,
        logging_strategy="steps",
        logging_steps=0.05,
        report_to=["mlflow"],
        disable_tqdm=True,
    ), **overrides})


class CatalogTrainer(Trainer):
    """The Trainer, asking the task for what its evaluations need, through public hooks only.

    * Evaluation runs in dataset order (length-grouped sampling is for training), so prediction
      ``i`` belongs to eval feature ``i`` and a task's ``compute_metrics`` can map windows back to
      rows and score its real metric (:meth:`Task.trainer_metrics`). Under DDP accelerate shards
      the ordered batches and gathers them back in order.
    * Every evaluation's metrics get the task's :meth:`Task.finalize_metrics`, logged with them,
      before the best checkpoint is chosen (as ``trainer_qa.py`` post-processes in ``evaluate``).
    """

    def __init__(self, task, *args, compute_metrics=None, **kwargs):
        self.task = task
        self.expected_predictions: int | None = None
        super().__init__(*args, compute_metrics=compute_metrics and self.counted(compute_metrics),
                         **kwargs)
        # DistilBERT's heads take **kwargs, so the Trainer passes them num_items_in_batch and
        # takes their loss as a sum over the whole step divided by it: it multiplies the loss
        # by the world size and skips the division by gradient accumulation. But their loss is
        # the batch's mean (num_items_in_batch is ignored), so ranks and accumulated batches
        # would be summed, not averaged (2 processes: twice the gradient of 1 process with the
        # same global batch; loss logged x2). Their loss is a mean: say so. A task whose loss
        # needs the step's item count passes compute_loss_func (Task.loss_function) instead.
        self.model_accepts_loss_kwargs = False

    def counted(self, compute_metrics):
        """``compute_metrics``, after checking that evaluation gathered exactly one prediction
        per evaluated feature: none lost, none counted twice (under DDP the last batch is padded
        with repeated samples, which the gather must drop)."""
        def checked(eval_pred):
            predictions = eval_pred.predictions
            first = predictions[0] if isinstance(predictions, (tuple, list)) else predictions
            if self.expected_predictions is not None and len(first) != self.expected_predictions:
                raise RuntimeError(
                    f"evaluation gathered {len(first)} predictions for "
                    f"{self.expected_predictions} features (world size {self.args.world_size})")
            return compute_metrics(eval_pred)
        return checked

    def get_train_dataloader(self) -> DataLoader:
        """Length-grouped batches drawn for the *global* batch, then sharded across the ranks.

        The Trainer groups by the per-device batch, so 2 processes x 8 and 1 x 16 would see the
        examples in different orders; grouping by per-device x world size x accumulation gives
        every world size the same global batches, and accelerate hands rank ``r`` the ``r``-th
        per-device slice of each. (A final short global batch is completed on the ranks with
        examples from the start of the epoch, as accelerate's ``even_batches`` does.)
        """
        args = self.args
        dataset = self.only_model_inputs(self.train_dataset, keep=(args.length_column_name,))
        sampler = LengthGroupedSampler(
            args.train_batch_size * args.world_size * args.gradient_accumulation_steps,
            dataset=dataset, lengths=dataset[args.length_column_name])
        dataset = dataset.remove_columns([args.length_column_name])
        return self.accelerator.prepare(DataLoader(
            dataset, batch_size=args.train_batch_size, sampler=sampler,
            collate_fn=self.data_collator, drop_last=args.dataloader_drop_last,
            num_workers=args.dataloader_num_workers, pin_memory=args.dataloader_pin_memory))

    def only_model_inputs(self, dataset, keep: tuple[str, ...] = ()):
        """``dataset`` without the columns the model's forward does not take (bar ``keep``)."""
        accepted = set(inspect.signature(self.model.forward).parameters) | set(keep)
        return dataset.remove_columns([c for c in dataset.column_names if c not in accepted])

    def get_eval_dataloader(self, eval_dataset=None) -> DataLoader:
        dataset = self.eval_dataset if eval_dataset is None else eval_dataset
        if isinstance(dataset, str):
            dataset = self.eval_dataset[dataset]
        return self.ordered_dataloader(dataset)

    def get_test_dataloader(self, test_dataset) -> DataLoader:
        return self.ordered_dataloader(test_dataset)

    def ordered_dataloader(self, dataset) -> DataLoader:
        """Batches of ``dataset`` in order, with only the columns the model's forward takes."""
        dataset = self.only_model_inputs(dataset)
        return self.accelerator.prepare(DataLoader(
            dataset, batch_size=self.args.eval_batch_size, collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory))

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        dataset = self.eval_dataset if eval_dataset is None else eval_dataset
        self.expected_predictions = len(dataset) if hasattr(dataset, "__len__") else None
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        extra = self.task.finalize_metrics(metrics, f"{metric_key_prefix}_")
        if extra:
            self.log(extra)
            metrics.update(extra)
        return metrics


class ProgressLog(TrainerCallback):
    """One line per Trainer log: step, epoch, loss or eval metrics, time spent and time left; then
    one line for the run's summary and one for the evaluation of the model it keeps.

    Plain lines rather than a progress bar, so they read well in job logs and piped output.
    """

    def on_train_begin(self, args, state, control, **kwargs):
        self.started, self.ended = time.monotonic(), False
        if not state.is_world_process_zero:
            return
        print(f"training: {state.max_steps} steps, {args.num_train_epochs:g} epochs", flush=True)

    def on_train_end(self, args, state, control, **kwargs):
        self.ended = True

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero:
            return
        logs = logs or {}
        elapsed = time.monotonic() - self.started
        values = ", ".join(f"{k} {v:.4g}" for k, v in logs.items()
                           if isinstance(v, (int, float)) and k != "epoch")
        if self.ended:  # the evaluation after training, of the best checkpoint when one is kept
            kept = f"best checkpoint {Path(state.best_model_checkpoint).name}" \
                if args.load_best_model_at_end and state.best_model_checkpoint else "final model"
            print(f"  evaluation of the {kept}: {values}", flush=True)
        elif "train_runtime" in logs:  # the Trainer's summary of the run
            print(f"  training done after step {state.global_step}: {values}", flush=True)
        else:
            done = state.global_step / state.max_steps if state.max_steps else 0
            left = elapsed / done - elapsed if done else 0
            print(f"  step {state.global_step}/{state.max_steps} (epoch {state.epoch or 0:.2f}): "
                  f"{values} [{elapsed:.0f}s, ~{left:.0f}s left]", flush=True)


class AdoptForeignBestCheckpoint(TrainerCallback):
    """Resuming from another job's checkpoint brings that job's best checkpoint, outside this run's
    folder. Its weights are copied into this run's folder (optimizer and RNG states are not needed
    to load a best model) and the state points there, so the best-model choice is the one an
    uninterrupted run makes (a later evaluation must still beat the best metric so far: forgetting
    it made a tie after the resume win), and the Trainer's checkpoint rotation, which keeps the
    best one plus the newest, never keeps a foreign folder while deleting this run's own. A best
    checkpoint that no longer exists (the Trainer then drops its path) is forgotten with its
    metric: no later checkpoint could be compared with weights that cannot be loaded."""

    RUN_STATE = ("optimizer.pt", "scheduler.pt", "rng_state*.pth", "scaler.pt")

    def on_train_begin(self, args, state, control, **kwargs):
        if state.best_model_checkpoint is None:
            state.best_metric = None
            return
        best, run_dir = Path(state.best_model_checkpoint).resolve(), Path(args.output_dir).resolve()
        if best.is_relative_to(run_dir):
            return
        adopted = run_dir / best.name
        if state.is_world_process_zero and not adopted.exists():
            staging = run_dir / f".adopting-{best.name}"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(best, staging, ignore=shutil.ignore_patterns(*self.RUN_STATE))
            staging.rename(adopted)
        state.best_model_checkpoint = str(adopted)


def first_batch(features, collator, model, rows: int) -> dict:
    """The first training batch as the Trainer would collate it (only the model's own inputs)."""
    accepted = set(inspect.signature(model.forward).parameters)
    sample = [{k: v for k, v in features[i].items() if k in accepted}
              for i in range(min(rows, len(features)))]
    return collator(sample)


def with_lengths(features):
    """Add the ``length`` column that length-grouped sampling reads instead of re-measuring."""
    return features.map(lambda batch: {"length": [len(ids) for ids in batch["input_ids"]]},
                        batched=True)


def resolve_checkpoint(path: str | None) -> str | None:
    """A checkpoint folder, or the newest ``checkpoint-N`` inside a folder, or None."""
    if not path:
        return None
    path_ = Path(path)
    if (path_ / "trainer_state.json").exists():
        return str(path_)
    last = get_last_checkpoint(str(path_)) if path_.is_dir() else None
    if last is None:
        raise CatalogError(f"resume_from_checkpoint: no Trainer checkpoint in {path}")
    return last
