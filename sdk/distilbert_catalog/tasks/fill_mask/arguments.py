"""Fill-mask evaluation arguments: columns, window length, pseudo-perplexity sample."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ...arguments import TaskArguments, arg, split_names


@dataclass
class FillMaskArgs(TaskArguments):
    """Fill-mask evaluation data: the rcds/wikipedia-for-mask-filling schema or a plain table."""

    text_key: str = arg(
        "texts", "Column holding the text with mask markers (<mask>, [MASK] or [mask]); use "
        "input_string for a plain table.")
    masks_key: str = arg(
        "masks", "Column holding the true words: a list, one per mask in order "
        "(rcds/wikipedia-for-mask-filling), or one word for a text with one mask.")
    kinds_key: str = arg(
        "mask_kinds", "Optional column naming the kind of each masked word (noun, verb, name, "
        "...) for a per-kind breakdown; ignored when the data has no such column.")
    max_seq_length: int = arg(
        512, "Tokens per window (special tokens included, at most the model's maximum); a "
        "longer text is read through a window centred on each mask.")
    pseudo_perplexity_samples: int = arg(
        100, "Texts (a seeded random sample) whose pseudo-perplexity is computed by masking "
        "each token in turn; 0 skips it, a negative number uses every text.")

    @property
    def keys(self) -> dict[str, str]:
        return {"text_key": self.text_key, "masks_key": self.masks_key,
                "kinds_key": self.kinds_key}


@dataclass
class FillMaskDistillArgs(FillMaskArgs):
    """Masked-LM distillation: raw training text, masking, and the evaluation data's columns."""

    train_text_key: str = arg(
        "text", "Column of train_data, validation_data and transfer_data holding raw text (one "
        "passage per row); the student learns the teacher's predictions at randomly masked "
        "tokens.")
    mlm_probability: float = arg(0.15, "Share of tokens masked in each training batch.")

    @property
    def keys(self) -> dict[str, str]:
        return {**super().keys, "train_text_key": self.train_text_key}
