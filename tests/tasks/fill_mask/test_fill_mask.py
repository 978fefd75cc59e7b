"""The fill-mask task plug-in: mask spellings, windows, answers equal to the transformers
fill-mask pipeline (uncased and cased tokenizers), request errors, metrics against hand-computed
cases and against a direct one-mask-at-a-time computation.

Models: the tiny random DistilBertForMaskedLM (answers are arbitrary, but every property here
holds for any model) and a tiny *cased* variant built below. Quality on real text is checked in
test_fill_mask_end_to_end with the pretrained model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from distilbert_catalog.tasks.fill_mask.arguments import FillMaskArgs
from distilbert_catalog.data import load_data
from distilbert_catalog.errors import BadRequest, DataError
from distilbert_catalog.serving.request_parsing import parse_request
from distilbert_catalog.tasks import TASKS, get_task, task_for_config
from distilbert_catalog.tasks.fill_mask import MAX_MASKS, SEED_REQUEST, engine, scoring
from distilbert_catalog.tasks.fill_mask.masks import (count_masks, fill_masks, mask_windows,
                                                      to_model_masks)

TASK = get_task("fill-mask")
KEYS = FillMaskArgs().keys


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def cased_model(tmp_path_factory) -> Path:
    """A tiny random DistilBertForMaskedLM with a *cased* WordPiece vocabulary."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import DistilBertConfig, DistilBertForMaskedLM, DistilBertTokenizer

    from distilbert_catalog.tiny import SPECIAL_TOKENS, sample_texts

    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=False)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wordpiece.train_from_iterator(sample_texts(), trainers.WordPieceTrainer(
        vocab_size=2000, special_tokens=SPECIAL_TOKENS))
    vocab = wordpiece.get_vocab()
    out = tmp_path_factory.mktemp("cased") / "tiny-cased"
    tokenizer = DistilBertTokenizer(vocab=vocab, do_lower_case=False, model_max_length=512)
    tokenizer.save_pretrained(out)
    torch.manual_seed(1)
    config = DistilBertConfig(vocab_size=len(vocab), dim=32, n_layers=1, n_heads=2,
                              hidden_dim=64, pad_token_id=vocab["[PAD]"])
    DistilBertForMaskedLM(config).save_pretrained(out)
    return out


def _predictor(path, **kwargs):
    from distilbert_catalog.inference import load_predictor

    return load_predictor(path, backend="fp32", **kwargs)


@pytest.fixture(scope="module")
def predictor(tiny_model):
    return _predictor(tiny_model, batch_size=4)


@pytest.fixture(scope="module")
def cased_predictor(cased_model):
    return _predictor(cased_model, batch_size=4)


def pipeline_for(path):
    from transformers import pipeline

    return pipeline("fill-mask", model=str(path), device="cpu")


def predict(predictor, texts, **params):
    rows, parsed = parse_request({"inputs": {"input_string": texts}, "params": params},
                                 predictor.task)
    return predictor.predict(rows, parsed)


def plain(token_str: str) -> str:
    return token_str.strip().removeprefix("##")


def specials(predictor) -> set[int]:
    return set(engine.special_ids(predictor.tokenizer, predictor.model.config.vocab_size))


def pipeline_words(reference, text: str, top_k: int, special: set[int]) -> list:
    """The transformers pipeline's ranking with the special tokens left out (same scores)."""
    found = reference(text, top_k=top_k + len(special))
    per_mask = found if isinstance(found[0], list) else [found]
    kept = [[e for e in mask if e["token"] not in special][:top_k] for mask in per_mask]
    return kept if isinstance(found[0], list) else kept[0]


# --------------------------------------------------------------------------- registration

def test_task_is_registered_and_masked_lm_folders_are_fill_mask_models(tiny_model):
    from transformers import AutoConfig

    assert TASKS["fill-mask"] is TASK
    assert task_for_config(AutoConfig.from_pretrained(tiny_model)) == "fill-mask"
    assert TASK.example_request() == SEED_REQUEST


# --------------------------------------------------------------------------- mask markers

def test_every_mask_spelling_becomes_the_model_mask_token():
    text = "A [MASK] b [mask] c <mask> d [Mask] e <MASK>."
    assert count_masks(text) == 5
    assert to_model_masks(text, "[MASK]") == "A [MASK] b [MASK] c [MASK] d [MASK] e [MASK]."
    assert to_model_masks(text, "<mask>").count("<mask>") == 5
    assert count_masks("no mask here, [MASK without bracket") == 0
    assert fill_masks("The <mask> sat on the [MASK].", ["cat", "mat"]) == "The cat sat on the mat."


