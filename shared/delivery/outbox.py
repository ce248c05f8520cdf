"""The outbox's messages: events that could not be sent inline, on a storage queue until they are.

The HTTP function parks an event in the ticket's mailbox (the ledger) and puts a message on
`signl4-outbox` when SIGNL4 is unavailable or earlier events of the ticket still wait (202). The
queue function (shared/delivery/mailbox.deliver_queued) sends the mailbox in order; a transient
failure raises, so the queue redelivers (host.json: visibilityTimeout, maxDequeueCount) and then
moves the message to `signl4-outbox-poison`. A permanent refusal poisons that event at once.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.delivery.schema import short_reason
from shared.domain.alert import AlertStatus, fit_payload

# A SIGNL4 status, or (write-backs to Halo) the notification id the event stands for. SIGNL4's
# statuses are tried first, so existing messages read exactly as before.
EventStatus = Annotated[AlertStatus | str, Field(union_mode="left_to_right")]

OUTBOX_QUEUE = "signl4-outbox"
POISON_QUEUE = "signl4-outbox-poison"
# Two-way sync: write-backs Halo could not take inline (same messages, same machinery).
HALO_OUTBOX_QUEUE = "halo-outbox"
HALO_POISON_QUEUE = "halo-outbox-poison"
# Azure Queue Storage takes at most 64 KiB (65,536 bytes) of message text per message, and the
# Functions host writes our messages base64-encoded (queues extension 5.x: messageEncoding
# base64 by default), 4 bytes for every 3 of UTF-8 JSON: at most 49,152 bytes of JSON. A
# message holds one payload (at most signl4.PAYLOAD_MAX_BYTES = 32,000) and reasons of at most
# schema.REASON_MAX_CHARS (6 bytes per character at most: a control character as \u00XX): a
# poison record, the largest (payload, two reasons, envelope), stays under 39,000 bytes, 52,000
# after base64.
QUEUE_MESSAGE_MAX_BYTES = 64 * 1024
EXTERNAL_ID_MAX_CHARS = 100  # HaloPSA-<id up to 2**53>: 24 characters


class OutboxMessage(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)  # built on first use

    external_id: str = Field(alias="externalId", max_length=EXTERNAL_ID_MAX_CHARS)
    status: EventStatus
    # The ledger claim this event belongs to; 0 when the ledger was unreachable at claim time.
    seq: int = 0
    payload: dict[str, Any]
    queued_at: datetime = Field(
        default_factory=lambda: datetime.now(timezone.utc), alias="queuedAt"
    )
    reason: str = ""
    # The routing target (RELAY_ROUTES) of an event sent without the ledger ("": default).
    target: str = Field("", max_length=64)

    # Bounded here, whatever built them, so that to_json() always fits a queue message.
    @field_validator("payload")
    @classmethod
    def _fit_payload(cls, payload: dict[str, Any]) -> dict[str, Any]:
        return fit_payload(payload)

    @field_validator("reason")
    @classmethod
    def _short_reason(cls, reason: str) -> str:
        return short_reason(reason)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


def queue_message_bytes(text: str) -> int:
    """The size Azure Queue Storage counts for a message the host writes: base64 of UTF-8."""
    return 4 * ((len(text.encode("utf-8")) + 2) // 3)


class PoisonRecord(BaseModel):
    """What lands in the poison queue when the relay itself gives up on an event."""

    model_config = ConfigDict(defer_build=True)  # built on first use

    external_id: str = Field(alias="externalId", max_length=EXTERNAL_ID_MAX_CHARS)
    status: EventStatus
    reason: str
    message: OutboxMessage

    @field_validator("reason")
    @classmethod
    def _short_reason(cls, reason: str) -> str:
        return short_reason(reason)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


class QueueOutcome(BaseModel):
    model_config = ConfigDict(defer_build=True)  # built on first use

    result: Literal["sent", "duplicate", "poison"]
    external_id: str | None = None
    sent: int = 0
    reason: str = ""
    event_id: str | None = None
    poison: list[str] = Field(default_factory=list)  # messages for the poison queue


def parse_message(raw: str) -> OutboxMessage:
    return OutboxMessage.model_validate_json(raw)


def describe_poison(raw: str) -> tuple[str, str, int]:
    """(external id, reason, mailbox seq or 0) of a poison message, however it got there."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return "-", "unreadable message", 0
    if not isinstance(parsed, dict):
        return "-", "unreadable message", 0
    external_id = str(parsed.get("externalId") or "-")
    if isinstance(parsed.get("message"), dict):
        # Written by the outbox function: SIGNL4 refused this one event for good (already
        # taken out of the mailbox).
        return external_id, str(parsed.get("reason") or "refused by SIGNL4"), 0
    if "raw" in parsed:
        return external_id, str(parsed.get("reason") or "unreadable message"), 0
    # Moved by the queue extension after maxDequeueCount: the original nudge.
    first = parsed.get("reason") or "SIGNL4 unavailable"
    seq = parsed.get("seq") if isinstance(parsed.get("seq"), int) else 0
    return external_id, f"delivery attempts exhausted (first failure: {first})", seq
