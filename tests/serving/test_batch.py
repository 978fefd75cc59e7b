import pandas as pd

from distilbert_catalog.runner.endpoints import run_batch
from distilbert_catalog.serving import batch_score
from tests.conftest import FEAR, JOY

BATCH_SCRIPT = batch_score.__file__


def test_batch_endpoint_scores_every_row_of_every_file(emotion_model, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "a.jsonl").write_text(f'{{"text": "{JOY}"}}\n{{"text": "{FEAR}"}}\n')
    pd.DataFrame({"input_string": ["i feel gloomy and miserable"]}).to_csv(inputs / "b.csv",
                                                                          index=False)
    (inputs / "c.txt").write_text("i feel delighted\n\ni am furious and irritated\n")
    path, summary = run_batch(BATCH_SCRIPT, emotion_model.mlflow_model_dir, inputs,
                              tmp_path / "out", mini_batch_size=2, dataframe_header=True)
    assert summary["files"] == 3 and summary["mini_batches"] == 2 and summary["rows"] == 5
    assert not summary["failed_files"]
    frame = pd.read_csv(path, sep=" ")
    assert list(frame.columns) == ["file", "row", "label", "score"]
    assert frame.groupby("file").size().to_dict() == {"a.jsonl": 2, "b.csv": 1, "c.txt": 2}
    assert frame.loc[frame.file == "a.jsonl", "label"].tolist() == ["joy", "fear"]
