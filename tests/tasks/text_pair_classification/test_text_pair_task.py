"""The sentence-pair classification plug-in on a tiny model: discovery, data, requests, answers.

Mechanics only (random weights); what the task learns is checked on the pretrained offline
DistilBERT in ``test_text_pair_end_to_end.py``.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest

from distilbert_catalog.components import COMPONENTS
from distilbert_catalog.data import load_data
from distilbert_catalog.errors import BadRequest, DataError
from distilbert_catalog.samples import sample_dir
from distilbert_catalog.serving.request_parsing import parse_request
from distilbert_catalog.tasks import get_task, task_for_config
from distilbert_catalog.tasks.text_pair_classification.arguments import (
    TextPairClassificationArgs)

TASK = get_task("text-pair-classification")
PAIRS = sample_dir("nli_pairs")
LABELS = ["entailment", "neutral", "contradiction"]


def read(split: str) -> list[dict]:
    return [json.loads(line) for line in (PAIRS / f"{split}.jsonl").open()]


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def pair_model(tiny_model, tmp_path_factory):
    from distilbert_catalog.tiny import with_task_head

    return with_task_head(tiny_model, TASK.name, tmp_path_factory.mktemp("pair") / "model")


@pytest.fixture(scope="module")
def predictor(pair_model):
    from distilbert_catalog.inference import load_predictor

    return load_predictor(pair_model, backend="fp32", batch_size=4)


def test_the_folder_is_the_task_its_components_and_its_card_section():
    assert TASK.head == "ForSequenceClassification" and TASK.title
    assert {f"{stage}/text_pair_classification" for stage in ("finetune", "evaluate", "gate")} \
        <= set(COMPONENTS)
    assert TextPairClassificationArgs in COMPONENTS["finetune/text_pair_classification"].args
    assert "[CLS] sentence1 [SEP] sentence2 [SEP]" in TASK.card_section().read_text()


def test_config_records_the_pair_task_and_a_plain_head_stays_text_classification(
        tiny_model, pair_model, tmp_path):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    assert task_for_config(AutoConfig.from_pretrained(pair_model)) == TASK.name
    plain = tmp_path / "plain"
    AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2).save_pretrained(
        plain)
    assert task_for_config(AutoConfig.from_pretrained(plain)) == "text-classification"


def test_sample_splits_cover_disjoint_topics_and_need_both_sentences():
    splits = {s: read(s) for s in ("train", "validation", "test")}
    topics = {s: {r["topic"] for r in rows} for s, rows in splits.items()}
    assert not topics["train"] & topics["test"] and not topics["train"] & topics["validation"]
    assert not topics["validation"] & topics["test"]
    for rows in splits.values():
        assert Counter(r["label"] for r in rows) == {label: len(rows) // 3 for label in LABELS}
    # a hypothesis alone does not tell the label: affirmed and denied hypotheses each come with
    # all three labels, in equal numbers, and so does every premise with its three hypotheses
    by_polarity, by_premise = defaultdict(Counter), defaultdict(set)
    for r in splits["train"]:
        by_polarity[denies(r["sentence2"])][r["label"]] += 1
        by_premise[r["sentence1"]].add(r["label"])
    for counts in by_polarity.values():
        assert set(counts) == set(LABELS) and len(set(counts.values())) == 1, by_polarity
    assert all(labels == set(LABELS) for labels in by_premise.values())


def denies(sentence: str) -> bool:
    return any(word in sentence.split() for word in ("not", "never"))


def test_prepare_data_maps_premise_hypothesis_columns_and_names_the_bad_row(tmp_path):
    rows = [{"premise": "A man sleeps.", "hypothesis": "A man rests.", "gold": "entailment"},
            {"premise": "A cat sits.", "hypothesis": "A dog barks.", "gold": "neutral"}]
    keys = TextPairClassificationArgs(text_key="premise", text_pair_key="hypothesis",
                                      label_key="gold").keys
    data = TASK.prepare_data(load_data(write_rows(tmp_path / "ok.jsonl", rows)), keys, LABELS)
    assert data.dataset["sentence1"] == ["A man sleeps.", "A cat sits."]
    assert data.dataset["sentence2"] == ["A man rests.", "A dog barks."]
    bad = write_rows(tmp_path / "bad.jsonl", [rows[0], {**rows[1], "hypothesis": " "}])
    with pytest.raises(DataError, match=r"bad.jsonl, row 2, column 'sentence2': expected a "
                                        r"non-empty string"):
        TASK.prepare_data(load_data(bad), keys, LABELS)
    with pytest.raises(DataError, match=r"row 1, column 'label': expected a label id in 0..2"):
        TASK.prepare_data(load_data(write_rows(tmp_path / "l.jsonl", [{**rows[0], "gold": 7}])),
                          keys, LABELS)


def test_every_request_shape_gets_text_classification_answers(predictor):
    premises = ["A man is sleeping on the sofa.", "Two girls play chess in the park."]
    hypotheses = ["Nobody is asleep.", "Children are playing a game."]
    answers = [predictor.predict(*parse_request(body, TASK)) for body in (
        {"inputs": {"text": premises, "text_pair": hypotheses}},
        {"inputs": {"sentence1": premises, "sentence2": hypotheses}},
        {"input_data": [{"text": p, "text_pair": h} for p, h in zip(premises, hypotheses)]},
        {"input_data": {"columns": ["text", "text_pair"],
                        "data": [[p, h] for p, h in zip(premises, hypotheses)]}})]
    assert all(a == answers[0] for a in answers)
    for answer in answers[0]:
        assert set(answer) == {"label", "score"} and answer["label"] in LABELS
    ranked = predictor.predict(*parse_request(
        {"inputs": {"text": premises, "text_pair": hypotheses}, "params": {"top_k": 3}}, TASK))
    for ranking, best in zip(ranked, answers[0]):
        assert ranking[0] == best and sorted(a["label"] for a in ranking) == sorted(LABELS)
        assert sum(a["score"] for a in ranking) == pytest.approx(1.0, abs=1e-5)


def test_the_pair_order_matters(predictor):
    """[CLS] a [SEP] b [SEP] is not [CLS] b [SEP] a [SEP]: the scores of a swapped pair differ."""
    a, b = "A man is sleeping on the sofa.", "Nobody is asleep."
    [forward] = predictor.predict([{"text": a, "text_pair": b}], {"top_k": 3})
    [swapped] = predictor.predict([{"text": b, "text_pair": a}], {"top_k": 3})
    assert {x["label"]: x["score"] for x in forward} != pytest.approx(
        {x["label"]: x["score"] for x in swapped})


@pytest.mark.parametrize("body, message", [
    ({"inputs": {"text": ["a"]}},
     "missing ['text_pair'] input keys; text-pair-classification expects ['text', 'text_pair']"),
    ({"inputs": {"text": ["a", "b"], "text_pair": ["c"]}},
     "input lists must have the same length; got {'text': 2, 'text_pair': 1}"),
    ({"inputs": {"text": ["a"], "text_pair": [""]}},
     "text_pair[0] is empty; send non-empty text"),
    ({"inputs": {"text": ["a"], "text_pair": ["b"]}, "params": {"top_k": 0}},
     "params.top_k must be at least 1"),
])
def test_bad_requests_say_what_to_fix(body, message):
    with pytest.raises(BadRequest) as caught:
        parse_request(body, TASK)
    assert message in str(caught.value)
