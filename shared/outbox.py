"""The outbox: SIGNL4 events that could not be sent inline, kept on a storage queue until they are.

The HTTP function puts a message on `signl4-outbox` (output binding) when SIGNL4 is unavailable
and answers 202. The queue function below sends it; a transient failure raises, so the queue
extension redelivers it (host.json: visibilityTimeout, maxDequeueCount) and finally moves it to
`signl4-outbox-poison`. A permanent SIGNL4 refusal goes to the poison queue at once.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import Signl4Rejected, Signl4Unavailable
from shared.halo import AlertStatus
from shared.ledger import Ledger, LedgerUnavailable
from shared.settings import RelaySettings
from shared.signl4 import send_event

OUTBOX_QUEUE = "signl4-outbox"
POISON_QUEUE = "signl4-outbox-poison"

logger = logging.getLogger("shared.outbox")


class OutboxMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    external_id: str = Field(alias="externalId")
    status: AlertStatus
    # The ledger claim this event belongs to; 0 when the ledger was unreachable at claim time.
    seq: int = 0
    payload: dict[str, Any]
    queued_at: datetime = Field(
        default_factory=lambda: datetime.now(timezone.utc), alias="queuedAt"
    )
    reason: str = ""

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


class PoisonRecord(BaseModel):
    """What lands in the poison queue when the relay itself gives up on an event."""

    external_id: str = Field(alias="externalId")
    status: AlertStatus
    reason: str
    message: OutboxMessage

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


class QueueOutcome(BaseModel):
    result: Literal["sent", "superseded", "duplicate", "poison"]
    external_id: str | None = None
    reason: str = ""
    event_id: str | None = None
    poison: str | None = None  # JSON for the poison queue, when result == "poison"


def parse_message(raw: str) -> OutboxMessage:
    return OutboxMessage.model_validate_json(raw)


def deliver_queued(raw: str, settings: RelaySettings, ledger: Ledger | None) -> QueueOutcome:
    """Send one queued event, unless a newer event for the ticket made it stale.

    Raises Signl4Unavailable when SIGNL4 should be tried again later (the queue redelivers).
    """
    try:
        message = parse_message(raw)
    except ValidationError as error:
        reason = f"unreadable outbox message ({error.error_count()} error(s))"
        return QueueOutcome(
            result="poison", reason=reason, poison=json.dumps({"reason": reason, "raw": raw[:2000]})
        )

    entry = None
    if ledger is not None and message.seq:
        try:
            entry = ledger.get(message.external_id)
        except LedgerUnavailable as error:
            logger.warning(
                "outbox: ledger unreachable (%s); sending %s anyway", error, message.external_id
            )
    if entry is not None:
        # Order per ticket: never deliver an event after a newer one for the same ticket.
        if entry.seq > message.seq:
            return QueueOutcome(
                external_id=message.external_id,
                result="superseded",
                reason=f"a newer event (#{entry.seq}) replaced #{message.seq}",
            )
        if entry.delivered_seq >= message.seq:
            return QueueOutcome(
                external_id=message.external_id,
                result="duplicate",
                reason="already delivered",
                event_id=entry.event_id,
            )
        if entry.sending_seq == message.seq:
            # A worker died after marking and (presumably) sending. Paging twice is the worse
            # failure here, so the event counts as delivered.
            ledger.confirm(message.external_id, message.seq, None)  # type: ignore[union-attr]
            return QueueOutcome(
                external_id=message.external_id,
                result="duplicate",
                reason="presumed delivered before a crash",
            )
        ledger.mark_sending(message.external_id, message.seq)  # type: ignore[union-attr]

    try:
        result = send_event(message.payload, settings)
    except Signl4Rejected as error:
        if ledger is not None and message.seq:
            ledger.mark_failed(message.external_id, error.message)
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
            poison=record.to_json(),
        )
    except Signl4Unavailable:
        if entry is not None:
            ledger.clear_sending(message.external_id)  # type: ignore[union-attr]
        raise
    if ledger is not None and message.seq:
        ledger.confirm(message.external_id, message.seq, result.event_id)
    return QueueOutcome(external_id=message.external_id, result="sent", event_id=result.event_id)


def describe_poison(raw: str) -> tuple[str, str]:
    """(external id, reason) of a poison message, whichever way it got there."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return "-", "unreadable message"
    if not isinstance(parsed, dict):
        return "-", "unreadable message"
    external_id = str(parsed.get("externalId") or "-")
    if "message" in parsed and parsed.get("reason"):
        return external_id, str(parsed["reason"])
    if parsed.get("reason") and "raw" in parsed:
        return external_id, str(parsed["reason"])
    # Moved by the queue extension after maxDequeueCount: the original outbox message.
    first = parsed.get("reason") or "SIGNL4 unavailable"
    return external_id, f"delivery attempts exhausted (first failure: {first})"
