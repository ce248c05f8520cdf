"""What every HTTP entry answers with: `RelayResponse`, a RelayError as its JSON answer, and the
request limits (body size, batch size, inline time of a batch), kept here once.

The handlers and `python -m shared preview` check a body with the same functions and figures,
so the preview answers what the relay would. Light on purpose (errors only): preview imports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shared.errors import (
    BatchTooLarge,
    PayloadTooLarge,
    RelayError,
    Unauthorized,
    UnsupportedPayload,
)

MAX_BODY_BYTES = 1024 * 1024
# A batch stops sending inline after this long and queues the rest: host.json's functionTimeout
# is 120 s, and the event being sent when the time runs out still needs its own retry budget.
BATCH_INLINE_SECONDS = 60.0
BASIC_REALM = 'Basic realm="halopsa-signl4-relay", charset="UTF-8"'
INTERNAL = {"error": "internal", "message": "unexpected fault; see the log"}


@dataclass(frozen=True)
class RelayResponse:
    status_code: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def json_bytes(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False, default=str).encode("utf-8", "replace")


def error_response(error: RelayError, external_id: str | None = None) -> RelayResponse:
    """The caller's answer for an error: its stable code and message (plus the ticket's key)."""
    body: dict[str, Any] = error.to_body()
    if external_id:
        body["externalId"] = external_id
    headers = {"WWW-Authenticate": BASIC_REALM} if isinstance(error, Unauthorized) else {}
    return RelayResponse(error.status_code, body, headers)


def internal_error() -> RelayResponse:
    """Our own fault: a 500 that says where to look and carries nothing of the fault itself."""
    return RelayResponse(500, dict(INTERNAL))


def check_body_size(body: bytes) -> None:
    """Refuse a body above MAX_BODY_BYTES before reading it (Halo sends far less)."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(
            f"the body is {len(body)} bytes; the relay takes at most {MAX_BODY_BYTES} (1 MiB)"
        )


def check_batch_size(parsed: Any, max_batch: int, *, consequence: str | None = None) -> None:
    """A batch is refused whole when it holds more than `max_batch` (RELAY_MAX_BATCH) events,
    or none, before any is sent: the answer, the log and the time spent grow with the count.
    `consequence` ends the message (the preview says what would happen instead)."""
    if not isinstance(parsed, list):
        return
    if len(parsed) > max_batch:
        tail = consequence or (
            f". Nothing was sent: set HaloPSA's webhook batching to Count with at most "
            f"{max_batch}, or turn batching off"
        )
        raise BatchTooLarge(
            f"the batch holds {len(parsed)} events; the relay takes at most "
            f"{max_batch} per request (RELAY_MAX_BATCH){tail}"
        )
    if not parsed:
        raise UnsupportedPayload("the body is an empty JSON array")