def test_short_text_is_one_window_for_all_masks():
    windows, answers = mask_windows(10, [2, 7], content=20)
    assert [(w.start, w.end, w.masks) for w in windows] == [(0, 10, (2, 7))]
    assert answers == [(0, 0), (0, 1)]


def test_long_text_gets_a_window_centred_on_each_mask():
    windows, answers = mask_windows(100, [1, 50, 52, 98], content=10)
    spans = [(w.start, w.end) for w in windows]
    assert spans == [(0, 10), (45, 55), (47, 57), (90, 100)]
    for (w, slot), position in zip(answers, [1, 50, 52, 98]):
        window = windows[w]
        assert window.start <= position < window.end and window.masks[slot] == position
        assert window.end - window.start == 10
    assert windows[1].masks == (50, 52)  # a window answers its own mask; others stay masked


# --------------------------------------------------------------------------- answers

TEXTS = ["Paris is the [MASK] of France.", "Today is a [MASK] day!",
         "the river flows into the <mask> near the old city"]


def test_answers_have_the_catalog_shape(predictor):
    answers = predict(predictor, SEED_REQUEST["input_string"])
    assert len(answers) == 2
    for answer in answers:
        assert list(answer) == ["0"] and isinstance(answer["0"], str)
        assert answer["0"] == answer["0"].strip() and not answer["0"].startswith("##")
    ranked = predict(predictor, ["Today is a [MASK] day!"], top_k=4)[0]
    assert list(ranked) == ["0", "1", "2", "3"]


@pytest.mark.parametrize("which", ["uncased", "cased"])
def test_top_k_equals_the_transformers_pipeline(which, predictor, cased_predictor, tiny_model,
                                                cased_model):
    ours, path = (predictor, tiny_model) if which == "uncased" else (cased_predictor,
                                                                        cased_model)
    reference = pipeline_for(path)
    answers = predict(ours, TEXTS, top_k=5, return_scores=True)
    mask = ours.tokenizer.mask_token
    for text, answer in zip(TEXTS, answers):
        expected = pipeline_words(reference, to_model_masks(text, mask), 8, specials(ours))
        for r, e in enumerate(expected[:5]):
            assert answer[str(r)]["score"] == pytest.approx(e["score"], rel=1e-4, abs=1e-7)
            # the same word, or one whose probability ties with it: the pipeline's forward runs
            # the head over every position, ours over the masks only, so float rounding differs
            # and may swap two words scored alike to 1e-4 (seen under a loaded full suite)
            tied = [x for x in expected if x["score"] == pytest.approx(e["score"], rel=1e-4,
                                                                       abs=1e-7)]
            assert answer[str(r)]["token"] in {x["token"] for x in tied}, (r, answer, expected)
            assert answer[str(r)]["token_str"] == plain(next(
                x["token_str"] for x in tied if x["token"] == answer[str(r)]["token"]))
        assert len({answer[str(r)]["token"] for r in range(5)}) == 5


@pytest.mark.parametrize("which", ["uncased", "cased"])
def test_mask_spellings_give_the_same_answer(which, predictor, cased_predictor):
    ours = predictor if which == "uncased" else cased_predictor
    spelled = [f"The Nile flows into the Mediterranean {m}." for m in ("[MASK]", "[mask]",
                                                                      "<mask>")]
    answers = predict(ours, spelled, top_k=3, return_scores=True)
    assert answers[0] == answers[1] == answers[2]
    ids = ours.tokenizer(to_model_masks(spelled[1], ours.tokenizer.mask_token))["input_ids"]
    assert ids.count(ours.tokenizer.mask_token_id) == 1


def test_several_masks_give_one_word_per_mask_under_each_rank(predictor, tiny_model):
    """Still one object per input; rank r holds each mask's r-th word, as the pipeline ranks it."""
    text = "The [MASK] flows into the <mask> near the old [mask]."
    answer = predict(predictor, [text, TEXTS[0]], top_k=3)
    assert list(answer[0]) == ["0", "1", "2"] and list(answer[1]) == ["0", "1", "2"]
    assert all(isinstance(answer[1][r], str) for r in "012")
    expected = pipeline_words(pipeline_for(tiny_model), to_model_masks(text, "[MASK]"), 3,
                              specials(predictor))
    assert len(expected) == 3  # the pipeline ranks each of the 3 masks separately
    for r in range(3):
        assert answer[0][str(r)] == [plain(per_mask[r]["token_str"]) for per_mask in expected]
    scored = predict(predictor, [text], top_k=2, return_scores=True)[0]
    assert [m["token"] for m in scored["0"]] == [per_mask[0]["token"] for per_mask in expected]


