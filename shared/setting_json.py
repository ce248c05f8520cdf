"""JSON-valued settings (RELAY_ROUTES, SIGNL4_TEAM_SECRETS) read within bounds (pure).

A setting is typed by a person or a pipeline, unchecked on the way in: unbounded, a value nested
a thousand deep ends in a RecursionError and megabytes are parsed on every cold start. So a JSON
setting is at most MAX_SETTING_BYTES (100 rules of a few hundred characters fit in 64 KiB) and
nests at most MAX_SETTING_DEPTH deep (RELAY_ROUTES' deepest place, a quiet-hours day, is six).
Messages say what is wrong (size, depth, line and column), never the value: it may be a secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

MAX_SETTING_BYTES = 64 * 1024
MAX_SETTING_DEPTH = 20

# A JSON string (escapes included): its brackets are text, not nesting.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class OutOfBounds(ValueError):
    """The value is too large or nests too deep to be read at all."""


def size_problem(value: str) -> str | None:
    """Why a JSON setting's value is too large to read, or None."""
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_SETTING_BYTES:
        return f"is {size} bytes long; a JSON setting may hold at most {MAX_SETTING_BYTES} (64 KiB)"
    return None


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in `text` (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub('""', text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(0, depth - 1)
    return deepest


def read_json_setting(
    text: str, *, object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None
) -> Any:
    """Parse a JSON setting within the bounds. Raises ValueError with a message that completes
    "<SETTING> ..." (e.g. "is not valid JSON (line 1, column 5)"), never holding the value."""
    problem = size_problem(text)
    if problem:
        raise OutOfBounds(problem)
    if nesting_depth(text) > MAX_SETTING_DEPTH:
        raise OutOfBounds(f"nests arrays and objects more than {MAX_SETTING_DEPTH} levels deep")
    try:
        return json.loads(text, object_pairs_hook=object_pairs_hook)
    except json.JSONDecodeError as error:
        raise ValueError(f"is not valid JSON (line {error.lineno}, column {error.colno})") from None
    except (RecursionError, ValueError) as error:  # e.g. a number past Python's digit limit
        raise ValueError(f"is not usable JSON ({type(error).__name__})") from None
