"""Extractive QA end to end: fine-tune on the bundled SQuAD v2 sample, evaluate it on the test
split, package it for MLflow, serve it under azmlinfsrv, and run the SQuAD v2 evaluation pipeline
on it.

By default the tiny random-init DistilBERT is trained once per session, briefly: these tests check
the mechanics (schemas, exact character spans, request formats, 400s), not answer quality. The
recipe that reaches F1 >= 60 on the bundled sample (the pretrained offline DistilBERT, see
distilbert_catalog.pretrained; 3 epochs, ~21 minutes on two CPU cores) does not fit the suite's
budget; set ``DISTILBERT_QA_FULL_TRAINING=1`` to run it instead, which also asserts the answer
quality (test F1 >= 60, the seed request answered "John"/"Hyderabad").
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from distilbert_catalog.samples import sample_dir
from distilbert_catalog.tasks.question_answering import SEED_REQUEST
from distilbert_catalog.serving import SCORE_SCRIPT
from tests.support import REPO

SQUAD = sample_dir("squad_v2")
FULL = bool(os.environ.get("DISTILBERT_QA_FULL_TRAINING"))
# the recipe that clears the F1 >= 60 bar (test F1 84.92 on the pretrained offline DistilBERT; docs/question-answering.md)
FULL_SETTINGS = {"max_seq_length": 384, "doc_stride": 128}
FULL_TRAINING = {"num_train_epochs": 3, "learning_rate": 2e-4, "per_device_train_batch_size": 8,
                 "warmup_ratio": 0.1, "seed": 42}
if FULL:
    QA_SETTINGS, QA_TRAINING = FULL_SETTINGS, FULL_TRAINING
else:  # mechanics: the tiny model, short windows and a few steps
    QA_SETTINGS = {"max_seq_length": 256, "doc_stride": 64}
    QA_TRAINING = {"max_steps": 4, "learning_rate": 1e-3, "per_device_train_batch_size": 8,
                   "warmup_ratio": 0.1, "seed": 42}
needs_full_training = pytest.mark.skipif(
    not FULL, reason="answer quality needs the full fine-tune (~21 minutes on two CPU cores); "
                     "set DISTILBERT_QA_FULL_TRAINING=1")


@pytest.fixture(scope="session")
def qa_model(request, tmp_path_factory):
    import distilbert_catalog as dc

    base = request.getfixturevalue("pretrained_model" if FULL else "tiny_model")
    started = time.time()
    result = dc.finetune("question-answering", output_dir=tmp_path_factory.mktemp("qa"),
                         pytorch_model_path=str(base), train_data=str(SQUAD),
                         **QA_SETTINGS, **QA_TRAINING)
    result.seconds = time.time() - started
    return result


@pytest.fixture(scope="session")
def qa_eval(qa_model, tmp_path_factory) -> tuple[dict, Path]:
    import distilbert_catalog as dc

    out = tmp_path_factory.mktemp("qa-eval")
    record = dc.evaluate("question-answering", output_dir=out,
                         mlflow_model_path=str(qa_model.mlflow_model_dir), test_data=str(SQUAD),
                         **QA_SETTINGS)
    return record, out


def test_finetune_and_squad_v2_evaluation_report(qa_model, qa_eval):
    record, out = qa_eval
    m = record["metrics"]
    print(f"\nQA fine-tune: {qa_model.seconds:.0f}s; test split: EM {m['exact']:.2f} "
          f"F1 {m['f1']:.2f} | HasAns EM {m['HasAns_exact']:.2f} F1 {m['HasAns_f1']:.2f} "
          f"(n={m['HasAns_total']:.0f}) | NoAns EM {m['NoAns_exact']:.2f} "
          f"(n={m['NoAns_total']:.0f}) | best F1 {m['best_f1']:.2f} "
          f"at {m['best_f1_thresh']:.3f}")
    assert record["task"] == "question-answering" and record["split"] == "test"
    assert record["n_examples"] == m["total"] == 84
    assert m["HasAns_total"] == 64 and m["NoAns_total"] == 20
    for name in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1",
                 "best_exact", "best_f1"):
        assert 0.0 <= m[name] <= 100.0, name
    assert m["best_f1"] >= m["f1"] - 1e-9  # the best threshold is at least as good
    assert qa_model.metrics["train_loss"] > 0 and qa_model.metrics["epoch"] > 0
    assert record["config"]["handle_impossible_answer"] is True


def test_evaluation_writes_the_shared_schema_and_artifacts(qa_eval):
    record, out = qa_eval
    assert {"predictions", "sample", "threshold_plot", "threshold_curve"} <= set(
        record["artifacts"])
    for rel in record["artifacts"].values():
        assert (out / rel).exists(), rel
    sample = json.loads((out / "sample.json").read_text())
    assert sample["request"] == {"inputs": SEED_REQUEST}
    assert [set(a) for a in sample["response"]] == [{"score", "start", "end", "answer"}] * 2
    rows = [json.loads(line) for line in (out / "predictions.jsonl").open()]
    assert len(rows) == 84
    assert sum(r["exact"] for r in rows) == pytest.approx(record["metrics"]["exact"] * 84 / 100)
    details = record["details"]
    assert details["counts"] == {"total": 84, "has_answer": 64, "no_answer": 20}
    assert details["decision"] == {"handle_impossible_answer": True, "null_score_threshold": 0.0}


def test_model_card_shows_squad_numbers(qa_model, qa_eval, tmp_path):
    from distilbert_catalog.cards import write_card

    record, out = qa_eval
    card = write_card(tmp_path, evaluation_dir=out, training_dir=qa_model.metrics_dir,
                      model_name="minilm-squad-v2").read_text()
    m = record["metrics"]
    assert f"| Exact match | {m['exact']:.2f} | {m['HasAns_exact']:.2f} | " in card
    assert f"| F1 | {m['f1']:.2f} | {m['HasAns_f1']:.2f} | {m['NoAns_f1']:.2f} |" in card
    assert f"Max sequence length | {QA_SETTINGS['max_seq_length']}" in card
    assert "What is my name?" in card
    assert (tmp_path / "f1_vs_no_answer_threshold.png").exists()


def assert_answer(answer: dict, context: str) -> None:
    assert set(answer) == {"score", "start", "end", "answer"}
    assert isinstance(answer["score"], float)
    assert isinstance(answer["start"], int) and isinstance(answer["end"], int)
    assert isinstance(answer["answer"], str)
    assert answer["answer"] == context[answer["start"]:answer["end"]]


def test_mlflow_model_predicts_a_dataframe(qa_model):
    import mlflow

    model = mlflow.pyfunc.load_model(str(qa_model.mlflow_model_dir))
    assert model.metadata.metadata["task"] == "question-answering"
    frame = pd.DataFrame(SEED_REQUEST)
    answers = model.predict(frame)
    assert list(answers.columns) == ["score", "start", "end", "answer"]
    for answer, context in zip(answers.to_dict("records"), SEED_REQUEST["context"]):
        answer = {k: (v.item() if hasattr(v, "item") else v) for k, v in answer.items()}
        assert_answer(answer, context)
    ranked = model.predict(frame, params={"top_k": 3})
    assert list(ranked.columns) == ["predictions"] and len(ranked["predictions"][0]) == 3


def test_a_5000_word_context_is_answered_with_an_exact_span(qa_model):
    from distilbert_catalog.inference import load_predictor

    predictor = load_predictor(qa_model.mlflow_model_dir, batch_size=16)
    contexts = [json.loads(line)["context"] for line in (SQUAD / "test.jsonl").open()]
    filler = " ".join(c for c in dict.fromkeys(contexts))
    needle = "My name is John and I live in Seattle."
    words, parts = 0, []
    while words < 5000:
        parts.append(filler)
        words += len(filler.split())
    context = " ".join(parts[: len(parts) * 2 // 3] + [needle] + parts[len(parts) * 2 // 3:])
    assert len(context.split()) >= 5000
    started = time.time()
    [answers] = predictor.predict([{"question": "Where does John live?", "context": context}],
                                  {"top_k": 5})
    print(f"\n5,000+ word context ({len(context.split())} words) answered in "
          f"{time.time() - started:.1f}s: {answers[0]}")
    assert len(answers) == 5
    for answer in answers:
        assert_answer(answer, context)
    scores = [a["score"] for a in answers]
    assert scores == sorted(scores, reverse=True)


def test_seed_request_under_azmlinfsrv(qa_model):
    from distilbert_catalog.runner.endpoints import serve

    with serve(SCORE_SCRIPT, qa_model.mlflow_model_dir) as server:
        status, body = server.invoke({"inputs": SEED_REQUEST})
        bad_status, bad = server.invoke({"inputs": {"question": ["What is my name?", "Who?"],
                                                    "context": ["My name is John."]}})
        empty_status, empty = server.invoke({"inputs": {"question": [""], "context": ["x"]}})
        split_status, split = server.invoke({"input_data": {
            "columns": ["question", "context"],
            "data": [[q, c] for q, c in zip(*SEED_REQUEST.values())]},
            "params": {"top_k": 2, "handle_impossible_answer": True, "doc_stride": 32}})
    assert status == 200, body
    assert isinstance(body, list) and len(body) == 2
    for answer, context in zip(body, SEED_REQUEST["context"]):
        assert_answer(answer, context)
    assert bad_status == 400 and "same length" in bad["error"]
    assert empty_status == 400 and "empty" in empty["error"]
    assert split_status == 200 and [len(a) for a in split] == [2, 2]


def test_squad_v2_evaluation_pipeline_runs_locally(qa_model, qa_eval, tmp_path):
    """The pipeline on an existing model gives the same numbers as the SDK call, and a card."""
    from distilbert_catalog.metrics_file import read_metrics
    from distilbert_catalog.runner.pipeline import run_pipeline
    from distilbert_catalog.tracking import child_env

    result = run_pipeline(REPO / "pipelines" / "squad-v2-evaluation.yaml",
                          inputs={"model_name": str(qa_model.model_dir), **QA_SETTINGS},
                          output_dir=tmp_path / "run", progress=None,
                          env=child_env(tmp_path / "mlruns"))
    record = read_metrics(result["outputs"]["evaluation_result"])
    assert record["metrics"] == pytest.approx(qa_eval[0]["metrics"])
    card = (Path(result["outputs"]["model_card"]) / "README.md").read_text()
    assert "it was not fine-tuned by this pipeline" in card and "HasAns" not in card
    assert f"| F1 | {record['metrics']['f1']:.2f} |" in card


# --------------------------------------------------------------------------- answer quality


@needs_full_training
def test_full_finetune_reaches_f1_60_on_the_test_split(qa_model, qa_eval):
    record, _ = qa_eval
    m = record["metrics"]
    summary = {k: round(m[k], 2) for k in ("exact", "f1", "HasAns_exact", "HasAns_f1",
                                           "NoAns_exact", "best_f1", "best_f1_thresh")}
    assert m["f1"] >= 60.0, (qa_model.seconds, summary)


@needs_full_training
def test_full_finetune_answers_the_seed_request(qa_model):
    from distilbert_catalog.inference import load_predictor

    predictor = load_predictor(qa_model.mlflow_model_dir, batch_size=16)
    rows = [{"question": q, "context": c} for q, c in zip(*SEED_REQUEST.values())]
    answers = predictor.predict(rows)
    assert [(a["start"], a["end"], a["answer"]) for a in answers] == [
        (11, 15, "John"), (30, 39, "Hyderabad")]


# (the pipeline's YAML end to end: tests/test_cli_samples.py runs it as its local twin)


def test_readme_pipeline_command_runs_the_verified_recipe():
    """The QA page's `distilbert-catalog run pipelines/extractive-qa.yaml --set ...` command hands
    the fine-tune step exactly the recipe the opt-in quality test verifies."""
    import re
    import shlex

    from distilbert_catalog.runner.pipeline import plan_pipeline

    readme = (REPO / "docs" / "question-answering.md").read_text()
    command = readme[readme.index("distilbert-catalog run pipelines/extractive-qa.yaml"):]
    command = command[:command.index("```")].replace("\\\n", " ")
    words = shlex.split(command)
    overrides = dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "--set")
    assert overrides.pop("model_name") == "$DISTILBERT"
    plan = plan_pipeline(REPO / "pipelines" / "extractive-qa.yaml",
                         inputs={"model_name": "minilm", **overrides})
    finetune, evaluate = (plan["steps"][s]["inputs"] for s in ("finetune", "evaluate"))
    defaults = {k: v["default"] for k, v in plan["steps"]["finetune"]["spec"]["inputs"].items()
                if "default" in v}
    recipe = {**FULL_SETTINGS, **FULL_TRAINING}
    assert {k: float(finetune.get(k, defaults.get(k))) for k in recipe} == recipe
    assert {k: int(evaluate[k]) for k in FULL_SETTINGS} == FULL_SETTINGS
    assert re.search(r"--output-dir \S+", command)
