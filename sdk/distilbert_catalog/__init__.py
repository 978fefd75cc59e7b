"""DistilBERT plugin for an Azure ML-style model catalog.

Notebook entry points: :func:`finetune`, :func:`evaluate`, :func:`gate`, :func:`load_model`,
:func:`model_card`, :func:`package_model`, :func:`pipeline_job` (azure-ai-ml) and
:func:`run_pipeline` (local).
"""

__version__ = "0.1.0"

from .api import (evaluate, finetune, gate, load_model, model_card, package_model,  # noqa: E402
                  pipeline_job, run_pipeline)

__all__ = ["evaluate", "finetune", "gate", "load_model", "model_card", "package_model", "pipeline_job",
           "run_pipeline"]
