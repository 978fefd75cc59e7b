"""Task plug-ins, found from their folders.

Every sub-package of ``tasks/`` whose ``__init__`` defines ``TASK`` (a :class:`Task`) is a task;
adding a task is adding a folder. Shared task code lives in the modules beside them (``base``,
``labels``, ``classification``).
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import Task


def _discover() -> dict[str, Task]:
    found: dict[str, Task] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        task = getattr(importlib.import_module(f"{__name__}.{info.name}"), "TASK", None)
        if task is None:
            continue
        if not isinstance(task, Task):
            raise TypeError(f"tasks/{info.name}: TASK must be a Task instance, got {task!r}")
        if task.name in found:
            raise ValueError(f"two task folders define the task '{task.name}'")
        found[task.name] = task
    claimed: dict[str, str] = {}
    for task in found.values():
        if task.default_for_head:
            if task.head in claimed:
                raise ValueError(f"tasks {claimed[task.head]} and {task.name} both claim "
                                 f"the head {task.head}; set default_for_head = False on one")
            claimed[task.head] = task.name
    return found


TASKS: dict[str, Task] = _discover()

#: the config.json key a catalog model records its task under
CONFIG_KEY = "catalog_task"


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task '{name}'; choose one of {sorted(TASKS)}") from None


def task_for_config(config) -> str:
    """The task of a Hugging Face model folder: the one its ``config.json`` records, else (a
    folder saved before tasks were recorded, or a plain hub model) the task that claims its
    head (:attr:`Task.default_for_head`)."""
    recorded = getattr(config, CONFIG_KEY, None)
    if recorded:
        return get_task(recorded).name
    for architecture in getattr(config, "architectures", None) or []:
        for task in TASKS.values():
            if task.default_for_head and architecture.endswith(task.head):
                return task.name
    raise ValueError(f"cannot tell the task of a model with architectures "
                     f"{config.architectures}; pass task explicitly ({sorted(TASKS)})")


def record_task(config, task: Task) -> None:
    """Record ``task`` in a model config, so ``config.json`` says what the model was trained for."""
    setattr(config, CONFIG_KEY, task.name)
