"""Batch scoring as users run it: `distilbert-catalog batch` in fresh processes, with poisoned rows,
a worker crash, a killed run and error thresholds; plus the scorer's row-level checks in-process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.support import FEAR, JOY, REPO

HERE = Path(__file__).resolve().parent
DEPLOYMENT = REPO / "components/deploy/batch/text_classification/deployment.yaml"
CLI = Path(sys.executable).with_name("distilbert-catalog")
N_FILES, ROWS_PER_FILE, CRASH_FILE = 20, 10, "f04.jsonl"

#: (file, row) -> (raw jsonl line or cell value, the reason its error row must give): 10 of 200 rows
POISON = {
    ("f01.jsonl", 3): ('{"text": ""}', "input_string[3] is empty"),
    ("f03.jsonl", 7): ('{"text": null}', "input_string[7] must be a string; got null"),
    ("f05.jsonl", 0): ('{"text": 42}', "input_string[0] must be a string; got 42"),
    ("f06.jsonl", 9): ('{"label": 1}', "row 9 has no column 'input_string'"),
    ("f08.jsonl", 5): ('{"text": "unterminated', "line 6 is not valid JSON"),
    ("f09.jsonl", 2): ("[1, 2]", "line 3 must be a JSON object"),
    ("f11.jsonl", 4): ('{"text": "   "}', "input_string[4] is empty"),
    ("f13.jsonl", 6): ('{"text": ["a", "list"]}', "input_string[6] must be a string"),
    ("f16.csv", 1): ("", "input_string[1] is empty"),
    ("f18.parquet", 8): (None, "input_string[8] must be a string; got null"),
}


def _texts() -> list[str]:
    from distilbert_catalog.samples import sample_dir

    with open(sample_dir("emotion") / "test.jsonl") as f:
        texts = [json.loads(line)["text"] for line in f]
    return texts + ['i feel "odd", and a little lost\ntoday']  # quotes, comma and newline


def write_inputs(folder: Path) -> dict[tuple[str, int], str]:
    """20 files (jsonl, csv, parquet, txt) of 10 rows, 5% poisoned; returns the good rows' texts."""
    folder.mkdir()
    texts, good, k = _texts(), {}, 0
    for n in range(N_FILES):
        name = f"f{n:02d}." + ("csv" if n in (16, 17) else "parquet" if n == 18
                                else "txt" if n == 19 else "jsonl")
        cells = []
        for row in range(ROWS_PER_FILE):
            if (name, row) in POISON:
                cells.append(POISON[(name, row)][0])
            else:
                text = texts[-1] if name == "f17.csv" and row == 0 else texts[k % (len(texts) - 1)]
                k += 1
                good[(name, row)] = text
                cells.append(text if not name.endswith(".jsonl") else json.dumps({"text": text}))
        path = folder / name
        if name.endswith(".jsonl"):
            path.write_text("\n".join(cells) + "\n")
        elif name.endswith(".csv"):
            pd.DataFrame({"text": cells, "label": 0}).to_csv(path, index=False)
        elif name.endswith(".parquet"):
            pd.DataFrame({"input_string": cells}).to_parquet(path)
        else:
            path.write_text("\n".join(cells) + "\n")
    return good


def make_deployment(tmp_path: Path) -> Path:
    """The shipped text-classification deployment, with the fault-injecting test script."""
    doc = yaml.safe_load(DEPLOYMENT.read_text())
    doc["code_configuration"] = {"code": str(HERE), "scoring_script": "faulty_batch_score.py"}
    doc.update(mini_batch_size=2, max_concurrency_per_instance=2,
               retry_settings={"max_retries": 2, "timeout": 240})
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def batch_cli(model, inputs, out, *args, env=None, **popen):
    argv = [str(CLI), "batch", str(model), str(inputs), "--output-dir", str(out), *map(str, args)]
    # fp32: scores are compared with the fp32 reference predictor's
    child_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                 "DISTILBERT_BACKEND": "fp32", **(env or {})}
    if popen:
        return subprocess.Popen(argv, env=child_env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, **popen)
    return subprocess.run(argv, env=child_env, capture_output=True, text=True, timeout=400)


