"""DistilBERT plugin for an Azure ML-style model catalog.

Notebook entry points: :func:`finetune`, :func:`evaluate`, :func:`gate`, :func:`load_model`,
:func:`model_card`, :func:`model_page`, :func:`package_model`, :func:`pipeline_job`
(azure-ai-ml), :func:`run_pipeline` (local) and :func:`workspace` (the notebooks' runner, local
or Azure ML).
"""

__version__ = "0.1.0"

from .api import (evaluate, finetune, gate, load_model, model_card, model_page,  # noqa: E402
                  package_model, pipeline_job, run_pipeline)
from .workspace import workspace  # noqa: E402

__all__ = ["evaluate", "finetune", "gate", "load_model", "model_card", "model_page",
           "package_model", "pipeline_job", "run_pipeline", "workspace"]
