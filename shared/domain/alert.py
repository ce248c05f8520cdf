"""SIGNL4's inbound webhook, its side of the conversation (pure): the vocabulary (X-S4-Status
values, the source system), the limits of an alert, and the payload built from a Halo event.
Posting it is shared/adapters/signl4.py's job.

Pure: no I/O. Halo's model and the policy's decision are only read here, so they are imported
for type checking alone: shared/domain/halo.py imports `AlertStatus` from this module (a guide body may
carry an X-S4-Status).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.domain.halo import HaloEvent
    from shared.domain.policy import Decision
    from shared.settings import RelaySettings


class AlertStatus(str, Enum):
    """The three values of SIGNL4's X-S4-Status."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


SOURCE_SYSTEM = "HaloPSA"
TITLE_MAX_CHARS = 250
MESSAGE_MAX_CHARS = 4000  # the alert's Message (Halo's details as plain text)
PARAMETER_MAX_CHARS = 500
# The payload's size once encoded as the ledger stores it and SIGNL4 gets it: UTF-8 bytes of
# json.dumps(payload, ensure_ascii=False) (queue messages use the same escapes, minus spaces).
# Two Azure limits set it:
# - Azure Table: a string property holds at most 64 KiB of UTF-16, i.e. 32,768 code units, and
#   the ledger keeps a waiting payload in one string property. A UTF-8 byte count is never
#   below the UTF-16 unit count, so 32,000 bytes is at most 32,000 units.
# - Azure Queue: at most 64 KiB (65,536 bytes) per message, which the Functions host writes
#   base64-encoded: at most 49,152 bytes of JSON, envelope included (shared/delivery/outbox.py).
PAYLOAD_MAX_BYTES = 32_000
# Parameters trimmed last (Title) or never (SIGNL4's own X-S4-* fields, the ticket id).
_TRIM_LAST = ("Title",)
_ELLIPSIS = "…"
_ELLIPSIS_BYTES = len(_ELLIPSIS.encode("utf-8"))
# What no text from outside keeps, in either direction (a SIGNL4 alert, a note in Halo), so a
# ticket, a responder's name or an annotation can neither hide nor reorder what is shown:
# - C0 controls but tab and line feed, DEL and C1 are dropped (json.dumps writes each as \u00XX,
#   six bytes, and none belongs in an alert or a note); vertical tab and form feed are a space;
#   a lone CR (CR LF is one line break before this table) and U+2028/U+2029 are a line break;
# - bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) are dropped:
#   "Pay \u202eexe.fdp\u202c invoice" would show as "Pay pdf.exe invoice";
# - zero-width space, word joiner and BOM (U+200B, U+2060, U+FEFF) are dropped: they hide in
#   words and names. ZWNJ and ZWJ (U+200C, U+200D) stay: scripts and emoji sequences need them.
_CLEAN_TABLE: dict[int, str | None] = {
    **{code: None for code in (*range(0x00, 0x20), *range(0x7F, 0xA0)) if code not in (9, 10)},
    0x0B: " ",
    0x0C: " ",
    0x0D: "\n",
    0x2028: "\n",
    0x2029: "\n",
    **{code: None for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))},
    0x200B: None,
    0x2060: None,
    0xFEFF: None,
}
# The same table as one character class: str.translate is quick on ASCII only; on other text a
# substitution that visits only the characters to clean is several times faster.
_CLEAN_CHARS = re.compile(
    "[" + "".join(re.escape(chr(code)) for code in sorted(_CLEAN_TABLE)) + "]"
)


def _clean_char(match: re.Match[str]) -> str:
    return _CLEAN_TABLE[ord(match.group())] or ""


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + _ELLIPSIS


