"""Training the masked-LM weights the pretrained offline DistilBERT ships (mlm_head)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from distilbert_catalog import mlm_head, pretrained
from tests.support import SENTENCES


def test_length_grouped_batches_cover_every_text_once_with_little_padding():
    lengths = [(i * 37) % 101 + 1 for i in range(1000)]
    batches = mlm_head.length_grouped_batches(lengths, batch_size=8, seed=0, group=5)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert all(1 <= len(b) <= 8 for b in batches)
    for begin in range(0, 1000, 40):  # each group of 5 batches holds its own 40 texts
        group = [b for b in batches if begin <= b[0] < begin + 40]
        assert sorted(i for b in group for i in b) == list(range(begin, begin + 40))
    padded = sum(8 * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.5 * sum(lengths)  # unsorted batches of 8 pad to 1.86x here
    assert batches == mlm_head.length_grouped_batches(lengths, batch_size=8, seed=0, group=5)


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
    assert mlm_head.wordnet_texts(tmp_path) == [
        "Japan is a constitutional monarchy occupying the Japanese Archipelago.",
        "Japan exports many cars.",
        "Tokyo is the capital and largest city of Japan.",
        "To travel is to change location.",
        "She travelled to Rome last year.",
        "(usually followed by `to') having the necessary means or skill"]


def test_head_training_text_excludes_fill_mask_evaluation_data():
    texts = mlm_head.head_training_texts()
    assert len(texts) == len(set(texts)) > 1000
    assert not any("<mask>" in t for t in texts)


def test_training_masks_only_whole_one_token_words_and_always_as_mask(minilm_source):
    tokenizer = AutoTokenizer.from_pretrained(minilm_source)
    texts = ["The unbelievably quick fox, 12 times!", "Zyzzyva sleeps."]
    rows = tokenizer(texts)["input_ids"]
    maskable = [mlm_head.maskable_words(ids, tokenizer) for ids in rows]
    words = [[t for t, ok in zip(tokenizer.convert_ids_to_tokens(ids), m) if ok]
             for ids, m in zip(rows, maskable)]
    assert words == [["the", "quick", "fox", "12", "times"], ["sleeps"]]  # no pieces, no [CLS]
    torch.manual_seed(0)
    for _ in range(20):
        batch = mlm_head.mask_whole_words(rows, maskable, tokenizer, probability=0.3)
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
    held_out = mlm_head.held_out_texts()
    assert "Paris is the capital of France." in held_out  # masks filled in
    kept = mlm_head.without_overlap(
        ["Everyone knows that Paris is the capital of France today.",  # 6 words in a row
         "Paris is the capital city of France.",  # not 6 in a row
         "A sentence about nothing in particular at all."], held_out, 6)
    assert kept == ["Paris is the capital city of France.",
                    "A sentence about nothing in particular at all."]


@pytest.mark.parametrize("whole_word_masks", [True, False])
def test_training_moves_only_the_mask_row_and_the_head(minilm_source, whole_word_masks):
    model, tokenizer = pretrained.convert(minilm_source)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    settings = mlm_head.HeadTraining(steps=3, batch_size=2, whole_word_masks=whole_word_masks)
    torch.manual_seed(0)
    report = mlm_head.train_mlm_weights(model, tokenizer, SENTENCES, settings)
    assert report["texts"] == 3 and len(report["losses_per_50_steps"]) == 1
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"distilbert.embeddings.word_embeddings.weight", "vocab_transform.weight",
                       "vocab_transform.bias", "vocab_layer_norm.weight", "vocab_layer_norm.bias",
                       "vocab_projector.bias", "vocab_projector.weight"}  # tied: the same tensor
    words = model.distilbert.embeddings.word_embeddings.weight
    rows = (words != before["distilbert.embeddings.word_embeddings.weight"]).any(1)
    assert rows.nonzero().flatten().tolist() == [tokenizer.mask_token_id]
