"""A SIGNL4 notification -> Halo: verify it against the alert this relay raised, learn SIGNL4's
status, record the alert id, and write back exactly once per notification id, in order per ticket.

The write is a conversation event like a page (its status: the notification id), so it shares
the claim/send/park steps of pages.py; a `seen-<id>` row, created with the claim, makes a
redelivered notification a duplicate, and is pruned by age.
"""

from __future__ import annotations

import hmac
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from shared.adapters.store import Conflict, Unavailable
from shared.delivery import conversation as core
from shared.delivery.conversation import Arrival, Conversation
from shared.delivery.ledger import Ledger
from shared.delivery.pages import (
    Delivery,
    Envelope,
    EventTrace,
    Outcome,
    claim_and_send,
    nudge,
    send_unrecorded,
)
from shared.domain.alert import AlertStatus
from shared.errors import DeliveryRejected, StorageUnavailable
from shared.redaction import log_safe

if TYPE_CHECKING:
    from shared.domain.notification import Signl4Notification
    from shared.domain.writeback import RecordAlert, Write

logger = logging.getLogger("shared.relay")

NO_ALERT = "no alert raised by this relay"
# SIGNL4 documents at-least-once delivery of its outbound webhook but no redelivery window; its
# retries of one notification come within minutes. A `seen-` row is kept a week, far beyond
# that, then pruned by age (never by count: a busy ticket must not forget a fresh one).
SEEN_KEEP = timedelta(days=7)
# Every this many write-backs of a ticket, its partition is read once to prune old `seen-`
# rows: the only scan on the notification path (every other read is a point read).
PRUNE_EVERY = 100


def deliver_notification(write: Envelope, delivery: Delivery, trace: EventTrace) -> Outcome:
    """One write-back (`write.status`: the notification id), exactly once per notification id,
    in order per ticket.

    The notification's `seen-<id>` row is created in the same transaction as its claim, so a
    redelivered notification finds it and is a duplicate; the claim itself is a conversation
    event like a SIGNL4 one (status: the notification id), so the write is sent inline, or
    joins the ticket's mailbox behind earlier ones, with the same core transitions. Halo
    refusing it for good releases the claim and the row (the error is raised to the caller);
    the ledger down: written unrecorded (a note twice beats a lost one)."""
    ledger, key, envelope = delivery.ledger, write.key, write
    if ledger is None:
        return send_unrecorded(envelope, delivery, trace)
    for _ in range(3):
        try:
            state, seen_row = ledger.read_notification(key, str(write.status))
        except Unavailable as error:
            logger.warning(
                "relay: ledger unreachable (%s); writing %s unrecorded",
                log_safe(error),
                log_safe(key),
            )
            return send_unrecorded(envelope, delivery, trace)
        if seen_row is not None:
            trace.decision += " (duplicate)"
            if state.pending_count and delivery.outbox is not None:
                nudge(delivery.outbox, Envelope(key, state.status, {}), seq=state.seq)
            return Outcome("duplicate", key, None, event_id=seen_row.entity.get("Notification"))
        outcome = _claim_write(envelope, delivery, trace, state=state)
        if outcome is not None:
            if (state.seq + 1) % PRUNE_EVERY == 0:
                ledger.prune_seen(key, SEEN_KEEP)
            return outcome
    logger.warning("relay: %s changed concurrently three times; writing unrecorded", log_safe(key))
    return send_unrecorded(envelope, delivery, trace)


def _claim_write(
    envelope: Envelope, delivery: Delivery, trace: EventTrace, *, state: Conversation
) -> Outcome | None:
    """Claim the write with its `seen-` row, then send or queue it (None: a lost race)."""
    ledger = delivery.ledger
    assert ledger is not None
    arrival = Arrival(
        envelope.status,
        envelope.payload,
        park_reason=delivery.park_reason,
        can_queue=delivery.outbox is not None,
    )
    step = core.arrive(state, arrival, ledger.clock(), delivery.settings.relay_inflight_seconds)
    seen = ledger.seen_op(str(envelope.status))
    try:
        return claim_and_send(
            envelope, delivery, trace, state=state, step=step, extra=[seen], verb="writing"
        )
    except DeliveryRejected:
        ledger.forget_seen(envelope.key, str(envelope.status))
        raise


