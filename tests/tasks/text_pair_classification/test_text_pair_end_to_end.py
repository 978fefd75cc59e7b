"""Sentence-pair classification end to end, each path in a fresh process: the SDK (the pretrained
offline DistilBERT fine-tuned on the bundled pairs, and a hypothesis-only baseline), the shipped
pipeline (its component YAML steps fine-tune, gate, evaluate and card, on the tiny model:
mechanics), the online endpoint under azmlinfsrv, the batch CLI and the MLflow pyfunc model.

The bundled pairs are built so that ``sentence2`` alone says nothing of the label (each
hypothesis is entailed by one premise and contradicted by another), and the test split is on
topics training never covers: the model fine-tuned on the pairs must beat the same model
fine-tuned on ``sentence2`` alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from distilbert_catalog.metrics_file import read_metrics
from distilbert_catalog.samples import sample_dir
from distilbert_catalog.tasks import get_task
from distilbert_catalog.serving import SCORE_SCRIPT

REPO = Path(__file__).resolve().parents[3]
PIPELINE = REPO / "pipelines" / "sentence-pair-classification.yaml"
CLI = Path(sys.executable).with_name("distilbert-catalog")
PAIRS = sample_dir("nli_pairs")
TASK = get_task("text-pair-classification")
LABELS = "entailment,neutral,contradiction"
#: the recipe the pipeline ships, which the baseline shares
RECIPE = {"num_train_epochs": 3, "learning_rate": 2e-4, "per_device_train_batch_size": 16,
          "warmup_ratio": 0.1, "max_seq_length": 128}
#: the gate's candidates here: the exact ONNX graph and PyTorch int8 (bf16 and onnx-int8 are the
#: shared gate's own tests; they would only lengthen this one)
GATE_CANDIDATES = "int8,onnx"
PREMISES = ["Lena booked a hotel room at the travel agency on Monday.",
            "Kofi did not paint the garden shed; he painted the fence instead."]
HYPOTHESES = ["Lena booked a hotel room.", "Kofi painted the garden shed."]


def child_env(tmp_path) -> dict:
    from distilbert_catalog.tracking import child_env as tracking_env

    return {**tracking_env(tmp_path / "mlruns"), "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def pipeline_run(tiny_model, tmp_path_factory):
    """The shipped pipeline on the tiny model (mechanics): each step a fresh process."""
    from distilbert_catalog.runner.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("pair-pipeline")
    return run_pipeline(PIPELINE, inputs={"model_name": str(tiny_model), "num_train_epochs": 0.3,
                                          "gate_candidates": GATE_CANDIDATES},
                        output_dir=root / "run", progress=None, env=child_env(root))


def sdk_runs(model: Path, runs: dict[str, tuple[Path, str, dict]], env_root: Path) -> dict:
    """Per name, fine-tune ``model`` for a task (with column renames) with the pipeline's recipe
    and evaluate it on the test split, through the SDK, all in one fresh process; each
    evaluation's metrics.json record."""
    script = (
        "import json, sys\n"
        "import distilbert_catalog as dc\n"
        "model, data, labels = sys.argv[1:4]\n"
        "recipe, runs = json.loads(sys.argv[4]), json.loads(sys.argv[5])\n"
        "for out, task, columns in runs.values():\n"
        "    run = dc.finetune(task, output_dir=out, model_name=model, train_data=data,\n"
        "                      label_names=labels, **recipe, **columns)\n"
        "    dc.evaluate(task, output_dir=out + '/evaluation', test_data=data, label_names=labels,\n"
        "                mlflow_model_path=str(run.mlflow_model_dir),\n"
        "                max_seq_length=recipe['max_seq_length'], **columns)\n")
    plan = {name: (str(out), task, columns) for name, (out, task, columns) in runs.items()}
    subprocess.run([sys.executable, "-c", script, str(model), str(PAIRS), LABELS,
                    json.dumps(RECIPE), json.dumps(plan)],
                   check=True, env={**_os_env(), **child_env(env_root)}, cwd=env_root)
    return {name: read_metrics(out / "evaluation") for name, (out, _, _) in runs.items()}


@pytest.fixture(scope="module")
def trained(pretrained_model, tmp_path_factory) -> tuple[dict, Path]:
    """The pretrained DistilBERT fine-tuned on the pairs, and the same model and recipe on
    ``sentence2`` alone (text classification): the hypothesis-only baseline; their records by
    name, and the pair model's output folder."""
    root = tmp_path_factory.mktemp("pairs")
    return sdk_runs(pretrained_model, {
        "pairs": (root, TASK.name, {}),
        "hypothesis_only": (tmp_path_factory.mktemp("hypothesis-only"), "text-classification",
                            {"text_key": "sentence2"})}, root), root


@pytest.fixture(scope="module")
def pairs(trained) -> tuple[dict, Path]:
    """The pair model's test record and MLflow model."""
    records, root = trained
    return records["pairs"], root / "mlflow_model_folder"


@pytest.fixture(scope="module")
def hypothesis_only(trained) -> dict:
    return trained[0]["hypothesis_only"]


@pytest.fixture(scope="module")
def in_process_answers(pairs) -> list:
    from distilbert_catalog.inference import load_predictor

    predictor = load_predictor(pairs[1], backend="fp32")
    return predictor.predict([{"text": p, "text_pair": h} for p, h in zip(PREMISES, HYPOTHESES)])


def _os_env() -> dict:
    import os

    return dict(os.environ)


