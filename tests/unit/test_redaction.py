"""shared.redaction: secrets out of echoed text and URLs, outside text out of log structure."""

from __future__ import annotations

import logging
import random
from urllib.parse import quote, quote_plus

import pytest

from shared.redaction import (
    PIECE_CHARS,
    RedactSecrets,
    leaks,
    log_safe,
    redact_echo,
    redact_url,
    scrub,
)

SECRET = "s3cr3t-TEAM/4f9a 1c"


def _encode_each(secret: str, pick: random.Random) -> str:
    """Each character raw, or percent-encoded in upper, lower or mixed hex (or + for space)."""
    out = []
    for char in secret:
        way = pick.randrange(5)
        hexed = "".join(f"%{byte:02X}" for byte in char.encode())
        if way == 0:
            out.append(char)
        elif way == 1:
            out.append(hexed)
        elif way == 2:
            out.append(hexed.lower())
        elif way == 3:
            out.append("".join(c.lower() if pick.random() < 0.5 else c for c in hexed))
        else:
            out.append("+" if char == " " else hexed.replace("%", "%25"))  # encoded twice
    return "".join(out)


# --- scrub ---


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        SECRET.upper(),
        quote(SECRET, safe=""),
        quote(SECRET, safe="").lower(),
        quote(SECRET),
        quote_plus(SECRET),
        "s3cr3t%2dteam%2F4F9A%201C",  # mixed case, partly encoded
        quote(quote(SECRET, safe=""), safe=""),  # encoded twice
        f"https://connect.signl4.com/webhook/{quote(SECRET, safe='')}",
        f"  {SECRET}  ",
    ],
)
def test_scrub_removes_every_form(form: str) -> None:
    scrubbed = scrub(f"before {form} after", [SECRET])
    assert scrubbed.startswith("before ") and scrubbed.endswith(" after")
    assert "***" in scrubbed
    assert not leaks(scrubbed, [SECRET])


def test_scrub_keeps_the_harmless_part_of_the_webhook_url() -> None:
    url = f"https://connect.signl4.com/webhook/{quote(SECRET, safe='')}"
    assert (
        scrub(f"POST {url} failed", [SECRET])
        == "POST https://connect.signl4.com/webhook/*** failed"
    )


def test_scrub_any_random_encoding_mix_seeded() -> None:
    pick = random.Random(8)
    secrets = [SECRET, "ünïcødé sëcret", "Ab c/d%2F?#é&=+~x", "x" * 64 + "Y"]
    for _ in range(400):
        secret = pick.choice(secrets)
        echoed = _encode_each(secret, pick)
        scrubbed = scrub(f"unknown team {echoed}.", [secret])
        assert scrubbed == "unknown team ***.", (secret, echoed)


def test_scrub_replaces_the_longest_secret_whole() -> None:
    assert scrub("a-long-secret", ["long", "a-long-secret"]) == "***"
    assert scrub("nothing here", []) == "nothing here"
    assert scrub("nothing here", [""]) == "nothing here"


# --- leaks (the safety net) ---


def test_a_piece_of_the_secret_is_a_leak_in_any_encoding() -> None:
    piece = SECRET[3 : 3 + PIECE_CHARS]
    assert leaks(f"text {piece} text", [SECRET])
    assert leaks(f"text {quote(piece, safe='').lower()} text", [SECRET])
    assert leaks(f"text {piece.upper()} text", [SECRET])
    assert leaks(f"text {quote(quote(piece, safe=''), safe='')} text", [SECRET])
    assert not leaks(f"text {piece[:-1]} text", [SECRET])  # shorter than a piece
    assert not leaks("Error raising event.", [SECRET])


def test_a_short_secret_leaks_by_half() -> None:
    assert leaks("team ab12 unknown", ["ab12cd34"])  # 8 chars: pieces of 4
    assert not leaks("team ab1 unknown", ["ab12cd34"])


# --- redact_echo: scrub, withhold, then cut ---


def test_secret_at_the_cut_is_scrubbed_before_cutting() -> None:
    text = "x" * 195 + SECRET + " tail"
    echoed = redact_echo(text, [SECRET], 200)
    assert echoed == "x" * 195 + "***" + " t"
    assert not leaks(echoed, [SECRET])


def test_long_secret_spanning_the_cut_leaves_no_piece() -> None:
    secret = "L0ng-" + "k3y" * 40
    echoed = redact_echo("y" * 180 + quote(secret, safe="").lower(), [secret], 200)
    assert echoed == "y" * 180 + "***"


def test_text_that_still_holds_a_piece_is_withheld() -> None:
    # An encoding scrub() does not know (HTML entities): the net catches it.
    entity = "".join(f"&#{ord(c)};" for c in SECRET)
    assert redact_echo(f"bad team {entity}", [SECRET], 200) is None
    assert redact_echo("Error raising event.", [SECRET], 200) == "Error raising event."
    assert redact_echo("e" * 500, [SECRET], 200) == "e" * 200