def learn_status(
    ledger: Ledger | None,
    external_id: str,
    status: AlertStatus,
    alive: float,
    *,
    verified: Conversation | None = None,
) -> None:
    """SIGNL4 reached `status` on its own: record it in the SIGNL4 direction's conversation so
    Halo's echo of the write-back is answered 'duplicate' (no loop). Best effort: if it fails,
    the echo may send SIGNL4 a status it already has, which changes nothing there.

    `verified`: the conversation as the notification was verified against: written on without
    another read, and only while its alert is still the one raised then (a ticket reopened
    meanwhile has a new alert, which this notification says nothing about)."""
    if ledger is None:
        return
    signl4_side = Ledger(ledger.store, clock=ledger.clock)
    anchor = verified.raised_event_id if verified is not None else None

    def learn(state: Conversation) -> core.Step:
        if verified is not None and state.raised_event_id != anchor:
            return core.Step(state, changed=False)
        return core.learned(state, status, signl4_side.clock(), alive)

    try:
        if verified is not None:
            try:
                signl4_side.apply(verified, learn(verified))
                return
            except Conflict:
                pass  # changed since it was read: read again, decide again
        signl4_side.retry(external_id, learn)
    except (Conflict, Unavailable) as error:
        logger.warning(
            "ledger: could not record %s %s: %s",
            log_safe(external_id),
            status.value,
            log_safe(error),
        )


def verify_notification(
    ledger: Ledger | None, external_id: str, event_id: str | None
) -> Conversation | str:
    """The SIGNL4 direction's conversation of the ticket when the notification is about the
    alert this relay raised for it (its `alert.eventId` is the id SIGNL4 answered to our `new`:
    the anchor); else why not. Anyone can post to /api/signl4: nothing else is trusted. Raises
    StorageUnavailable when the anchor cannot be read."""
    if ledger is None:
        return f"{NO_ALERT} (no storage: the relay keeps no record of its alerts)"
    signl4_side = Ledger(ledger.store, clock=ledger.clock)
    try:
        state = signl4_side.read(external_id)
    except Unavailable as error:
        logger.warning(
            "relay: ledger unreachable (%s); %s not verified",
            log_safe(error),
            log_safe(external_id),
        )
        raise StorageUnavailable(
            "the ledger is unreachable: the notification cannot be verified now; try again later"
        ) from None
    anchor = state.raised_event_id if state.exists else None
    if anchor is None:
        return f"{NO_ALERT} for {external_id}"
    if not event_id:
        return "the notification has no alert.eventId to verify it by"
    if not hmac.compare_digest(event_id.encode("utf-8"), anchor.encode("utf-8")):
        return f"alert.eventId is not the alert this relay raised for {external_id}"
    return state


def deliver_signl4_notification(
    notification: Signl4Notification,
    planned: RecordAlert | Write,
    delivery: Delivery,
    trace: EventTrace,
) -> Outcome:
    """One SIGNL4 notification about a ticket of ours: verified first (unverified: `ignored`,
    nothing learned, written or recorded); then the alert id recorded (alert created), or the
    write-back, with SIGNL4's new state learned first while our alert is open. After our alert
    closed, only the note goes to Halo: no state learned, no status set, nobody assigned."""
    from shared.domain.writeback import RecordAlert, conversation_key, signl4_key

    external_id = signl4_key(planned.ticket_id)
    key = conversation_key(planned.ticket_id)
    verified = verify_notification(delivery.ledger, external_id, notification.alert_event_id)
    if isinstance(verified, str):
        trace.decision = "ignored (unverified)"
        return Outcome("ignored", external_id, reason=verified)
    ledger = delivery.ledger
    assert ledger is not None and verified.raised_event_id is not None
    if isinstance(planned, RecordAlert):
        trace.decision = "recorded"
        return _record_alert(
            ledger,
            key,
            planned.alert_id,
            anchor=verified.raised_event_id,
            external_id=external_id,
        )
    trace.decision = planned.kind
    payload = planned.payload
    if verified.status is AlertStatus.RESOLVED:
        trace.decision += " (after close: note only)"
        payload = {k: v for k, v in payload.items() if k not in ("statusId", "assignEmail")}
    elif planned.signl4_status is not None:
        # First, before Halo is written: its echo may come back before the write returns.
        learn_status(
            ledger,
            external_id,
            planned.signl4_status,
            delivery.settings.relay_inflight_seconds,
            verified=verified,
        )
    return deliver_notification(Envelope(key, notification.id, payload), delivery, trace)


def _record_alert(
    ledger: Ledger, key: str, alert_id: str | None, *, anchor: str, external_id: str
) -> Outcome:
    """Keep SIGNL4's alert id of the verified alert (row `signl4-alert` of the write-back
    partition, with the anchor it belongs to). Never overwritten with another id for the same
    alert; replaced when a new alert (a new anchor) was raised since."""
    if not alert_id:
        return Outcome("ignored", external_id, reason="the notification has no alert.id")
    if not ledger.record_alert_id(key, alert_id, anchor=anchor):
        return Outcome("ignored", external_id, reason="another alert id is recorded for this alert")
    return Outcome("recorded", external_id, event_id=alert_id)
