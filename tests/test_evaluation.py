import json

from distilbert_catalog.metrics_file import REQUIRED


def test_metrics_json_has_the_shared_schema(emotion_eval):
    record, out = emotion_eval
    assert all(key in record for key in REQUIRED)
    assert record["task"] == "text-classification" and record["stage"] == "evaluation"
    assert record["split"] == "test" and record["n_examples"] == 102
    for name in ("accuracy", "f1_macro", "f1_micro", "f1_weighted", "precision_macro",
                 "recall_weighted", "log_loss"):
        assert name in record["metrics"]
    for rel in record["artifacts"].values():
        assert (out / rel).exists()


def test_metrics_agree_with_the_per_row_predictions(emotion_eval):
    record, out = emotion_eval
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 102
    accuracy = sum(r["label"] == r["predicted"] for r in rows) / len(rows)
    assert abs(accuracy - record["metrics"]["accuracy"]) < 1e-9
    # micro-averaged F1 equals accuracy for single-label classification
    assert abs(record["metrics"]["f1_micro"] - accuracy) < 1e-9
    matrix = json.loads((out / "confusion_matrix.json").read_text())
    assert sum(map(sum, matrix["matrix"])) == 102
    assert sum(matrix["matrix"][i][i] for i in range(6)) == sum(
        r["label"] == r["predicted"] for r in rows)
    per_class = record["details"]["per_class"]
    assert sum(c["support"] for c in per_class.values()) == 102


def test_sample_is_a_real_scored_request(emotion_eval):
    _, out = emotion_eval
    sample = json.loads((out / "sample.json").read_text())
    assert len(sample["response"]) == len(sample["request"]["inputs"]["input_string"])
    assert {"label", "score"} <= set(sample["response"][0])
