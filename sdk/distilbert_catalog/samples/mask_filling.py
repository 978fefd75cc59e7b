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

import json
import re
from pathlib import Path

KINDS = ("noun", "verb", "adjective", "name", "number", "function")
MASK = "<mask>"
SPLITS = ("validation", "test")
NAME = "wikipedia_mask_filling"
MARK = re.compile(r"\{([^{}:\s]+):([a-z]+)\}")
WORD = re.compile(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*")
# a mask is a whole word: preceded by the start, a space or an opening quote/bracket, followed by
# the end, a space or closing punctuation
WHOLE_WORD = re.compile(r"(?:^|(?<=[\s(\"']))<mask>(?=$|[\s.,;:!?)\"'])")


class MarkupError(ValueError):
    """A source line whose mask markup cannot be read."""


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


def read_split(path: Path) -> list[dict]:
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            rows.append(parse_line(line))
        except MarkupError as exc:
            raise MarkupError(f"{path}:{lineno}: {exc}") from None
    return rows


def write(out_dir: str | Path, src_dir: str | Path | None = None) -> dict[str, int]:
    """Convert ``src_dir/wikipedia_mask_filling/<split>.txt`` into ``out_dir/.../<split>.jsonl``.

    ``src_dir`` defaults to this package directory; returns the row count of each split.
    """
    src = Path(src_dir) if src_dir is not None else Path(__file__).resolve().parent
    out = Path(out_dir) / NAME
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in SPLITS:
        rows = read_split(src / NAME / f"{split}.txt")
        with open(out / f"{split}.jsonl", "w", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        counts[split] = len(rows)
    return counts


if __name__ == "__main__":  # python -m distilbert_catalog.samples.<module> [OUT_DIR]
    import sys

    target = sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for split, n in write(target).items():
        print(f"{NAME}/{split}: {n} rows")
