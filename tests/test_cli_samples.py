"""CLI samples: every Azure ML script parses (bash -n) and has a local twin; every local twin runs
with bash, offline, on the tiny model (the fill-mask batch twin as the README's runnable block,
tests/test_docs.py)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[1] / "cli"
SAMPLES = CLI.parent / "sdk" / "distilbert_catalog" / "samples"
AZ_SCRIPTS = sorted(CLI.glob("*.sh"))
TWINS = sorted((CLI / "local").glob("*.sh"))


def test_every_script_parses_and_has_a_local_twin():
    assert len(AZ_SCRIPTS) == 8
    assert [p.name for p in AZ_SCRIPTS] == [p.name for p in TWINS]
    for script in AZ_SCRIPTS + TWINS:
        subprocess.run(["bash", "-n", str(script)], check=True)
        assert os.access(script, os.X_OK), script
    for script in AZ_SCRIPTS:
        text = script.read_text()
        assert "az ml " in text and "set -euo pipefail" in text
        for ref in ("pipelines/", "components/deploy/", "cli/requests/", "model_cards/"):
            for word in text.split():
                word = word.strip('"').split("=")[-1]
                if word.startswith(ref) and "$" not in word:
                    assert (CLI.parent / word).exists(), f"{script.name}: {word}"
    for twin in TWINS:
        assert "az " not in twin.read_text()


def test_request_files_are_the_catalog_format():
    qa = json.loads((CLI / "requests" / "question-answering.json").read_text())
    assert set(qa["inputs"]) == {"question", "context"}
    fm = json.loads((CLI / "requests" / "fill-mask.json").read_text())
    assert all("[MASK]" in t for t in fm["inputs"]["input_string"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_twin(name: str, tmp_path: Path, model: Path, **env) -> subprocess.CompletedProcess:
    bindir = Path(sys.executable).parent
    full = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
            "MODEL": str(model), "OUT": str(tmp_path / "out"), **env}
    proc = subprocess.run(["bash", str(CLI / "local" / name)], env=full, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize("twin", ["question-answering-online-endpoint.sh",
                                  "fill-mask-online-endpoint.sh"])
def test_local_online_endpoint_twins_answer(twin, tiny_model, tmp_path):
    run_twin(twin, tmp_path, tiny_model, PORT=str(_free_port()))
    answers = json.loads((tmp_path / "out" / "response.json").read_text())
    assert len(answers) == 2
    if twin.startswith("fill-mask"):
        assert all(set(a) == {"0"} for a in answers)
        return
    request = json.loads((CLI / "requests" / "question-answering.json").read_text())
    for answer, context in zip(answers, request["inputs"]["context"]):
        assert set(answer) == {"score", "start", "end", "answer"}
        assert context[answer["start"]:answer["end"]] == answer["answer"]


def twin_outputs(proc: subprocess.CompletedProcess) -> dict:
    """The outputs the runner prints last, as a JSON object."""
    lines = proc.stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line == "{")
    return json.loads("\n".join(lines[start:]))["outputs"]


@pytest.mark.parametrize("scale, nodes", [({"PROCESSES": "2"}, ["[default0]:", "[default1]:"]),
                                          ({"INSTANCES": "2"}, ["[node 0]", "[node 1]"])],
                         ids=["process_count_per_instance=2", "instance_count=2"])
def test_emotion_twin_runs_the_pipeline_yaml_end_to_end_on_two_processes(scale, nodes, tiny_model,
                                                                         tmp_path):
    """`distilbert-catalog run pipelines/emotion-detection.yaml --set process_count_per_instance=2`
    (two torchrun ranks on one node) and `--set instance_count=2` (two simulated nodes of one rank
    each), as the twin runs them: fine-tuned under DDP, every step in order, the card over both
    evaluations, the steps tracked to the caller's store. (The one-process pipeline runs in the
    emotion-detection notebook's test.)"""
    import mlflow

    store = (tmp_path / "mlruns").as_uri()
    proc = run_twin("emotion-detection.sh", tmp_path, tiny_model, EPOCHS="1",
                    LEARNING_RATE="0.003", MLFLOW_TRACKING_URI=store, **scale)
    steps = [line for line in proc.stdout.splitlines() if line.endswith(" ...")]
    assert [s.split(":")[0] for s in steps] == ["[1/4] finetune", "[2/4] evaluate",
                                               "[3/4] evaluate_natural", "[4/4] model_card"]
    outputs = twin_outputs(proc)
    training = json.loads((tmp_path / "out" / "finetune" / "metrics" / "metrics.json").read_text())
    assert training["config"]["world_size"] == 2
    assert all(label in proc.stdout for label in nodes)  # both processes' output, labelled
    assert training["config"]["global_train_batch_size"] == 32  # 16 per device x 2
    assert proc.stdout.count("training: 15 steps") == 1  # 480 rows / 32; printed by rank 0 only
    # then one summary line and one evaluation line for the model kept (not a repeated step line)
    assert proc.stdout.count("  training done after step 15: ") == 1
    assert proc.stdout.count("  evaluation of the best checkpoint checkpoint-15: eval_loss") == 1
    assert proc.stdout.count("fine-tuned model:") == 1
    metrics = json.loads((Path(outputs["evaluation_result"]) / "metrics.json").read_text())
    assert metrics["stage"] == "evaluation" and metrics["n_examples"] == 102
    card = (Path(outputs["model_card"]) / "README.md").read_text()
    assert card.startswith("# distilbert-base-uncased-emotion — text-classification")
    assert "Also evaluated on" in card  # the natural held-out sentences
    runs = mlflow.MlflowClient(tracking_uri=store).search_runs(
        [e.experiment_id for e in mlflow.MlflowClient(tracking_uri=store).search_experiments()],
        filter_string="tags.stage = 'evaluation'")
    assert len(runs) == 2