def clean_text(text: str) -> str:
    """Text fit for an alert, a Halo note and storage, whichever way it goes: line breaks as LF,
    no control or hiding format characters (see _CLEAN_TABLE), and no lone surrogates (which
    cannot be encoded as UTF-8 at all; they become '?'). Idempotent."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if text.isascii():
        return text.translate(_CLEAN_TABLE)  # and no surrogate to replace
    text = _CLEAN_CHARS.sub(_clean_char, text)
    return text.encode("utf-8", "replace").decode("utf-8")


def encoded_size(payload: Mapping[str, Any]) -> int:
    """Bytes of the payload as the ledger stores it: UTF-8 JSON, non-ASCII unescaped."""
    return len(json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def fit_payload(payload: Mapping[str, Any], max_bytes: int = PAYLOAD_MAX_BYTES) -> dict[str, Any]:
    """The payload with clean text, trimmed to at most `max_bytes` encoded: Message first, then
    the longest parameters, then Title. SIGNL4's X-S4-* fields and numbers are never touched.
    Pure and idempotent."""
    fitted = {
        clean_text(key) if isinstance(key, str) else key: (
            clean_text(value) if isinstance(value, str) else value
        )
        for key, value in payload.items()
    }
    if _size_bound(fitted) <= max_bytes:
        return fitted  # the usual case, without encoding anything
    size = encoded_size(fitted)
    for key in _trim_order(fitted):
        if size <= max_bytes:
            break
        cost = _text_cost(fitted[key])
        # Never below the ellipsis: a trimmed text says it was trimmed, and stays non-empty.
        fitted[key] = _fit_text(fitted[key], max(_ELLIPSIS_BYTES, cost - (size - max_bytes)))
        size = encoded_size(fitted)
    if size > max_bytes:
        raise ValueError(f"the payload's fixed fields alone exceed {max_bytes} bytes")
    return fitted


def _size_bound(payload: Mapping[str, Any]) -> int:
    """An upper bound of encoded_size, cheap: in text that went through clean_text no character
    takes more than four bytes. Unbounded (forcing a measurement) for other kinds of values."""
    bound = 2  # {}
    for key, value in payload.items():
        if not isinstance(key, str) or not isinstance(value, (str, int)):
            return 1 << 62
        # quotes, ": " and ", " around each entry: 8 bytes
        text = 4 * len(value) if isinstance(value, str) else len(str(value))
        bound += _text_cost(key) + text + 8
    return bound


def _trim_order(payload: Mapping[str, Any]) -> list[str]:
    texts = [
        key
        for key, value in payload.items()
        if isinstance(value, str) and not key.startswith("X-S4-")
    ]
    rest = sorted(
        (key for key in texts if key != "Message" and key not in _TRIM_LAST),
        key=lambda key: _text_cost(payload[key]),
        reverse=True,
    )
    return (
        [key for key in ("Message",) if key in texts]
        + rest
        + [key for key in _TRIM_LAST if key in texts]
    )


def _text_cost(text: str) -> int:
    """Bytes of `text` inside a JSON string (ensure_ascii=False, UTF-8), quotes excluded."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - 2


def _char_cost(char: str) -> int:
    if char in '"\\\b\f\n\r\t':
        return 2
    if char < " ":
        return 6
    return len(char.encode("utf-8"))


def _fit_text(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` that, with an ellipsis, takes at most `max_bytes` encoded."""
    if _text_cost(text) <= max_bytes:
        return text
    room = max_bytes - _ELLIPSIS_BYTES
    if room < 0:
        return ""
    used = 0
    for index, char in enumerate(text):
        used += _char_cost(char)
        if used > room:
            return text[:index].rstrip() + _ELLIPSIS
    return text  # not reached: the whole text would have fitted


def build_payload(event: HaloEvent, decision: Decision, settings: RelaySettings) -> dict[str, Any]:
    """The JSON body SIGNL4 gets. Every key becomes an alert parameter, so empty ones are left out."""
    if decision.status is None:
        raise ValueError("a skip decision has no SIGNL4 payload")
    ticket = event.ticket
    # Cleaned before choosing: a summary of control characters alone is no summary.
    summary, reference = _clean(ticket.summary), _clean(ticket.reference)
    title = summary or f"HaloPSA ticket {ticket.id}"
    if reference and reference not in title:
        title = f"{reference}: {title}"
    message = (
        _clean(ticket.details) or _clean(event.message) or summary or f"HaloPSA ticket {ticket.id}"
    )
    payload: dict[str, Any] = {
        "Title": _bounded(title, TITLE_MAX_CHARS),
        "Message": _bounded(message, MESSAGE_MAX_CHARS),
        "X-S4-ExternalID": ticket.external_id,
        "X-S4-Status": decision.status.value,
        "X-S4-SourceSystem": SOURCE_SYSTEM,
        "TicketId": ticket.id,
        "Reference": reference,
        "Client": ticket.client,
        "Site": ticket.site,
        "Priority": ticket.priority or _as_text(ticket.priority_id),
        "Type": ticket.ticket_type,
        "Team": ticket.team or _as_text(ticket.team_id),
        "Agent": ticket.agent or _as_text(ticket.agent_id),
        "User": ticket.user,
        "Status": ticket.status_name or _as_text(ticket.status_id),
        "HaloEvent": event.event,
        "DateOccurred": ticket.date_occurred.isoformat() if ticket.date_occurred else None,
    }
    if settings.halo_base_url:
        from shared.redaction import strip_userinfo  # loaded already (the relay's logging)

        # Never a user name or password of HALO_BASE_URL: the Link reaches everyone paged.
        base = strip_userinfo(settings.halo_base_url).rstrip("/")
        payload["Link"] = f"{base}/ticket?id={ticket.id}"
    elif event.link:
        payload["Link"] = event.link  # the guide body's own link, kept on migration
    if decision.scenario:
        payload["X-S4-AlertingScenario"] = decision.scenario
    bounded: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, str) and key not in ("Title", "Message"):
            text = _clean(value)
            value = _bounded(text, PARAMETER_MAX_CHARS) if text else None
        if value is not None:
            bounded[key] = value
    # Characters are bounded above; bytes are what Azure counts (queue message, table cell).
    return fit_payload(bounded)


def _clean(text: str | None) -> str | None:
    cleaned = clean_text(text).strip() if text else ""
    return cleaned or None


def _as_text(value: int | None) -> str | None:
    return None if value is None else str(value)