# --- log_safe ---


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("plain text, é and 日本", "plain text, é and 日本"),
        ("a\r\nb", "a\\r\\nb"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("tab\tnul\x00del\x7fc1\x85", "tab\\tnul\\x00del\\x7fc1\\x85"),
        ("line\u2028para\u2029bidi\u202e", "line\\u2028para\\u2029bidi\\u202e"),
        ("back\\nslash", "back\\\\nslash"),  # a literal backslash cannot pass for an escape
        (42, "42"),
    ],
)
def test_log_safe_escapes_visibly(value: object, shown: str) -> None:
    assert log_safe(value) == shown


def test_log_safe_quoted() -> None:
    assert log_safe("new ticket logged", quoted=True) == "'new ticket logged'"
    assert log_safe("it's\n", quoted=True) == "'it\\'s\\n'"


def test_log_safe_output_is_always_one_printable_line_seeded() -> None:
    pick = random.Random(6)
    alphabet = [chr(c) for c in range(0x00, 0x250)] + ["\u2028", "\u2029", "\u202e", "\ufeff"]
    for _ in range(300):
        value = "".join(pick.choice(alphabet) for _ in range(pick.randrange(1, 60)))
        shown = log_safe(value)
        assert shown.isprintable(), repr(value)
        assert len(shown.splitlines()) == 1


# --- redact_url ---


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/api/halopsa?code=KEY123", "/api/halopsa?code=***"),
        ("/api/halopsa?a=1&CODE=KEY123&b=2", "/api/halopsa?a=1&CODE=***&b=2"),
        ("/api/halopsa?%63ode=KEY123", "/api/halopsa?%63ode=***"),
        ("/x?sig=abc&token=t&password=p", "/x?sig=***&token=***&password=***"),
        ('"GET /api/x?code=KEY123 HTTP/1.1" 404 -', '"GET /api/x?code=*** HTTP/1.1" 404 -'),
        ("/api/x?codes=1&zipcode=2", "/api/x?codes=1&zipcode=2"),
    ],
)
def test_redact_url_hides_secret_query_parameters(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_url_hides_a_secret_path_segment() -> None:
    token = "inb0und-T0ken"
    assert (
        redact_url(f"/api/webhook/{token}?ExtIDParam=X", {token}) == "/api/webhook/***?ExtIDParam=X"
    )
    assert redact_url(f"/api/webhook/{quote(token).lower()}", {token}) == "/api/webhook/***"


# --- RedactSecrets ---


def test_redact_secrets_filter_scrubs_records() -> None:
    redactor = RedactSecrets()
    redactor.secrets.add(SECRET)
    record = logging.LogRecord(
        "urllib3.connectionpool", logging.DEBUG, __file__, 1, "POST %s", (quote(SECRET),), None
    )
    assert redactor.filter(record)
    assert record.getMessage() == "POST ***"


# --- the net's edges, one by one ---

LONG = "abcdefghijklmnopqrst"  # 20 characters: pieces of PIECE_CHARS


def test_every_piece_of_a_long_secret_counts_up_to_the_last_one() -> None:
    assert leaks(f"x {LONG[:PIECE_CHARS]} x", [LONG])
    assert leaks(f"x {LONG[-PIECE_CHARS:]} x", [LONG])
    assert leaks(f"x {LONG[-PIECE_CHARS - 1 : -1]} x", [LONG])
    assert not leaks(f"x {LONG[-PIECE_CHARS + 1 :]} x", [LONG])  # one short of a piece


def test_a_one_character_secret_is_its_own_piece() -> None:
    assert leaks("a-x-b", ["x"])
    assert not leaks("a-y-b", ["x"])


def test_no_secret_leaks_nothing() -> None:
    assert not leaks("anything at all", [])
    assert not leaks("anything at all", ["", "   "])


def test_the_net_decodes_several_rounds_deep_and_keeps_every_round() -> None:
    # Every piece of this secret holds a "/", so only a fully decoded copy shows one.
    slashes = "a/b/c/d/e/f/g/h"
    thrice = quote(quote(quote(slashes, safe=""), safe=""), safe="")
    assert leaks(f"team {thrice}", [slashes])
    # A secret that is itself encoded text: every piece is destroyed by one decoding or the
    # other, so only the copy as sent shows it. The copy as sent is kept.
    assert leaks("team &lt;%41&gt; end", ["&lt;%41&gt;"])


def test_log_safe_quoted_escapes_a_quote_in_otherwise_plain_text() -> None:
    assert log_safe("it's", quoted=True) == "'it\\'s'"
    assert log_safe("it's") == "it's"
    assert log_safe("plain", quoted=True) == "'plain'"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("\x00", "\\x00"),
        ("\xad", "\\xad"),  # soft hyphen: invisible, below U+0100
        ("\u061c", "\\u061c"),
        ("\ufeff", "\\ufeff"),
        ("\U000e0001", "\\U000e0001"),  # a tag character, past U+FFFF
    ],
)
def test_log_safe_escape_widths(value: str, shown: str) -> None:
    assert log_safe(value) == shown


def test_a_secret_with_a_lone_surrogate_is_scrubbed_too() -> None:
    # os.environ turns bytes that are not UTF-8 into lone surrogates (surrogateescape).
    secret = "key\udcffvalue"
    assert scrub(f"team {secret}.", [secret]) == "team ***."
    assert scrub("team key%ED%B3%BFvalue.", [secret]) == "team ***."
