"""DistilBERT plugin for an Azure ML-style model catalog.

Notebook entry points: :func:`finetune`, :func:`evaluate`, :func:`gate`, :func:`load_model`,
:func:`model_card`, :func:`model_page`, :func:`package_model`, :func:`pipeline_job`
(azure-ai-ml), :func:`run_pipeline` (local) and :func:`workspace` (the notebooks' runner, local
or Azure ML).

They load on first use (PEP 562), so a process that needs one module (a component step, the
scoring script, ``distilbert-catalog pretrained``) does not import the whole SDK first.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {**{name: "api" for name in ("evaluate", "finetune", "gate", "load_model", "model_card",
                                        "model_page", "package_model", "pipeline_job",
                                        "run_pipeline")},
            "workspace": "workspace"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
