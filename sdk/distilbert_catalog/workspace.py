"""One object for the notebooks: the same calls run locally or in an Azure ML workspace.

    catalog = dc.workspace()                       # local: no workspace configured
    catalog = dc.workspace(subscription_id=..., resource_group=..., workspace_name=...)  # Azure

Local mode runs what Azure ML would run, offline: pipeline jobs through the local runner, online
deployments under the real ``azmlinfsrv`` with the deployment's scoring script, batch deployments
through the batch runner. Azure mode submits the same azure-ai-ml objects (the ``PipelineJob`` of
``pipelines/<name>.yaml``, the endpoint and deployment YAML of ``components/deploy/``) with an
``MLClient``. Either way each call returns local paths or parsed JSON, so a notebook's later cells
do not ask which mode they are in.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .assets import asset_dir

ONLINE_DIR = asset_dir("components") / "deploy" / "online"


def _api():
    """The SDK module, loaded on first use: ``import distilbert_catalog`` stays light."""
    from . import api

    return api


@dataclass
class PipelineRun:
    name: str
    outputs: dict[str, Path]   # pipeline outputs, as local folders
    steps: dict[str, dict]     # step outputs (local mode; Azure: the child job names)


class Workspace:
    """Where the notebook's jobs and endpoints run: ``mode`` is "local" or "azure"."""

    def __init__(self, mode: str = "local", *, output_dir: str | Path = "outputs",
                 ml_client=None):
        if mode not in ("local", "azure"):
            raise ValueError(f"mode must be 'local' or 'azure'; got {mode!r}")
        if mode == "azure" and ml_client is None:
            raise ValueError("azure mode needs an MLClient (see distilbert_catalog.workspace())")
        self.mode, self.ml_client = mode, ml_client
        self.output_dir = Path(output_dir).resolve()

    def __repr__(self) -> str:
        where = getattr(self.ml_client, "workspace_name", None) if self.ml_client else None
        return f"Workspace(mode={self.mode!r}{f', workspace={where!r}' if where else ''})"

    # -- models ---------------------------------------------------------------------------------
    def base_model(self, name: str = "distilbert-base-uncased", *, tiny: bool = False) -> str:
        """The checkpoint a pipeline starts from.

        Azure: the hub id itself. Local (offline): the pretrained offline DistilBERT, or with
        ``tiny`` the tiny random-init one (mechanics only, numbers mean nothing). Both are built
        on first use and cached (``$DISTILBERT_CATALOG_CACHE``, default
        ``~/.cache/distilbert-catalog``).
        """
        if self.mode == "azure":
            return name
        if tiny:
            from .tiny import tiny_distilbert

            return str(tiny_distilbert())
        from .pretrained import pretrained_distilbert

        return str(pretrained_distilbert())

    # -- pipeline jobs --------------------------------------------------------------------------
    def run_pipeline(self, name: str, **inputs) -> PipelineRun:
        """Run ``pipelines/<name>.yaml`` with ``inputs`` and wait for it."""
        job = _api().pipeline_job(name, **inputs)  # azure-ai-ml validates the inputs in both modes
        out = self.output_dir / name
        if self.mode == "local":
            from .api import run_pipeline

            result = run_pipeline(name, output_dir=out, **inputs)
            return PipelineRun(name, {k: Path(v) for k, v in result["outputs"].items()},
                               result["steps"])
        submitted = self.ml_client.jobs.create_or_update(job)
        self.ml_client.jobs.stream(submitted.name)
        outputs = {}
        for output in job.outputs:
            self.ml_client.jobs.download(submitted.name, output_name=output,
                                         download_path=out / output)
            outputs[output] = out / output / "named-outputs" / output
        return PipelineRun(name, outputs, {"job": {"name": submitted.name}})

    # -- online endpoints -----------------------------------------------------------------------
    @contextmanager
    def online_endpoint(self, model: str | Path, *, name: str = "distilbert-catalog",
                        delete: bool = True) -> Iterator["OnlineEndpoint"]:
        """Deploy ``model`` (an MLflow model folder) behind an online endpoint for the block.

        Local: the deployment's scoring script under azmlinfsrv on a free loopback port.
        Azure: ``components/deploy/online/{endpoint,deployment}.yaml`` with the model registered
        from ``model``; the endpoint is deleted at the end unless ``delete=False``.
        """
        if self.mode == "local":
            from .serving import SCORE_SCRIPT
            from .runner.endpoints import serve

            with serve(SCORE_SCRIPT, Path(model)) as server:
                yield OnlineEndpoint(lambda body: server.invoke(body), server.base_url)
            return
        from azure.ai.ml import load_online_deployment, load_online_endpoint
        from azure.ai.ml.entities import Model

        endpoint = load_online_endpoint(source=ONLINE_DIR / "endpoint.yaml",
                                        params_override=[{"name": name}])
        deployment = load_online_deployment(source=ONLINE_DIR / "deployment.yaml",
                                            params_override=[{"endpoint_name": name}])
        deployment.model = Model(path=str(model), type="mlflow_model", name=f"{name}-model")
        self.ml_client.online_endpoints.begin_create_or_update(endpoint).result()
        self.ml_client.online_deployments.begin_create_or_update(deployment).result()
        endpoint.traffic = {deployment.name: 100}
        self.ml_client.online_endpoints.begin_create_or_update(endpoint).result()
        try:
            def invoke(body):
                with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                    json.dump(body, f)
                answer = self.ml_client.online_endpoints.invoke(endpoint_name=name,
                                                                request_file=f.name)
                os.unlink(f.name)
                return 200, json.loads(answer)
            yield OnlineEndpoint(invoke, self.ml_client.online_endpoints.get(name).scoring_uri)
        finally:
            if delete:
                self.ml_client.online_endpoints.begin_delete(name=name).result()

    # -- batch endpoints ------------------------------------------------------------------------
    def batch_score(self, task: str, model: str | Path, input_path: str | Path, *,
                    name: str = "distilbert-catalog-batch", **settings) -> Path:
        """Score ``input_path`` (a file or folder) like ``components/deploy/batch/<task>/``;
        returns the folder holding the predictions file.

        Local: the batch runner with the deployment YAML's settings (``settings`` override them,
        e.g. ``mini_batch_size=1``). Azure: create the endpoint and deployment, invoke, download.
        """
        out = self.output_dir / f"batch-{task}"
        if self.mode == "local":
            from .runner.batch import load_batch_deployment_file, run_batch

            deployment = load_batch_deployment_file(_api().batch_deployment_dir(task) / "deployment.yaml")
            run_batch(deployment.scoring_script, Path(model), Path(input_path), out,
                      deployment.settings, code_dir=deployment.code_dir, progress=False,
                      **settings)
            return out
        from azure.ai.ml import Input
        from azure.ai.ml.entities import Model

        endpoint = _api().batch_endpoint(task, name=name)
        registered = self.ml_client.models.create_or_update(
            Model(path=str(model), type="mlflow_model", name=f"{name}-model"))
        deployment = _api().batch_deployment(task, endpoint_name=name, model=registered.id)
        self.ml_client.batch_endpoints.begin_create_or_update(endpoint).result()
        self.ml_client.batch_deployments.begin_create_or_update(deployment).result()
        job = self.ml_client.batch_endpoints.invoke(
            endpoint_name=name, deployment_name=deployment.name,
            input=Input(path=str(input_path), type="uri_folder"))
        self.ml_client.jobs.stream(job.name)
        self.ml_client.jobs.download(job.name, output_name="score", download_path=out)
        return out


