"""The CoNLL-2003-schema NER sample: project-written sentences with inline entity markup.

Source ``conll2003/<split>.txt`` holds one sentence per line. Tokens are separated by whitespace
(punctuation is a token of its own, as in CoNLL-2003) and an entity is written
``[TYPE word word]`` with TYPE one of PER, ORG, LOC, MISC::

    [PER Ada Lindqvist] joined the [ORG Bank of England] in [LOC London] .

Blank lines and lines starting with ``#`` (topic notes for reviewers) are skipped.
:func:`write` converts every split to ``<split>.jsonl`` rows ``{"id", "tokens", "ner_tags"}``
with IOB2 tag ids in the Hugging Face ``conll2003`` label order, plus ``labels.json``.
The conversion is deterministic: re-running it reproduces the committed files byte for byte.
"""
from __future__ import annotations

import json
from pathlib import Path

from .markup import MarkupError, convert, main, read_source

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
TYPES = ("PER", "ORG", "LOC", "MISC")
SPLITS = ("train", "validation", "test")
NAME = "conll2003"




def parse_line(line: str) -> tuple[list[str], list[str]]:
    """Turn one marked-up sentence into (tokens, IOB2 tag strings)."""
    tokens: list[str] = []
    tags: list[str] = []
    open_type: str | None = None
    first = False
    for tok in line.split():
        if open_type is None and tok.startswith("["):
            if tok[1:] not in TYPES:
                raise MarkupError(f"unknown entity opener {tok!r}; use one of "
                                  + ", ".join(f"[{t}" for t in TYPES))
            open_type, first = tok[1:], True
            continue
        closing = open_type is not None and len(tok) > 1 and tok.endswith("]")
        word = tok[:-1] if closing else tok
        if "[" in word or "]" in word:
            raise MarkupError(f"stray bracket in token {tok!r} (entities cannot nest)")
        if open_type is None:
            tags.append("O")
        else:
            tags.append(("B-" if first else "I-") + open_type)
            first = False
        tokens.append(word)
        if closing:
            open_type = None
    if open_type is not None:
        raise MarkupError(f"entity [{open_type} ... is never closed with ']'")
    if first:
        raise MarkupError("empty entity")
    if not tokens:
        raise MarkupError("no tokens")
    return tokens, tags


def read_split(path: Path, split: str) -> list[dict]:
    """Rows ``{"id": "<split>-<n>", "tokens", "ner_tags"}`` of one marked-up source file."""
    return [{"id": f"{split}-{i}", "tokens": tokens,
             "ner_tags": [LABELS.index(tag) for tag in tags]}
            for i, (tokens, tags) in enumerate(read_source(path, parse_line))]


def write(out_dir: str | Path, src_dir: str | Path | None = None) -> dict[str, int]:
    """Convert ``src_dir/conll2003/<split>.txt`` into ``out_dir/conll2003/<split>.jsonl``
    (and ``labels.json``); returns the row count of each split."""
    counts = convert(NAME, SPLITS, read_split, out_dir, src_dir)
    (Path(out_dir) / NAME / "labels.json").write_text(json.dumps(LABELS) + "\n",
                                                      encoding="utf-8")
    return counts


if __name__ == "__main__":  # python -m distilbert_catalog.samples.<module> [OUT_DIR]
    main(NAME, write)
