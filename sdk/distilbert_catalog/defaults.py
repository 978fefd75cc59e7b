"""Settings that more than one module shares, declared once (bottom layer: imports nothing).

Task settings live in each task's argument dataclasses (``tasks/<task>/arguments.py``); what is
here belongs to no task.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

#: the environment variable naming the catalog's cache folder (built models, exported graphs)
CACHE_ENV = "DISTILBERT_CATALOG_CACHE"


def cache_root() -> Path:
    """The catalog's cache folder: ``$DISTILBERT_CATALOG_CACHE`` or ``~/.cache/distilbert-catalog``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "distilbert-catalog")


def cached_folder(target: Path, build: Callable[[Path], object]) -> Path:
    """``target``, written by ``build(folder)`` on first use. The folder is built under a
    temporary name beside it and renamed when complete, so an interrupted build never leaves a
    half-written folder that later runs would trust, and concurrent builders keep one result."""
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        build(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


#: most rows in one inference batch (length-sorted rows are cut into batches by padding cost):
#: the Predictor, evaluation, the quality gate, MLflow models and deployments all default to it
INFERENCE_BATCH_SIZE = 32
#: the deployment environment variable that overrides it for a served model
BATCH_SIZE_ENV = "DISTILBERT_BATCH_SIZE"