@pytest.fixture(scope="module")
def predictor(emotion_model):
    from distilbert_catalog.inference import load_predictor

    return load_predictor(emotion_model.mlflow_model_dir, backend="fp32")


@pytest.fixture(scope="module")
def crash_run(emotion_model, tmp_path_factory):
    """One CLI run over the poisoned inputs, two workers, one crashing on its first attempt."""
    tmp = tmp_path_factory.mktemp("batch-crash")
    good = write_inputs(tmp / "inputs")
    deployment = make_deployment(tmp)
    marker = tmp / "crashed.txt"
    result = batch_cli(emotion_model.mlflow_model_dir, tmp / "inputs", tmp / "out",
                       "--deployment", deployment,
                       env={"FAULT_CRASH_ON": CRASH_FILE, "FAULT_MARKER": str(marker)})
    return {"tmp": tmp, "good": good, "deployment": deployment, "marker": marker,
            "result": result, "out": tmp / "out"}



def read_output(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_batch_cli_scores_every_good_row_and_reports_every_bad_one_despite_a_crash(crash_run,
                                                                                   predictor):
    result, out, good = crash_run["result"], crash_run["out"], crash_run["good"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert crash_run["marker"].exists(), "the injected crash did not happen"
    assert "worker process died (exit code 70); retry 1/2" in result.stderr

    frame = read_output(out / "predictions.csv")
    assert list(frame.columns) == ["file", "row", "label", "score", "error"]
    keys = list(zip(frame["file"], frame["row"].astype(int)))
    expected = [(f, r) for f in sorted({k[0] for k in good} | {k[0] for k in POISON})
                for r in range(ROWS_PER_FILE)]
    assert keys == expected  # one row per input row, in input order: no loss, no duplicates

    bad = frame[frame["error"] != ""]
    assert {(f, int(r)): e for f, r, e in zip(bad["file"], bad["row"], bad["error"])}.keys() \
        == POISON.keys()
    for (name, row), (_, reason) in POISON.items():
        line = frame[(frame["file"] == name) & (frame["row"] == str(row))].iloc[0]
        assert reason in line["error"] and line["label"] == "" and line["score"] == ""

    scored = frame[frame["error"] == ""]
    expected_answers = predictor.predict([{"input_string": good[(f, int(r))]}
                                          for f, r in zip(scored["file"], scored["row"])])
    assert scored["label"].tolist() == [a["label"] for a in expected_answers]
    assert scored["score"].astype(float).tolist() == pytest.approx(
        [a["score"] for a in expected_answers], abs=1e-5)

    summary = json.loads((out / "summary.json").read_text())
    assert json.loads(result.stdout) == summary
    assert {k: summary[k] for k in ("status", "files", "rows", "succeeded", "failed",
                                    "mini_batches", "retries", "failed_mini_batches")} == {
        "status": "succeeded", "files": 20, "rows": 200, "succeeded": 190, "failed": 10,
        "mini_batches": 10, "retries": 1, "failed_mini_batches": 0}


def test_batch_cli_exit_status_follows_the_error_threshold(crash_run, emotion_model, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(crash_run["out"], out)
    clean = (out / "predictions.csv").read_bytes()
    inputs, model = crash_run["tmp"] / "inputs", emotion_model.mlflow_model_dir
    args = ("--deployment", crash_run["deployment"])

    strict = batch_cli(model, inputs, out, *args, "--error-threshold", 9)  # 10 rows failed
    assert strict.returncode == 1, strict.stderr[-2000:]
    summary = json.loads(strict.stdout)
    assert summary["status"] == "failed" and summary["resumed_mini_batches"] == 10
    assert "10 failed row(s) exceed error_threshold=9" in strict.stderr
    assert not (out / "predictions.csv").exists()  # a failed run leaves no output that looks whole

    lenient = batch_cli(model, inputs, out, *args, "--error-threshold", 10)
    assert lenient.returncode == 0, lenient.stderr[-2000:]
    assert json.loads(lenient.stdout)["status"] == "succeeded"
    assert (out / "predictions.csv").read_bytes() == clean


def test_batch_cli_killed_midway_then_rerun_gives_the_clean_output(crash_run, emotion_model,
                                                                   tmp_path):
    inputs, model = crash_run["tmp"] / "inputs", emotion_model.mlflow_model_dir
    args = ("--deployment", crash_run["deployment"], "--max-concurrency", 1, "--no-progress")
    out = tmp_path / "out"
    process = batch_cli(model, inputs, out, *args, env={"FAULT_DELAY": "1"},
                        start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while len(list((out / ".parts").glob("*.csv"))) < 2:
            assert process.poll() is None, process.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no mini-batch finished in time"
            time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the runner and its workers, mid-way
        process.communicate()
    committed = len(list((out / ".parts").glob("*.csv")))
    assert 2 <= committed < 10 and not (out / "predictions.csv").exists()

    rerun = batch_cli(model, inputs, out, *args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    summary = json.loads(rerun.stdout)
    assert summary["resumed_mini_batches"] >= committed and summary["rows"] == 200
    # the same rows, labels and errors as the crash run's clean output; scores equal up to float
    # rounding: that run had two workers on one thread each, this one one worker on two threads
    resumed, clean = (read_output(path / "predictions.csv") for path in (out, crash_run["out"]))
    assert resumed.drop(columns="score").equals(clean.drop(columns="score"))
    assert (resumed["score"] == "").equals(clean["score"] == "")
    scored = resumed["score"] != ""
    assert resumed["score"][scored].astype(float).tolist() == pytest.approx(
        clean["score"][scored].astype(float).tolist(), abs=1e-6)


def test_scorer_keeps_one_row_per_input_row_whatever_the_file(predictor, tmp_path):
    from distilbert_catalog.serving.batch import BatchScorer

    (tmp_path / "a.json").write_text(json.dumps([{"text": JOY}, {"inputs": FEAR}, "x"]))
    (tmp_path / "b.txt").write_text(f"{FEAR}\n\n{JOY}\n")
    (tmp_path / "c.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "d.xml").write_text("<rows/>")
    (tmp_path / "e.csv").write_text("label\n1\n2\n")
    paths = [str(tmp_path / n) for n in ("a.json", "b.txt", "c.parquet", "d.xml", "e.csv")]

    frame = BatchScorer(predictor)(paths)
    assert list(frame.columns) == ["file", "row", "label", "score", "error"]
    assert str(frame["row"].dtype) == "Int64"  # written as 3, not 3.0; empty for a whole file
    assert [(f, None if pd.isna(r) else int(r)) for f, r in zip(frame["file"], frame["row"])] == [
        ("a.json", 0), ("a.json", 1), ("a.json", 2), ("b.txt", 0), ("b.txt", 1),
        ("c.parquet", None), ("d.xml", None), ("e.csv", 0), ("e.csv", 1)]
    direct = [a["label"] for a in predictor.predict([{"input_string": JOY},
                                                      {"input_string": FEAR}])]
    assert frame["label"].tolist()[:2] == direct and frame["label"].tolist()[3:5] == direct[::-1]
    errors = frame["error"].tolist()
    assert pd.isna(errors[0]) and pd.isna(errors[1]) and pd.isna(errors[3])
    assert "item 2 must be a JSON object" in errors[2]
    assert errors[5].startswith("file not scored: cannot read .parquet file")
    assert "unsupported file type '.xml'" in errors[6]
    assert "row 1 has no column 'input_string'" in errors[8]

    # all rows bad: the same columns, so every mini-batch appends alike; params reach the task
    ranked = BatchScorer(predictor, {"top_k": 2})
    assert list(ranked([paths[4]]).columns) == ["file", "row", "predictions", "error"]
    top2 = ranked([paths[1]])["predictions"].map(json.loads).tolist()
    assert [len(r) for r in top2] == [2, 2] and top2[0][0]["label"] == direct[1]
