"""The catalog's components, each defined once: its arguments, outputs and spec.yaml.

``components/<folder>/spec.yaml`` is generated from a :class:`Component` (``distilbert-catalog
specs --write``) and a test proves the committed files match, so a component's YAML inputs and its
Python arguments cannot drift. The component's ``run.py`` calls :func:`main` with its folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence, get_args, get_origin

import yaml
from transformers import HfArgumentParser

from . import arguments as A
from .tasks import TASKS

SCHEMA = "https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json"
VERSION = "0.1.0"
ENVIRONMENTS = {"training": "azureml:distilbert-catalog-training@latest",
                "inference": "azureml:distilbert-catalog-inference@latest"}
PY_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


@dataclass(frozen=True)
class Component:
    folder: str                      # under components/, e.g. "finetune/text_classification"
    display_name: str
    description: str
    stage: Literal["finetune", "distill", "evaluate", "gate", "card"]
    args: tuple[type, ...]
    outputs: dict[str, tuple[str, str]]     # name -> (Azure ML type, description)
    task: str | None = None
    environment: str = "training"
    distributed: bool = False
    includes: tuple[str, ...] = ("sdk/distilbert_catalog",)

    @property
    def name(self) -> str:
        return "distilbert_" + self.folder.replace("/", "_")

    @property
    def path(self) -> Path:
        return Path("components") / self.folder / "spec.yaml"


FINETUNE_OUTPUTS = {
    "pytorch_model_folder": ("uri_folder", "The fine-tuned Hugging Face model folder, with "
                                           "Trainer checkpoints under checkpoints/."),
    "mlflow_model_folder": ("mlflow_model", "The fine-tuned model as an MLflow pyfunc model."),
    "metrics": ("uri_folder", "metrics.json with training/validation metrics and the config."),
}
DISTILL_OUTPUTS = {
    "pytorch_model_folder": ("uri_folder", "The distilled student as a Hugging Face model folder, "
                                           "with Trainer checkpoints under checkpoints/."),
    "mlflow_model_folder": ("mlflow_model", "The student as an MLflow pyfunc model (served by the "
                                            "same scoring scripts as any catalog model)."),
    "metrics": ("uri_folder", "metrics.json: training metrics and the teacher-vs-student report "
                              "(parameters, size, task metric, share kept, speed ratio, CPU)."),
}
GATE_OUTPUTS = {
    "mlflow_model_folder": ("mlflow_model", "The model with its gate record and exported ONNX "
                                            "graphs: backend auto serves the fastest that passed."),
    "gate_result": ("uri_folder", "metrics.json: each backend's quality difference against fp32, "
                                  "speed-up and verdict."),
}
EVALUATE_OUTPUTS = {
    "evaluation_result": ("uri_folder", "metrics.json, predictions.jsonl, plots and a scored "
                                        "sample request."),
}

CARD_COMPONENT = Component(
    "model_card", "DistilBERT model card",
    "Renders the catalog model card (Markdown + images) from evaluation metrics.json and the "
    "fine-tuning config.",
    "card", (A.CardArgs,),
    {"model_card": ("uri_folder", "README.md model card and the images it shows.")},
    environment="inference",
    includes=("sdk/distilbert_catalog", "model_cards/distilbert-base-uncased"))


def task_components(task) -> list[Component]:
    """A task's components, from what its folder declares: fine-tune (when the task has
    fine-tune arguments), evaluate, and the quality gate over the evaluate inputs."""
    folder = task.name.replace("-", "_")
    found = []
    if task.finetune_args is not None:
        found.append(Component(
            f"finetune/{folder}", f"DistilBERT fine-tune: {task.title}",
            task.finetune_description, "finetune",
            (A.ModelArgs, A.FinetuneDataArgs, task.finetune_args, A.TrainingArgs),
            FINETUNE_OUTPUTS, task=task.name, distributed=True))
    if task.distill_arguments() is not None:
        found.append(Component(
            f"distill/{folder}", f"DistilBERT distil: {task.title}",
            f"Distils a {task.title} teacher into a smaller student: the teacher's embeddings, "
            f"head and a subset of its layers, trained on the teacher's soft targets (at a "
            f"temperature) plus the task's own loss, optionally on unlabelled transfer data the "
            f"teacher labels; evaluates and times both on this CPU and reports what the student "
            f"kept.", "distill",
            (A.TeacherArgs, A.DistillDataArgs, task.distill_arguments(), A.DistillArgs,
             A.TrainingArgs), DISTILL_OUTPUTS, task=task.name))
    evaluate = Component(
        f"evaluate/{folder}", f"DistilBERT evaluate: {task.title}", task.evaluate_description,
        "evaluate", (A.ModelArgs, A.EvaluateDataArgs, task.evaluate_args, A.EvaluationArgs),
        EVALUATE_OUTPUTS, task=task.name, environment="inference")
    return [*found, evaluate, gate_component(evaluate)]


def gate_component(evaluate: Component) -> Component:
    """The quality gate for an evaluate component's task: its data and task inputs, gate options."""
    return Component(
        evaluate.folder.replace("evaluate/", "gate/", 1),
        evaluate.display_name.replace("evaluate:", "quality gate:"),
        f"Measures faster inference backends (bf16 where native, int8, ONNX Runtime fp32 and "
        f"int8) against fp32 on {evaluate.task} evaluation data, with the task's own metric and "
        f"interleaved timing rounds; keeps those within the tolerance and writes the model with "
        f"its gate record, so backend auto serves the fastest that passed.",
        "gate", (*evaluate.args[:-1], A.GateArgs), GATE_OUTPUTS, task=evaluate.task,
        environment="inference")


