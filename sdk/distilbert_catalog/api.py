"""The notebook SDK: the catalog's components as Python calls, plus Azure ML pipeline jobs.

Keyword arguments are exactly the component inputs of ``components/<stage>/<task>/spec.yaml``
(they come from the same dataclasses), so what works here works in YAML and on the CLI::

    import distilbert_catalog as dc
    result = dc.finetune("text-classification", train_data="data/emotion",
                         label_names="sadness,joy,love,anger,fear,surprise", num_train_epochs=2)
    metrics = dc.evaluate("text-classification", mlflow_model_path=result.mlflow_model_dir,
                          test_data="data/emotion")
    student = dc.distill("text-classification", teacher_model_path=result.mlflow_model_dir,
                         train_data="data/emotion", student_num_layers=3)
    job = dc.pipeline_job("emotion-detection", model_name="distilbert-base-uncased")
    # ml_client.jobs.create_or_update(job)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .assets import asset_dir

if TYPE_CHECKING:
    from .components import Component

PIPELINES_DIR = asset_dir("pipelines")


def component_for(stage: str, task: str) -> Component:
    from .components import COMPONENTS  # the task plug-ins load PyTorch: only when asked

    folder = f"{stage}/{task.replace('-', '_')}"
    if folder not in COMPONENTS:
        tasks = sorted(c.task for c in COMPONENTS.values() if c.stage == stage and c.task)
        raise ValueError(f"no {stage} component for task '{task}'; available: {tasks}")
    return COMPONENTS[folder]


def build_args(component: Component, kwargs: dict[str, Any]) -> list:
    """Split keyword arguments over the component's dataclasses; unknown names fail loudly."""
    valid = {f.name for cls in component.args for f in dataclasses.fields(cls)}
    unknown = sorted(set(kwargs) - valid)
    if unknown:
        raise TypeError(f"unknown arguments {unknown} for {component.name}; valid: {sorted(valid)}")
    return [cls(**{f.name: kwargs[f.name] for f in dataclasses.fields(cls) if f.name in kwargs})
            for cls in component.args]


def finetune(task: str, *, output_dir: str | Path = "outputs/finetune",
             process_count_per_instance: int = 1, instance_count: int = 1, **kwargs):
    """Fine-tune locally; returns a FinetuneResult (model_dir, mlflow_model_dir, metrics).

    ``process_count_per_instance`` x ``instance_count`` above 1 runs the fine-tune component on
    that many processes under PyTorch DDP, as Azure ML would (simulated nodes on loopback;
    global batch = ``per_device_train_batch_size`` x processes x nodes x accumulation).
    """
    from .training import FinetuneResult, finetune as run

    component = component_for("finetune", task)
    model, data, task_args, training = build_args(component, kwargs)
    out = Path(output_dir)
    if process_count_per_instance * instance_count == 1:
        return run(task, model, data, task_args, training, model_dir=out / "pytorch_model_folder",
                   mlflow_model_dir=out / "mlflow_model_folder", metrics_dir=out / "metrics")
    import json

    from .runner.component import run_component
    from .tracking import child_env

    outputs = run_component(REPO_ROOT / component.path, kwargs, out, env=child_env(),
                            distribution={"process_count_per_instance": process_count_per_instance,
                                          "instance_count": instance_count})
    record = json.loads((outputs["metrics"] / "metrics.json").read_text())
    return FinetuneResult(outputs["pytorch_model_folder"], outputs["mlflow_model_folder"],
                          outputs["metrics"], record["metrics"])


def distill(task: str, *, output_dir: str | Path = "outputs/distill", **kwargs):
    """Distil a fine-tuned teacher (``teacher_model_path``) into a smaller student locally;
    returns a DistillResult (model_dir, mlflow_model_dir, metrics, report: the teacher-vs-student
    comparison also written to ``output_dir/metrics/metrics.json``)."""
    from .distillation import distill as run

    teacher, data, task_args, options, training = build_args(component_for("distill", task),
                                                             kwargs)
    out = Path(output_dir)
    return run(task, teacher, data, task_args, options, training,
               model_dir=out / "pytorch_model_folder",
               mlflow_model_dir=out / "mlflow_model_folder", metrics_dir=out / "metrics")


def evaluate(task: str, *, output_dir: str | Path = "outputs/evaluation", **kwargs) -> dict:
    """Evaluate locally; returns the metrics.json record (also written to ``output_dir``)."""
    from .evaluation import evaluate as run

    model, data, task_args, options = build_args(component_for("evaluate", task), kwargs)
    return run(task, model, data, task_args, options, output_dir)


def gate(task: str, *, output_dir: str | Path = "outputs/gate", **kwargs) -> dict:
    """Run the quality gate locally: measure faster backends against fp32 on ``test_data``.

    Writes ``output_dir/mlflow_model_folder`` (the model with its gate record; ``backend="auto"``
    serves the fastest backend that passed) and ``output_dir/gate_result/metrics.json``; returns
    that record.
    """
    from .quality_gate import gate_model

    model, data, task_args, gate_args = build_args(component_for("gate", task), kwargs)
    out = Path(output_dir)
    return gate_model(task, model, data, task_args, gate_args, out / "mlflow_model_folder",
                      out / "gate_result")


def load_model(source: str | Path, **kwargs):
    """A Predictor for a hub id, HF folder or MLflow model: ``load_model(p).predict(rows)``."""
    from .inference import load_predictor

    return load_predictor(source, **kwargs)


