"""MLflow tracking defaults: Azure ML's tracking server in a job, a local file store elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

EXPERIMENT = "distilbert-catalog"


def configure_tracking(default_dir: str | Path = "mlruns") -> str:
    """Use ``MLFLOW_TRACKING_URI`` when set (Azure ML sets it in jobs); else a local file store.

    MLflow 3 keeps the file store in maintenance mode and asks for an explicit opt-in; it is the
    lightest local backend (no database migrations at start-up), so we opt in for local runs.
    """
    import mlflow  # here, not at the top: child_env serves processes that never track

    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        uri = Path(default_dir).resolve().as_uri()
        os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    if not os.environ.get("MLFLOW_EXPERIMENT_NAME") and not os.environ.get("MLFLOW_RUN_ID"):
        mlflow.set_experiment(EXPERIMENT)
    return uri


def log_flat(metrics: dict, prefix: str = "") -> None:
    """Log the numeric leaves of a (nested) metrics dict to the active run."""
    import mlflow

    flat = {}
    for name, value in metrics.items():
        key = f"{prefix}{name}".replace(" ", "_")
        if isinstance(value, dict):
            log_flat(value, f"{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[key] = float(value)
    if flat:
        mlflow.log_metrics(flat)


def child_env(default_dir: str | Path = "mlruns") -> dict[str, str]:
    """Environment for component processes started locally: track to the caller's store.

    The local runner starts each step in its component folder, so the default store must be an
    absolute path chosen by the caller, not ``./mlruns`` of the step.
    """
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return {}
    return {"MLFLOW_TRACKING_URI": Path(default_dir).resolve().as_uri(),
            "MLFLOW_ALLOW_FILE_STORE": "true"}
