"""HTML to plain text in one forward pass: linear in its input, never raises.

Ticket details come from end users, so any byte sequence can arrive; the stdlib `HTMLParser` is
quadratic on an unterminated tail and raises on some markup. Each step here consumes a token or
hands an unterminated rest to `strip_tags` once; regexes are anchored, one way to match a
character. Block elements become line breaks (`<br/>` one), `script`/`style` and `head` contents
are dropped, entities decoded; whitespace folding is the caller's business.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Literal, NamedTuple

BLOCKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "hr"})
# Raw text elements: their contents are not markup, and are skipped up to "</name".
_RAW_END = {name: re.compile("</" + name, re.IGNORECASE) for name in ("script", "style")}
_HIDDEN = frozenset({"head"})  # contents are markup, but not shown

# Where markup may start; any other "<" is a character of the text ("a < b", "<<<").
_MARKUP_START = re.compile(r"<[A-Za-z/!?]")
# After "<": an optional "/" and a tag name (HTML: a letter, then anything but space / or >).
_TAG_NAME = re.compile(r"(/?)([A-Za-z][^\t\n\f\r />]*)")
# Inside a tag: everything up to the next ">" or "=" (a "=" may open a quoted value).
_TAG_RUN = re.compile(r"[^>=]*")
_QUOTED_VALUE = re.compile(r"=[\t\n\f\r ]*([\"'])")
# A numeric character reference with more digits than any code point has. html.unescape would
# feed it to int(), which raises past 4,300 digits (and is slow well before).
_LONG_CHARREF = re.compile(r"&#(?:[xX]0*[0-9a-fA-F]{7,}|0*[0-9]{8,});?")
# Fallback: a tag is "<" up to the next ">" with no "<" inside. Each failed attempt stops at the
# next "<", so a substitution over the whole text is linear.
_SIMPLE_TAG = re.compile(r"<[^<>]*>")


class Token(NamedTuple):
    """One piece of the input: `text[start:end]`. Tokens tile the input in order."""

    kind: Literal["text", "start", "end", "markup", "raw", "tail"]
    start: int
    end: int
    name: str = ""  # tag name, lower-case, for "start" and "end"


def tokens(text: str) -> Iterator[Token]:
    """Split HTML into tokens, each character exactly once, left to right (the stdlib
    `HTMLParser` rescans an unterminated tail on every feed: 10,000 chars of `<x ` cost ~1 s CPU;
    it also raises on markup such as `<![foo]>`).

    `markup` is a comment, doctype, processing instruction or CDATA section (all dropped);
    `raw` is the contents of script/style; `tail` is the rest of the input from an unterminated
    tag or comment on (there is no later ">" to end it, so it is read as text).
    """
    n = len(text)
    pos = 0  # where scanning resumes
    text_start = 0  # start of the text not yet yielded (a literal "<" stays in it)
    while True:
        start = _MARKUP_START.search(text, pos)
        if start is None:
            if text_start < n:
                yield Token("text", text_start, n)
            return
        lt = start.start()
        token = _token_at(text, lt)
        if token is None:  # "a < b": a literal "<", part of the text
            pos = lt + 1
            continue
        if lt > text_start:
            yield Token("text", text_start, lt)
        yield token
        pos = token.end
        if token.kind == "start" and token.name in _RAW_END and text[pos - 2] != "/":
            close = _RAW_END[token.name].search(text, pos)
            raw_end = close.start() if close else n
            if raw_end > pos:
                yield Token("raw", pos, raw_end)
            pos = raw_end
        text_start = pos
        if token.kind == "tail":
            return


def _token_at(text: str, lt: int) -> Token | None:
    """The token starting with the "<" at `lt`, or None when that "<" is just a character."""
    n = len(text)
    if text.startswith("<!--", lt):
        close = text.find("-->", lt + 4)
        return Token("markup", lt, close + 3) if close >= 0 else Token("tail", lt, n)
    match = _TAG_NAME.match(text, lt + 1)
    if match is None:
        if text.startswith(("<!", "<?", "</"), lt):  # a bogus comment, up to the next ">"
            close = text.find(">", lt + 2)
            return Token("markup", lt, close + 1) if close >= 0 else Token("tail", lt, n)
        return None
    end = _tag_end(text, match.end())
    if end is None:
        return Token("tail", lt, n)
    return Token("end" if match.group(1) else "start", lt, end, match.group(2).lower())


def _tag_end(text: str, pos: int) -> int | None:
    """Index just past the ">" that ends the tag whose attributes start at `pos`; None at EOF.

    A quoted attribute value may hold ">". Every step moves forward, so this is linear in the
    distance scanned, and it only scans to the end of the input once (the caller then stops).
    """
    n = len(text)
    while True:
        run = _TAG_RUN.match(text, pos)
        pos = run.end() if run else pos  # it always matches (possibly empty)
        if pos >= n:
            return None
        if text[pos] == ">":
            return pos + 1
        value = _QUOTED_VALUE.match(text, pos)  # text[pos] is "="
        if value is None:
            pos += 1
            continue
        close = text.find(value.group(1), value.end())
        if close < 0:
            return None
        pos = close + 1


def unescape(text: str) -> str:
    """html.unescape, safe on any input (over-long numeric references become U+FFFD)."""
    if "&" not in text:
        return text
    return html.unescape(_LONG_CHARREF.sub("\ufffd", text))


def strip_tags(text: str) -> str:
    """The plain fallback: drop anything that looks like a tag, decode entities."""
    return unescape(_SIMPLE_TAG.sub("", text))


def html_to_plain(text: str) -> str:
    """Ticket details are HTML; SIGNL4 shows plain text. On any fault: `strip_tags`."""
    try:
        return _render(text)
    except Exception:  # a bug here must cost formatting, never the page
        return strip_tags(text)


def _render(text: str) -> str:
    parts: list[str] = []
    hidden = 0
    for token in tokens(text):
        kind = token.kind
        if kind == "text":
            if not hidden:
                parts.append(unescape(text[token.start : token.end]))
        elif kind == "tail":
            if not hidden:
                parts.append(strip_tags(text[token.start : token.end]))
        elif kind in ("start", "end"):
            if token.name in _HIDDEN:
                hidden = hidden + 1 if kind == "start" else max(0, hidden - 1)
            elif token.name in BLOCKS:
                # <br/> (and <p/>) is one line break; <p>..</p> one before and one after.
                parts.append("\n")
    return "".join(parts)