def test_only_mask_logits_leave_the_model(predictor):
    """The mask-only head equals the full model's logits at the mask positions."""
    enc = predictor.tokenizer(["a [MASK] b [MASK]", "the [MASK] is here now"],
                              padding=True, return_tensors="pt")
    out = predictor.forward_fn(dict(enc))
    assert out.counts == [2, 1]
    assert out.logits.shape == (3, predictor.model.config.vocab_size)
    with torch.inference_mode():
        full = predictor.model(**enc).logits
    where = enc["input_ids"] == predictor.tokenizer.mask_token_id
    torch.testing.assert_close(out.logits, full[where], rtol=1e-4, atol=1e-5)


def test_a_text_longer_than_the_window_is_read_around_its_mask(tiny_model):
    """Window of 16 tokens: the answer equals the model on the 14 tokens centred on the mask."""
    small = _predictor(tiny_model)
    small.tokenizer.model_max_length = 16
    words = ("one two three four five six seven eight nine ten " * 4).split()
    text = " ".join(words[:20] + ["[MASK]"] + words[20:])
    answer = predict(small, [text], top_k=5, return_scores=True)[0]
    ids = small.tokenizer(text, add_special_tokens=False)["input_ids"]
    position = ids.index(small.tokenizer.mask_token_id)
    window = ids[position - 7:position + 7]
    inputs = torch.tensor([[small.tokenizer.cls_token_id, *window,
                            small.tokenizer.sep_token_id]])
    with torch.inference_mode():
        logits = small.model(input_ids=inputs).logits[0, 8]
        logits[sorted(specials(small))] = float("-inf")  # never offered
    assert [answer[str(r)]["token"] for r in range(5)] == logits.topk(5).indices.tolist()


# --------------------------------------------------------------------------- bad requests

@pytest.mark.parametrize("texts, message", [
    (["Paris is the capital of France."], "input_string[0] has no mask"),
    (["ok [MASK]", "   "], "input_string[1] is empty"),
    (["ok [MASK]", 7], "input_string[1] must be a string"),
    (["ok [MASK]", "x " + "[MASK] " * (MAX_MASKS + 1)], "input_string[1] has 511 masks"),
])
def test_bad_texts_are_bad_requests_naming_the_item(texts, message):
    with pytest.raises(BadRequest, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_request({"inputs": {"input_string": texts}}, TASK)


def test_masks_beyond_a_small_window_are_a_bad_request(tiny_model):
    small = _predictor(tiny_model)
    small.tokenizer.model_max_length = 8
    with pytest.raises(BadRequest, match=r"input_string\[0\] has 7 masks; at most 6"):
        predict(small, ["[MASK] " * 7])


@pytest.mark.parametrize("params, message", [({"top_k": 0}, "top_k"),
                                             ({"return_scores": "yes"}, "return_scores"),
                                             ({"targets": ["a"]}, "unknown params")])
def test_bad_params(params, message):
    with pytest.raises(BadRequest, match=message):
        parse_request({"input_data": ["a [MASK]"], "params": params}, TASK)


# --------------------------------------------------------------------------- scoring

def test_rank_metrics_match_the_worked_example():
    metrics = scoring.rank_metrics([1, 3, None, 7])
    assert metrics["top1_accuracy"] == 0.25
    assert metrics["top5_accuracy"] == 0.5
    assert metrics["mrr"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 7) / 4)
    assert scoring.rank_metrics([2, 2], "_uncased") == {"top1_accuracy_uncased": 0.0,
                                                        "top5_accuracy_uncased": 1.0,
                                                        "mrr_uncased": 0.5}
    assert scoring.accuracy_curve([1, 3, None], max_k=3) == [1 / 3, 1 / 3, 2 / 3]


def test_pseudo_perplexity_worked_example():
    assert scoring.pseudo_perplexity([-2.0, -4.0], [2, 2]) == pytest.approx(math.exp(1.5))
    assert math.isnan(scoring.pseudo_perplexity([], []))


def test_rank_is_the_position_in_the_sorted_vocabulary():
    row = torch.tensor([0.1, 2.0, -1.0, 0.5, 3.0])
    assert engine.ranks_of(row, [4]) == 1
    assert engine.ranks_of(row, [3]) == 3
    assert engine.ranks_of(row, [2, 0]) == 4  # the better of two spellings counts
    assert engine.ranks_of(row, []) is None


