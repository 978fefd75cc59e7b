"""The five model assets: Azure ML model YAML (azure-ai-ml's loader), catalog metadata, facts."""

import shutil

import pytest
import yaml

from distilbert_catalog.model_assets import (MODELS, STAGES, cards_root, check_asset, family,
                                             load_asset, parse_sku_spec, skus)


@pytest.mark.parametrize("name", MODELS)
def test_asset_loads_with_azure_ai_ml_and_meets_the_schema(name):
    from azure.ai.ml.entities import Model

    asset = load_asset(name)
    assert isinstance(asset.model, Model) and asset.model.type == "mlflow_model"
    assert asset.model.name == name and asset.tags["license"] == "apache-2.0"
    assert asset.tags["huggingface_model_id"] == f"distilbert/{name}"
    assert check_asset(asset, skus()) == []
    for stage in STAGES:
        assert set(asset.recommended(stage)) <= set(asset.allowed(stage))


def test_sku_spec_format():
    assert parse_sku_spec("4|0|14|28") == (4, 0, 14, 28)
    for bad in ("4|0|14", "4 vCPU|0|14|28", "4|0|14|28|1", "", "4,0,14,28"):
        with pytest.raises(ValueError, match="vCPU\\|GPU\\|RAM GB\\|disk GB"):
            parse_sku_spec(bad)


def test_sku_table_matches_published_sizes():
    table = skus()
    assert table["Standard_DS3_v2"] == (4, 0, 14, 28)
    assert table["Standard_NC6s_v3"] == (6, 1, 112, 736)


def _broken_copy(tmp_path, name, edit):
    root = tmp_path / "model_cards"
    shutil.copytree(cards_root(), root, ignore=shutil.ignore_patterns("mlflow_model_folder"))
    path = root / name / "model.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data))
    return load_asset(name, root)


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["properties"].update({"inference-min-sku-spec": "2 cores"}),
     "inference-min-sku-spec: SKU spec '2 cores'"),
    (lambda d: d["properties"].update({"evaluation-recommended-sku": "Standard_ND40rs_v2"}),
     "evaluation recommends Standard_ND40rs_v2, which its allow list lacks"),
    (lambda d: d["tags"]["finetune_compute_allow_list"].append("Standard_DS2_v2"),
     "finetune allows Standard_DS2_v2 below its minimum spec (vCPU 2 < 6, RAM GB 7 < 28"),
    (lambda d: d["tags"].pop("languages"), "tags lack 'languages'"),
    (lambda d: d["properties"].pop("finetuning-tasks"), "properties lack 'finetuning-tasks'"),
    (lambda d: d["tags"].update({"task": "token-classification"}),
     "task 'token-classification' is not among its inference-tasks"),
])
def test_schema_check_names_each_problem(tmp_path, edit, expected):
    asset = _broken_copy(tmp_path, "distilbert-base-uncased", edit)
    problems = check_asset(asset, skus())
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_is_the_architectures(name):
    import torch
    from transformers import DistilBertConfig, DistilBertModel

    arch = load_asset(name).facts["architecture"]
    config = DistilBertConfig(vocab_size=arch["vocab_size"], n_layers=arch["layers"],
                              dim=arch["hidden_size"], n_heads=arch["attention_heads"])
    with torch.device("meta"):
        model = DistilBertModel(config)
    assert model.num_parameters() == load_asset(name).facts["parameters"]


def test_published_facts_and_sources():
    facts = {name: " ".join(f["fact"] for f in load_asset(name).facts["published"])
             for name in MODELS}
    shared = " ".join(f["fact"] for f in family()["published"])
    assert "40% smaller" in shared and "60% faster" in shared and "97%" in shared
    assert "66M parameters" in facts["distilbert-base-uncased"]
    assert "F1 86.9 on the SQuAD v1.1 dev set" in facts["distilbert-base-uncased-distilled-squad"]
    assert "F1 87.1 on the SQuAD v1.1 dev set" in facts["distilbert-base-cased-distilled-squad"]
    assert "104 languages" in facts["distilbert-base-multilingual-cased"]
    assert family()["license"] == "Apache-2.0"
    for name in MODELS:
        sources = {**family()["sources"], **load_asset(name).facts["sources"]}
        assert all(s.startswith("https://") for s in sources.values())
