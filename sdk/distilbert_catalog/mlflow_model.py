"""MLflow packaging: a catalog model is an MLflow pyfunc model wrapping a :class:`Predictor`.

The MLflow model folder holds the Hugging Face model as the ``model`` artifact, this package as
code (so it loads where ``distilbert_catalog`` is not installed), a signature with the task's
request parameters, an input example, pinned pip requirements and the task in its metadata.
"""

from __future__ import annotations

import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from .defaults import INFERENCE_BATCH_SIZE
from .inference import load_predictor

PACKAGE_DIR = Path(__file__).resolve().parent
#: what scoring needs at run time, pinned to the versions this model was built with
SERVING_REQUIREMENTS = ("torch", "transformers", "tokenizers", "numpy", "pandas", "pyyaml",
                        "scikit-learn", "mlflow", "onnxruntime")


def answers_frame(answers: list) -> pd.DataFrame:
    """One row per input: dict answers become columns; ranked lists stay one cell each."""
    if answers and all(isinstance(a, dict) for a in answers):
        return pd.DataFrame(answers)
    return pd.DataFrame({"predictions": answers})


class CatalogModel(mlflow.pyfunc.PythonModel):
    """The pyfunc wrapper: loads the predictor once, predicts on a DataFrame of task columns."""

    def load_context(self, context):
        config = context.model_config or {}
        self.predictor = load_predictor(context.artifacts["model"], task_name=config.get("task"),
                                        backend=config.get("backend", "auto"),
                                        batch_size=int(config.get("batch_size",
                                                                  INFERENCE_BATCH_SIZE)))

    def predict(self, context, model_input, params=None):
        """Validate through the scoring script's request parser (same 4xx messages, same limits
        from the ``DISTILBERT_MAX_*`` environment variables), then predict."""
        from .serving.limits import Limits
        from .serving.request_parsing import parse_request

        task = self.predictor.task
        if isinstance(model_input, pd.DataFrame):
            known = {*task.input_columns, *task.input_aliases}
            model_input = model_input[[c for c in model_input.columns if c in known]]
            model_input = model_input.to_dict("records")
        rows, parsed = parse_request({"input_data": model_input, "params": dict(params or {})},
                                     task, Limits.from_env())
        return answers_frame(self.predictor.predict(rows, parsed))


def pinned_requirements(names=SERVING_REQUIREMENTS) -> list[str]:
    return [f"{name}=={version(name)}" for name in names]


def save_mlflow_model(model_dir: str | Path, mlflow_dir: str | Path, *, task_name: str | None = None,
                      backend: str = "auto", batch_size: int = INFERENCE_BATCH_SIZE,
                      extra_metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model_dir`` (a HF model folder) as an MLflow pyfunc model at ``mlflow_dir``."""
    mlflow_dir = Path(mlflow_dir)
    if mlflow_dir.exists() and not any(mlflow_dir.iterdir()):
        mlflow_dir.rmdir()  # Azure ML creates output folders empty; MLflow wants to create it
    elif mlflow_dir.exists():
        shutil.rmtree(mlflow_dir)
    predictor = load_predictor(model_dir, task_name=task_name, backend="fp32")
    task = predictor.task
    example = pd.DataFrame(task.example_request())
    defaults = {name: p.default for name, p in task.params.items()}
    output = answers_frame(predictor.predict(example.to_dict("records"), defaults))
    signature = mlflow.models.infer_signature(example, output, params=defaults or None)
    with tempfile.TemporaryDirectory() as tmp:
        # the model without Trainer checkpoints, which stay in the PyTorch model folder
        weights = Path(tmp, "model")
        shutil.copytree(model_dir, weights, ignore=shutil.ignore_patterns("checkpoints"))
        mlflow.pyfunc.save_model(
            path=str(mlflow_dir),
            python_model=CatalogModel(),
            artifacts={"model": str(weights)},
            code_paths=[str(PACKAGE_DIR)],
            signature=signature,
            input_example=example,
            pip_requirements=pinned_requirements(),
            model_config={"task": task.name, "backend": backend, "batch_size": batch_size},
            metadata={"task": task.name, "catalog": "distilbert-catalog",
                      **(extra_metadata or {})},
        )
    return mlflow_dir


def package_model(source: str | Path, mlflow_dir: str | Path, *, task_name: str | None = None,
                  backend: str = "auto", batch_size: int = INFERENCE_BATCH_SIZE) -> Path:
    """Package an existing model - a hub id or a Hugging Face model folder - as a catalog model.

    This is how a base checkpoint (``distilbert-base-uncased``: a masked-LM, so a fill-mask
    model) or any fine-tuned folder is made deployable without a training job. The task comes
    from ``task_name`` or the model's head; a hub id is loaded (from the local cache when
    offline) and written out as a model folder first.
    """
    from .errors import CatalogError
    from .modeling import find_mlflow_model

    path = Path(source)
    if path.is_dir() and find_mlflow_model(path) is not None:
        raise CatalogError(f"{path} is already an MLflow model; deploy it as it is")
    if path.is_dir():
        return save_mlflow_model(path, mlflow_dir, task_name=task_name, backend=backend,
                                 batch_size=batch_size, extra_metadata={"source": str(source)})
    predictor = load_predictor(source, task_name=task_name, backend="fp32")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp, "model")
        predictor.model.save_pretrained(folder)
        predictor.tokenizer.save_pretrained(folder)
        return save_mlflow_model(folder, mlflow_dir, task_name=predictor.task.name,
                                 backend=backend, batch_size=batch_size,
                                 extra_metadata={"source": str(source)})
