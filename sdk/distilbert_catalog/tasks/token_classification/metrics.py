"""Entity-level scores of tag sequences, as the CoNLL-2003 scorer (conlleval) computes them.

:func:`entity_scores` wraps ``seqeval`` in its default mode, which reproduces conlleval's chunk
rules: an entity starts at ``B-X``, at ``I-X`` after ``O`` or after another type, and ends where
the next tag does not continue it; it counts as correct only when the predicted chunk has the
same type and the same first and last word as a gold chunk.

Inputs: ``gold`` and ``predicted``, lists of sentences, each a list of tag names, one per word.
Outputs: ``{"precision", "recall", "f1"}`` (entity level, micro-averaged over all entities),
``"accuracy"`` (share of words whose tag is right, ``O`` included), and per entity type
``{"precision", "recall", "f1", "support", "predicted"}``.

Worked example (conlleval gives the same numbers)::

    gold      = [["B-PER", "I-PER", "O", "B-LOC"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"]]
    # gold chunks: PER(0-1), LOC(3); predicted chunks: PER(0-1), ORG(3); one correct
    entity_scores(gold, predicted)["metrics"]
    # {"precision": 0.5, "recall": 0.5, "f1": 0.5, "accuracy": 0.75}
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence


#: what ``details.scheme`` says about how the numbers were computed
SCHEME = "entity-level micro P/R/F1 as conlleval (seqeval default mode); token accuracy"


def chunks(sentences: Sequence[Sequence[str]]) -> list[tuple[str, int, int]]:
    """Every entity as (type, first word, last word) with conlleval's chunk rules; the word
    positions run on across sentences (sentence boundaries always end a chunk)."""
    from seqeval.metrics.sequence_labeling import get_entities  # (scikit-learn underneath:
    # loaded where tags are scored, not by every process that lists the tasks)

    return get_entities([list(s) for s in sentences])


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Headline metrics and per-type figures (see the module docstring)."""
    from seqeval.metrics import (accuracy_score, classification_report, f1_score,
                                 precision_score, recall_score)

    if len(gold) != len(predicted) or any(len(g) != len(p) for g, p in zip(gold, predicted)):
        raise ValueError("gold and predicted tags must have one tag per word, sentence by "
                         "sentence")
    gold, predicted = [list(s) for s in gold], [list(s) for s in predicted]
    gold_chunks, predicted_chunks = set(chunks(gold)), set(chunks(predicted))
    correct = len(gold_chunks & predicted_chunks)
    metrics = {"precision": float(precision_score(gold, predicted, zero_division=0)),
               "recall": float(recall_score(gold, predicted, zero_division=0)),
               "f1": float(f1_score(gold, predicted, zero_division=0)),
               "accuracy": float(accuracy_score(gold, predicted)) if gold else 0.0}
    report = classification_report(gold, predicted, output_dict=True, zero_division=0) \
        if gold_chunks or predicted_chunks else {}
    predicted_counts = Counter(kind for kind, _, _ in predicted_chunks)
    types = sorted({kind for kind, _, _ in gold_chunks | predicted_chunks})
    per_type = {}
    for kind in types:
        row = report.get(kind, {})
        per_type[kind] = {"precision": float(row.get("precision", 0.0)),
                          "recall": float(row.get("recall", 0.0)),
                          "f1": float(row.get("f1-score", 0.0)),
                          "support": int(row.get("support", 0)),
                          "predicted": int(predicted_counts[kind])}
    return {"metrics": metrics, "per_type": per_type,
            "counts": {"sentences": len(gold), "words": sum(len(s) for s in gold),
                       "gold_entities": len(gold_chunks),
                       "predicted_entities": len(predicted_chunks), "correct_entities": correct}}
