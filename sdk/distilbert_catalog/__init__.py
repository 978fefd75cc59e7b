"""DistilBERT plugin for an Azure ML-style model catalog.

Notebook entry points: :func:`finetune`, :func:`distill`, :func:`evaluate`, :func:`gate`,
:func:`load_model`, :func:`model_card`, :func:`model_page`, :func:`package_model`,
:func:`pipeline_job` (azure-ai-ml), :func:`run_pipeline` (local) and :func:`workspace` (the
notebooks' runner, local or Azure ML).

The SDK functions load on first use (PEP 562): a process that needs one module (a component
step, the scoring script, ``distilbert-catalog pretrained``) does not import all of them first.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .process_exit import install as _install_exit_hook  # noqa: E402
from .workspace import workspace  # noqa: E402  (light: it loads the SDK when used)

_install_exit_hook()  # every catalog process ends without a second of final collections

#: the names :mod:`distilbert_catalog.api` provides
_API = ("distill", "evaluate", "finetune", "gate", "load_model", "model_card", "model_page",
        "package_model", "pipeline_job", "run_pipeline")

__all__ = [*_API, "workspace"]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import api

    value = getattr(api, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