# --------------------------------------------------------------------------- evaluation data

def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_rcds_and_plain_table_schemas_load(tmp_path):
    rcds = write_jsonl(tmp_path / "rcds.jsonl", [
        {"texts": "The <mask> sat on the <mask>.", "masks": ["cat", "mat"]}])
    data = TASK.prepare_data(load_data(rcds), KEYS, None)
    assert data.dataset[0] == {"texts": "The <mask> sat on the <mask>.", "masks": ["cat", "mat"]}
    table = write_jsonl(tmp_path / "table.jsonl", [
        {"input_string": "Paris is the [MASK] of France.", "label": "capital"}])
    keys = FillMaskArgs(text_key="input_string", masks_key="label").keys
    data = TASK.prepare_data(load_data(table), keys, None)
    assert data.dataset["masks"] == [["capital"]]


@pytest.mark.parametrize("row, column, message", [
    ({"texts": "The <mask> sat on the <mask>.", "masks": ["cat"]}, "masks", "2 mask marker"),
    ({"texts": "No mask.", "masks": ["cat"]}, "masks", "0 mask marker"),
    ({"texts": "", "masks": ["cat"]}, "texts", "non-empty string"),
    ({"texts": "The <mask>.", "masks": [""]}, "masks", "true word"),
    ({"texts": "The <mask>.", "masks": ["cat"], "mask_kinds": ["noun", "verb"]}, "mask_kinds",
     "one kind name per mask"),
])
def test_data_errors_name_file_row_and_column(tmp_path, row, column, message):
    good = {"texts": "A <mask>.", "masks": ["b"], **({"mask_kinds": ["noun"]}
                                                      if "mask_kinds" in row else {})}
    path = write_jsonl(tmp_path / "bad.jsonl", [good, row])
    with pytest.raises(DataError) as caught:
        TASK.prepare_data(load_data(path), KEYS, None)
    text = str(caught.value)
    assert "bad.jsonl" in text and "row 2" in text and column in text and message in text


# --------------------------------------------------------------------------- evaluation

EVAL_ROWS = [
    {"texts": "Paris is the <mask> of France.", "masks": ["capital"], "mask_kinds": ["noun"]},
    {"texts": "The <mask> flows into the [MASK] sea.", "masks": ["river", "Black"],
     "mask_kinds": ["noun", "name"]},
    {"texts": "It was <mask> in 1990 by the city.", "masks": ["founded"],
     "mask_kinds": ["verb"]},
    {"texts": "An unsplittable <mask> here.", "masks": ["Zyzzyvaqq"], "mask_kinds": ["name"]},
]


@pytest.fixture(scope="module")
def evaluation(tiny_model, tmp_path_factory):
    import distilbert_catalog as dc

    folder = tmp_path_factory.mktemp("fm-data")
    write_jsonl(folder / "test.jsonl", EVAL_ROWS)
    out = tmp_path_factory.mktemp("fm-eval")
    record = dc.evaluate("fill-mask", output_dir=out, model_name=str(tiny_model),
                         test_data=str(folder), pseudo_perplexity_samples=-1, batch_size=3,
                         backend="fp32")  # compared with fp32 computations below
    return record, out


def direct_log_probs(model, tokenizer, ids: list[int], position: int) -> torch.Tensor:
    """The textbook computation: whole model, one masked copy, full logits."""
    masked = list(ids)
    masked[position] = tokenizer.mask_token_id
    inputs = torch.tensor([[tokenizer.cls_token_id, *masked, tokenizer.sep_token_id]])
    with torch.inference_mode():
        return torch.log_softmax(model(input_ids=inputs).logits[0, position + 1], dim=-1)


