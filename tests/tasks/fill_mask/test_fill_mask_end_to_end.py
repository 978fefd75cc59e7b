"""Fill-mask as users run it: a base checkpoint packaged with the CLI, served by the real
azmlinfsrv, scored by the batch CLI, evaluated by the pipeline with its card; and the pretrained
offline DistilBERT against a unigram-frequency baseline on the bundled sample."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.support import REPO

CLI = Path(sys.executable).with_name("distilbert-catalog")
SEED = {"inputs": {"input_string": ["Paris is the [MASK] of France.", "Today is a [MASK] day!"]}}


@pytest.fixture(scope="module")
def fill_mask_mlflow(biased_fill_mask_model, tmp_path_factory) -> Path:
    """A tiny base checkpoint (a DistilBertForMaskedLM folder) packaged by the CLI: the one whose
    head ranks every special token above every word, so every answer served or batch-scored
    here also shows that no special token is ever offered."""
    out = tmp_path_factory.mktemp("fm-package") / "mlflow"
    done = subprocess.run([str(CLI), "package", str(biased_fill_mask_model), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(out)
    return out


@pytest.fixture(scope="module")
def reference(biased_fill_mask_model):
    from distilbert_catalog.inference import load_predictor

    return load_predictor(biased_fill_mask_model, backend="fp32")


def test_base_checkpoint_packages_as_a_fill_mask_mlflow_model(fill_mask_mlflow, reference):
    import mlflow.pyfunc

    mlmodel = yaml.safe_load((fill_mask_mlflow / "MLmodel").read_text())
    assert mlmodel["metadata"]["task"] == "fill-mask"
    params = {p["name"]: p["default"] for p in json.loads(mlmodel["signature"]["params"])}
    assert params == {"top_k": 1, "return_scores": False}
    model = mlflow.pyfunc.load_model(str(fill_mask_mlflow))
    frame = pd.DataFrame(SEED["inputs"])
    top1 = model.predict(frame)
    assert list(top1.columns) == ["0"]
    rows = frame.to_dict("records")
    expected = reference.predict(rows, {"top_k": 3})
    assert model.predict(frame, params={"top_k": 3}).to_dict("records") == expected
    assert top1.to_dict("records") == [{"0": e["0"]} for e in expected]


def test_package_refuses_an_mlflow_model(fill_mask_mlflow, tmp_path):
    done = subprocess.run([str(CLI), "package", str(fill_mask_mlflow), str(tmp_path / "again")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "already an MLflow model" in done.stderr


# --------------------------------------------------------------------------- online

@pytest.fixture(scope="module")
def server(fill_mask_mlflow):
    from distilbert_catalog.serving import SCORE_SCRIPT
    from distilbert_catalog.runner.endpoints import serve

    with serve(SCORE_SCRIPT, fill_mask_mlflow) as running:
        yield running


def test_seed_request_answers_in_the_catalog_shape(server, reference):
    status, body = server.invoke(SEED)
    assert status == 200, body
    assert isinstance(body, list) and len(body) == 2
    assert all(list(answer) == ["0"] and isinstance(answer["0"], str) for answer in body)
    assert body == reference.predict([{"input_string": t} for t in SEED["inputs"]
                                      ["input_string"]], {"top_k": 1})


def test_input_data_pandas_split_params_and_several_masks(server):
    split = {"input_data": {"columns": ["input_string"], "index": [0, 1],
                            "data": [["The <mask> flows into the [mask] sea."],
                                     ["Paris is the [MASK] of France."]]},
             "params": {"top_k": 2, "return_scores": True}}
    status, body = server.invoke(split)
    assert status == 200, body
    several, one = body
    assert list(several) == ["0", "1"] and len(several["0"]) == 2
    assert set(one["0"]) == {"token_str", "score", "token"}
    assert one["0"]["score"] >= one["1"]["score"]
    status, same = server.invoke({"input_data": ["Paris is the <mask> of France."]})
    assert status == 200 and same[0]["0"] == one["0"]["token_str"]


def test_a_served_model_never_answers_a_special_token(server, biased_fill_mask_model):
    """The served head ranks [CLS] first and every special token above every word; the answers
    are words only, the model's best words, for one mask and for several. (The exact order
    against an fp32 reference is tested in tests/tasks/test_fill_mask.py; this server runs
    ``auto``, whose backend may swap near-tied words.)"""
    from transformers import pipeline

    texts = ["Paris is the [MASK] of France.", "The <mask> flows into the [mask] sea."]
    reference = pipeline("fill-mask", model=str(biased_fill_mask_model), device="cpu")
    unfiltered = [reference(t.replace("<mask>", "[MASK]").replace("[mask]", "[MASK]"), top_k=14)
                  for t in texts]
    special = {"[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", "[ENT]"}
    assert unfiltered[0][0]["token_str"] == "[CLS]"  # the premise: unfiltered, [CLS] wins
    assert [e["token_str"] for e in unfiltered[1][1][:6]] == \
        ["[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", "[ENT]"]

    def best_words(ranked):  # the model's best 8 words: served top-5 lie among them
        return {e["token_str"].removeprefix("##") for e in ranked
                if e["token_str"] not in special}
    status, body = server.invoke({"inputs": {"input_string": texts}, "params": {"top_k": 5}})
    assert status == 200, body
    one, several = body
    assert len(one) == len(several) == 5
    assert {one[str(r)] for r in range(5)} <= best_words(unfiltered[0])
    for m, mask in enumerate(unfiltered[1]):
        assert {several[str(r)][m] for r in range(5)} <= best_words(mask)


@pytest.mark.parametrize("payload, message", [
    ({"inputs": {"input_string": ["Paris is the capital."]}}, "input_string[0] has no mask"),
    ({"inputs": {"input_string": ["a [MASK]", ""]}}, "input_string[1] is empty"),
    ({"inputs": {"input_string": ["a [MASK]", None]}}, "input_string[1] must be a string"),
    ({"inputs": {"input_string": ["[MASK] " * 600]}}, "input_string[0] has 600 masks"),
    ({"inputs": {"input_string": ["a [MASK]"]}, "params": {"top_k": 0}}, "top_k"),
    ({"inputs": {"input_string": ["a [MASK]"]}, "params": {"targets": "x"}}, "unknown params"),
    ({"inputs": {"question": ["a [MASK]"]}}, "input_string"),
    ("not json", "not valid JSON"),
])
def test_malformed_requests_get_400_never_500(server, payload, message):
    status, body = server.invoke(payload)
    assert status == 400, body
    assert message in body["error"]


# --------------------------------------------------------------------------- batch

def test_batch_endpoint_gives_one_output_per_input_row(fill_mask_mlflow, tmp_path, reference):
    inputs = tmp_path / "in"
    inputs.mkdir()
    texts = ["Paris is the [MASK] of France.", "The <mask> flows into the [mask] sea.",
             "no mask at all", "Today is a [MASK] day!"]
    (inputs / "a.jsonl").write_text("".join(json.dumps({"input_string": t}) + "\n"
                                            for t in texts))
    out = tmp_path / "out"
    done = subprocess.run(
        [str(CLI), "batch", str(fill_mask_mlflow), str(inputs), "--output-dir", str(out),
         "--deployment", str(REPO / "components/deploy/batch/fill_mask/deployment.yaml"),
         "--no-progress"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    table = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert list(table["row"]) == [0, 1, 2, 3]
    expected = reference.predict([{"input_string": t} for i, t in enumerate(texts) if i != 2], {})
    assert table.loc[0, "0"] == expected[0]["0"] and table.loc[3, "0"] == expected[2]["0"]
    assert json.loads(table.loc[1, "0"]) == expected[1]["0"]  # one word per mask
    assert "input_string[2] has no mask" in table.loc[2, "error"]
    assert list(table["error"][[0, 1, 3]]) == ["", "", ""]


# --------------------------------------------------------------------------- pipeline + card

# (the fill-mask evaluation pipeline and its card: tests/test_wheel.py, from an installed wheel)


# --------------------------------------------------------------------------- quality

def unigram_top5(texts: list[str]) -> list[str]:
    counts = Counter(word for text in texts for word in text.lower().replace(".", " ")
                     .replace(",", " ").split())
    return [word for word, _ in counts.most_common(5)]


def test_pretrained_model_beats_a_unigram_frequency_baseline(pretrained_model, tmp_path):
    """Top-5 accuracy on the bundled test split, against the 5 most frequent words guessed for
    every mask: frequencies from the validation split's text, and (an oracle no model could
    know) from the test split's own masked words."""
    import distilbert_catalog as dc
    from distilbert_catalog.samples import sample_dir
    from distilbert_catalog.tasks.fill_mask.masks import fill_masks

    folder = sample_dir("wikipedia_mask_filling")
    rows = {split: [json.loads(line) for line in (folder / f"{split}.jsonl").read_text()
                    .splitlines()] for split in ("validation", "test")}
    record = dc.evaluate("fill-mask", output_dir=tmp_path / "eval",
                         model_name=str(pretrained_model), test_data=str(folder),
                         pseudo_perplexity_samples=50)
    truths = [w.lower() for row in rows["test"] for w in row["masks"]]
    guesses = {
        "validation_text": unigram_top5([fill_masks(r["texts"], r["masks"])
                                         for r in rows["validation"]]),
        "test_masks_oracle": [w for w, _ in Counter(truths).most_common(5)],
    }
    baselines = {name: sum(t in top for t in truths) / len(truths)
                 for name, top in guesses.items()}
    model = record["metrics"]["top5_accuracy_uncased"]
    figures = {"model_top5_uncased": model, **baselines, "metrics": record["metrics"]}
    assert model >= 2 * max(baselines.values()) and model - max(baselines.values()) >= 0.15, \
        figures
    print(json.dumps(figures, indent=1))
