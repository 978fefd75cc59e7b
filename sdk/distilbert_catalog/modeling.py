"""Resolve a catalog model reference to something ``from_pretrained`` can load.

A component's ``model`` input is either a hub id (``distilbert-base-uncased``), a Hugging Face
model folder (``custom_model`` / ``uri_folder``) or an MLflow model folder written by
:mod:`distilbert_catalog.mlflow_model` (``mlflow_model``), whose weights live in an artifact folder.

A hub id is loaded by the real hub code (``from_pretrained``) whenever the hub answers. When it
cannot (``HF_HUB_OFFLINE=1``, or one request to the hub gets no answer at all), a model in the
local Hugging Face cache is loaded from there, and any other is a :class:`CatalogError` at once
saying what was unreachable and what to pass instead - not a minute of download retries ending
in a traceback.
"""

from __future__ import annotations

import functools
import urllib.error
import urllib.parse
import urllib.request
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


#: seconds the one probe of the hub may wait for an answer
HUB_PROBE_TIMEOUT = 10.0
INSTEAD = ("pass a local model instead: in a pipeline or component run "
           "`--set model_name=$(distilbert-catalog pretrained)` (the pretrained offline "
           "DistilBERT) or a Hugging Face model folder as model_name or "
           "`--input pytorch_model_path=FOLDER` (an MLflow model: mlflow_model_path); in the SDK "
           "the same as model_name=... or pytorch_model_path=...")


def hub_unreachable(endpoint: str, repo_id: str, timeout: float = HUB_PROBE_TIMEOUT
                    ) -> str | None:
    """Why the hub at ``endpoint`` cannot serve ``repo_id``, or None when it answers at all.

    One HEAD request, no retries. Any HTTP answer (even 401 or 404) means the hub is there: the
    real loading code then runs and reports what it finds.
    """
    url = f"{endpoint.rstrip('/')}/api/models/{urllib.parse.quote(repo_id, safe='/')}"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout)
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError, ValueError) as exc:  # no answer: DNS, refused, timeout
        return f"{endpoint} gave no answer: {getattr(exc, 'reason', exc)}"
    return None


@functools.lru_cache(maxsize=None)
def hub_model_source(repo_id: str) -> str:
    """``repo_id`` when the hub can serve it; its cached snapshot folder when the hub is out of
    reach; else a :class:`CatalogError` saying what was unreachable and what to pass instead.
    Asked once per process: a component checks its model before loading it, with one probe."""
    from huggingface_hub import constants, snapshot_download, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise CatalogError(f"model '{repo_id}' is neither an existing path nor a Hugging Face "
                           f"hub id; {INSTEAD}") from None
    if constants.HF_HUB_OFFLINE:
        reason = "HF_HUB_OFFLINE=1 is set"
    else:
        reason = hub_unreachable(constants.ENDPOINT, repo_id)
        if reason is None:
            return repo_id  # the hub answers: the real hub-loading code path
    if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return snapshot_download(repo_id, local_files_only=True)
    raise CatalogError(
        f"model '{repo_id}' is not a local folder, so it would come from the Hugging Face hub, "
        f"which is not reachable ({reason}), and it is not in the local Hugging Face cache "
        f"({constants.HF_HUB_CACHE}); {INSTEAD}")


def resolve_model_source(source: str | Path) -> tuple[str, dict]:
    """Return (hub id or HF folder, catalog metadata) for any supported model reference."""
    path = Path(source)
    if not path.exists():
        if str(source).startswith((".", "/")) or "\\" in str(source):
            raise CatalogError(f"model path '{source}' does not exist")
        return hub_model_source(str(source)), {}
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