@pytest.mark.cpu_sensitive
def test_ranks_match_a_direct_ranking_of_the_vocabulary(evaluation, predictor):
    record, out = evaluation
    tokenizer, model = predictor.tokenizer, predictor.model
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    vocab = tokenizer.convert_ids_to_tokens(list(range(model.config.vocab_size)))
    special = sorted(specials(predictor))
    ranks, ranks_uncased = [], []
    for source, row in zip(EVAL_ROWS, rows):
        text = to_model_masks(source["texts"], "[MASK]")
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        positions = [i for i, t in enumerate(ids) if t == tokenizer.mask_token_id]
        for position, word, mask in zip(positions, source["masks"], row["masks"]):
            with torch.inference_mode():
                inputs = torch.tensor([[tokenizer.cls_token_id, *ids, tokenizer.sep_token_id]])
                logp = torch.log_softmax(model(input_ids=inputs).logits[0, position + 1], -1)
                logp[special] = float("-inf")  # a special token is never a word: never ranked
            order = torch.argsort(logp, descending=True).tolist()
            spelled = [i for i in order
                       if vocab[i] == word.lower() and not vocab[i].startswith("##")]
            expected = None
            if spelled:
                # the rank up to ties: batched (padded) and single forwards differ by float noise,
                # which may swap tokens whose log-probabilities are equal to 1e-5
                gold = logp[spelled[0]]
                expected = range(int((logp > gold + 1e-5).sum()) + 1,
                                 int((logp >= gold - 1e-5).sum()) + 1)
            # an uncased vocabulary spells "Black" only up to case
            assert (mask["rank_uncased"] in expected) if expected else mask["rank_uncased"] is None
            if word != word.lower():
                assert mask["rank"] is None
            else:
                assert mask["rank"] == mask["rank_uncased"]
            for k, (got, want) in enumerate(zip(mask["predicted"], order[:5], strict=True)):
                # batched and single forwards may swap tokens whose log-probabilities tie to 1e-5
                tied = {vocab[i].removeprefix("##") for i in order[:16]
                        if abs(float(logp[i] - logp[want])) <= 1e-5}
                assert got in tied, (k, got, vocab[want])
            ranks.append(mask["rank"])
            ranks_uncased.append(mask["rank_uncased"])
    metrics = record["metrics"]
    assert metrics["top1_accuracy"] == scoring.hits_at(ranks, 1)
    assert metrics["top5_accuracy_uncased"] == scoring.hits_at(ranks_uncased, 5)
    assert metrics["mrr_uncased"] == pytest.approx(scoring.mean_reciprocal_rank(ranks_uncased))
    assert rows[3]["masks"][0]["rank_uncased"] is None  # split into pieces: never right
    assert metrics["single_token_share"] == pytest.approx(
        sum(r is not None for r in ranks_uncased) / len(ranks_uncased))
    assert sum(r is not None for r in ranks_uncased) >= 3  # the check above compared numbers


@pytest.mark.cpu_sensitive
def test_pseudo_perplexity_matches_one_mask_at_a_time(evaluation, predictor):
    record, _ = evaluation
    tokenizer, model = predictor.tokenizer, predictor.model
    pll, n = 0.0, 0
    for source in EVAL_ROWS:
        ids = tokenizer(fill_masks(source["texts"], source["masks"]),
                        add_special_tokens=False)["input_ids"]
        for position, gold in enumerate(ids):
            pll += float(direct_log_probs(model, tokenizer, ids, position)[gold])
            n += 1
    assert record["details"]["pseudo_perplexity"]["tokens"] == n
    assert record["metrics"]["pseudo_perplexity"] == pytest.approx(math.exp(-pll / n), rel=1e-4)


# --------------------------------------------------------------------------- special tokens

MULTI = "The [MASK] flows into the <mask> near the old [mask]."


def test_the_biased_fill_mask_model_would_answer_special_tokens(biased_fill_mask_model):
    """The premise of the tests below: unfiltered, the model's top 6 are its special tokens."""
    found = pipeline_for(biased_fill_mask_model)(to_model_masks(MULTI, "[MASK]"), top_k=6)
    assert [[e["token_str"] for e in mask] for mask in found] == \
        [["[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", "[ENT]"]] * 3


def test_special_tokens_are_never_offered_for_one_or_several_masks(biased_fill_mask_model):
    ours = _predictor(biased_fill_mask_model, batch_size=2)
    special = specials(ours)
    assert {ours.tokenizer.convert_ids_to_tokens(i) for i in special} == \
        {"[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", "[ENT]"}
    texts = [*TEXTS, MULTI]
    scored = predict(ours, texts, top_k=8, return_scores=True)
    words = predict(ours, texts, top_k=8)
    reference = pipeline_for(biased_fill_mask_model)
    for text, answer, plain_answer in zip(texts, scored, words):
        expected = pipeline_words(reference, to_model_masks(text, "[MASK]"), 8, special)
        per_mask = expected if isinstance(expected[0], list) else [expected]
        for m, mask in enumerate(per_mask):
            got = [answer[str(r)] if len(per_mask) == 1 else answer[str(r)][m] for r in range(8)]
            assert [g["token"] for g in got] == [e["token"] for e in mask]
            assert not {g["token"] for g in got} & special
            for g, e in zip(got, mask):  # probabilities stay the model's, over its vocabulary
                assert g["score"] == pytest.approx(e["score"], rel=1e-4, abs=1e-12)
        flat = [w for r in range(8) for w in ([plain_answer[str(r)]] if isinstance(
            plain_answer[str(r)], str) else plain_answer[str(r)])]
        assert not set(flat) & set(ours.tokenizer.all_special_tokens)