def test_pipeline_ships_the_recipe_the_baseline_shares():
    inputs = yaml.safe_load(PIPELINE.read_text())["inputs"]
    assert {k: float(inputs[k]) for k in RECIPE} == {k: float(v) for k, v in RECIPE.items()}
    assert inputs["label_names"] == LABELS


def test_pairs_beat_the_hypothesis_only_baseline_on_unseen_topics(pairs, hypothesis_only):
    record, _ = pairs
    assert record["task"] == TASK.name and record["split"] == "test"
    assert record["n_examples"] == hypothesis_only["n_examples"] == 120
    pair, alone = record["metrics"]["accuracy"], hypothesis_only["metrics"]["accuracy"]
    print(f"\ntest accuracy: pairs {pair:.4f} (macro F1 {record['metrics']['f1_macro']:.4f}), "
          f"sentence2 alone {alone:.4f}; per label "
          f"{ {k: round(v['f1-score'], 3) for k, v in record['details']['per_class'].items()} }")
    assert alone <= 0.45  # three balanced labels: the hypothesis alone is near chance
    assert pair >= alone + 0.15, (pair, alone)


def test_pipeline_gate_record_and_card(pipeline_run):
    evaluation = read_metrics(pipeline_run["outputs"]["evaluation_result"])
    assert evaluation["task"] == TASK.name and evaluation["n_examples"] == 120
    gate = read_metrics(pipeline_run["steps"]["gate"]["gate_result"])
    record = gate["details"]["gate"]
    assert gate["task"] == TASK.name and gate["split"] == "validation"
    assert record["metric"] == "accuracy"
    assert [c["backend"] for c in record["candidates"]] == ["fp32", "int8", "onnx"]
    onnx = next(c for c in record["candidates"] if c["backend"] == "onnx")
    assert onnx["quality_delta_points"] == 0 and onnx["answers_changed"] == 0  # fp32's answers
    assert onnx["passed"] == (onnx["speedup"] > 1.0)  # exact, so kept where it was also faster
    assert evaluation["config"]["backend_resolved"] == record["chosen"]
    card_dir = Path(pipeline_run["outputs"]["model_card"])
    card = (card_dir / "README.md").read_text()
    assert f"| Accuracy | {evaluation['metrics']['accuracy']:.4f} |" in card
    assert "| contradiction |" in card and TASK.intended_use[:60] in card
    assert (card_dir / "confusion_matrix.png").exists()


def test_online_endpoint_under_azmlinfsrv(pairs, in_process_answers):
    from distilbert_catalog.runner.endpoints import serve

    with serve(SCORE_SCRIPT, pairs[1]) as server:
        status, body = server.invoke({"inputs": {"text": PREMISES, "text_pair": HYPOTHESES}})
        split_status, split = server.invoke({"input_data": {
            "columns": ["sentence1", "sentence2"],
            "data": [list(pair) for pair in zip(PREMISES, HYPOTHESES)]}, "params": {"top_k": 3}})
        missing = server.invoke({"inputs": {"text": PREMISES}})
        uneven = server.invoke({"inputs": {"text": PREMISES, "text_pair": HYPOTHESES[:1]}})
    assert status == 200 and [a["label"] for a in body] == [
        a["label"] for a in in_process_answers], body
    assert split_status == 200 and [ranked[0]["label"] for ranked in split] == [
        a["label"] for a in body]
    assert missing[0] == 400 and "missing ['text_pair'] input keys" in missing[1]["error"]
    assert uneven[0] == 400 and "same length" in uneven[1]["error"]


def test_batch_cli_scores_a_file_with_an_error_row(pairs, in_process_answers, tmp_path):
    """The task's batch deployment YAML, run by the batch CLI as the README shows."""
    rows = [{"text": p, "text_pair": h} for p, h in zip(PREMISES, HYPOTHESES)]
    rows.append({"text": PREMISES[0], "text_pair": ""})
    source = tmp_path / "inputs"
    source.mkdir()
    (source / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    deployment = REPO / "components/deploy/batch/text_pair_classification/deployment.yaml"
    done = subprocess.run([str(CLI), "batch", str(pairs[1]), str(source),
                           "--output-dir", str(tmp_path / "out"), "--deployment", str(deployment)],
                          capture_output=True, text=True, env={**_os_env(), **child_env(tmp_path)})
    assert done.returncode == 0, done.stderr
    scored = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert list(scored["row"]) == [0, 1, 2]
    assert list(scored["label"][:2]) == [a["label"] for a in in_process_answers]
    assert scored["error"].isna().tolist() == [True, True, False]
    assert "text_pair[2] is empty" in scored["error"][2]


def test_mlflow_pyfunc_in_a_fresh_process(pairs, in_process_answers):
    script = (
        "import json, sys\nimport mlflow, pandas as pd\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "frame = pd.DataFrame({'text': json.loads(sys.argv[2]),\n"
        "                      'text_pair': json.loads(sys.argv[3])})\n"
        "print(json.dumps({'task': model.metadata.metadata['task'],\n"
        "                  'answers': model.predict(frame).to_dict('records')}))\n")
    done = subprocess.run([sys.executable, "-c", script, str(pairs[1]), json.dumps(PREMISES),
                           json.dumps(HYPOTHESES)], capture_output=True, text=True, check=True,
                          env=_os_env())
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["task"] == TASK.name
    assert [a["label"] for a in result["answers"]] == [a["label"] for a in in_process_answers]
    for answer, expected in zip(result["answers"], in_process_answers):
        assert answer["score"] == pytest.approx(expected["score"], abs=1e-5)
