"""The fill-mask sample in the ``rcds/wikipedia-for-mask-filling`` schema, project-written.

Source ``wikipedia_mask_filling/<split>.txt`` holds one row per line: encyclopedic text in which
each word to hide is written ``{word:kind}``, with kind one of :data:`KINDS`::

    The Danube flows into the {Black:name} Sea near the {border:noun} with Ukraine.

Blank lines and lines starting with ``#`` are skipped. :func:`write` converts every split to
``<split>.jsonl`` rows ``{"texts": ..., "masks": [...], "mask_kinds": [...]}``: ``texts`` with
``<mask>`` in place of each marked word, ``masks`` the true words in order (the dataset's two
fields) and ``mask_kinds`` the kind of each, so evaluation can be broken down by kind.
A mask always stands for exactly one whole word; punctuation stays outside it.
"""
from __future__ import annotations

import re
from pathlib import Path

from .markup import MarkupError, convert, main, read_source

KINDS = ("noun", "verb", "adjective", "name", "number", "function")
MASK = "<mask>"
SPLITS = ("validation", "test")
NAME = "wikipedia_mask_filling"
MARK = re.compile(r"\{([^{}:\s]+):([a-z]+)\}")
WORD = re.compile(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*")
# a mask is a whole word: preceded by the start, a space or an opening quote/bracket, followed by
# the end, a space or closing punctuation
WHOLE_WORD = re.compile(r"(?:^|(?<=[\s(\"']))<mask>(?=$|[\s.,;:!?)\"'])")




def parse_line(line: str) -> dict:
    """Turn one marked-up line into a ``{"texts", "masks", "mask_kinds"}`` row."""
    masks: list[str] = []
    kinds: list[str] = []

    def hide(match: re.Match) -> str:
        word, kind = match.groups()
        if kind not in KINDS:
            raise MarkupError(f"unknown mask kind {kind!r}; use one of {', '.join(KINDS)}")
        if not WORD.fullmatch(word):
            raise MarkupError(f"masked word {word!r} is not a single word without punctuation")
        masks.append(word)
        kinds.append(kind)
        return MASK

    text = MARK.sub(hide, " ".join(line.split()))
    if "{" in text or "}" in text:
        raise MarkupError("unreadable mask markup; write {word:kind}")
    if not masks:
        raise MarkupError("no masked word")
    if len(WHOLE_WORD.findall(text)) != len(masks):
        raise MarkupError("a mask must stand for one whole word (punctuation outside it)")
    return {"texts": text, "masks": masks, "mask_kinds": kinds}


def write(out_dir: str | Path, src_dir: str | Path | None = None) -> dict[str, int]:
    """Convert ``src_dir/wikipedia_mask_filling/<split>.txt`` into ``out_dir/.../<split>.jsonl``;
    returns the row count of each split."""
    return convert(NAME, SPLITS, lambda path, split: read_source(path, parse_line), out_dir,
                   src_dir)


if __name__ == "__main__":  # python -m distilbert_catalog.samples.<module> [OUT_DIR]
    main(NAME, write)
