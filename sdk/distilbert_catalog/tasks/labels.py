"""Label names and ids, shared by the classification tasks (one label per text, or per word).

A label is given in data as an integer id or as its name. The names come, in this order, from
the user (``label_names``), from the dataset's ``ClassLabel`` feature (also inside a sequence, as
CoNLL-2003's ``ner_tags``), or from the values themselves. The model stores them as
``id2label``/``label2id``, so serving and evaluation answer with names.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from ..data import Data
from ..errors import DataError
from .base import Task


def feature_names(feature) -> list[str] | None:
    """The names of a ``ClassLabel`` feature, or of one inside a ``List``/``Sequence``."""
    while feature is not None:
        names = getattr(feature, "names", None)
        if names:
            return list(names)
        feature = getattr(feature, "feature", None)
    return None


def is_label_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_label(value, labels: Sequence[str] | None) -> bool:
    """An id in range or a known name (any int or string while the names are not known yet)."""
    if is_label_id(value):
        return labels is None or 0 <= value < len(labels)
    return isinstance(value, str) and (labels is None or value in labels)


def expected_label(labels: Sequence[str] | None) -> str:
    if labels is None:
        return "a label (an integer class id or a label name)"
    return f"a label id in 0..{len(labels) - 1} or one of the label names {list(labels)}"


def label_ids(values: Iterable, labels: Sequence[str]) -> list[int]:
    """Ids of ``values`` (ids or names, already validated against ``labels``)."""
    index = {name: i for i, name in enumerate(labels)}
    return [v if is_label_id(v) else index[v] for v in values]


def label_model_kwargs(labels: Sequence[str]) -> dict[str, Any]:
    """``from_pretrained`` arguments that give a fresh head one output per label, with names."""
    return {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
            "label2id": {name: i for i, name in enumerate(labels)},
            "ignore_mismatched_sizes": True}


class LabelledTask(Task):
    """A task whose training data carries class labels in :attr:`label_column`.

    :attr:`per_item` is True when each row holds a list of labels (one per word).
    """

    label_column: str
    per_item: bool = False

    def order_label_names(self, names: set[str]) -> list[str]:
        """The id order of label names found only as strings in the data."""
        return sorted(names)

    def label_names(self, data: Data, given: list[str] | None) -> list[str]:
        if given:
            return list(given)
        names = feature_names(data.dataset.features.get(self.label_column))
        if names:
            return names
        column = data.dataset[self.label_column] if self.per_item else \
            data.dataset.unique(self.label_column)
        values = {v for row in column for v in row} if self.per_item else set(column)
        if all(isinstance(v, str) for v in values):
            return self.order_label_names(values)
        if all(is_label_id(v) for v in values):
            return [str(i) for i in range(max(values) + 1)]
        raise DataError("labels mix integers and names; use one kind, or pass label_names",
                        source=data.sources[0][0], column=self.label_column)

    def model_kwargs(self, labels: list[str] | None) -> dict:
        return label_model_kwargs(labels)
