"""Text-classification component arguments: columns, label names, sequence length."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ...arguments import TaskArguments, arg, split_names


@dataclass
class TextClassificationArgs(TaskArguments):
    text_key: str = arg("text", "Column holding the input text.")
    label_key: str = arg("label", "Column holding the label (class id or label name).")
    label_names: Optional[str] = arg(
        None, "Comma-separated label names for integer labels, in id order "
        "(e.g. sadness,joy,love,anger,fear,surprise). Default: names stored with the dataset.")
    max_seq_length: int = arg(128, "Maximum tokens per input; longer texts are truncated.")

    @property
    def keys(self) -> dict[str, str]:
        return {"text_key": self.text_key, "label_key": self.label_key}

    @property
    def labels(self) -> list[str] | None:
        return split_names(self.label_names)
