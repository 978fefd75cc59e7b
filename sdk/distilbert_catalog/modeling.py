"""Resolve a catalog model reference to something ``from_pretrained`` can load.

A component's ``model`` input is either a hub id (``distilbert-base-uncased``), a Hugging Face
model folder (``custom_model`` / ``uri_folder``) or an MLflow model folder written by
:mod:`distilbert_catalog.mlflow_model` (``mlflow_model``), whose weights live in an artifact folder.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import CatalogError

MLMODEL = "MLmodel"


def find_mlflow_model(path: str | Path) -> Path | None:
    """The folder holding an ``MLmodel`` file at or up to two levels below ``path``, if any.

    Azure ML mounts a registered model at ``$AZUREML_MODEL_DIR/<name>/...``, so the MLflow folder
    may sit below the folder it hands over.
    """
    path = Path(path)
    if not path.is_dir():
        return None
    for pattern in (MLMODEL, f"*/{MLMODEL}", f"*/*/{MLMODEL}"):
        found = sorted(path.glob(pattern))
        if found:
            return found[0].parent
    return None


def mlflow_metadata(mlflow_dir: Path) -> dict:
    with open(mlflow_dir / MLMODEL) as f:
        return yaml.safe_load(f)


def resolve_model_source(source: str | Path) -> tuple[str, dict]:
    """Return (hub id or HF folder, catalog metadata) for any supported model reference."""
    path = Path(source)
    if not path.exists():
        if str(source).startswith((".", "/")) or "\\" in str(source):
            raise CatalogError(f"model path '{source}' does not exist")
        return str(source), {}
    mlflow_dir = find_mlflow_model(path)
    if mlflow_dir is not None:
        mlmodel = mlflow_metadata(mlflow_dir)
        artifacts = mlmodel.get("flavors", {}).get("python_function", {}).get("artifacts", {})
        if "model" not in artifacts:
            raise CatalogError(f"{mlflow_dir} is an MLflow model without a 'model' artifact; "
                               "it was not written by distilbert-catalog")
        return str(mlflow_dir / artifacts["model"]["path"]), mlmodel.get("metadata") or {}
    if not (path / "config.json").exists():
        raise CatalogError(f"{path} is neither a Hugging Face model folder (no config.json) "
                           "nor an MLflow model folder (no MLmodel)")
    return str(path), {}


def weights_source(reference: str) -> str:
    """Where a model reference's weights come from, as a card may show it (no machine paths)."""
    path = Path(reference)
    if not path.exists():
        return reference  # a hub id
    return f"a local model folder ({path.resolve().name})"


def describe_model(model, reference: str) -> dict:
    """Facts about a loaded model, read from its config: what a model card may state about it.

    ``catalog_provenance`` in the config (written by :mod:`distilbert_catalog.pretrained` and kept
    through fine-tuning) says where the weights came from; otherwise the reference it was loaded by.
    """
    config = model.config
    provenance = getattr(config, "catalog_provenance", None) or {}
    architectures = getattr(config, "architectures", None) or [type(model).__name__]
    return {
        "architecture": architectures[0],
        "model_type": config.model_type,
        "layers": getattr(config, "n_layers", None) or config.num_hidden_layers,
        "hidden_size": getattr(config, "dim", None) or config.hidden_size,
        "attention_heads": getattr(config, "n_heads", None) or config.num_attention_heads,
        "vocab_size": config.vocab_size,
        "parameters": int(model.num_parameters()),
        "weights_source": provenance.get("source_model") or weights_source(reference),
        "weights_package": provenance.get("source_package"),
        "converted": "converted_by" in provenance,
    }