def package_model(source: str | Path, output_dir: str | Path, *, task: str | None = None,
                  **kwargs) -> Path:
    """Package a hub id or Hugging Face model folder as a deployable catalog MLflow model.

    E.g. ``package_model("distilbert-base-uncased", "outputs/fill-mask-model")``: a base
    checkpoint is a masked-LM, so it becomes a fill-mask model the scoring scripts serve.
    """
    from .mlflow_model import package_model as package

    return package(source, output_dir, task_name=task, **kwargs)


def model_card(evaluation_dir: str | Path, output_dir: str | Path, **kwargs) -> Path:
    from .cards import write_card

    return write_card(output_dir, evaluation_dir=evaluation_dir, **kwargs)


def model_page(model: str, metrics=(), output_dir: str | Path | None = None) -> Path:
    """Render the catalog page of ``model`` (e.g. "distilbert-base-cased") from ``metrics``
    (metrics.json files or their folders); default output: ``model_cards/<model>/README.md``."""
    from .model_pages import render_model_page

    return render_model_page(model, [metrics] if isinstance(metrics, (str, Path)) else metrics,
                             output_dir)


def pipeline_path(name: str | Path) -> Path:
    path = Path(name)
    if path.exists():
        return path
    candidate = PIPELINES_DIR / f"{name}.yaml"
    if not candidate.exists():
        available = sorted(p.stem for p in PIPELINES_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no pipeline '{name}'; available: {available}")
    return candidate


def pipeline_job(name: str | Path, **inputs):
    """The azure-ai-ml ``PipelineJob`` from ``pipelines/<name>.yaml`` with inputs overridden.

    Submit it with ``ml_client.jobs.create_or_update(job)``.
    """
    from azure.ai.ml import load_job

    job = load_job(source=pipeline_path(name))
    unknown = sorted(set(inputs) - set(job.inputs))
    if unknown:
        raise TypeError(f"unknown pipeline inputs {unknown}; valid: {sorted(job.inputs)}")
    for key, value in inputs.items():
        setattr(job.inputs, key, value)  # keeps azure-ai-ml's PipelineInput wrapper
    return job


def run_pipeline(name: str | Path, *, output_dir: str | Path | None = None, **inputs) -> dict:
    """Run a pipeline locally, offline; returns the step outputs and pipeline outputs."""
    from .runner.pipeline import run_pipeline as run
    from .tracking import child_env

    return run(pipeline_path(name), inputs=inputs, output_dir=output_dir, env=child_env())


# --- batch endpoints (components/deploy/batch/<task>/) ------------------------------------------

BATCH_DEPLOY_DIR = asset_dir("components") / "deploy" / "batch"


def batch_deployment_dir(task: str) -> Path:
    """``components/deploy/batch/<task>/`` (endpoint.yaml + deployment.yaml) for a catalog task."""
    folder = BATCH_DEPLOY_DIR / task.replace("-", "_")
    if not (folder / "deployment.yaml").is_file():
        available = sorted(p.parent.name.replace("_", "-")
                           for p in BATCH_DEPLOY_DIR.glob("*/deployment.yaml"))
        raise ValueError(f"no batch deployment for task '{task}'; available: {available}")
    return folder


def batch_endpoint(task: str, **overrides):
    """The azure-ai-ml ``BatchEndpoint`` of ``components/deploy/batch/<task>/endpoint.yaml``.

    ``overrides`` set its fields (e.g. ``name="my-endpoint"``). Offline; create it with
    ``ml_client.batch_endpoints.begin_create_or_update(endpoint)``.
    """
    from azure.ai.ml import load_batch_endpoint

    return load_batch_endpoint(source=batch_deployment_dir(task) / "endpoint.yaml",
                               params_override=[{k: v} for k, v in overrides.items()])


def batch_deployment(task: str, **overrides):
    """The azure-ai-ml ``ModelBatchDeployment`` of ``components/deploy/batch/<task>/deployment.yaml``.

    The YAML is read by azure-ai-ml's loader; ``overrides`` set its fields first (e.g.
    ``model="azureml:my-model:3"``, ``endpoint_name=...``, ``mini_batch_size=4``). Offline;
    create it with ``ml_client.batch_deployments.begin_create_or_update(deployment)``.
    """
    import warnings

    from azure.ai.ml import load_batch_deployment
    from azure.ai.ml.entities import ModelBatchDeployment, ModelBatchDeploymentSettings

    with warnings.catch_warnings():  # the loader builds the generic BatchDeployment first
        warnings.filterwarnings("ignore", "This class is intended as a base class")
        loaded = load_batch_deployment(source=batch_deployment_dir(task) / "deployment.yaml",
                                       params_override=[{k: v} for k, v in overrides.items()])
    settings = ModelBatchDeploymentSettings(  # instance_count stays in resources
        mini_batch_size=loaded.mini_batch_size,
        max_concurrency_per_instance=loaded.max_concurrency_per_instance,
        output_action=loaded.output_action, output_file_name=loaded.output_file_name,
        retry_settings=loaded.retry_settings, environment_variables=loaded.environment_variables,
        error_threshold=loaded.error_threshold, logging_level=loaded.logging_level)
    return ModelBatchDeployment(
        name=loaded.name, endpoint_name=loaded.endpoint_name, description=loaded.description,
        model=loaded.model, environment=loaded.environment, compute=loaded.compute,
        code_configuration=loaded.code_configuration, resources=loaded.resources,
        settings=settings, tags=loaded.tags, properties=loaded.properties,
        base_path=loaded.base_path)  # relative paths (code) stay relative to the YAML
