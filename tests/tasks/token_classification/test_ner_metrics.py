"""Entity metrics equal the CoNLL-2003 scorer (conlleval) on adversarial tag sequences.

Hand-computed cases pin the rules that trip scorers up (I- after O, a type switch inside an
entity, entities at sentence ends and across sentence boundaries); a compact port of conlleval's
chunk rules checks random sequences.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from distilbert_catalog.tasks.token_classification.metrics import entity_scores


def scores(gold, predicted):
    return entity_scores(gold, predicted)


@pytest.mark.parametrize("gold,predicted,expected", [
    # I- after O starts an entity (IOB1 style): both sides have PER over words 1-2
    ([["O", "I-PER", "I-PER", "O"]], [["O", "B-PER", "I-PER", "O"]],
     {"precision": 1.0, "recall": 1.0, "f1": 1.0, "accuracy": 0.75}),
    # a type switch inside an entity splits it: predicted ORG(0) LOC(1) ORG(2), gold ORG(0-2)
    ([["B-ORG", "I-ORG", "I-ORG"]], [["B-ORG", "I-LOC", "I-ORG"]],
     {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 2 / 3}),
    # one entity right, one with the wrong type: 1 of 2 on each side
    ([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-ORG"]],
     {"precision": 0.5, "recall": 0.5, "f1": 0.5, "accuracy": 0.75}),
    # entities at the sentence end; a sentence boundary ends an entity, and I- at the start of
    # the next sentence begins a new one (so B- and I- there are the same entity)
    ([["O", "B-PER"], ["I-PER", "O"]], [["O", "B-PER"], ["B-PER", "O"]],
     {"precision": 1.0, "recall": 1.0, "f1": 1.0, "accuracy": 0.75}),
    # a too-short prediction is wrong (the last word must match too): 1 of 2 predicted right,
    # 1 of 3 gold found; F1 = 2 * 0.5 * (1/3) / (0.5 + 1/3) = 0.4
    ([["B-PER", "I-PER", "O", "B-LOC", "O", "B-MISC"]],
     [["B-PER", "O", "O", "B-LOC", "O", "O"]],
     {"precision": 0.5, "recall": 1 / 3, "f1": 0.4, "accuracy": 4 / 6}),
    # B- then I- of another type: two entities
    ([["B-PER", "I-LOC"]], [["B-PER", "B-LOC"]],
     {"precision": 1.0, "recall": 1.0, "f1": 1.0, "accuracy": 0.5}),
    # the all-O predictor finds nothing
    ([["B-PER", "I-PER", "O", "B-LOC"]], [["O", "O", "O", "O"]],
     {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 0.25}),
])
def test_hand_computed_conlleval_cases(gold, predicted, expected):
    metrics = scores(gold, predicted)["metrics"]
    assert metrics == pytest.approx(expected)


def test_per_type_figures_and_counts():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-LOC", "O"]]
    result = scores(gold, predicted)
    per_type = result["per_type"]
    assert per_type["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1,
                               "predicted": 1}
    assert per_type["LOC"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3,
                                             "support": 2, "predicted": 1})
    assert per_type["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0,
                               "predicted": 1}
    assert result["counts"] == {"sentences": 2, "words": 6, "gold_entities": 3,
                                "predicted_entities": 3, "correct_entities": 2}


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="one tag per word"):
        scores([["O", "B-PER"]], [["O"]])


# --- a port of conlleval's chunk rules (IOB tags), as the reference --------------------------

def _split(tag):
    return ("O", "") if tag == "O" else tuple(tag.split("-", 1))


def conlleval_chunks(sentences):
    """(type, start, end) chunks with conlleval.pl's startOfChunk/endOfChunk rules."""
    found, position = set(), 0
    for sentence in sentences:
        prev_tag, prev_type, start = "O", "", None
        for i, tag in enumerate(list(sentence) + ["O"]):  # a boundary ends every chunk
            tag_, type_ = _split(tag)
            end_of_chunk = (prev_tag in ("B", "I") and tag_ in ("B", "O")) or (
                prev_tag != "O" and prev_type != type_)
            start_of_chunk = (tag_ == "B") or (prev_tag == "O" and tag_ == "I") or (
                tag_ != "O" and prev_type != type_)
            if end_of_chunk and start is not None:
                found.add((prev_type, position + start, position + i - 1))
                start = None
            if start_of_chunk:
                start = i
            prev_tag, prev_type = tag_, type_
        position += len(sentence) + 1
    return found


def conlleval(gold, predicted):
    g, p = conlleval_chunks(gold), conlleval_chunks(predicted)
    correct = len(g & p)
    precision = correct / len(p) if p else 0.0
    recall = correct / len(g) if g else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    words = [(a, b) for s, t in zip(gold, predicted) for a, b in zip(s, t)]
    return {"precision": precision, "recall": recall, "f1": f1,
            "accuracy": sum(a == b for a, b in words) / len(words)}


TAGS = st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])


@st.composite
def paired_sentences(draw):
    lengths = draw(st.lists(st.integers(1, 8), min_size=1, max_size=4))
    gold = [draw(st.lists(TAGS, min_size=n, max_size=n)) for n in lengths]
    predicted = [draw(st.lists(TAGS, min_size=n, max_size=n)) for n in lengths]
    return gold, predicted


@settings(max_examples=300, deadline=None)
@given(paired_sentences())
def test_random_sequences_score_as_conlleval(pair):
    gold, predicted = pair
    assert scores(gold, predicted)["metrics"] == pytest.approx(conlleval(gold, predicted))


def test_the_reference_port_agrees_with_the_hand_computed_cases():
    """The port itself is checked on the cases above, so it cannot drift with seqeval."""
    assert conlleval([["O", "I-PER", "I-PER", "O"]], [["O", "B-PER", "I-PER", "O"]])["f1"] == 1.0
    assert conlleval([["B-ORG", "I-ORG", "I-ORG"]], [["B-ORG", "I-LOC", "I-ORG"]])["f1"] == 0.0
    assert conlleval([["O", "B-PER"], ["I-PER", "O"]],
                     [["O", "B-PER"], ["B-PER", "O"]])["f1"] == 1.0
