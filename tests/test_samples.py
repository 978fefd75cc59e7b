"""The bundled sample datasets: schema, sizes, balance, split hygiene and reproducibility."""
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


def test_emotion_rows_carry_class_cue_words():
    cues = {i: set(generate.CUES[name].split()) for i, name in enumerate(EMOTION_LABELS)}
    for split in SPLITS:
        for row in load("emotion", split):
            words = set(row["text"].split())
            assert 1 <= len(words & cues[row["label"]]) <= 2
            assert not any(words & cues[other] for other in cues if other != row["label"])


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
def test_generator_reproduces_committed_files(tmp_path):
    counts = generate.main(out_dir=tmp_path)
    produced = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    expected = sorted(p.relative_to(SAMPLES) for p in SAMPLES.rglob("*")
                      if p.suffix in {".jsonl", ".json"} and p.is_file())
    assert produced == expected
    for rel in produced:
        assert (tmp_path / rel).read_bytes() == (SAMPLES / rel).read_bytes(), rel
    assert counts["emotion/train"] == len(load("emotion", "train"))
