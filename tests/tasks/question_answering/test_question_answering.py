"""The question-answering task plug-in: data, arguments, requests, prediction, evaluation, card.

Models here are the pretrained all-MiniLM-L6-v2 encoder with a freshly initialised QA head: its
answers are arbitrary, but every property checked here (shapes, exact character spans, errors,
metrics from a predictions file) holds for any model. Learning is tested in test_qa_end_to_end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distilbert_catalog.tasks.question_answering.arguments import (QAEvaluationArgs,
                                                               QuestionAnsweringArgs)
from distilbert_catalog.data import load_data
from distilbert_catalog.errors import BadRequest, CatalogError, DataError
from distilbert_catalog.samples import sample_dir
from distilbert_catalog.serving.request_parsing import parse_request
from distilbert_catalog.tasks import TASKS, get_task
from distilbert_catalog.tasks.question_answering import SEED_REQUEST, nearest_occurrence, squad
from distilbert_catalog.tasks.question_answering.predictions import read_predictions
from tests.support import write_jsonl

TASK = get_task("question-answering")
SQUAD = sample_dir("squad_v2")
CONTEXT = "My name is John and I live in Seattle."
KEYS = QuestionAnsweringArgs().keys


@pytest.fixture(scope="module")
def qa_head_model(pretrained_model, tmp_path_factory) -> Path:
    """The pretrained offline DistilBERT with a (seeded) random QA head, as a HF model folder."""
    from distilbert_catalog.tiny import with_task_head

    return with_task_head(pretrained_model, "question-answering",
                          tmp_path_factory.mktemp("qa-head") / "distilbert-qa")


@pytest.fixture(scope="module")
def predictor(qa_head_model):
    from distilbert_catalog.inference import load_predictor

    return load_predictor(qa_head_model, backend="fp32", batch_size=8)


def row(question="What is my name?", context=CONTEXT, text="John", start=11, **extra) -> dict:
    answers = {"text": [text], "answer_start": [start]} if text else \
        {"text": [], "answer_start": []}
    return {"question": question, "context": context, "answers": answers, **extra}


# --------------------------------------------------------------------------- registration

def test_task_is_registered_with_its_head(qa_head_model):
    from transformers import AutoConfig

    from distilbert_catalog.tasks import task_for_config

    assert "question-answering" in TASKS
    assert TASK.head == "ForQuestionAnswering"
    config = AutoConfig.from_pretrained(qa_head_model)
    assert config.catalog_task == "question-answering"  # recorded in config.json
    assert task_for_config(config) == "question-answering"
    del config.catalog_task  # a folder saved before tasks were recorded: found by its head
    assert task_for_config(config) == "question-answering"
    assert TASK.input_columns == ("question", "context")
    assert TASK.example_request() == SEED_REQUEST


# --------------------------------------------------------------------------- data

def test_bundled_sample_prepares_to_canonical_columns():
    data = TASK.prepare_data(load_data(SQUAD, split="train"), KEYS, None)
    assert data.dataset.column_names == ["id", "title", "context", "question", "answers"]
    answers = data.dataset["answers"]
    assert any(a["text"] == [] for a in answers) and any(a["text"] for a in answers)
    for context, answer in zip(data.dataset["context"], answers):
        for text, start in zip(answer["text"], answer["answer_start"]):
            assert context[start:start + len(text)] == text


def test_ids_are_generated_stably_when_missing(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [row(), row("Where do I live?", text="Seattle",
                                                                start=30), row(text=None)])
    first = TASK.prepare_data(load_data(path), KEYS, None)
    second = TASK.prepare_data(load_data(path), KEYS, None)
    ids = first.dataset["id"]
    assert ids == second.dataset["id"] and len(set(ids)) == 3
    assert "title" not in first.dataset.column_names
    assert first.dataset["answers"][2] == {"text": [], "answer_start": []}


def test_bad_answer_start_names_file_row_and_column(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [row(id="a"), row(id="b", start=12)])
    with pytest.raises(DataError) as err:
        TASK.prepare_data(load_data(path), KEYS, None)
    message = str(err.value)
    assert "train.jsonl" in message and "row 2" in message and "column 'answers'" in message
    assert "'John'" in message and "answer_start 12" in message and "fix_answer_start" in message
    assert err.value.row == 2 and err.value.column == "answers"


def test_fix_answer_start_moves_to_the_nearest_occurrence(tmp_path):
    context = "John met John. Later John left."
    path = write_jsonl(tmp_path / "train.jsonl", [row(context=context, start=17, id="a")])
    keys = QuestionAnsweringArgs(fix_answer_start=True).keys
    data = TASK.prepare_data(load_data(path), keys, None)
    assert data.dataset["answers"][0]["answer_start"] == [21]
    assert nearest_occurrence(context, "John", 0) == 0
    assert nearest_occurrence(context, "Mary", 5) is None

    missing = write_jsonl(tmp_path / "missing.jsonl", [row(id="a"), row(text="Mary", id="b")])
    with pytest.raises(DataError, match=r"row 2.*'Mary' does not occur in the context"):
        TASK.prepare_data(load_data(missing), keys, None)


def test_custom_and_flat_answer_columns(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("qid,q,passage,ans,ans_start\n"
                    f"1,What is my name?,{CONTEXT},John,11\n"
                    f"2,Where do I live?,{CONTEXT},Seattle,30\n"
                    f"3,How old am I?,{CONTEXT},,\n")
    args = QuestionAnsweringArgs(question_key="q", context_key="passage", id_key="qid",
                                 answer_text_key="ans", answer_start_key="ans_start")
    data = TASK.prepare_data(load_data(path), args.keys, None)
    assert data.dataset["id"] == ["1", "2", "3"]
    assert data.dataset["answers"] == [{"text": ["John"], "answer_start": [11]},
                                       {"text": ["Seattle"], "answer_start": [30]},
                                       {"text": [], "answer_start": []}]

    bad = tmp_path / "bad.csv"
    bad.write_text(f"q,passage,ans,ans_start\nWhat is my name?,{CONTEXT},John,3\n")
    with pytest.raises(DataError, match=r"bad.csv, row 1, column 'ans_start'"):
        TASK.prepare_data(load_data(bad), args.keys, None)


@pytest.mark.parametrize("bad, column, expected", [
    ({"question": "  "}, "question", "non-empty string"),
    ({"context": 7}, "context", "non-empty string"),
    ({"answers": {"text": ["John"]}}, "answers", "SQuAD answers object"),
    ({"answers": {"text": ["John", "x"], "answer_start": [11]}}, "answers", "one start per"),
    ({"answers": {"text": [""], "answer_start": [0]}}, "answers", "unanswerable"),
])
def test_malformed_rows_are_data_errors(tmp_path, bad, column, expected):
    path = write_jsonl(tmp_path / "train.jsonl", [row(id="ok"), {**row(id="bad"), **bad}])
    with pytest.raises(DataError, match=expected) as err:
        TASK.prepare_data(load_data(path), KEYS, None)
    assert err.value.row == 2 and err.value.column == column


def test_duplicate_ids_and_missing_columns(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [row(id="x"), row(id="x")])
    with pytest.raises(DataError, match=r"row 2, column 'id': duplicate id 'x'"):
        TASK.prepare_data(load_data(path), KEYS, None)
    with pytest.raises(DataError, match=r"missing column 'query'.*question_key|_key"):
        TASK.prepare_data(load_data(path), {**KEYS, "question_key": "query"}, None)


def test_arguments_fail_fast():
    with pytest.raises(CatalogError, match="doc_stride"):
        QuestionAnsweringArgs(max_seq_length=128, doc_stride=100)
    with pytest.raises(CatalogError, match="together"):
        QuestionAnsweringArgs(answer_start_key="start")
    with pytest.raises(BadRequest, match="max_answer_length"):
        QAEvaluationArgs(max_answer_length=0)
    args = QAEvaluationArgs()
    assert args.handle_impossible_answer is True and args.predictions_file is None
    assert args.max_seq_length == 384 and args.doc_stride == 128 and args.n_best_size == 20


def test_train_features_label_answer_tokens(qa_head_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(qa_head_model)
    data = TASK.prepare_data(load_data(SQUAD, split="validation"), KEYS, None)
    settings = QuestionAnsweringArgs(max_seq_length=128, doc_stride=32).__dict__
    features = TASK.train_features(data, tokenizer, 128, None, settings)
    assert {"input_ids", "attention_mask", "start_positions", "end_positions"} <= set(
        features.column_names)
    assert len(features) > len(data)  # long contexts give several windows
    assert max(len(ids) for ids in features["input_ids"]) <= 128
    decoded = {tokenizer.decode(f["input_ids"][f["start_positions"]:f["end_positions"] + 1])
               .replace(" ", "") for f in features if f["start_positions"] > 0}
    gold = {t.lower().replace(" ", "") for a in data.dataset["answers"] for t in a["text"]}
    assert decoded and decoded <= gold


def test_trainer_metrics_score_window_spans():
    """Hand-computed: exact window; 1 token of overlap (F1 2*1/(2+3)); end before start."""
    import numpy as np
    from types import SimpleNamespace

    start, end = np.full((3, 6), -5.0), np.full((3, 6), -5.0)
    start[0, 2], end[0, 3] = 5, 5
    start[1, 1], end[1, 2] = 5, 5
    start[2, 4], end[2, 1] = 5, 5
    gold = (np.array([2, 2, 0]), np.array([3, 4, 0]))
    metrics = TASK.trainer_metrics(None)(SimpleNamespace(predictions=(start, end),
                                                         label_ids=gold))
    assert metrics == pytest.approx({"span_exact": 1 / 3, "span_f1": (1 + 0.4 + 0) / 3})
    assert TASK.default_metric_for_best_model == "span_f1"


# --------------------------------------------------------------------------- requests

SEED_BODY = {"inputs": SEED_REQUEST}


@pytest.mark.parametrize("body", [
    SEED_BODY,
    {"input_data": SEED_REQUEST, "params": {"top_k": 2}},
    {"input_data": {"columns": ["question", "context"],
                    "data": [[q, c] for q, c in zip(*SEED_REQUEST.values())]}},
    {"columns": ["context", "question"], "index": [0, 1],
     "data": [[c, q] for q, c in zip(*SEED_REQUEST.values())]},
    [{"question": q, "context": c} for q, c in zip(*SEED_REQUEST.values())],
    {"inputs": [{"question": q, "context": c} for q, c in zip(*SEED_REQUEST.values())]},
    json.dumps(SEED_BODY),
])
def test_every_catalog_request_shape_parses(body):
    rows, params = parse_request(body, TASK)
    assert rows == [{"question": q, "context": c} for q, c in zip(*SEED_REQUEST.values())]
    assert set(params) == set(TASK.params)


@pytest.mark.parametrize("body, message", [
    ({"inputs": {"question": ["a", "b"], "context": ["c"]}}, "same length"),
    ({"inputs": {"question": [""], "context": ["c"]}}, "empty"),
    ({"inputs": {"question": [3], "context": ["c"]}}, "must be a string"),
    ({"inputs": {"question": ["a"]}}, "missing"),
    ({"inputs": SEED_REQUEST, "params": {"top_k": 0}}, "top_k"),
    ({"inputs": SEED_REQUEST, "params": {"doc_stride": -1}}, "doc_stride"),
    ({"inputs": SEED_REQUEST, "params": {"handle_impossible_answer": "yes"}},
     "handle_impossible_answer"),
    ({"inputs": SEED_REQUEST, "params": {"max_answer_length": 3}}, "unknown params"),
])
def test_bad_requests_are_bad_request(body, message):
    with pytest.raises(BadRequest, match=message):
        parse_request(body, TASK)


# --------------------------------------------------------------------------- prediction

def assert_answer(answer: dict, context: str) -> None:
    assert set(answer) == {"score", "start", "end", "answer"}
    assert isinstance(answer["score"], float) and 0.0 <= answer["score"] <= 1.0
    assert isinstance(answer["start"], int) and isinstance(answer["end"], int)
    assert answer["answer"] == context[answer["start"]:answer["end"]]


def test_seed_request_through_the_predictor(predictor):
    rows, params = parse_request(SEED_BODY, TASK)
    answers = predictor.predict(rows, params)
    assert len(answers) == 2
    for answer, context in zip(answers, SEED_REQUEST["context"]):
        assert_answer(answer, context)
        assert answer["answer"]  # handle_impossible_answer is off by default

    rows, params = parse_request({"inputs": SEED_REQUEST, "params": {
        "top_k": 3, "handle_impossible_answer": True, "max_answer_len": 2}}, TASK)
    ranked = predictor.predict(rows, params)
    for answers, context in zip(ranked, SEED_REQUEST["context"]):
        assert isinstance(answers, list) and len(answers) == 3
        assert [a["score"] for a in answers if a["answer"]] == sorted(
            (a["score"] for a in answers if a["answer"]), reverse=True)
        for answer in answers:
            assert_answer(answer, context)
            assert len(answer["answer"].split()) <= 2


@pytest.mark.parametrize("params, message", [
    ({"doc_stride": 320}, "doc_stride=320 must be smaller"),
    ({"max_seq_len": 4096}, "larger than the model maximum 512"),
    ({"max_seq_len": 64, "max_question_len": 64}, "leaves no room"),
])
def test_parameter_misuse_is_a_clear_bad_request(predictor, params, message):
    rows, parsed = parse_request({"inputs": SEED_REQUEST, "params": params}, TASK)
    with pytest.raises(BadRequest, match=message):
        predictor.predict(rows, parsed)


def test_non_string_rows_from_a_dataframe_are_bad_requests(predictor):
    with pytest.raises(BadRequest, match=r"context\[1\]"):
        predictor.predict([{"question": "a?", "context": "b"}, {"question": "c?",
                                                                "context": float("nan")}])


def long_context(words: int, needle: str, at: float) -> str:
    """A ``words``-word context from the bundled sample contexts, ``needle`` at fraction ``at``."""
    contexts = [json.loads(line)["context"]
                for line in (SQUAD / "train.jsonl").read_text().splitlines()]
    parts, count, placed = [], 0, False
    for context in contexts * 10:
        if not placed and count >= at * words:
            parts.append(needle)
            placed = True
        parts.append(context)
        count += len(context.split())
        if count >= words:
            break
    return " ".join(parts)


def test_a_5000_word_context_gives_exact_character_spans(predictor):
    context = long_context(5200, "The lighthouse keeper is called Oswin Marrow.", at=0.7)
    assert len(context.split()) >= 5000
    from distilbert_catalog.tasks.question_answering import engine

    windows = engine.encode(predictor.tokenizer, ["Who is the lighthouse keeper?"], [context])
    assert len(windows) > 20  # the defaults: 384-token windows sharing 128 tokens
    rows, params = parse_request({"inputs": {"question": ["Who is the lighthouse keeper?",
                                                          "What is my name?"],
                                             "context": [context, CONTEXT]},
                                  "params": {"top_k": 5}}, TASK)
    ranked = predictor.predict(rows, params)
    for answers, ctx in zip(ranked, [context, CONTEXT]):
        assert len(answers) == 5
        for answer in answers:
            assert_answer(answer, ctx)


# --------------------------------------------------------------------------- evaluation

def gold_rows() -> list[dict]:
    return [json.loads(line) for line in (SQUAD / "test.jsonl").read_text().splitlines()]


def mixed_predictions(rows: list[dict]) -> tuple[dict[str, str], dict[str, float]]:
    """Right on every other question, wrong or abstaining on the rest; made-up probabilities."""
    predictions, probs = {}, {}
    for i, r in enumerate(rows):
        gold = r["answers"]["text"]
        if i % 2 == 0:
            predictions[r["id"]] = gold[0] if gold else ""
        else:
            predictions[r["id"]] = "" if gold else r["context"].split()[0]
        probs[r["id"]] = round((i % 7) / 7, 3)
    return predictions, probs


def test_evaluate_a_jsonl_predictions_file(tmp_path):
    import distilbert_catalog as dc

    rows = gold_rows()
    predictions, probs = mixed_predictions(rows)
    path = write_jsonl(tmp_path / "preds.jsonl", [
        {"id": k, "prediction_text": v, "no_answer_probability": probs[k]}
        for k, v in predictions.items()])
    out = tmp_path / "eval"
    record = dc.evaluate("question-answering", output_dir=out, test_data=str(SQUAD),
                         predictions_file=str(path))
    expected = squad.squad_v2_metrics(rows, predictions, probs)
    assert record["metrics"] == pytest.approx({k: float(v) for k, v in expected.items()})
    assert record["model"] == str(path) and record["n_examples"] == len(rows)
    details = record["details"]
    assert details["squad_version"] == "v2"
    assert details["counts"] == {"total": 84, "has_answer": 64, "no_answer": 20}
    assert details["no_answer"]["total"] == 20 and details["decision"] is None
    assert details["thresholds"]["best_f1"] == expected["best_f1"]
    assert set(record["artifacts"]) == {"predictions", "threshold_plot", "threshold_curve"}
    assert (out / "f1_vs_no_answer_threshold.png").stat().st_size > 5_000
    per_question = [json.loads(line) for line in (out / "predictions.jsonl").open()]
    assert len(per_question) == 84 and per_question[0]["id"] == rows[0]["id"]
    assert {"id", "question", "prediction", "gold", "exact", "f1", "has_answer",
            "no_answer_prob"} <= set(per_question[0])
    curve = json.loads((out / "threshold_curve.json").read_text())
    at = dict(zip(curve["no_answer_threshold"], curve["f1"]))
    assert at[0.0] == pytest.approx(squad.squad_v2_metrics(rows, predictions, probs,
                                                           no_answer_threshold=0.0)["f1"])

    from distilbert_catalog.cards import write_card

    card = write_card(tmp_path / "card", evaluation_dir=out).read_text()
    assert f"| Exact match | {expected['exact']:.2f} |" in card
    assert f"| F1 | {expected['f1']:.2f} | {expected['HasAns_f1']:.2f} |" in card
    assert "| Questions | 84 | 64 | 20 |" in card
    assert "![F1 against the no-answer threshold](f1_vs_no_answer_threshold.png)" in card
    assert (tmp_path / "card" / "f1_vs_no_answer_threshold.png").exists()


def test_evaluate_the_official_squad_json_format(tmp_path):
    import distilbert_catalog as dc

    rows = [r for r in gold_rows() if r["answers"]["text"]]
    predictions = {r["id"]: r["answers"]["text"][0] for r in rows}
    write_jsonl(tmp_path / "test.jsonl", rows)
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(predictions))
    record = dc.evaluate("question-answering", output_dir=tmp_path / "eval",
                         test_data=str(tmp_path / "test.jsonl"), predictions_file=str(path))
    metrics = record["metrics"]
    assert metrics["exact"] == metrics["f1"] == metrics["exact_match"] == 100.0  # v1 numbers
    assert "NoAns_total" not in metrics and record["details"]["squad_version"] == "v1"
    assert record["details"]["no_answer"] is None


def test_predictions_file_errors(tmp_path):
    rows = gold_rows()
    partial = write_jsonl(tmp_path / "p.jsonl", [
        {"id": rows[0]["id"], "prediction_text": "x", "no_answer_probability": 0.1},
        {"id": rows[1]["id"], "prediction_text": "y"}])
    with pytest.raises(DataError, match="for 1 of 2 predictions"):
        read_predictions(partial)
    bad = write_jsonl(tmp_path / "b.jsonl", [{"id": "a", "prediction_text": None}])
    with pytest.raises(DataError, match=r"b.jsonl, row 1, column 'prediction_text'"):
        read_predictions(bad)
    assert read_predictions(write_jsonl(tmp_path / "ok.jsonl", [
        {"id": 5, "prediction_text": ""}])) == ({"5": ""}, None)

    import distilbert_catalog as dc

    missing = write_jsonl(tmp_path / "m.jsonl", [{"id": rows[0]["id"], "prediction_text": ""}])
    with pytest.raises(DataError, match=f"missing prediction for {len(rows) - 1} question"):
        dc.evaluate("question-answering", output_dir=tmp_path / "e", test_data=str(SQUAD),
                    predictions_file=str(missing))
