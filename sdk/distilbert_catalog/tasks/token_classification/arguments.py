"""Token-classification component arguments: columns, tag names, windows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ...arguments import TaskArguments, arg, split_names
from ...errors import CatalogError


@dataclass
class TokenClassificationArgs(TaskArguments):
    tokens_key: str = arg("tokens", "Column holding each sentence as a list of words.")
    tags_key: str = arg("ner_tags", "Column holding one tag per word: an integer id or an IOB "
                                    "tag name (O, B-PER, I-PER, ...).")
    label_names: Optional[str] = arg(
        None, "Comma-separated tag names for integer tags, in id order (CoNLL-2003: "
        "O,B-PER,I-PER,B-ORG,I-ORG,B-LOC,I-LOC,B-MISC,I-MISC). Default: the names stored with "
        "the dataset (ClassLabel), or the tag names found in the data.")
    max_seq_length: int = arg(128, "Tokens per window, special tokens included; longer "
                                   "sentences are split into overlapping windows, never "
                                   "truncated.")
    stride: int = arg(32, "Tokens shared by two consecutive windows of a long sentence.")

    def __post_init__(self):
        if self.max_seq_length < 3 or not 0 <= self.stride < self.max_seq_length - 2:
            raise CatalogError(
                f"stride={self.stride} must be in 0..max_seq_length - 3 = "
                f"{self.max_seq_length - 3} (a window holds max_seq_length minus 2 special "
                "tokens), or windows over a long sentence would not advance")

    @property
    def keys(self) -> dict[str, str]:
        return {"tokens_key": self.tokens_key, "tags_key": self.tags_key}

    @property
    def labels(self) -> list[str] | None:
        return split_names(self.label_names)


@dataclass
class TokenClassificationFinetuneArgs(TokenClassificationArgs):
    """The token-classification columns and windows, plus what only fine-tuning needs."""

    label_all_tokens: bool = arg(
        False, "Train on every sub-token of a word (later sub-tokens of a B-X word as I-X) "
        "instead of only its first sub-token; predictions always read the first sub-token.")
