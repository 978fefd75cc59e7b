"""Mask markers in text and the windows a long text is read through. Pure functions, no model.

Users write a mask as ``[MASK]``, ``[mask]`` or ``<mask>`` (any letter case), whatever the model's
own mask token is; :func:`to_model_masks` rewrites every spelling to the tokenizer's mask token.
A model reads at most ``content`` tokens at a time (its window less the special tokens), so a
longer text is read through a window centred on each mask (:func:`mask_windows`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

#: every spelling users type for a mask, e.g. "Paris is the [MASK] of France."
MASK_PATTERN = re.compile(r"\[mask\]|<mask>", re.IGNORECASE)
SPELLINGS = ("[MASK]", "[mask]", "<mask>")


def count_masks(text: str) -> int:
    """How many mask markers (any spelling) ``text`` holds."""
    return len(MASK_PATTERN.findall(text))


def to_model_masks(text: str, mask_token: str) -> str:
    """``text`` with every mask spelling replaced by the tokenizer's own ``mask_token``."""
    return MASK_PATTERN.sub(lambda _: mask_token, text)


def fill_masks(text: str, words: Sequence[str]) -> str:
    """``text`` with its masks replaced, in order, by ``words`` (the unmasked text)."""
    filled = iter(words)
    return MASK_PATTERN.sub(lambda _: next(filled), text)


@dataclass(frozen=True)
class Window:
    """Tokens ``[start, end)`` of a text, read in one forward pass, and the masks it answers."""

    start: int
    end: int
    #: token positions (in the whole text) of every mask inside the window, in order
    masks: tuple[int, ...]


def mask_windows(n_tokens: int, positions: Sequence[int], content: int
                 ) -> tuple[list[Window], list[tuple[int, int]]]:
    """The windows that answer every mask, and for each mask (window index, slot in window).

    A text of at most ``content`` tokens is one window holding all its masks. A longer text is
    read through a window of ``content`` tokens centred on each mask (moved inwards at the text's
    ends); masks whose windows coincide share one. Each mask is answered by its own window, so a
    mask always sees the context on both sides of it.
    """
    if content < 1:
        raise ValueError(f"a window needs room for at least one token; got {content}")
    windows: list[Window] = []
    index: dict[tuple[int, int], int] = {}
    answers: list[tuple[int, int]] = []
    for position in positions:
        start = min(max(0, position - content // 2), max(0, n_tokens - content))
        end = min(n_tokens, start + content)
        key = (start, end)
        if key not in index:
            index[key] = len(windows)
            windows.append(Window(start, end, tuple(p for p in positions if start <= p < end)))
        window = index[key]
        answers.append((window, windows[window].masks.index(position)))
    return windows, answers
