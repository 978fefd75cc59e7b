import json
import shutil

import jinja2
import pytest

from distilbert_catalog.cards import default_template_dir, write_card
from distilbert_catalog.quickstart import TINY_OVERRIDES


def test_card_renders_measured_numbers(emotion_model, emotion_eval, tmp_path):
    record, eval_dir = emotion_eval
    card = write_card(tmp_path / "card", evaluation_dir=eval_dir,
                      training_dir=emotion_model.metrics_dir, model_name="tiny-emotion")
    text = card.read_text()
    assert text.startswith("# tiny-emotion — text-classification")
    assert f"| Accuracy | {record['metrics']['accuracy']:.4f} |" in text
    assert f"| Learning rate | {TINY_OVERRIDES['learning_rate']} |" in text
    assert "| sadness |" in text and "| surprise |" in text
    assert "![Confusion matrix](confusion_matrix.png)" in text
    assert (tmp_path / "card" / "confusion_matrix.png").stat().st_size > 1000
    assert '"input_string"' in text  # the sample request and its real response
    assert "None" not in text and "{{" not in text


def test_a_missing_metric_is_an_error_not_a_blank(emotion_eval, tmp_path):
    _, eval_dir = emotion_eval
    broken = tmp_path / "eval"
    shutil.copytree(eval_dir, broken)
    record = json.loads((broken / "metrics.json").read_text())
    del record["metrics"]["f1_macro"]
    (broken / "metrics.json").write_text(json.dumps(record))
    with pytest.raises(jinja2.UndefinedError, match="f1_macro"):
        write_card(tmp_path / "card", evaluation_dir=broken)


def test_catalog_template_is_found():
    assert (default_template_dir() / "metadata.yaml").exists()
