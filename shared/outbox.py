"""The outbox: SIGNL4 events that could not be sent inline, kept on a storage queue until they are.

The HTTP function parks an event in the ticket's mailbox (the ledger) and puts a message on
`signl4-outbox` (output binding) when SIGNL4 is unavailable, or when earlier events of the same
ticket still wait, and answers 202. The queue function below sends the mailbox in order; a
transient failure raises, so the queue extension redelivers the message (host.json:
visibilityTimeout, maxDequeueCount) and finally moves it to `signl4-outbox-poison`. A permanent
SIGNL4 refusal sends that event to the poison queue at once and the mailbox carries on.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.errors import Signl4Rejected, Signl4Unavailable
from shared.halo import AlertStatus
from shared.ledger import (
    Ledger,
    LedgerConflict,
    LedgerEntry,
    LedgerUnavailable,
    PendingEvent,
    short_reason,
)
from shared.settings import RelaySettings
from shared.signl4 import fit_payload, send_event

OUTBOX_QUEUE = "signl4-outbox"
MAX_FLUSH_STEPS = 100  # per queue message; a longer mailbox continues on the next try
FLUSH_SECONDS = 60.0  # per queue message: well inside host.json's functionTimeout (120 s)
POISON_QUEUE = "signl4-outbox-poison"
# Azure Queue Storage takes at most 64 KiB (65,536 bytes) of message text per message, and the
# Functions host writes our messages base64-encoded (queues extension 5.x: messageEncoding
# base64 by default), 4 bytes for every 3 of UTF-8 JSON: at most 49,152 bytes of JSON. A
# message holds one payload (at most signl4.PAYLOAD_MAX_BYTES = 32,000) and reasons of at most
# ledger.REASON_MAX_CHARS (6 bytes per character at most: a control character as \u00XX): a
# poison record, the largest (payload, two reasons, envelope), stays under 39,000 bytes, 52,000
# after base64.
QUEUE_MESSAGE_MAX_BYTES = 64 * 1024
EXTERNAL_ID_MAX_CHARS = 100  # HaloPSA-<id up to 2**53>: 24 characters

logger = logging.getLogger("shared.outbox")


class OutboxMessage(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)  # built on first use

    external_id: str = Field(alias="externalId", max_length=EXTERNAL_ID_MAX_CHARS)
    status: AlertStatus
    # The ledger claim this event belongs to; 0 when the ledger was unreachable at claim time.
    seq: int = 0
    payload: dict[str, Any]
    queued_at: datetime = Field(
        default_factory=lambda: datetime.now(timezone.utc), alias="queuedAt"
    )
    reason: str = ""

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
    status: AlertStatus
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


def deliver_queued(raw: str, settings: RelaySettings, ledger: Ledger | None) -> QueueOutcome:
    """Deliver what a queue message stands for.

    With the ledger (the message has a sequence number) the message is a nudge: the ticket's
    mailbox is sent oldest first, so events reach SIGNL4 in the order Halo sent them. Without
    it (the ledger was unreachable when the event was queued) the message's own payload is sent.
    Raises Signl4Unavailable (or LedgerBusy) when the queue should try again later.
    """
    try:
        message = parse_message(raw)
    except ValidationError as error:
        reason = f"unreadable outbox message ({error.error_count()} error(s))"
        return QueueOutcome(
            result="poison",
            reason=reason,
            poison=[json.dumps({"reason": reason, "raw": raw[:2000]})],
        )
    if ledger is None or not message.seq:
        return _send_unrecorded(message, settings)
    try:
        return _flush_mailbox(message.external_id, settings, ledger)
    except LedgerUnavailable as error:
        # The mailbox holds the events in order; without it, sending the message's own copy
        # could overtake them. Try again later.
        raise MailboxUnavailable(
            f"ledger unreachable ({error}); {message.external_id} waits"
        ) from None


class MailboxUnavailable(Exception):
    """The ticket's mailbox cannot be read or is being sent by another worker: retry later."""


