import json

import pandas as pd
import pytest

from distilbert_catalog.data import load_data
from distilbert_catalog.errors import DataError
from distilbert_catalog.tasks import get_task

TC = get_task("text-classification")
LABELS = ["sadness", "joy"]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_loads_jsonl_csv_parquet_and_folders(tmp_path):
    rows = [{"text": "i feel sad", "label": 0}, {"text": "i feel joy", "label": 1}]
    write_jsonl(tmp_path / "a.jsonl", rows)
    pd.DataFrame(rows).to_csv(tmp_path / "b.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "c.parquet")
    for name in ("a.jsonl", "b.csv", "c.parquet"):
        data = load_data(tmp_path / name)
        assert list(data.dataset["text"]) == ["i feel sad", "i feel joy"]
    folder = load_data(tmp_path)  # a uri_folder of mixed files: all rows, provenance kept
    assert len(folder) == 6
    assert folder.locate(3) == (str(tmp_path / "b.csv"), 2)


def test_folder_picks_split_files(emotion_dir):
    assert len(load_data(emotion_dir, split="train")) == 480
    assert len(load_data(emotion_dir, split="validation")) == 60
    assert len(load_data(emotion_dir, split="test")) == 102


def test_unreachable_hub_name_says_what_to_do():
    with pytest.raises(DataError, match="not a local file or folder"):
        load_data("no-such-org/no-such-dataset", split="train")


def test_empty_dataset_is_rejected(tmp_path):
    (tmp_path / "empty.csv").write_text("text,label\n")
    with pytest.raises(DataError, match="empty"):
        load_data(tmp_path / "empty.csv")


@pytest.mark.parametrize("bad_row, column, message", [
    ({"text": None, "label": 0}, "text", "non-empty string"),
    ({"text": "   ", "label": 0}, "text", "non-empty string"),
    ({"text": "fine", "label": 7}, "label", "label id in 0..1"),
    ({"text": "fine", "label": "rage"}, "label", "one of the label names"),
    ({"text": "fine", "label": None}, "label", "label"),
])
def test_bad_rows_name_file_row_and_column(tmp_path, bad_row, column, message):
    path = write_jsonl(tmp_path / "train.jsonl",
                       [{"text": "ok", "label": 0}, {"text": "ok too", "label": 1}, bad_row])
    with pytest.raises(DataError) as err:
        TC.prepare_data(load_data(path), {}, LABELS)
    text = str(err.value)
    assert f"file {path}" in text and "row 3" in text and f"column '{column}'" in text
    assert message in text


def test_missing_column_and_column_mapping(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"sentence": "i feel sad", "emotion": "sadness"}])
    with pytest.raises(DataError, match="missing column 'text'"):
        TC.prepare_data(load_data(path), {}, None)
    data = TC.prepare_data(load_data(path), {"text_key": "sentence", "label_key": "emotion"},
                           None)
    assert data.dataset.column_names == ["text", "label"]
    assert TC.label_names(data, None) == ["sadness"]
