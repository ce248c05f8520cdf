"""HTML to text (shared/domain/html_text.py, read through halo.html_to_text): ticket details
as a person reads them in the alert. End users write the HTML (e-mail to ticket), so the reader
is linear, never raises and keeps the text of markup it cannot read."""

from __future__ import annotations

import itertools
import json

import pytest

from shared.domain.halo import html_to_text
from shared.domain.html_text import Token, html_to_plain, strip_tags
from shared.domain.html_text import tokens as html_tokens
from tests.conftest import Signl4Fake, answer, call_halopsa, http_post


@pytest.mark.parametrize(
    ("html", "text"),
    [
        # structure: a line per break and block, at most one blank line
        ("a<br/>b<p>c</p>", "a\nb\nc"),
        ("<p>one</p>\n\n\n<p>two</p>", "one\n\ntwo"),
        ("<head><title>t</title></head>body<br>next", "body\nnext"),
        # spaces and line ends fold
        ("a \t\u00a0 b\r\nc\n \n\n\nd", "a b\nc\n\nd"),
        ("  x  ", "x"),
        ("x\ry", "x\ny"),
        ("a  \n  b", "a\nb"),  # spaces around a line break are dropped
        # entities are decoded; text without markup is kept as written
        ("plain &lt;tag&gt;", "plain <tag>"),
        ("fish &amp; chips", "fish & chips"),
        ("a > b", "a > b"),
        ("x &lt;y", "x <y"),
        ("a < b and c<5", "a < b and c<5"),
        ("Log says <x then stops", "Log says <x then stops"),
        # scripts and styles are hidden, any case, however many, closed or not
        ("x<SCRIPT>alert(1)</script >y<style>p{}</STYLE>z", "xyz"),
        ("a<script>x()</script>b<script type='t'>y()</script>c<style>s</style>d", "abcd"),
        ("before<script>never closed", "before"),
        ("a<script/>b<br>c", "ab\nc"),  # a self-closed script hides nothing
        ("<head><head>x</head>y</head>z", "z"),  # head inside head: hidden until the last one
        # markup HTMLParser raised on is dropped and the rest kept
        ("Log says <![foo]> then stops", "Log says then stops"),
        ("x<![CDATA[y]]>z <!DOCTYPE html><?php echo 1 ?>w", "xz w"),
        ("a</ b>c</>d", "acd"),
        # comments end at "-->"; an unclosed one is text
        ("a<!-- x > y -->c", "ac"),
        ("x-->y<!--z-->w", "x-->yw"),  # a "-->" before the comment is text
        ("<p>unclosed comment <!-- here", "unclosed comment <!-- here"),
        # attribute values, quoted or not, end the tag where HTML does
        ('<a title="x > y">link</a> after', "link after"),
        ("<a href=x>link</a><br>next", "link\nnext"),  # an unquoted value
        ("<a b=>x<br>y", "x\ny"),  # an empty one
        ("<img src=a b=c>t<p>u", "t\nu"),
        ('<a b = "q>r">s</a><br>t', "s\nt"),  # spaces around "=", ">" inside the quotes
        ("<a b='it>s'>c</a><br>d", "c\nd"),
        ('<a b="x">one</a> <i c="y">two</i>', "one two"),  # each value ends at its own quote
        ('<a b="x>">t', "t"),  # a value ending in ">"
        ('<a b="x=">t', "t"),  # a value ending in "="
        # a tag never closed: its text is kept
        ('<p>Server down</p><img src="x', 'Server down\n<img src="x'),
        ('a <b title="open>bold</b> and <i>more</i>', "a bold and more"),  # an unclosed quote
    ],
)
def test_html_reads_as_a_person_would(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_nothing_left_to_read_is_none() -> None:
    assert html_to_text("<style>p{}</style>   ") is None
    assert html_to_text(None) is None


def test_the_plain_reader_drops_every_script_block_too() -> None:
    text = "a<script>x()</script>b<script type='t'>y()</script>c<style>s</style>d"
    assert html_to_plain(text) == "abcd"


# --- hostile ticket text: what end users can put into a ticket (e-mail to ticket) ---


def _repeat(pattern: str, length: int = 10_000) -> str:
    return (pattern * (length // len(pattern) + 1))[:length]


@pytest.mark.parametrize(
    ("pattern", "expected_start"),
    [
        ("<x ", "<x <x <x"),
        ("<a\t", "<a <a <a"),
        ('<a b="', '<a b="<a b="'),
        ("<!--", "<!--<!--"),
    ],
)
def test_unterminated_markup_is_kept_as_text(pattern: str, expected_start: str) -> None:
    # These took ~1 s CPU each in HTMLParser (quadratic); bench/html_worst.py has the figures.
    text = html_to_text(_repeat(pattern))
    assert text is not None and text.startswith(expected_start)
    assert len(text) > 5_000  # the text is shown, not swallowed


def test_entities_that_would_crash_or_smuggle_controls_are_defused() -> None:
    assert html_to_text("&#" + "1" * 5000 + ";") == "\ufffd"  # html.unescape raised here
    assert html_to_text("&#x" + "f" * 5000) == "\ufffd"
    assert html_to_text("<b>a</b>&#0;b&#x7f;c") == "a\ufffdbc"
    assert html_to_text("<p>line&#13;&#10;next&#12;word&#1;</p>") == "line\nnext word"


def test_strip_tags_is_the_plain_fallback() -> None:
    assert strip_tags("<b>x</b> &amp; <y") == "x & <y"
    assert strip_tags("a <b c='>' d> e") == "a ' d> e"  # crude, but text is never lost


# --- the tokens: each kind, tiling the input once ---


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("", []),
        ("a<p>", [("text", 0, 1), ("start", 1, 4, "p")]),
        ("a<p>b", [("text", 0, 1), ("start", 1, 4, "p"), ("text", 4, 5)]),
        ("a<!--b-->c", [("text", 0, 1), ("markup", 1, 9), ("text", 9, 10)]),
        (
            "<!---->x<!--y-->z",
            [("markup", 0, 7), ("text", 7, 8), ("markup", 8, 16), ("text", 16, 17)],
        ),
        ("a<!--b", [("text", 0, 1), ("tail", 1, 6)]),
        ("<script></script>", [("start", 0, 8, "script"), ("end", 8, 17, "script")]),
        (
            "a<script>x</script>b",
            [
                ("text", 0, 1),
                ("start", 1, 9, "script"),
                ("raw", 9, 10),
                ("end", 10, 19, "script"),
                ("text", 19, 20),
            ],
        ),
        (
            "a<?php x?>b</ c>d",
            [
                ("text", 0, 1),
                ("markup", 1, 10),
                ("text", 10, 11),
                ("markup", 11, 16),
                ("text", 16, 17),
            ],
        ),
        ("a<script/>b", [("text", 0, 1), ("start", 1, 10, "script"), ("text", 10, 11)]),
        ("<!>x", [("markup", 0, 3), ("text", 3, 4)]),
        ("a<!x", [("text", 0, 1), ("tail", 1, 4)]),
        ("a</ x", [("text", 0, 1), ("tail", 1, 5)]),
    ],
)
def test_tokens_name_each_kind(html: str, expected: list[tuple]) -> None:
    assert list(html_tokens(html)) == [Token(*token) for token in expected]


def test_html_tokens_tile_the_input_once() -> None:
    for text in (
        _repeat("<x "),
        _repeat('<a b="'),
        "a<p>b</p><!--c--><script>d</script>e<![f]><g h='>'>i<j",
    ):
        spans = [(token.start, token.end) for token in html_tokens(text)]
        assert spans[0][0] == 0 and spans[-1][1] == len(text)
        assert all(end > start for start, end in spans)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))


# --- through the real HTTP function, SIGNL4 on loopback ---


def _post(functions: dict, body: object) -> tuple[int, dict]:
    response, queued = call_halopsa(functions, http_post(body))
    assert queued == []
    return answer(response)


def test_markup_that_crashed_html_parser_still_pages(
    functions: dict, signl4: Signl4Fake, live_env: dict
) -> None:
    ticket = {"summary": "Disk\x07 full", "details": "Log says <![foo]> then stops\x00\r\n!"}
    code, body = _post(
        functions, {"event": "New Ticket Logged", "object_id": 4250, "ticket": ticket}
    )
    assert (code, body["result"]) == (200, "sent")
    [sent] = signl4.events
    assert sent["Message"] == "Log says then stops\n!"
    assert sent["Title"] == "Disk full"
    assert not any(
        0 <= ord(char) < 32 and char not in "\n\t" for char in json.dumps(sent, ensure_ascii=False)
    )
