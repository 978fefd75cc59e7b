"""Sentence-pair classification (GLUE-style: natural language inference, paraphrase).

Data in the MNLI/MRPC/QQP schema ``sentence1, sentence2, label`` (renamed with ``text_key``,
``text_pair_key``, ``label_key``); the pair is encoded as the tokenizer's pair
(``[CLS] sentence1 [SEP] sentence2 [SEP]``). Requests send ``{"inputs": {"text": [...],
"text_pair": [...]}}`` (or ``sentence1``/``sentence2``) and get text classification's answers.
Everything else - checks, training features, prediction, metrics, confusion matrix - is the
shared sequence classification (:mod:`distilbert_catalog.tasks.classification`).
"""

from __future__ import annotations

from ..classification import SequenceClassification
from .arguments import TextPairClassificationArgs

SENTENCE1, SENTENCE2 = "sentence1", "sentence2"


class TextPairClassification(SequenceClassification):
    name = "text-pair-classification"
    title = "sentence-pair classification"
    text_columns = {SENTENCE1: "text_key", SENTENCE2: "text_pair_key"}
    input_columns = ("text", "text_pair")
    input_aliases = {SENTENCE1: "text", SENTENCE2: "text_pair"}
    #: a plain ForSequenceClassification folder that records no task stays text classification
    default_for_head = False
    example_labels = ("entailment", "neutral", "contradiction")
    finetune_args = evaluate_args = TextPairClassificationArgs
    finetune_description = (
        "Fine-tunes DistilBERT to classify sentence pairs (natural language inference, "
        "paraphrase: GLUE's MNLI/MRPC/QQP schema sentence1,sentence2,label) with the Hugging "
        "Face Trainer; each pair is encoded as [CLS] sentence1 [SEP] sentence2 [SEP].")
    evaluate_description = (
        "Evaluates a sentence-pair classification model: accuracy, macro/micro/weighted "
        "precision, recall and F1, per-label report, log loss, confusion matrix.")
    intended_use = (
        "Classifying the relation between two English sentences - whether the first entails, "
        "contradicts or says nothing of the second (NLI), or whether two questions or sentences "
        "say the same thing (paraphrase) - e.g. to check claims against a source, find duplicate "
        "questions or route support tickets.")

    def example_request(self) -> dict[str, list]:
        return {"text": ["Maria bought apples at the market this morning.",
                         "Tomas did not fix the broken chair; he painted the fence instead."],
                "text_pair": ["Maria bought fruit.", "Tomas fixed the broken chair."]}


TASK = TextPairClassification()
