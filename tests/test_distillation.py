"""Distillation: the student cut from the teacher, the losses, the cached teacher outputs, and
every task's distill component on the tiny model (mechanics), one of them as users run it."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import distilbert_catalog as dc
from distilbert_catalog.components import COMPONENTS
from distilbert_catalog.distillation import (build_student, default_student_layers, pad_stack,
                                             student_layer_choice, teacher_outputs)
from distilbert_catalog.arguments import DistillArgs
from distilbert_catalog.cards import write_card
from distilbert_catalog.errors import CatalogError
from distilbert_catalog.metrics_file import read_metrics
from distilbert_catalog.samples import sample_dir
from distilbert_catalog.tasks import TASKS, get_task
from distilbert_catalog.tasks.base import cross_entropy, soft_target_loss
from distilbert_catalog.tiny import with_task_head
from distilbert_catalog.tracking import child_env

from distilbert_catalog.serving import SCORE_SCRIPT
from distilbert_catalog.runner.endpoints import serve
from tests.support import EMOTION_LABELS, FEAR, JOY, REPO, write_jsonl


def test_default_layers_are_evenly_spaced_ending_at_the_last():
    assert default_student_layers(6, 3) == [1, 3, 5]
    assert default_student_layers(6, 2) == [2, 5]
    assert default_student_layers(12, 6) == [1, 3, 5, 7, 9, 11]
    assert default_student_layers(6, 6) == [0, 1, 2, 3, 4, 5]
    assert student_layer_choice(DistillArgs(), 6) == [1, 3, 5]  # half, by default
    assert student_layer_choice(DistillArgs(student_layers="0,2,4"), 6) == [0, 2, 4]
    with pytest.raises(CatalogError, match="student_num_layers must be in 1..6"):
        default_student_layers(6, 7)
    with pytest.raises(CatalogError, match="distinct teacher layer in 0..5"):
        student_layer_choice(DistillArgs(student_layers="1,6"), 6)


def test_the_student_is_the_teacher_with_the_chosen_layers(tiny_model, tmp_path):
    from transformers import AutoModelForSequenceClassification

    teacher = AutoModelForSequenceClassification.from_pretrained(
        with_task_head(tiny_model, "text-classification", tmp_path / "teacher"))
    student = build_student(teacher, [1])
    assert student.config.n_layers == 1 and teacher.config.n_layers == 2
    t, s = teacher.state_dict(), student.state_dict()
    for key, value in s.items():
        source = key.replace("transformer.layer.0.", "transformer.layer.1.")
        assert torch.equal(value, t[source]), key
    # with the layer the student skips being the identity, outputs agree exactly
    ids = torch.tensor([[2, 40, 41, 42, 3]])
    teacher.eval(), student.eval()
    teacher.distilbert.transformer.layer = teacher.distilbert.transformer.layer[1:]
    assert torch.allclose(teacher(input_ids=ids).logits, student(input_ids=ids).logits)


def test_soft_target_loss_is_t_squared_kl_by_hand():
    teacher = torch.tensor([[0.0, 0.0]])
    student = torch.tensor([[math.log(3.0), 0.0]])
    # T = 1: p_t = (1/2, 1/2), p_s = (3/4, 1/4)
    by_hand = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert soft_target_loss(teacher, student, 1.0).item() == pytest.approx(by_hand, abs=1e-6)
    # T = 2: p_s = (√3, 1) / (1 + √3), times T² = 4
    p = math.sqrt(3) / (1 + math.sqrt(3))
    by_hand = 4 * (0.5 * math.log(0.5 / p) + 0.5 * math.log(0.5 / (1 - p)))
    assert soft_target_loss(teacher, student, 2.0).item() == pytest.approx(by_hand, abs=1e-6)
    assert soft_target_loss(student, student, 2.0).item() == pytest.approx(0.0, abs=1e-7)


def test_unlabelled_rows_add_no_task_loss():
    """Transfer rows carry placeholder labels: the task loss reads only the labelled rows."""
    task = get_task("text-classification")
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]])
    batch = {"labels": torch.tensor([0, 0, 1])}
    labelled = torch.tensor([True, False, False])
    losses = task.distill_losses({"logits": logits}, {"logits": logits}, batch, labelled, 2.0)
    assert losses["task"].item() == pytest.approx(math.log(1 + math.exp(-2.0)), abs=1e-6)
    assert losses["soft"].item() == pytest.approx(0.0, abs=1e-6)
    none = task.distill_losses({"logits": logits}, {"logits": logits}, batch,
                               torch.zeros(3, dtype=torch.bool), 2.0)
    assert none["task"].item() == 0.0
    assert cross_entropy(logits, torch.tensor([-100, -100, -100])).item() == 0.0


def test_cached_teacher_outputs_match_a_padded_batch(tiny_model, tmp_path):
    """Cached per row (rows of one length batched together), then padded per training batch:
    the same numbers as the teacher on the padded batch, at every real token."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from distilbert_catalog.data import load_data

    task = get_task("token-classification")
    folder = with_task_head(tiny_model, "token-classification", tmp_path / "ner")
    teacher = AutoModelForTokenClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    data = task.prepare_unlabelled(load_data(write_jsonl(tmp_path / "t.jsonl", [
        {"tokens": ["Ada", "went", "to", "London"]}, {"tokens": ["Hi"]},
        {"tokens": ["Paris", "is", "big"]}, {"tokens": ["Yes"]}])), {}, None)
    features = task.train_features(data, tokenizer, 32, list(task.example_labels),
                                   {"stride": 0})
    features = features.remove_columns(["example_index", "word_index", "context"])
    collator = task.collator(tokenizer)
    cache = teacher_outputs(task, teacher, features, collator, batch_size=8)
    batch = collator([features[i] for i in range(len(features))])
    with torch.no_grad():
        padded = teacher(input_ids=batch["input_ids"],
                         attention_mask=batch["attention_mask"]).logits
    stacked = pad_stack([row["logits"] for row in cache])
    real = batch["attention_mask"].bool()
    assert stacked.shape == padded.shape
    assert torch.allclose(stacked[real], padded[real], atol=1e-5)
    assert torch.all(stacked[~real] == 0)


