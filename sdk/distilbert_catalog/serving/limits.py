"""Request limits for online scoring, set per deployment by environment variables.

Every limit is checked on the raw request before any tokenisation, so an oversized or hostile
request costs the server a scan of its bytes, not a forward pass:

========================= ====================================================================
variable                  what it bounds
========================= ====================================================================
DISTILBERT_MAX_BODY_BYTES bytes in the request body (413)
DISTILBERT_MAX_JSON_DEPTH nesting of JSON arrays/objects (400)
DISTILBERT_MAX_ITEMS      inputs (rows) per request (413)
DISTILBERT_MAX_TEXT_CHARS characters in one input cell; a word list counts its words'
                          characters plus one per word (413)
DISTILBERT_MAX_TOP_K      request params a task bounds by ``max_top_k`` (``Param.limit``; 400)
========================= ====================================================================

The defaults are the fields of :class:`Limits`, declared once; the deployment YAML and the
README state them too, and a test holds them to these fields.

A value of 0 is refused (a limit must bound something); a non-integer value is a deployment
error raised when the scoring script starts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from typing import Any, Mapping

from ..errors import BadRequest, PayloadTooLarge

ENV_PREFIX = "DISTILBERT_"


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000
    max_json_depth: int = 16
    max_items: int = 256
    max_text_chars: int = 20_000
    max_top_k: int = 100

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Field name -> environment variable (``max_items`` -> ``DISTILBERT_MAX_ITEMS``)."""
        return {f.name: ENV_PREFIX + f.name.upper() for f in fields(cls)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Limits":
        environ = os.environ if environ is None else environ
        values = {}
        for name, variable in cls.env_names().items():
            raw = environ.get(variable)
            if raw is None or not raw.strip():
                continue
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{variable}={raw!r} must be a positive integer") from None
            if value <= 0:
                raise ValueError(f"{variable}={value} must be a positive integer")
            values[name] = value
        return cls(**values)

    # --- checks on the raw body -------------------------------------------------------------
    def check_body_size(self, size: int) -> None:
        if size > self.max_body_bytes:
            raise PayloadTooLarge(
                f"the request body has {size} bytes, more than the limit of "
                f"{self.max_body_bytes} (DISTILBERT_MAX_BODY_BYTES); send fewer or shorter "
                f"inputs per request")

    def check_json_depth(self, text: str) -> None:
        """Refuse JSON nested deeper than ``max_json_depth`` without parsing it (a linear scan)."""
        depth = self.max_json_depth
        found = json_depth(text, stop_above=depth)
        if found > depth:
            raise BadRequest(
                f"the request JSON is nested more than {depth} levels deep "
                f"(DISTILBERT_MAX_JSON_DEPTH); catalog requests need at most 4-5 levels, e.g. "
                f'{{"inputs": {{"column": ["text", ...]}}}}')

    # --- checks on parsed rows and params ---------------------------------------------------
    def check_items(self, count: int) -> None:
        if count > self.max_items:
            raise PayloadTooLarge(
                f"the request has {count} inputs, more than the limit of {self.max_items} per "
                f"request (DISTILBERT_MAX_ITEMS); split it into several requests")

    def check_cell(self, column: str, index: int, value: Any) -> None:
        """Length of one input cell (a string, or a list of words) and that it is valid text."""
        if isinstance(value, str):
            size = len(value)
            texts = (value,)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            size = sum(len(v) + 1 for v in value)
            texts = value
        else:
            return  # not text: the task's validate_row says what to send instead
        if size > self.max_text_chars:
            raise PayloadTooLarge(
                f"{column}[{index}] has {size} characters, more than the limit of "
                f"{self.max_text_chars} (DISTILBERT_MAX_TEXT_CHARS); shorten it or split it")
        for text in texts:
            if not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise BadRequest(
                        f"{column}[{index}] is not valid Unicode text (it holds a lone "
                        f"surrogate escape such as \\ud800); send UTF-8 text") from None

    def check_params(self, params: Mapping[str, Any], specs: Mapping[str, Any]) -> None:
        """Bound each parsed param whose spec (the task's ``Param``) names one of these limits."""
        for name, spec in specs.items():
            value, limit = params.get(name), getattr(spec, "limit", None)
            if limit is None or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            bound = getattr(self, limit)
            if value > bound:
                raise BadRequest(f"params.{name} is {value}, more than the limit of {bound} "
                                 f"({self.env_names()[limit]})")


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def json_depth(text: str, stop_above: int | None = None) -> int:
    """Deepest nesting of ``[``/``{`` in JSON text, ignoring brackets inside strings.

    Stops once the depth passes ``stop_above``. Invalid JSON is not diagnosed here (the parser
    does that); only brackets outside string literals are counted, at regex speed.
    """
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    return deepest
        else:
            depth -= 1
    return deepest
