"""NER task plug-in: data validation, windows, label alignment, entity spans and aggregation.

Entity spans are compared with the transformers token-classification pipeline on the same model,
and their character offsets are property-tested on hard strings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from distilbert_catalog.data import load_data
from distilbert_catalog.errors import BadRequest, DataError
from distilbert_catalog.serving.request_parsing import parse_request
from distilbert_catalog.tasks import get_task
from distilbert_catalog.tasks.token_classification import engine
from tests.support import write_jsonl

TASK = get_task("token-classification")
CONLL = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
TEXTS = ["George Washington went to Washington.",
         "Ada Lindqvist joined the Bank of England in London on Monday.",
         "The New York Times reported that Kofi Mensah-Larsen scored twice for Rosenborg.",
         "Apple and Microsoft, in Redmond; Paris (France) - and so on!"]


@pytest.fixture(scope="module")
def ner_model(tiny_model, tmp_path_factory) -> Path:
    """The tiny DistilBERT with a (random) CoNLL-2003 token-classification head."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer, set_seed

    set_seed(3)
    model = AutoModelForTokenClassification.from_pretrained(
        tiny_model, num_labels=len(CONLL), id2label=dict(enumerate(CONLL)),
        label2id={n: i for i, n in enumerate(CONLL)})
    with __import__("torch").no_grad():  # spread the logits so every tag gets predicted
        model.classifier.weight.mul_(200.0)
    out = tmp_path_factory.mktemp("ner-head")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def predictor(ner_model):
    from distilbert_catalog.inference import load_predictor

    return load_predictor(ner_model, backend="fp32", batch_size=4)


# --- data validation ------------------------------------------------------------------------

GOOD = {"tokens": ["Ada", "lives", "in", "Oslo", "."], "ner_tags": [1, 0, 0, 5, 0]}


@pytest.mark.parametrize("bad,column,message", [
    ({"tokens": ["Ada", "lives"], "ner_tags": [1]}, "ner_tags", "1 tags for 2 words"),
    ({"tokens": ["Ada"], "ner_tags": [9]}, "ner_tags", "tag 0 (word 'Ada') is 9"),
    ({"tokens": ["Ada"], "ner_tags": ["B-PERSON"]}, "ner_tags", "is 'B-PERSON'"),
    ({"tokens": [], "ner_tags": []}, "tokens", "the sentence is empty"),
    ({"tokens": ["Ada", 7], "ner_tags": [1, 0]}, "tokens", "word 1 is 7"),
    ({"tokens": ["Ada", "  "], "ner_tags": [1, 0]}, "tokens", "word 1 is '  '"),
    ({"tokens": "Ada lives", "ner_tags": [1, 0]}, "tokens", "expected a list of words"),
])
def test_bad_rows_name_file_row_and_column(tmp_path, bad, column, message):
    path = write_jsonl(tmp_path / "train.jsonl", [GOOD, GOOD, bad])
    with pytest.raises(DataError) as err:
        TASK.prepare_data(load_data(path), {}, CONLL)
    text = str(err.value)
    assert f"file {path}" in text and "row 3" in text and f"column '{column}'" in text, text
    assert message in text, text


def test_custom_columns_and_string_tags_learn_an_iob_order(tmp_path):
    rows = [{"words": ["Ada", "Lovelace", "visited", "Oslo"],
             "tags": ["B-PER", "I-PER", "O", "B-LOC"]},
            {"words": ["ACME", "Corp"], "tags": ["B-ORG", "I-ORG"]}]
    data = TASK.prepare_data(load_data(write_jsonl(tmp_path / "t.jsonl", rows)),
                             {"tokens_key": "words", "tags_key": "tags"}, None)
    assert data.dataset.column_names == ["tokens", "ner_tags"]
    assert TASK.label_names(data, None) == ["O", "B-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]


def test_integer_tags_need_names_and_names_must_be_iob(tmp_path):
    data = TASK.prepare_data(load_data(write_jsonl(tmp_path / "t.jsonl", [GOOD])), {}, None)
    with pytest.raises(DataError, match="pass label_names in id order"):
        TASK.label_names(data, None)
    with pytest.raises(DataError, match=r"\['PER'\] are not IOB tags"):
        TASK.label_names(data, ["O", "PER"])
    assert TASK.label_names(data, CONLL) == CONLL


def test_classlabel_names_come_from_the_dataset():
    import datasets

    from distilbert_catalog.data import Data

    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=CONLL))})
    data = Data(datasets.Dataset.from_dict({"tokens": [["Ada"]], "ner_tags": [[1]]},
                                           features=features), [("hub[train]", 0)])
    assert TASK.label_names(TASK.prepare_data(data, {}, None), None) == CONLL


# --- windows and label alignment -----------------------------------------------------------

@pytest.mark.parametrize("n,room,stride", [(0, 5, 2), (5, 5, 2), (6, 5, 2), (23, 5, 0),
                                           (100, 7, 6), (31, 10, 3)])
