"""Settings that more than one module shares, declared once (bottom layer: imports nothing).

Task settings live in each task's argument dataclasses (``tasks/<task>/arguments.py``); what is
here belongs to no task.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the environment variable naming the catalog's cache folder (built models, exported graphs)
CACHE_ENV = "DISTILBERT_CATALOG_CACHE"


def cache_root() -> Path:
    """The catalog's cache folder: ``$DISTILBERT_CATALOG_CACHE`` or ``~/.cache/distilbert-catalog``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "distilbert-catalog")


#: most rows in one inference batch (length-sorted rows are cut into batches by padding cost):
#: the Predictor, evaluation, the quality gate, MLflow models and deployments all default to it
INFERENCE_BATCH_SIZE = 32
#: the deployment environment variable that overrides it for a served model
BATCH_SIZE_ENV = "DISTILBERT_BATCH_SIZE"