#: every component: each discovered task's, then the model card
COMPONENTS: dict[str, Component] = {c.folder: c for c in (
    *(c for task in TASKS.values() for c in task_components(task)), CARD_COMPONENT)}


# --- spec generation -----------------------------------------------------------------------
def _input_spec(f: dataclasses.Field, annotation) -> dict[str, Any]:
    optional = get_origin(annotation) is typing.Union and type(None) in get_args(annotation)
    inner = next(a for a in get_args(annotation) if a is not type(None)) if optional \
        else annotation
    spec: dict[str, Any] = {}
    if get_origin(inner) is Literal:
        spec["type"] = "string"
        spec["enum"] = list(get_args(inner))
    else:
        spec["type"] = f.metadata.get("type") or PY_TYPES[inner]
    spec["description"] = f.metadata["help"]
    if f.default is not dataclasses.MISSING and f.default is not None:
        spec["default"] = f.default
    if optional:
        spec["optional"] = True
    return spec


def fields(component: Component) -> list[dataclasses.Field]:
    return [f for cls in component.args for f in dataclasses.fields(cls)]


def typed_fields(component: Component) -> list[tuple[dataclasses.Field, Any]]:
    """Each input field with its resolved annotation (the dataclasses use postponed ones)."""
    found = []
    for cls in component.args:
        hints = typing.get_type_hints(cls)
        found += [(f, hints[f.name]) for f in dataclasses.fields(cls)]
    return found


def input_specs(component: Component) -> dict[str, dict[str, Any]]:
    return {f.name: _input_spec(f, hint) for f, hint in typed_fields(component)}


def command(component: Component) -> list[str]:
    """The command, one argument per item (``$[[...]]`` marks optional inputs)."""
    parts = ["python run.py"]
    for name, spec in input_specs(component).items():
        flag = f"--{name} ${{{{inputs.{name}}}}}"
        parts.append(f"$[[{flag}]]" if spec.get("optional") else flag)
    parts += [f"--{name} ${{{{outputs.{name}}}}}" for name in component.outputs]
    return parts


def render_spec(component: Component) -> str:
    depth = len(Path(component.folder).parts)
    up = "../" * (depth + 1)
    body: dict[str, Any] = {
        "$schema": SCHEMA,
        "type": "command",
        "name": component.name,
        "display_name": component.display_name,
        "version": VERSION,
        "description": component.description,
        "tags": {"catalog": "distilbert", **({"task": component.task} if component.task else {})},
        "code": ".",
        "additional_includes": [up + inc for inc in component.includes],
        "environment": ENVIRONMENTS[component.environment],
    }
    if component.distributed:  # one process by default; a job or pipeline step scales it out
        body["distribution"] = {"type": "pytorch", "process_count_per_instance": 1}
        body["resources"] = {"instance_count": 1}
    body["inputs"] = input_specs(component)
    body["outputs"] = {name: {"type": t, "description": d}
                       for name, (t, d) in component.outputs.items()}
    header = (f"# Generated from distilbert_catalog.components ({component.folder}); do not edit."
              "\n# Regenerate with: distilbert-catalog specs --write\n")
    text = yaml.safe_dump(body, sort_keys=False, width=100, allow_unicode=True)
    lines = "\n  ".join(command(component))
    return header + text + f"command: >-\n  {lines}\n"