def test_windows_cover_every_token_and_overlap_by_the_stride(n, room, stride):
    spans = engine.window_spans(n, room, stride)
    assert spans[0][0] == 0 and spans[-1][1] == n
    assert all(0 < end - start <= room or n == 0 for start, end in spans)
    for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
        assert s2 - s1 == room - stride and e1 - s2 == stride


def test_stride_must_let_windows_advance():
    with pytest.raises(ValueError, match="stride"):
        engine.window_spans(10, 4, 4)


def test_merge_takes_each_token_from_the_window_where_it_has_most_context():
    enc = engine.Encoded("", list(range(10)), [(i, i + 1) for i in range(10)], list(range(10)),
                         10)
    windows = [engine.Window(0, span, {}) for span in engine.window_spans(10, 6, 4)]
    assert [w.span for w in windows] == [(0, 6), (2, 8), (4, 10)]
    scores = [np.full((e - s, 1), k, dtype=np.float32) for k, (s, e) in
              enumerate(w.span for w in windows)]
    merged = engine.merge_windows([enc], windows, scores)[0][:, 0]
    # tokens 0-3 best in window 0 (left edge is the text's), 4-5 in window 1, 6-9 in window 2
    assert merged.tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]


def test_labels_go_to_first_sub_tokens_or_to_all(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    [enc] = engine.encode_words(tokenizer, [["Washington", "met", "Mensah-Larsen"]])
    assert len(enc) > 3  # sub-words
    tags = [1, 0, 1]  # B-PER O B-PER
    first = engine.align_labels(enc, tags)
    starts = engine.first_tokens(enc)
    assert [first[t] for t in starts] == tags
    assert all(first[t] == engine.IGNORE for t in range(len(enc)) if t not in starts)
    every = engine.align_labels(enc, tags, label_all_tokens=True,
                                continuation=engine.continuation_label(CONLL))
    assert [every[t] for t in starts] == tags
    assert {every[t] for t in range(len(enc)) if t not in starts} == {2}  # I-PER


def test_train_features_window_long_sentences_and_keep_every_word(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    words = ["Ada", "Lindqvist", "joined", "the", "Bank", "of", "England", "in", "London"] * 4
    tags = [1, 2, 0, 0, 3, 4, 4, 0, 5] * 4
    data = TASK.prepare_data(load_data(write_jsonl(tmp_path / "t.jsonl",
                                                   [{"tokens": words, "ner_tags": tags}])),
                             {}, CONLL)
    features = TASK.train_features(data, tokenizer, 16, CONLL, {"stride": 4})
    assert len(features) > 2 and set(features["example_index"]) == {0}
    assert all(len(ids) <= 16 for ids in features["input_ids"])
    seen = {w for row in features["word_index"] for w in row if w >= 0}
    assert seen == set(range(len(words)))
    # the Trainer metric rebuilds whole sentences: perfect predictions score F1 = 1
    from types import SimpleNamespace

    labels = [row + [-100] * (16 - len(row)) for row in features["labels"]]
    compute = TASK.trainer_metrics(CONLL, features)
    perfect = np.array([[max(v, 0) for v in row] for row in labels])
    assert compute(SimpleNamespace(predictions=perfect, label_ids=np.array(labels)))["f1"] == 1.0
    all_o = np.zeros_like(perfect)
    assert compute(SimpleNamespace(predictions=all_o, label_ids=np.array(labels)))["f1"] == 0.0
    with pytest.raises(RuntimeError, match="feature order"):
        compute(SimpleNamespace(predictions=perfect[::-1], label_ids=np.array(labels)[::-1]))


# --- serving: requests, offsets, aggregation -------------------------------------------------

def test_requests_accept_strings_and_pre_tokenized_words():
    rows, params = parse_request({"inputs": {"input_string": ["Ada went to Oslo.",
                                                              ["Ada", "went"]]},
                                  "params": {"aggregation_strategy": "first"}}, TASK)
    assert rows == [{"input_string": "Ada went to Oslo."}, {"input_string": ["Ada", "went"]}]
    assert params["aggregation_strategy"] == "first"


@pytest.mark.parametrize("body,message", [
    ({"inputs": {"input_string": ["  "]}}, r"input_string\[0\] is empty"),
    ({"inputs": {"input_string": ["ok", []]}}, r"input_string\[1\] is an empty list"),
    ({"inputs": {"input_string": [["Ada", 3]]}}, r"input_string\[0\]\[1\] must be a non-empty"),
    ({"inputs": {"input_string": [{"a": 1}]}}, "must be a string or a list of words"),
    ({"inputs": {"input_string": ["x"]}, "params": {"aggregation_strategy": "longest"}},
     "must be one of"),
])
def test_bad_requests_say_what_to_fix(body, message):
    with pytest.raises(BadRequest, match=message):
        parse_request(body, TASK)


def test_pre_tokenized_input_offsets_point_into_the_joined_words(predictor):
    words = ["Ada", "Lindqvist", "joined", "ACME-Corp", "in", "Oslo", "."]
    [entities] = predictor.predict([{"input_string": words}], {"aggregation_strategy": "first"})
    text = " ".join(words)
    assert entities
    for e in entities:
        assert text[e["start"]:e["end"]] == e["word"]
        assert e["word"] in words or " " in e["word"]  # whole words only


@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
def test_entities_match_the_transformers_pipeline(predictor, ner_model, strategy):
    """Same model, same texts: same entities, spans and scores. Deliberate difference: our
    ``word`` is the input's own text at [start, end), the pipeline's is detokenised
    (lower-cased, ``##`` joined), so words are compared through the offsets."""
    from transformers import pipeline

    peer = pipeline("token-classification", model=str(ner_model), device="cpu",
                    aggregation_strategy=strategy)
    ours = predictor.predict([{"input_string": t} for t in TEXTS],
                             {"aggregation_strategy": strategy})
    assert sum(len(e) for e in ours) > 5
    for text, got in zip(TEXTS, ours):
        expected = peer(text)
        key = "entity" if strategy == "none" else "entity_group"
        assert [(e["entity_group"], e["start"], e["end"]) for e in got] == \
            [(e[key], e["start"], e["end"]) for e in expected], text
        assert [e["score"] for e in got] == pytest.approx([float(e["score"]) for e in expected],
                                                          rel=1e-5, abs=1e-6)
        for e in got:
            assert e["word"] == text[e["start"]:e["end"]]


HARD_CHARS = st.sampled_from(list("abcXYZ éüßñÆ  \t\n,.;:!?'\"()-–—/&@#") + [
    "😀", "👩‍🔬", "中", "文", "\u0301", "ﬁ", "\u200b", "١", "ǅ", "Ⅻ", "e\u0301"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.lists(st.one_of(HARD_CHARS, st.sampled_from(["George", "Washington", "Oslo",
                                                          "Bank", "of", "England"])),
                     min_size=1, max_size=40).map("".join),
       strategy=st.sampled_from(engine.STRATEGIES), window=st.sampled_from([512, 12]))
def test_every_entity_is_the_input_text_at_its_offsets(predictor, text, strategy, window):
    if not text.strip():
        return
    [entities] = predictor.predict([{"input_string": text}],
                                   {"aggregation_strategy": strategy, "max_seq_len": window,
                                    "stride": 3})
    previous_end = 0
    for e in entities:
        assert set(e) == {"entity_group", "score", "word", "start", "end"}
        assert 0 <= e["start"] < e["end"] <= len(text)
        assert e["word"] == text[e["start"]:e["end"]]
        assert e["word"] == e["word"].strip()  # never starts or ends in whitespace
        assert e["start"] >= previous_end  # in reading order, never overlapping
        previous_end = e["end"]
        assert 0.0 <= e["score"] <= 1.0


def test_long_text_is_windowed_not_truncated(predictor):
    text = " ".join(["Ada Lindqvist joined the Bank of England in London."] * 80)
    assert len(predictor.tokenizer(text, verbose=False)["input_ids"]) > 512
    [entities] = predictor.predict([{"input_string": text}], {"aggregation_strategy": "none"})
    # a random head tags about 8 of 9 tokens as entities: the last words must be among them
    assert max(e["end"] for e in entities) > len(text) - 20
    [short] = predictor.predict([{"input_string": text}], {"aggregation_strategy": "none",
                                                           "max_seq_len": 64, "stride": 16})
    assert max(e["end"] for e in short) > len(text) - 20


def test_an_explicit_stride_that_does_not_fit_the_window_is_a_bad_request(predictor):
    with pytest.raises(BadRequest, match="stride=100"):
        predictor.predict([{"input_string": "Ada"}], {"max_seq_len": 64, "stride": 100})


def test_task_is_found_from_the_model_head(ner_model):
    from transformers import AutoConfig

    from distilbert_catalog.tasks import task_for_config

    assert task_for_config(AutoConfig.from_pretrained(ner_model)) == "token-classification"


def test_batch_scoring_gives_one_row_per_input(predictor, tmp_path):
    """The generic batch path: texts and word lists in a jsonl file, a bad row kept as an error."""
    from distilbert_catalog.serving.batch import BatchScorer

    path = write_jsonl(tmp_path / "part.jsonl", [{"input_string": TEXTS[0]},
                                                 {"input_string": ["Ada", "went", "to", "Oslo"]},
                                                 {"input_string": ["Ada", ""]}])
    frame = BatchScorer(predictor)([str(path)])
    assert list(frame["row"]) == [0, 1, 2]
    entities = [json.loads(cell) for cell in frame["predictions"][:2]]
    assert entities[0] == predictor.predict([{"input_string": TEXTS[0]}])[0]
    for e in entities[1]:
        assert "Ada went to Oslo"[e["start"]:e["end"]] == e["word"]
    assert frame["error"][2] and "input_string[2][1]" in frame["error"][2]