@dataclass
class OnlineEndpoint:
    _invoke: Any
    scoring_uri: str

    def invoke(self, request: dict) -> tuple[int, Any]:
        """POST ``request`` (the catalog's JSON) to the endpoint: (HTTP status, parsed body)."""
        return self._invoke(request)


def workspace(mode: str | None = None, *, subscription_id: str | None = None,
              resource_group: str | None = None, workspace_name: str | None = None,
              output_dir: str | Path = "outputs") -> Workspace:
    """Local mode unless a workspace is configured (the three names, or a config.json that
    ``MLClient.from_config`` finds) and ``mode`` is not "local"."""
    names = {"subscription_id": subscription_id, "resource_group": resource_group,
             "workspace_name": workspace_name}
    if mode == "local" or (mode is None and not any(names.values())):
        print("local mode: the local runner, azmlinfsrv and the batch runner on this machine")
        return Workspace("local", output_dir=output_dir)
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential()
    if all(names.values()):
        client = MLClient(credential, subscription_id=subscription_id,
                          resource_group_name=resource_group, workspace_name=workspace_name)
    else:
        try:
            client = MLClient.from_config(credential)
        except Exception as exc:  # no config.json anywhere up the tree
            if mode == "azure":
                raise ValueError("azure mode needs subscription_id, resource_group and "
                                 "workspace_name, or a config.json from the workspace") from exc
            print(f"local mode: no Azure ML workspace configured ({exc.__class__.__name__})")
            return Workspace("local", output_dir=output_dir)
    print(f"azure mode: workspace {client.workspace_name}")
    return Workspace("azure", output_dir=output_dir, ml_client=client)