def render_entry(component: Component) -> str:
    """The component's ``run.py``: its folder's entry into :func:`main`."""
    return (f'"""Catalog component entry: components/{component.folder} (arguments: see '
            f'spec.yaml)."""\n\nimport sys\n\nfrom distilbert_catalog.components import main\n\n'
            f'sys.exit(main("{component.folder}"))\n')


def write_specs(root: str | Path = ".", check: bool = False) -> list[Path]:
    """Write every component's spec.yaml and run.py under ``root`` (or, with check, list those
    that differ)."""
    changed = []
    for component in COMPONENTS.values():
        for path, text in ((Path(root) / component.path, render_spec(component)),
                           (Path(root) / component.path.with_name("run.py"),
                            render_entry(component))):
            if not path.exists() or path.read_text() != text:
                changed.append(path)
                if not check:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text)
    return changed


# --- entry points --------------------------------------------------------------------------
def parse(component: Component, argv: Sequence[str] | None = None):
    """Parse a component's command line into its dataclasses and an outputs namespace."""
    parser = HfArgumentParser(component.args, prog=component.name, allow_abbrev=False,
                              description=component.description)
    for name, (_, description) in component.outputs.items():
        parser.add_argument(f"--{name}", required=True, help=description)
    namespace = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    parsed = []
    for cls in component.args:  # exact flags only: parse_args already refused unknown ones
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        parsed.append(cls(**{name: getattr(namespace, name) for name in names}))
    outputs = argparse.Namespace(**{name: getattr(namespace, name)
                                    for name in component.outputs})
    return parsed, outputs


def main(folder: str, argv: Sequence[str] | None = None) -> int:
    """Run the component in ``components/<folder>`` with its command-line arguments."""
    from .errors import CatalogError

    component = COMPONENTS[folder]
    parsed, outputs = parse(component, argv)
    try:
        for args in parsed:  # a hub id out of reach fails here, in seconds, before heavy imports
            if isinstance(args, A.ModelArgs):
                from .modeling import resolve_model_source

                resolve_model_source(args.model)
        if component.stage == "finetune":
            from .ranks import current
            from .training import finetune

            model, data, task_args, training = parsed
            result = finetune(component.task, model, data, task_args, training,
                              model_dir=outputs.pytorch_model_folder,
                              mlflow_model_dir=outputs.mlflow_model_folder,
                              metrics_dir=outputs.metrics)
            if current().is_main:  # once, not once per rank
                print(f"fine-tuned model: {result.model_dir}; metrics: {result.metrics}")
        elif component.stage == "distill":
            from .distillation import distill

            teacher, data, task_args, options, training = parsed
            result = distill(component.task, teacher, data, task_args, options, training,
                             model_dir=outputs.pytorch_model_folder,
                             mlflow_model_dir=outputs.mlflow_model_folder,
                             metrics_dir=outputs.metrics)
            print(f"distilled model: {result.model_dir}; metrics: {result.metrics}")
        elif component.stage == "evaluate":
            from .evaluation import evaluate

            model, data, task_args, options = parsed
            record = evaluate(component.task, model, data, task_args, options,
                              outputs.evaluation_result)
            print(f"evaluation metrics: {record['metrics']}")
        elif component.stage == "gate":
            from .quality_gate import gate_model

            model, data, task_args, gate_args = parsed
            record = gate_model(component.task, model, data, task_args, gate_args,
                                outputs.mlflow_model_folder, outputs.gate_result)
            print(f"backend chosen: {record['config']['backend_chosen']}; "
                  f"gate metrics: {record['metrics']}")
        else:
            from .cards import write_card

            (card_args,) = parsed
            path = write_card(outputs.model_card, evaluation_dir=card_args.evaluation_result,
                              training_dir=card_args.training_result,
                              extra_evaluation_dir=card_args.extra_evaluation_result,
                              model_name=card_args.model_display_name,
                              template_dir=card_args.card_template or _bundled_template())
            print(f"model card: {path}")
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _bundled_template() -> Path | None:
    """In an Azure ML job, additional_includes puts the card folder next to run.py."""
    candidate = Path.cwd() / "distilbert-base-uncased"
    return candidate if (candidate / "card.md.j2").exists() else None