def test_top_k_beyond_the_words_returns_every_word_and_no_special_token(biased_fill_mask_model):
    ours = _predictor(biased_fill_mask_model)
    n_words = ours.model.config.vocab_size - len(specials(ours))
    answer = predict(ours, ["a [MASK] b"], top_k=n_words + 10)[0]
    assert len(answer) == n_words
    assert not set(answer.values()) & set(ours.tokenizer.all_special_tokens)


def test_evaluation_ranks_and_predictions_leave_special_tokens_out(biased_fill_mask_model, tiny_model,
                                                                   tmp_path):
    """Words keep their logits in the biased model, so with special tokens out of the ranking
    its evaluation ranks and predicts exactly what the unbiased model's does (both fp32)."""
    import distilbert_catalog as dc

    write_jsonl(tmp_path / "test.jsonl", EVAL_ROWS)
    records, rows = [], []
    for name, model in (("plain", tiny_model), ("biased", biased_fill_mask_model)):
        records.append(dc.evaluate("fill-mask", output_dir=tmp_path / name,
                                   model_name=str(model), test_data=str(tmp_path),
                                   pseudo_perplexity_samples=0, batch_size=3, backend="fp32"))
        rows.append([json.loads(line) for line in
                     (tmp_path / name / "predictions.jsonl").read_text().splitlines()])
    (plain_record, biased_record), (plain_rows, biased_rows) = records, rows
    assert [[m["predicted"] for m in row["masks"]] for row in biased_rows] == \
        [[m["predicted"] for m in row["masks"]] for row in plain_rows]
    # the same ranks up to a float tie: two models' forwards round alike only up to ~1e-7, and at
    # ranks in the hundreds of a random tiny model neighbours tie that closely (seen: 810 vs
    # 811 under a loaded full suite). Counting the special tokens would shift every rank by
    # their number, which this still catches.
    n_special = len(AutoTokenizer.from_pretrained(biased_fill_mask_model).all_special_tokens)
    assert n_special >= 4
    for biased_row, plain_row in zip(biased_rows, plain_rows, strict=True):
        for b, p in zip(biased_row["masks"], plain_row["masks"], strict=True):
            for key in ("rank", "rank_uncased"):
                assert (b[key] is None) == (p[key] is None), (key, b, p)
                assert b[key] is None or abs(b[key] - p[key]) <= 1, (key, b[key], p[key])
    assert biased_rows[0]["masks"][0]["rank_uncased"] is not None
    special = set(AutoTokenizer.from_pretrained(biased_fill_mask_model).all_special_tokens)
    assert not {w for row in biased_rows for m in row["masks"] for w in m["predicted"]} & special
    for name in ("top1_accuracy", "top5_accuracy", "mrr", "top5_accuracy_uncased", "mrr_uncased"):
        # a rank in the hundreds one apart moves the reciprocal rank by ~1e-6
        assert biased_record["metrics"][name] == pytest.approx(plain_record["metrics"][name],
                                                               abs=1e-5)


def test_evaluation_outputs(evaluation):
    record, out = evaluation
    assert record["task"] == "fill-mask" and record["n_examples"] == 4
    assert set(record["metrics"]) == {
        "top1_accuracy", "top5_accuracy", "mrr", "top1_accuracy_uncased",
        "top5_accuracy_uncased", "mrr_uncased", "single_token_share", "pseudo_perplexity"}
    assert record["details"]["n_masks"] == 5
    assert set(record["details"]["per_kind"]) == {"noun", "name", "verb"}
    assert record["details"]["per_kind"]["noun"]["n"] == 2
    for name in ("predictions", "accuracy_plot", "accuracy_curve", "sample"):
        assert (out / record["artifacts"][name]).exists()
    sample = json.loads((out / "sample.json").read_text())
    assert sample["request"] == {"inputs": SEED_REQUEST}
    assert [list(a) for a in sample["response"]] == [["0"], ["0"]]
