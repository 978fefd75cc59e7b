"""Committed parts of a batch run: one CSV per finished mini-batch, resumable, joined in order.

A part is named by its mini-batch's position and a key of its files (path, size, mtime) and of the
run (model, script, environment), so a rerun into the same folder finds the mini-batches an earlier
run committed and skips them. Parts, the joined output and the summary are written atomically (a
temporary name, then a rename): a killed run never leaves half a file that a rerun would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

PARTS = ".parts"
SUMMARY = "summary.json"
FILE, ROW, ERROR = "file", "row", "error"


def fingerprint(path: Path) -> list:
    """What identifies a file's content for a rerun: its path, size and modification time."""
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


def part_names(batches: list[list[Path]], context: list) -> list[str]:
    """One name per mini-batch: its position and a key of its files and the run's context."""
    names = []
    for number, batch in enumerate(batches):
        key = json.dumps([context, [fingerprint(p) for p in batch]], sort_keys=True)
        names.append(f"{number:05d}-{hashlib.sha256(key.encode()).hexdigest()[:16]}")
    return names


def part_path(parts_dir: Path, name: str, failed: bool = False) -> Path:
    """A mini-batch's committed part: ``NAME.csv``, or ``NAME.failed.csv`` once it failed every
    attempt (a rerun tries it again)."""
    return parts_dir / f"{name}{'.failed' if failed else ''}.csv"


def write_atomically(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def failed_frame(batch: list[Path], reason: str):
    """One error row per file of a mini-batch that failed every attempt."""
    import pandas as pd

    return pd.DataFrame({FILE: [p.name for p in batch], ROW: pd.array([None] * len(batch), "Int64"),
                         ERROR: [reason] * len(batch)})


def read_part(path: Path):
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False)


def failed_rows(frame) -> int:
    return int((frame[ERROR] != "").sum()) if ERROR in frame.columns else 0


def join(paths: list[Path]):
    """The parts, in the order given, as one frame: ``file, row, outputs..., error``."""
    import pandas as pd

    frames = [read_part(path) for path in paths]
    joined = pd.concat(frames, ignore_index=True).fillna("") if frames else pd.DataFrame()
    if ERROR in joined.columns:
        joined = joined[[c for c in joined.columns if c != ERROR] + [ERROR]]
    return joined


def write_csv(path: Path, frame) -> None:
    write_atomically(path, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n"))


def remove_stale(parts_dir: Path, names: list[str]) -> None:
    """Delete parts of earlier runs whose files, model, script or environment have changed."""
    current = {part_path(parts_dir, name, failed).name for name in names
               for failed in (False, True)}
    for stale in parts_dir.glob("*.csv"):
        if stale.name not in current:
            stale.unlink()
