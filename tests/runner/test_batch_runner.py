"""The local batch endpoint's parallel-run semantics, with small scoring scripts (no model)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from distilbert_catalog.runner.batch import (
    BatchRunError,
    BatchSettings,
    BatchThresholdExceeded,
    load_batch_deployment_file,
    run_batch,
)
from tests.support import REPO

# Records calls in AZUREML_BI_OUTPUT_PATH/calls.txt. Faults, each once (a marker file per fault):
# a file named crash* kills the worker; slow* sleeps past any test timeout; bad* always raises.
DRIVER = textwrap.dedent("""\
    import os, time
    import pandas as pd

    def log(line):
        with open(os.path.join(os.environ["AZUREML_BI_OUTPUT_PATH"], "calls.txt"), "a") as f:
            f.write(line + "\\n")

    def once(name):
        marker = os.path.join(os.environ["AZUREML_BI_OUTPUT_PATH"], name + ".done")
        if os.path.exists(marker):
            return False
        open(marker, "w").close()
        return True

    def init():
        global PREFIX
        with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights.txt")) as f:
            PREFIX = f.read().strip()
        log("init")

    def run(mini_batch):
        names = [os.path.basename(p) for p in mini_batch]
        log("run " + " ".join(names))
        for name in names:
            if name.startswith("crash") and once(name):
                os._exit(9)
            if name.startswith("slow") and once(name):
                time.sleep(60)
            if name.startswith("bad"):
                raise ValueError(f"cannot score {name}")
        return pd.DataFrame([{"file": n, "row": 0, "label": f"{PREFIX}-{len(open(p).read())}",
                              "error": None} for n, p in zip(names, mini_batch)])

    def shutdown():
        log("shutdown")
    """)


@pytest.fixture()
def setup(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("m1\n")
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    return script, model, inputs


def write_files(folder, names):
    for i, name in enumerate(names):
        (folder / name).write_text("x" * (i + 1))


def calls(out):
    return (out / "calls.txt").read_text().splitlines()


def test_mini_batches_in_order_init_once_shutdown_and_a_rerun_resumes(setup, tmp_path):
    script, model, inputs = setup
    write_files(inputs, [f"doc{i}.txt" for i in range(5)])
    out = tmp_path / "out"
    path_before, env_before = list(sys.path), os.environ.get("AZUREML_MODEL_DIR")

    output, summary = run_batch(script, model, inputs, out, mini_batch_size=2, progress=False)

    assert output == out.resolve() / "predictions.csv"
    assert calls(out) == ["init", "run doc0.txt doc1.txt", "run doc2.txt doc3.txt",
                          "run doc4.txt", "shutdown"]
    frame = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert frame.values.tolist() == [[f"doc{i}.txt", "0", f"m1-{i + 1}", ""] for i in range(5)]
    assert output.read_text().splitlines()[0] == "file,row,label,error"
    assert summary == json.loads((out / "summary.json").read_text())
    assert {k: summary[k] for k in ("status", "files", "rows", "succeeded", "failed",
                                    "mini_batches", "retries", "resumed_mini_batches")} == {
        "status": "succeeded", "files": 5, "rows": 5, "succeeded": 5, "failed": 0,
        "mini_batches": 3, "retries": 0, "resumed_mini_batches": 0}
    assert sys.path == path_before and os.environ.get("AZUREML_MODEL_DIR") == env_before

    # a rerun skips every committed mini-batch (no worker starts); an edited file is rescored
    clean = output.read_bytes()
    _, again = run_batch(script, model, inputs, out, mini_batch_size=2, progress=False)
    assert again["resumed_mini_batches"] == 3 and len(calls(out)) == 5
    assert output.read_bytes() == clean
    (inputs / "doc2.txt").write_text("yyyyyyy")
    _, edited = run_batch(script, model, inputs, out, mini_batch_size=2, progress=False)
    assert edited["resumed_mini_batches"] == 2 and calls(out)[5:] == [
        "init", "run doc2.txt doc3.txt", "shutdown"]
    assert pd.read_csv(output)["label"].tolist()[2] == "m1-7"
    assert len(list((out / ".parts").glob("*.csv"))) == 3  # the stale part is gone


def test_a_crash_and_a_timeout_are_retried_without_duplicates(setup, tmp_path):
    script, model, inputs = setup
    write_files(inputs, ["a.txt", "crash.txt", "m.txt", "slow.txt", "z.txt"])
    out = tmp_path / "out"
    output, summary = run_batch(script, model, inputs, out, mini_batch_size=1,
                                max_concurrency_per_instance=2, timeout=4, max_retries=1,
                                progress=False)
    frame = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert frame["file"].tolist() == ["a.txt", "crash.txt", "m.txt", "slow.txt", "z.txt"]
    assert (frame["error"] == "").all()
    assert summary["retries"] == 2 and summary["rows"] == 5 and summary["failed"] == 0
    runs = [c for c in calls(out) if c.startswith("run")]
    assert runs.count("run crash.txt") == 2 and runs.count("run slow.txt") == 2
    assert calls(out).count("init") >= 3  # two workers, plus one for each replaced worker


def test_a_mini_batch_failing_every_try_gives_error_rows_and_counts_against_the_threshold(
        setup, tmp_path):
    script, model, inputs = setup
    write_files(inputs, ["bad.txt", "doc0.txt", "doc1.txt", "doc2.txt"])
    out = tmp_path / "tolerant"
    output, summary = run_batch(script, model, inputs, out, mini_batch_size=2, max_retries=1,
                                progress=False)
    frame = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert frame[["file", "row"]].values.tolist() == [["bad.txt", ""], ["doc0.txt", ""],
                                                      ["doc1.txt", "0"], ["doc2.txt", "0"]]
    reason = "mini-batch failed after 2 attempt(s): ValueError: cannot score bad.txt (at driver.py:"
    assert [e.startswith(reason) for e in frame["error"]] == [True, True, False, False]
    assert {k: summary[k] for k in ("failed", "succeeded", "retries", "failed_mini_batches")} \
        == {"failed": 2, "succeeded": 2, "retries": 1, "failed_mini_batches": 1}

    strict = tmp_path / "strict"
    with pytest.raises(BatchThresholdExceeded, match="2 failed row.* exceed error_threshold=1"):
        run_batch(script, model, inputs, strict, mini_batch_size=2, max_retries=0,
                  error_threshold=1, max_concurrency_per_instance=1, progress=False)
    summary = json.loads((strict / "summary.json").read_text())
    assert summary["status"] == "failed" and not (strict / "predictions.csv").exists()


def test_list_results_and_script_errors(setup, tmp_path):
    script, model, inputs = setup
    write_files(inputs, ["a.txt", "b.txt"])
    lister = tmp_path / "lister.py"
    lister.write_text("import os\ndef init():\n    pass\n\ndef run(mini_batch):\n"
                      "    return [os.path.basename(p) + ',ok' for p in mini_batch]\n")
    output, _ = run_batch(lister, model, inputs, tmp_path / "list", progress=False)
    assert pd.read_csv(output)["result"].tolist() == ["a.txt,ok", "b.txt,ok"]

    wrong = tmp_path / "wrong.py"
    wrong.write_text("def init():\n    pass\n\ndef run(mini_batch):\n    return {'n': 1}\n")
    with pytest.raises(BatchRunError, match="must return a pandas DataFrame or a list"):
        run_batch(wrong, model, inputs, tmp_path / "wrong", progress=False)

    broken = tmp_path / "broken.py"
    broken.write_text("def init():\n    raise RuntimeError('weights are corrupt')\n\n"
                      "def run(mini_batch):\n    return []\n")
    with pytest.raises(BatchRunError, match="(?s)init\\(\\) of broken.py failed.*weights are corrupt"):
        run_batch(broken, model, inputs, tmp_path / "broken", progress=False)


def test_argument_errors(setup, tmp_path):
    script, model, inputs = setup
    with pytest.raises(BatchRunError, match="not found"):
        run_batch(script, model, tmp_path / "missing", tmp_path / "out")
    with pytest.raises(BatchRunError, match="no input files"):
        run_batch(script, model, inputs, tmp_path / "out")
    for bad, match in ((dict(mini_batch_size=0), "mini_batch_size"),
                       (dict(output_file_name="../escape.csv"), "plain file name"),
                       (dict(error_threshold=-2), "error_threshold"),
                       (dict(timeout=0), "timeout"),
                       (dict(mini_batch_sise=2), "unknown batch settings")):
        with pytest.raises(BatchRunError, match=match):
            run_batch(script, model, script, tmp_path / "out", **bad)


def test_settings_come_from_the_deployment_yaml():
    deployment = load_batch_deployment_file(
        REPO / "components/deploy/batch/question_answering/deployment.yaml")
    assert deployment.settings == BatchSettings(
        mini_batch_size=5, max_concurrency_per_instance=2, max_retries=3, timeout=600,
        error_threshold=-1, output_file_name="predictions.csv",
        environment_variables={"DISTILBERT_PARAMS": "{}", "DISTILBERT_BACKEND": "auto",
                               "DISTILBERT_BATCH_SIZE": "32"})
    assert deployment.scoring_script == REPO / "sdk/distilbert_catalog/serving/batch_score.py"
    assert deployment.code_dir == REPO / "sdk"
    with pytest.raises(BatchRunError, match="not a valid batch deployment"):
        load_batch_deployment_file(REPO / "components/deploy/batch/question_answering/endpoint.yaml")


@pytest.mark.parametrize("task", ["text-classification", "question-answering",
                                  "token-classification", "fill-mask"])
def test_sdk_builds_the_azure_objects_from_the_same_yaml_the_runner_reads(task):
    from azure.ai.ml.entities import BatchEndpoint, ModelBatchDeployment

    import distilbert_catalog.api as api

    folder = api.batch_deployment_dir(task)
    endpoint = api.batch_endpoint(task)
    deployment = api.batch_deployment(task, model="azureml:my-model:3", mini_batch_size=4)
    assert isinstance(endpoint, BatchEndpoint) and isinstance(deployment, ModelBatchDeployment)
    assert deployment.endpoint_name == endpoint.name and deployment.model == "my-model:3"  # azure-ai-ml drops the azureml: prefix
    local = load_batch_deployment_file(folder / "deployment.yaml").settings
    settings = deployment.settings
    assert (settings.mini_batch_size, settings.max_concurrency_per_instance,
            settings.retry_settings.max_retries, settings.retry_settings.timeout,
            settings.error_threshold, settings.output_file_name, settings.output_action,
            settings.environment_variables) == (
        4, local.max_concurrency_per_instance, local.max_retries, local.timeout,
        local.error_threshold, local.output_file_name, "append_row", local.environment_variables)
    script = Path(deployment.base_path) / deployment.code_configuration.code / \
        deployment.code_configuration.scoring_script
    assert script.resolve() == REPO / "sdk/distilbert_catalog/serving/batch_score.py"


def test_sdk_names_the_tasks_it_has_deployments_for():
    import distilbert_catalog.api as api

    with pytest.raises(ValueError, match="available: \\['fill-mask', 'question-answering', "
                                         "'text-classification', 'text-pair-classification', "
                                         "'token-classification'\\]"):
        api.batch_deployment("summarization")
