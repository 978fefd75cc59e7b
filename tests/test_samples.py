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