# --- every task's component, on the tiny model --------------------------------------------------

def task_data(task: str, tmp_path):
    """(teacher folder, SDK inputs) for ``task``: a few rows of the bundled samples, labelled
    with the tiny heads' example labels."""
    samples = sample_dir()

    def rows(folder, split, n):
        lines = (samples / folder / f"{split}.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines[:n]]

    def folder(name, train, test, transfer=None):
        root = tmp_path / name
        root.mkdir()
        write_jsonl(root / "train.jsonl", train)
        write_jsonl(root / "test.jsonl", test)
        inputs = {"train_data": str(root), "test_data": str(root)}
        if transfer:
            (root / "transfer").mkdir()
            write_jsonl(root / "transfer" / "t.jsonl", transfer)
            inputs["transfer_data"] = str(root / "transfer")
        return inputs

    if task == "text-classification":
        data = [{"text": r["text"], "label": r["label"] % 2} for r in rows("emotion", "train", 12)]
        return folder("tc", data[:8], data[8:], [{"text": r["text"]} for r in data[:4]])
    if task == "text-pair-classification":
        data = rows("nli_pairs", "train", 10)
        return folder("pairs", data[:6], data[6:])
    if task == "token-classification":
        names = json.loads((samples / "conll2003" / "labels.json").read_text())
        keep = set(get_task(task).example_labels)
        data = [{"tokens": r["tokens"], "ner_tags": [names[t] if names[t] in keep else "O"
                                                     for t in r["ner_tags"]]}
                for r in rows("conll2003", "train", 10)]
        return folder("ner", data[:6], data[6:], [{"tokens": r["tokens"]} for r in data[:3]])
    if task == "question-answering":
        data = rows("squad_v2", "train", 8)
        return folder("qa", data[:5], data[5:],
                      [{"question": r["question"], "context": r["context"]} for r in data[:2]])
    if task == "fill-mask":
        train = [{"text": r["text"]} for r in rows("emotion", "train", 8)]
        return folder("fm", train, rows("wikipedia_mask_filling", "test", 4))
    raise AssertionError(f"no test data for {task}; add it here")


#: the transfer rows task_data gives each task
TRANSFER_ROWS = {"text-classification": 4, "token-classification": 3, "question-answering": 2}
DISTILLED = sorted(c.task for c in COMPONENTS.values() if c.stage == "distill")


def test_every_task_has_a_distill_component():
    assert DISTILLED == sorted(TASKS)


#: what a user's script does with the SDK: one 1-layer student of each 2-layer tiny teacher,
#: trained two steps, the script a fresh process (plan: task -> output folder and inputs)
SDK_SCRIPT = """
import json, sys
import distilbert_catalog as dc
for task, (out, inputs) in json.loads(sys.argv[1]).items():
    dc.distill(task, output_dir=out, student_num_layers=1, max_steps=2, precision="fp32",
               speed_rounds=1, **inputs)
"""


@pytest.fixture(scope="module")
def distill_inputs(tiny_model, tmp_path_factory) -> dict[str, dict]:
    """Per task: a tiny teacher with the task's head and a few rows of data (the inputs of
    ``dc.distill`` and of the distill component)."""
    root = tmp_path_factory.mktemp("distill-inputs")
    inputs = {}
    for task in DISTILLED:
        folder = root / task
        folder.mkdir()
        teacher = with_task_head(tiny_model, task, folder / "teacher")
        inputs[task] = {"teacher_model_path": str(teacher), **task_data(task, folder)}
    return inputs


def fresh_env(root: Path) -> dict:
    """A child process's environment, tracking to ``root``'s own MLflow store."""
    return {**os.environ, **child_env(root / "mlruns")}


@pytest.fixture(scope="module")
def sdk_distilled(distill_inputs, tmp_path_factory) -> dict[str, Path]:
    """Every task distilled by ``dc.distill`` in one fresh process; its output folder by task."""
    root = tmp_path_factory.mktemp("sdk-distill")
    plan = {task: (str(root / task), inputs) for task, inputs in distill_inputs.items()}
    done = subprocess.run([sys.executable, "-c", SDK_SCRIPT, json.dumps(plan)], cwd=root,
                          env=fresh_env(root), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return {task: Path(out) for task, (out, _) in plan.items()}


@pytest.mark.parametrize("task", DISTILLED)
def test_distil_every_task_through_the_sdk(task, sdk_distilled):
    """The SDK call, from a user's script: the student's report and its MLflow model, which
    answers the task's request."""
    out = sdk_distilled[task]
    record = read_metrics(out / "metrics")
    report = record["details"]["distillation"]
    assert record["stage"] == "distillation" and record["task"] == task
    assert report["student"]["layers"] == 1 and report["teacher"]["layers"] == 2
    assert report["student"]["layers_from_teacher"] == [1]
    assert report["student"]["parameters"] < report["teacher"]["parameters"]
    assert report["student"]["size_bytes"] < report["teacher"]["size_bytes"]
    metric = get_task(task).quality_metric
    assert record["metrics"][f"student_{metric}"] == report["student"]["metric"]
    assert report["kept"] == pytest.approx(report["student"]["metric"] / report["teacher"]["metric"]) \
        if report["teacher"]["metric"] else report["kept"] is None
    assert report["speed_ratio"] > 0 and report["cpu"]["model"]
    assert record["config"]["teacher_outputs_cached"] is get_task(task).distill_inputs_fixed
    assert record["config"]["transfer_examples"] == TRANSFER_ROWS.get(task, 0)
    predictor = dc.load_model(out / "mlflow_model_folder")
    assert predictor.task.name == task
    assert predictor.model.config.n_layers == 1
    request = get_task(task).example_request()
    answers = predictor.predict([dict(zip(request, v)) for v in zip(*request.values())])
    assert len(answers) == len(next(iter(request.values())))


#: the distill components the shipped pipelines do not run (distill-emotion.yaml runs text
#: classification's, distill-qa.yaml question answering's)
NOT_IN_A_SHIPPED_PIPELINE = [t for t in DISTILLED
                             if t not in ("text-classification", "question-answering")]


def test_every_other_distill_component_yaml_runs_through_the_local_runner(distill_inputs,
                                                                            tmp_path):
    """The distill components no shipped pipeline runs, as a user composes them: a pipeline YAML
    of one step per component (`distilbert-catalog run`, a fresh process; each step started as
    Azure ML starts it), on the tiny teachers: each step's student, report and MLflow model."""
    from distilbert_catalog.api import component_for

    jobs = {}
    for task in NOT_IN_A_SHIPPED_PIPELINE:
        folders = {k: {"type": "uri_folder", "path": v}
                   for k, v in distill_inputs[task].items()}
        jobs[f"distill_{task.replace('-', '_')}"] = {
            "type": "command", "component": str(REPO / component_for("distill", task).path),
            "inputs": {**folders, "student_num_layers": 1, "max_steps": 2, "precision": "fp32",
                       "speed_rounds": 1}}
    pipeline = tmp_path / "distill-every-task.yaml"
    pipeline.write_text(yaml.safe_dump({
        "$schema": "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json",
        "type": "pipeline", "jobs": jobs}))
    argv = [str(Path(sys.executable).parent / "distilbert-catalog"), "run", str(pipeline),
            "--output-dir", str(tmp_path / "out")]
    done = subprocess.run(argv, env=fresh_env(tmp_path), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for step, task in zip(jobs, NOT_IN_A_SHIPPED_PIPELINE):
        record = read_metrics(tmp_path / "out" / step / "metrics")
        assert record["stage"] == "distillation" and record["task"] == task
        assert record["details"]["distillation"]["student"]["layers"] == 1
        student = json.loads((tmp_path / "out" / step / "pytorch_model_folder" / "config.json")
                             .read_text())
        assert student["n_layers"] == 1
        assert (tmp_path / "out" / step / "mlflow_model_folder" / "MLmodel").exists()


def test_distill_qa_pipeline_runs_as_users_run_it(tiny_model, tmp_path):
    """pipelines/distill-qa.yaml through the local runner (a fresh process, each step too), a
    fraction of an epoch on the tiny model: both evaluations, the card's "Distilled from"
    section, and the student answering the catalog's QA request under azmlinfsrv."""
    argv = [str(Path(sys.executable).parent / "distilbert-catalog"), "run",
            str(REPO / "pipelines" / "distill-qa.yaml"), "--set", f"model_name={tiny_model}",
            "--set", "num_train_epochs=0.05", "--set", "distill_epochs=0.05",
            "--set", "student_num_layers=1", "--set", "precision=fp32",
            "--set", "max_seq_length=128", "--set", "doc_stride=32",  # as the notebooks' knobs
            "--output-dir", str(tmp_path)]
    done = subprocess.run(argv, env=fresh_env(tmp_path), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    record = read_metrics(tmp_path / "distill" / "metrics")
    d = record["details"]["distillation"]
    assert record["task"] == "question-answering" and d["student"]["layers"] == 1
    student_eval = read_metrics(tmp_path / "evaluate_student" / "evaluation_result")
    teacher_eval = read_metrics(tmp_path / "evaluate_teacher" / "evaluation_result")
    assert d["examples"] == student_eval["n_examples"] == teacher_eval["n_examples"]
    assert d["student"]["metric"] == pytest.approx(student_eval["metrics"]["f1"])
    card = (tmp_path / "model_card" / "model_card" / "README.md").read_text()
    assert "## Distilled from" in card and f"evaluates {d['speed_ratio']:.2f}× as fast" in card
    question, context = "Where do penguins live?", "Most penguins live in the Southern Hemisphere."
    with serve(SCORE_SCRIPT, tmp_path / "distill" / "mlflow_model_folder") as server:
        status, body = server.invoke({"inputs": {"question": [question],
                                                 "context": [context]}})
    assert status == 200, body
    assert [set(answer) for answer in body] == [{"score", "start", "end", "answer"}]
    assert body[0]["answer"] == context[body[0]["start"]:body[0]["end"]]


def test_a_teacher_of_another_task_is_refused_before_training(tiny_model, tmp_path):
    teacher = with_task_head(tiny_model, "token-classification", tmp_path / "teacher")
    with pytest.raises(CatalogError, match="is a token-classification model, not a "
                                           "text-classification model"):
        dc.distill("text-classification", output_dir=tmp_path / "out",
                   teacher_model_path=str(teacher), **task_data("text-classification", tmp_path))


def student_folder(teacher: Path, folder: Path, **config_changes) -> Path:
    """A model to start a student from: the teacher's first layer (or, with config changes, a
    fresh model of another shape), saved with the teacher's tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(teacher)
    if config_changes:
        model.config.update(config_changes)
        model = type(model)(model.config)
    else:
        model = build_student(model, [0])
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(teacher).save_pretrained(folder)
    return folder


def test_a_given_student_model_is_distilled_instead_of_teacher_layers(tiny_model, tmp_path):
    teacher = with_task_head(tiny_model, "text-classification", tmp_path / "teacher")
    start = student_folder(teacher, tmp_path / "start")
    config = json.loads((teacher / "config.json").read_text())  # a teacher distilled itself
    config["catalog_provenance"] = {"student_layers": [0, 1], "source_model": "tiny"}
    (teacher / "config.json").write_text(json.dumps(config))
    inputs = task_data("text-classification", tmp_path)
    dc.distill("text-classification", output_dir=tmp_path / "out", teacher_model_path=str(teacher),
               student_model_path=str(start), max_steps=2, precision="fp32", speed_rounds=1,
               **inputs)
    record = read_metrics(tmp_path / "out" / "metrics")
    student = record["details"]["distillation"]["student"]
    assert student["started_from"] == "a local model folder (start)"
    assert "layers_from_teacher" not in student and student["layers"] == 1
    assert record["config"]["student_model"] == str(start)
    assert record["config"]["student_layers"] is None
    trained = json.loads((tmp_path / "out" / "pytorch_model_folder" / "config.json").read_text())
    assert trained["n_layers"] == 1
    assert trained["catalog_provenance"]["student_model"] == "a local model folder (start)"
    assert "student_layers" not in trained["catalog_provenance"]  # the teacher's, not this one's
    dc.evaluate("text-classification", output_dir=tmp_path / "evaluation",
                mlflow_model_path=str(tmp_path / "out" / "mlflow_model_folder"),
                test_data=inputs["test_data"])
    card = write_card(tmp_path / "card", evaluation_dir=tmp_path / "evaluation",
                      training_dir=tmp_path / "out" / "metrics").read_text()
    assert ("A 1-layer student of the 2-layer teacher `../teacher`,\nstarted from a local model "
            "folder (start) (the teacher's tokenizer),") in card


@pytest.mark.parametrize("case", ["other tokenizer", "other width with alpha_cos", "both"])
def test_a_student_model_that_cannot_learn_from_the_teacher_is_refused(case, tiny_model,
                                                                        pretrained_model,
                                                                        tmp_path):
    teacher = with_task_head(tiny_model, "text-classification", tmp_path / "teacher")
    options = {"student_model_path": str(student_folder(teacher, tmp_path / "start"))}
    if case == "other tokenizer":
        options = {"student_model_name": str(pretrained_model)}
        expected = "another tokenizer than the teacher"
    elif case == "other width with alpha_cos":
        options = {"student_model_path": str(student_folder(teacher, tmp_path / "wide", dim=32,
                                                            hidden_dim=64)),
                   "alpha_cos": 1.0}
        expected = "is 32 wide and the teacher 64; set alpha_cos=0"
    else:
        options["student_num_layers"] = 1
        expected = "not both"
    with pytest.raises(CatalogError, match=expected):
        dc.distill("text-classification", output_dir=tmp_path / "out",
                   teacher_model_path=str(teacher), max_steps=1, precision="fp32",
                   **options, **task_data("text-classification", tmp_path))
    assert not (tmp_path / "out" / "pytorch_model_folder").exists()


def test_distill_emotion_pipeline_runs_as_users_run_it(tiny_model, tmp_path):
    """pipelines/distill-emotion.yaml through the local runner, each step (fine-tune the teacher,
    the distill component, evaluate both, the card) a fresh process as in Azure ML; the card's
    "Distilled from" section shows exactly the distill step's report."""
    argv = [str(Path(sys.executable).parent / "distilbert-catalog"), "run",
            str(REPO / "pipelines" / "distill-emotion.yaml"), "--set", f"model_name={tiny_model}",
            "--set", "num_train_epochs=1", "--set", "distill_epochs=1",
            "--set", "learning_rate=0.003", "--set", "student_num_layers=1",
            "--set", "precision=fp32", "--output-dir", str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for step in ("finetune_teacher", "distill", "evaluate_teacher", "evaluate_student",
                 "model_card"):
        assert f"] {step}" in done.stdout
    record = read_metrics(tmp_path / "distill" / "metrics")
    d = record["details"]["distillation"]
    assert record["config"]["student_layers"] == [1] and d["student"]["layers"] == 1
    teacher_eval = read_metrics(tmp_path / "evaluate_teacher" / "evaluation_result")
    student_eval = read_metrics(tmp_path / "evaluate_student" / "evaluation_result")
    # the report scores both models on the same 102 test rows as the evaluate steps
    assert d["examples"] == teacher_eval["n_examples"] == 102
    assert d["teacher"]["metric"] == pytest.approx(teacher_eval["metrics"]["accuracy"])
    assert d["student"]["metric"] == pytest.approx(student_eval["metrics"]["accuracy"])
    card = (tmp_path / "model_card" / "model_card" / "README.md").read_text()
    assert "## Distilled from" in card
    assert (f"| Parameters | {d['teacher']['parameters']:,} | {d['student']['parameters']:,} |"
            in card)
    assert f"| {d['teacher']['metric']:.4f} | {d['student']['metric']:.4f} |" in card
    assert f"evaluates {d['speed_ratio']:.2f}× as fast" in card
    assert "initialised from the teacher's embeddings, task head and layers 1," in card
    assert "Distilled from `" in card and "Fine-tuned from" not in card
    # the student serves under azmlinfsrv with the catalog's scoring script and request format
    with serve(SCORE_SCRIPT, tmp_path / "distill" / "mlflow_model_folder") as server:
        status, body = server.invoke({"inputs": {"input_string": [JOY, FEAR]},
                                      "parameters": {"top_k": 2}})
    assert status == 200, body
    assert [len(answer) for answer in body] == [2, 2]
    assert {a["label"] for answer in body for a in answer} <= set(EMOTION_LABELS.split(","))
