"""A SIGNL4 notification -> Halo: verify it against the alert this relay raised, learn SIGNL4's
status, record the alert id, and write back exactly once per notification id, in order per ticket.

The write is a conversation event like a page (its status: the notification id), so it shares
the claim/send/park steps of pages.py; a `seen-<id>` row, created with the claim, makes a
redelivered notification a duplicate, and is pruned by age.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from shared.adapters.store import Conflict, Op, Row, Unavailable
from shared.delivery import conversation as core
from shared.delivery.conversation import Arrival, Conversation
from shared.delivery.ledger import STATE_ROW, TRANSACTION_MAX_ROWS, Ledger, load
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

SEEN_PREFIX = "seen-"
_SAFE_ROW_KEY = re.compile(r"[A-Za-z0-9._-]{1,200}")
ALERT_ROW = "signl4-alert"
NO_ALERT = "no alert raised by this relay"
# SIGNL4 documents at-least-once delivery of its outbound webhook but no redelivery window; its
# retries of one notification come within minutes. A `seen-` row is kept a week, far beyond
# that, then pruned by age (never by count: a busy ticket must not forget a fresh one).
SEEN_KEEP = timedelta(days=7)
# Every this many write-backs of a ticket, its partition is read once to prune old `seen-`
# rows: the only scan on the notification path (every other read is a point read).
PRUNE_EVERY = 100


def seen_key(notification_id: str) -> str:
    """The row that says a notification was taken (Azure Table keys refuse / \\ # ? and
    control characters: an id that holds any is hashed)."""
    if _SAFE_ROW_KEY.fullmatch(notification_id):
        return SEEN_PREFIX + notification_id
    return SEEN_PREFIX + "sha256-" + hashlib.sha256(notification_id.encode("utf-8")).hexdigest()


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
    row = seen_key(str(write.status))
    for _ in range(3):
        try:
            rows = ledger.store.read_rows(key, [STATE_ROW, row])
        except Unavailable as error:
            logger.warning(
                "relay: ledger unreachable (%s); writing %s unrecorded",
                log_safe(error),
                log_safe(key),
            )
            return send_unrecorded(envelope, delivery, trace)
        state = load(key, rows, str)
        if row in rows:
            trace.decision += " (duplicate)"
            if state.pending_count and delivery.outbox is not None:
                nudge(delivery.outbox, Envelope(key, state.status, {}), seq=state.seq)
            return Outcome("duplicate", key, None, event_id=rows[row].entity.get("Notification"))
        outcome = _claim_write(envelope, delivery, trace, state=state, row=row)
        if outcome is not None:
            if (state.seq + 1) % PRUNE_EVERY == 0:
                prune_seen(ledger, key)
            return outcome
    logger.warning("relay: %s changed concurrently three times; writing unrecorded", log_safe(key))
    return send_unrecorded(envelope, delivery, trace)


def _claim_write(
    envelope: Envelope, delivery: Delivery, trace: EventTrace, *, state: Conversation, row: str
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
    seen = Op(
        "create", row, {"Notification": str(envelope.status)[:200], "SeenUtc": ledger.clock()}
    )
    try:
        return claim_and_send(
            envelope, delivery, trace, state=state, step=step, extra=[seen], verb="writing"
        )
    except DeliveryRejected:
        _forget_seen(ledger, envelope.key, row)
        raise


def prune_seen(ledger: Ledger, key: str) -> int:
    """Delete the partition's `seen-` rows older than SEEN_KEEP (best effort: a failure leaves
    them for the next prune). Returns how many went."""
    cutoff = ledger.clock() - SEEN_KEEP
    try:
        rows = ledger.store.read(key)
    except Unavailable as error:
        logger.warning("ledger: could not prune %s: %s", log_safe(key), log_safe(error))
        return 0
    old = [r for name, r in rows.items() if name.startswith(SEEN_PREFIX) and _older(r, cutoff)]
    pruned = 0
    for start in range(0, len(old), TRANSACTION_MAX_ROWS):
        chunk = old[start : start + TRANSACTION_MAX_ROWS]
        try:
            ledger.store.commit(key, [Op("delete", r.key, etag=r.etag) for r in chunk])
        except (Conflict, Unavailable) as error:
            logger.warning("ledger: could not prune %s: %s", log_safe(key), log_safe(error))
            break
        pruned += len(chunk)
    return pruned


def _older(row: Row, cutoff: datetime) -> bool:
    seen = row.entity.get("SeenUtc")
    if not isinstance(seen, datetime):
        return False  # unreadable: kept (a row too many beats a notification written twice)
    return (seen if seen.tzinfo else seen.replace(tzinfo=timezone.utc)) < cutoff


def _forget_seen(ledger: Ledger, key: str, row: str) -> None:
    """Halo refused the write for good: SIGNL4's redelivery (after the permission is fixed,
    say) must be tried again, not answered 'duplicate'."""
    try:
        ledger.store.commit(key, [Op("delete", row)])
    except (Conflict, Unavailable) as error:
        logger.warning("ledger: could not forget %s in %s: %s", row, log_safe(key), log_safe(error))


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
    entity = {"AlertId": alert_id, "EventId": anchor}
    try:
        found = ledger.store.read_rows(key, [ALERT_ROW]).get(ALERT_ROW)
        if found is None:
            ledger.store.commit(key, [Op("create", ALERT_ROW, entity)])
        elif found.entity.get("EventId") != anchor:
            ledger.store.commit(key, [Op("replace", ALERT_ROW, entity, found.etag)])
        elif found.entity.get("AlertId") != alert_id:
            return Outcome(
                "ignored", external_id, reason="another alert id is recorded for this alert"
            )
    except (Conflict, Unavailable) as error:
        logger.warning(
            "ledger: could not record the alert id of %s: %s", log_safe(key), log_safe(error)
        )
    return Outcome("recorded", external_id, event_id=alert_id)