def _send_unrecorded(message: OutboxMessage, settings: RelaySettings) -> QueueOutcome:
    try:
        result = send_event(message.payload, settings)
    except Signl4Rejected as error:
        record = PoisonRecord(
            externalId=message.external_id,
            status=message.status,
            reason=error.message,
            message=message,
        )
        return QueueOutcome(
            external_id=message.external_id,
            result="poison",
            reason=error.message,
            poison=[record.to_json()],
        )
    return QueueOutcome(
        external_id=message.external_id, result="sent", sent=1, event_id=result.event_id
    )


def _flush_mailbox(external_id: str, settings: RelaySettings, ledger: Ledger) -> QueueOutcome:
    sent, poison, reasons = 0, [], []
    event_id: str | None = None
    # A mark younger than this is a live sender; older, a dead one (no invocation outlives
    # host.json's functionTimeout, which RELAY_INFLIGHT_SECONDS exceeds).
    alive = settings.relay_inflight_seconds
    deadline = time.monotonic() + FLUSH_SECONDS
    for _ in range(MAX_FLUSH_STEPS):
        entry = ledger.get(external_id)
        events = ledger.pending(external_id) if entry and entry.pending_count else []
        if entry is None or not events:
            break
        if time.monotonic() > deadline:
            # Stay well inside functionTimeout; the queue brings the message back to go on.
            raise MailboxUnavailable(f"{external_id}: {len(events)} event(s) left for the next try")
        if entry.inflight(alive):
            # An inline send of an older claim is still running; it goes first.
            raise MailboxUnavailable(f"{external_id} #{entry.inflight_seq} is being sent inline")
        event = events[0]
        if entry.sending_seq == event.seq:
            if entry.sending(alive):
                raise MailboxUnavailable(
                    f"{external_id} #{event.seq} is being sent by another worker"
                )
            # The worker that marked it died after (presumably) sending: paging twice is the
            # worse failure here, so it counts as delivered.
            _settle(ledger, entry, event, event_id=None)
            reasons.append(f"#{event.seq} presumed delivered before a crash")
            continue
        try:
            entry = ledger.begin_send(entry, event)
        except LedgerConflict:
            continue  # changed under us (a new event joined): read again
        except LedgerUnavailable:
            # The mark may have been written before the answer was lost: take it back, since
            # nothing was sent, then let the queue try again.
            ledger.clear_sending(external_id, event.seq)
            raise
        try:
            result = send_event(event.payload, settings)
        except Signl4Unavailable:
            ledger.clear_sending(external_id, event.seq)
            raise
        except Signl4Rejected as error:
            _settle(ledger, entry, event, failed_reason=error.message)
            message = OutboxMessage(
                externalId=external_id,
                status=event.status,
                seq=event.seq,
                payload=event.payload,
                reason=event.reason,
            )
            poison.append(
                PoisonRecord(
                    externalId=external_id,
                    status=event.status,
                    reason=error.message,
                    message=message,
                ).to_json()
            )
            reasons.append(f"#{event.seq} {error.message}")
            continue
        _settle(ledger, entry, event, event_id=result.event_id)
        sent, event_id = sent + 1, result.event_id
    else:
        raise MailboxUnavailable(
            f"{external_id}: more than {MAX_FLUSH_STEPS} steps; continuing later"
        )
    if poison:
        return QueueOutcome(
            external_id=external_id,
            result="poison",
            sent=sent,
            reason="; ".join(reasons),
            poison=poison,
        )
    if sent:
        return QueueOutcome(
            external_id=external_id,
            result="sent",
            sent=sent,
            event_id=event_id,
            reason="; ".join(reasons),
        )
    return QueueOutcome(
        external_id=external_id,
        result="duplicate",
        reason="; ".join(reasons) or "nothing left to send",
    )


def _settle(ledger: Ledger, entry: LedgerEntry, event: PendingEvent, **outcome: Any) -> None:
    """Take the event out of the mailbox, re-reading when a new event joined meanwhile."""
    for _ in range(MAX_FLUSH_STEPS):
        try:
            ledger.settle(entry, event, **outcome)
            return
        except LedgerConflict:
            fresh = ledger.get(entry.external_id)
            if fresh is None:
                return
            entry = fresh
    raise MailboxUnavailable(f"{entry.external_id}: could not settle #{event.seq}")


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
