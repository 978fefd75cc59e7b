"""A batch deployment's settings, as Azure ML's parallel run reads them, and its YAML adapter.

:class:`BatchSettings` holds the parallel-run settings that
:func:`distilbert_catalog.runner.batch.run_batch` honours; :func:`load_batch_deployment_file` reads
them, with the scoring script and its code folder, from a ``batchDeployment`` YAML through
azure-ai-ml's own loader.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from distilbert_catalog.assets import code_dir as resolve_code_dir
from distilbert_catalog.errors import CatalogError
from distilbert_catalog.runner.batch_parts import PARTS, SUMMARY


class BatchRunError(CatalogError, RuntimeError):
    """A local batch run could not run: bad arguments, a missing script, or a failing ``init()``."""


class BatchThresholdExceeded(BatchRunError):
    """More rows failed than ``error_threshold`` allows; the summary is still written."""

    def __init__(self, message: str, summary: dict):
        super().__init__(message)
        self.summary = summary


@dataclass
class BatchSettings:
    """The parallel-run settings of a batch deployment (Azure ML's defaults, but a longer timeout)."""

    mini_batch_size: int = 10
    max_concurrency_per_instance: int = 1
    max_retries: int = 3
    timeout: float = 300.0
    error_threshold: int = -1
    output_file_name: str = "predictions.csv"
    environment_variables: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        for name in ("mini_batch_size", "max_concurrency_per_instance"):
            if int(getattr(self, name)) < 1:
                raise BatchRunError(f"{name} must be at least 1, got {getattr(self, name)}")
        if int(self.max_retries) < 0:
            raise BatchRunError(f"max_retries must be 0 or more, got {self.max_retries}")
        if not float(self.timeout) > 0:
            raise BatchRunError(f"timeout must be positive seconds, got {self.timeout}")
        if int(self.error_threshold) < -1:
            raise BatchRunError(f"error_threshold must be -1 (never fail) or more, got "
                                f"{self.error_threshold}")
        name = self.output_file_name
        if not name or Path(name).name != name or name in (".", "..", SUMMARY, PARTS):
            raise BatchRunError(f"output_file_name must be a plain file name other than {SUMMARY}, "
                                f"got {name!r}")


@dataclass
class BatchDeploymentFile:
    """What a batch deployment YAML says about running it: settings and the scoring script."""

    settings: BatchSettings
    scoring_script: Path
    code_dir: Path


def load_batch_deployment_file(path: str | os.PathLike) -> BatchDeploymentFile:
    """Read a ``batchDeployment`` YAML with azure-ai-ml's own loader (offline)."""
    from azure.ai.ml import load_batch_deployment

    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise BatchRunError(f"deployment file not found: {path}")
    try:
        with warnings.catch_warnings():  # azure-ai-ml nudges towards ModelBatchDeployment
            warnings.filterwarnings("ignore", "This class is intended as a base class")
            deployment = load_batch_deployment(source=path)
    except Exception as exc:  # noqa: BLE001 - azure-ai-ml's validation errors say what is wrong
        raise BatchRunError(f"{path}: not a valid batch deployment: {exc}") from None
    defaults = BatchSettings()
    retry = deployment.retry_settings
    settings = BatchSettings(
        mini_batch_size=_first(deployment.mini_batch_size, defaults.mini_batch_size),
        max_concurrency_per_instance=_first(deployment.max_concurrency_per_instance,
                                            defaults.max_concurrency_per_instance),
        max_retries=_first(getattr(retry, "max_retries", None), defaults.max_retries),
        timeout=_first(getattr(retry, "timeout", None), defaults.timeout),
        error_threshold=_first(deployment.error_threshold, defaults.error_threshold),
        output_file_name=_first(deployment.output_file_name, defaults.output_file_name),
        environment_variables={str(k): str(v) for k, v in
                               (deployment.environment_variables or {}).items()},
    )
    code = deployment.code_configuration
    if code is None or not code.scoring_script:
        raise BatchRunError(f"{path}: code_configuration with code and scoring_script is required")
    code_dir = resolve_code_dir((path.parent / str(code.code)).resolve(), code.scoring_script)
    return BatchDeploymentFile(settings, code_dir / code.scoring_script, code_dir)


def _first(value, default):
    return default if value is None else value
