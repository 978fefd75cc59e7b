"""Sentence-pair component arguments: the two text columns, the label, sequence length."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ...arguments import TaskArguments, arg, split_names


@dataclass
class TextPairClassificationArgs(TaskArguments):
    text_key: str = arg("sentence1", "Column holding the first sentence of each pair (the "
                                     "premise, in NLI).")
    text_pair_key: str = arg("sentence2", "Column holding the second sentence of each pair (the "
                                          "hypothesis, in NLI).")
    label_key: str = arg("label", "Column holding the label (class id or label name).")
    label_names: Optional[str] = arg(
        None, "Comma-separated label names for integer labels, in id order (MNLI: "
        "entailment,neutral,contradiction). Default: names stored with the dataset.")
    max_seq_length: int = arg(128, "Maximum tokens per pair, special tokens included; longer "
                                   "pairs lose tokens from the longer sentence first.")

    @property
    def keys(self) -> dict[str, str]:
        return {"text_key": self.text_key, "text_pair_key": self.text_pair_key,
                "label_key": self.label_key}

    @property
    def labels(self) -> list[str] | None:
        return split_names(self.label_names)
