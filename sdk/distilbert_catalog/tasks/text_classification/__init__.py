"""Text classification (e.g. emotion detection on the dair-ai/emotion schema ``text,label``)."""

from __future__ import annotations

from ..classification import SequenceClassification
from .arguments import TextClassificationArgs

TEXT = "text"


class TextClassification(SequenceClassification):
    name = "text-classification"
    title = "text classification"
    text_columns = {TEXT: "text_key"}
    input_columns = ("input_string",)
    input_aliases = {"text": "input_string", "inputs": "input_string"}
    finetune_args = evaluate_args = TextClassificationArgs
    finetune_description = (
        "Fine-tunes DistilBERT for single-label text classification (e.g. emotion detection on "
        "the dair-ai/emotion schema text,label) with the Hugging Face Trainer.")
    evaluate_description = (
        "Evaluates a text-classification model: accuracy, macro/micro/weighted precision, recall "
        "and F1, per-label report, log loss, confusion matrix.")
    intended_use = (
        "Sentence-level classification such as emotion detection in short English texts (tweets, "
        "reviews, support messages), where latency and cost matter more than the last point of "
        "accuracy.")

    def example_request(self) -> dict[str, list]:
        return {"input_string": ["i feel so happy and cheerful today",
                                 "i am terrified of what comes next"]}


TASK = TextClassification()
