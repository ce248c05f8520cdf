"""Redaction: secrets kept out of text that leaves the relay, and outside text kept from
forging log lines. Every answer and every log line that carries text from outside passes here.

`scrub` replaces each secret in every form a server could echo it in; `leaks` is the net behind
it (decodes a copy every way it knows); `redact_echo` is for a third party's text (scrub,
withhold when the net still finds a piece, only then cut); `log_safe` keeps a value on one
visible log line; `strip_userinfo` and `redact_url` clean URLs; `RedactSecrets` filters library
loggers that log our URLs (urllib3).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import unquote, unquote_plus, urlsplit

REDACTED = "***"
# A piece of a secret this long (or half the secret, if that is shorter) found anywhere in a
# decoded copy of the text counts as a leak. Six: a 6-character piece of a random secret turns
# up in an ordinary error text by chance about never, and 7 of 8 known characters is no secret.
PIECE_CHARS = 6
# The net decodes at most this many characters, and at most this many rounds deep: enough for
# an echo near the start of a short error text, bounded for a hostile long one.
SCAN_CHARS = 8192
DECODE_ROUNDS = 4
# Query parameters whose value is a credential wherever they appear in a URL we log.
SECRET_QUERY_PARAMS = frozenset(
    {
        "code",  # Azure Functions function key
        "x-functions-key",
        "sig",  # SAS signature
        "token",
        "access_token",
        "apikey",
        "api_key",
        "key",
        "password",
        "secret",
    }
)

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


# --- secrets ---


def _char_pattern(char: str) -> str:
    """One character of a secret, raw or percent-encoded (any hex case, any nesting depth)."""
    encoded = "".join(f"%(?:25)*{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
    options = [re.escape(char), encoded]
    if char == " ":
        options.append(r"\+")
    return "(?:" + "|".join(options) + ")"


@lru_cache(maxsize=32)
def _secret_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    forms = {form for secret in secrets for form in (secret, secret.strip()) if form}
    if not forms:
        return None
    # Longest first, so a secret that contains another is replaced whole.
    alternatives = ["".join(map(_char_pattern, form)) for form in sorted(forms, key=len)[::-1]]
    return re.compile("|".join(alternatives), re.IGNORECASE)


def _key(secrets: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({secret for secret in secrets if secret}))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret, in any encoding, replaced by ***: raw,
    percent-encoded with upper, lower or mixed-case hex (also partly encoded, and encoded more
    than once), plus-for-space; case-insensitively. A URL holding the secret keeps its harmless
    parts (`https://connect.signl4.com/webhook/***`)."""
    pattern = _secret_pattern(_key(secrets))
    return text if pattern is None else pattern.sub(REDACTED, text)


def _decoded_copies(text: str) -> set[str]:
    import html  # only when SIGNL4 refused an event: its entity table is not for cold start

    seen: set[str] = set()
    frontier = {text}
    for _ in range(DECODE_ROUNDS):
        seen |= frontier
        frontier = {
            decode(copy) for copy in frontier for decode in (unquote, unquote_plus, html.unescape)
        } - seen
        if not frontier:
            break
    return {copy.casefold() for copy in seen | frontier}


def _pieces(secret: str) -> set[str]:
    folded = secret.strip().casefold()
    if not folded:
        return set()
    size = min(PIECE_CHARS, max(1, (len(folded) + 1) // 2))
    return {folded[start : start + size] for start in range(len(folded) - size + 1)}


def leaks(text: str, secrets: Iterable[str]) -> bool:
    """Does any long-enough piece of a secret survive in `text`, however it is encoded? The
    net behind `scrub`: it decodes a copy every way `scrub` knows and more (repeated
    percent-decoding, plus-for-space, HTML entities, case folding)."""
    pieces = {piece for secret in _key(secrets) for piece in _pieces(secret)}
    if not pieces:
        return False
    copies = _decoded_copies(text[:SCAN_CHARS])
    return any(piece in copy for copy in copies for piece in pieces)


def redact_echo(text: str, secrets: Iterable[str], limit: int) -> str | None:
    """A third party's text made safe to pass on: scrubbed, then cut to `limit` characters;
    None (withhold it all) when a piece of a secret is still in it after scrubbing. Cutting
    first could split a secret so that neither half is recognised."""
    known = _key(secrets)
    scrubbed = scrub(text, known)
    if leaks(scrubbed, known):
        return None
    return scrubbed[:limit]


class RedactSecrets(logging.Filter):
    """Scrubs `secrets` from every record of the loggers it is added to (urllib3 logs request
    URLs at DEBUG, and at WARNING on retries; their last segment is SIGNL4's secret)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            scrubbed = scrub(message, self.secrets)
            if scrubbed != message:
                record.msg, record.args = scrubbed, ()
        return True


# --- log lines ---


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def log_safe(value: object, *, quoted: bool = False) -> str:
    """`value` as text that stays on one log line and shows what it holds: CR, LF, ESC and every
    other non-printable character (C0, C1, line/paragraph separators, bidi and other format
    characters) is escaped like `repr` does (`\\n`, `\\x1b`, `\\u2028`), and so is the backslash,
    so an escape in the value cannot pass for one we made. `quoted` wraps it in '...'."""
    text = str(value)
    if not (text.isprintable() and "\\" not in text and not (quoted and "'" in text)):
        text = "".join(
            char if char.isprintable() and char != "\\" else _escape(char) for char in text
        )
        if quoted:
            text = text.replace("'", "\\'")
    return f"'{text}'" if quoted else text


# --- URLs in settings: user name and password ---


def _authority_end(rest: str) -> int:
    """Where the authority of `rest` (a URL after `//`) ends, as urlsplit reads it."""
    ends = [index for index in (rest.find(char) for char in "/?#") if index >= 0]
    return min(ends, default=len(rest))


def has_userinfo(url: str) -> bool:
    """Does `url` carry a user name or password (`https://user:pass@host`)?"""
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return False


def strip_userinfo(url: str) -> str:
    """`url` without its user name and password (`https://host/...`): a URL setting's
    credentials are never copied into an alert, an answer or anything printed."""
    scheme, sep, rest = url.partition("//")
    if not sep:
        return url
    end = _authority_end(rest)
    authority = rest[:end]
    if "@" not in authority:
        return url
    return scheme + sep + authority.rpartition("@")[2] + rest[end:]


# --- URLs in access logs ---

_QUERY_PARAM = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;#\s'\"]+)=(?P<value>[^&;#\s'\"]*)")


def _redact_param(match: re.Match[str]) -> str:
    name = match.group("name")
    if unquote_plus(name).strip().casefold() in SECRET_QUERY_PARAMS:
        return f"{match.group('lead')}{name}={REDACTED}"
    return match.group(0)


def redact_url(url: str, secrets: Iterable[str] = ()) -> str:
    """`url` (or a log line holding one) with secret query parameters' values and every one of
    `secrets` (say a token that is a path segment) replaced by ***. Not escaped: pass the
    result through `log_safe` when it goes into a log line."""
    return scrub(_QUERY_PARAM.sub(_redact_param, url), secrets)
