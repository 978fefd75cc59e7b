"""Task plug-ins, by catalog task name."""

from __future__ import annotations

from .base import Task
from .fill_mask import FillMask
from .question_answering import QuestionAnswering
from .text_classification import TextClassification
from .token_classification import TokenClassification

TASKS: dict[str, Task] = {task.name: task for task in (TextClassification(),
                                                       QuestionAnswering(),
                                                       FillMask(),
                                                       TokenClassification())}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task '{name}'; choose one of {sorted(TASKS)}") from None


#: model head (``config.architectures`` suffix) → task, for plain HF model folders; each task
#: class names its own head (``Task.head``)
HEADS = {task.head: name for name, task in TASKS.items() if getattr(task, "head", None)}


def task_for_config(config) -> str:
    """The task of a Hugging Face model folder, from the head it was saved with."""
    for architecture in getattr(config, "architectures", None) or []:
        for suffix, task in HEADS.items():
            if architecture.endswith(suffix):
                return task
    raise ValueError(f"cannot tell the task of a model with architectures "
                     f"{config.architectures}; pass task explicitly ({sorted(TASKS)})")
