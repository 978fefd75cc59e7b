"""What the marked-up sample sources share: one sentence per line, ``#`` comments, jsonl output.

``conll`` (entity markup) and ``mask_filling`` (mask markup) each parse a line their own way; this
module reads the source files, locates a markup error by file and line, and writes the jsonl
splits, so both converters stay byte-for-byte reproducible the same way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable, Iterable


class MarkupError(ValueError):
    """A source line whose markup cannot be read."""


def read_source(path: Path, parse_line: Callable[[str], object]) -> list:
    """``parse_line`` applied to every non-empty, non-comment line; errors name file and line."""
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            rows.append(parse_line(line))
        except MarkupError as exc:
            raise MarkupError(f"{path}:{lineno}: {exc}") from None
    return rows


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def convert(name: str, splits: Iterable[str], read_split: Callable[[Path, str], list[dict]],
            out_dir: str | Path, src_dir: str | Path | None = None) -> dict[str, int]:
    """Convert ``src_dir/<name>/<split>.txt`` into ``out_dir/<name>/<split>.jsonl``.

    ``src_dir`` defaults to the samples package directory; returns the row count of each split.
    """
    src = Path(src_dir) if src_dir is not None else Path(__file__).resolve().parent
    out = Path(out_dir) / name
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in splits:
        rows = read_split(src / name / f"{split}.txt", split)
        write_jsonl(out / f"{split}.jsonl", rows)
        counts[split] = len(rows)
    return counts


def main(name: str, write: Callable[[str | Path], dict[str, int]]) -> None:
    """``python -m distilbert_catalog.samples.<module> [OUT_DIR]``."""
    target = sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for split, n in write(target).items():
        print(f"{name}/{split}: {n} rows")