def ner_checks(outputs: dict, record: dict, card: str) -> None:
    assert set(outputs) == {"model_card", "mlflow_model", "evaluation_result"}
    assert record["task"] == "token-classification"
    assert record["n_examples"] == len((SAMPLES / "conll2003" / "test.jsonl").read_text()
                                       .splitlines())
    assert f"| Entity F1 | {record['metrics']['f1']:.4f} |" in card


def qa_checks(outputs: dict, record: dict, card: str) -> None:
    """fine-tune (quantisation-aware) -> gate -> evaluate -> card, the overrides honoured."""
    assert set(outputs) == {"model_card", "mlflow_model", "evaluation_result"}
    assert (Path(outputs["mlflow_model"]) / "MLmodel").exists()
    assert record["task"] == "question-answering" and record["n_examples"] == 84
    assert record["config"]["max_seq_length"] == 128 and record["config"]["doc_stride"] == 32
    assert "| Max sequence length | 128 |" in card and "| Questions | 84 | 64 | 20 |" in card
    finetune = Path(outputs["mlflow_model"]).parent.parent / "finetune" / "metrics"
    assert json.loads((finetune / "metrics.json").read_text())["config"]["quantization_aware"]


@pytest.mark.parametrize("name, env, checks", [
    # a tenth of an epoch of the 1,848 NER / 1,204 QA training rows: the tiny model is mechanics
    ("named-entity-recognition.sh", {"EPOCHS": "0.1"}, ner_checks),
    ("extractive-qa.sh", {"EPOCHS": "0.1", "MAX_SEQ_LENGTH": "128", "DOC_STRIDE": "32",
                          "QUANTIZATION_AWARE": "true"}, qa_checks),
    ("evaluate-model-question-answering.sh", {"MAX_SEQ_LENGTH": "128", "DOC_STRIDE": "32"}, None),
    ("evaluate-model-fill-mask.sh", {"PSEUDO_PERPLEXITY_SAMPLES": "4"}, None),
])
def test_local_pipeline_twins_run(name, env, checks, tiny_model, tmp_path):
    """Each twin's pipeline with its knobs; the NER and QA twins are also the suite's runs of
    their pipelines' YAML end to end (each step a fresh process)."""
    outputs = twin_outputs(run_twin(name, tmp_path, tiny_model, **env))
    record = json.loads((Path(outputs["evaluation_result"]) / "metrics.json").read_text())
    assert record["stage"] == "evaluation" and record["metrics"]
    card = (Path(outputs["model_card"]) / "README.md").read_text()
    if checks:
        checks(outputs, record, card)
