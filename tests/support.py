"""Constants and helpers the tests share (fixtures live in conftest.py; import this module, never
conftest)."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EMOTION_LABELS = "sadness,joy,love,anger,fear,surprise"
#: plain sentences (from the natural held-out set) a fine-tuned emotion model must get right
JOY = "i got the job and could not stop grinning on the drive home"
FEAR = "i am terrified of what comes next"
#: sentences for the pretrained model's conversion and masked-LM tests: short, a padded row, words
#: in pieces and punctuation
SENTENCES = ["Paris is the capital of France.", FEAR,
             "The quick brown fox jumps over the lazy dog, twice; then it sleeps for 12 hours."]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Write ``rows`` as a jsonl data file (tests' own small datasets)."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
