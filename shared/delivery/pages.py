"""The delivery service: runs the core (shared/delivery/conversation.py) against the ledger's store and
SIGNL4. Each step reads the ticket's conversation, asks the core what to do, writes the result
conditionally, then performs the effect (send, park, nudge the outbox) and records its outcome;
a lost race (Conflict) reads again and decides again.

HTTP path (`deliver_halo_event`): inline first; parked in the mailbox with an outbox nudge when
SIGNL4 is unavailable, or when earlier events of the ticket wait or are in flight; duplicates
answered as such; the ledger down, or two lost races: sent unrecorded (a duplicate beats a lost
page). The first round claims without a read: against the state this process last saw
(Ledger.guess), or create-if-absent for a ticket it never saw; a wrong guess conflicts and reads.
Queue path (`deliver_queued`): the mailbox is sent oldest first, each event marked as sending
before it goes; a permanent refusal goes to the poison queue and the mailbox carries on.
Poison path (`give_up`): the ticket's waiting events leave the mailbox with the reason.

Ports: a Ledger (any PartitionStore), a sender (`send_event` by default) and the outbox list.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from shared import TIMING
from shared.adapters.signl4 import SendResult, send_event
from shared.adapters.store import Conflict, Op, Row, Unavailable
from shared.delivery import conversation as core
from shared.delivery import held
from shared.delivery.conversation import Arrival, Conversation, Pending
from shared.delivery.ledger import STATE_ROW, TRANSACTION_MAX_ROWS, Ledger, load
from shared.delivery.outbox import (
    EventStatus,
    OutboxMessage,
    PoisonRecord,
    QueueOutcome,
    parse_message,
)
from shared.domain.alert import AlertStatus, build_payload
from shared.domain.halo import HaloEvent
from shared.domain.policy import NEW_TICKET_EVENT, decide
from shared.domain.routing import DEFAULT_TARGET, with_route
from shared.domain.signl4_params import NO_PARAMS, SignalParams
from shared.errors import (
    ConfigurationError,
    DeliveryRejected,
    DeliveryUnavailable,
    StorageUnavailable,
)
from shared.redaction import log_safe
from shared.settings import RelaySettings, SettingsError

if TYPE_CHECKING:
    from shared.domain.notification import Signl4Notification
    from shared.domain.writeback import RecordAlert, Write

SIGNL4_DOWN = "SIGNL4 was unavailable for an earlier event of this request"
MAX_FLUSH_STEPS = 100  # per queue message; a longer mailbox continues on the next try
FLUSH_SECONDS = 60.0  # per queue message: well inside host.json's functionTimeout (120 s)

Sender = Callable[[dict[str, Any], RelaySettings], SendResult]

logger = logging.getLogger("shared.relay")


@dataclass
class Delivery:
    """What one request delivers with: settings, ledger, outbox, and what it learned so far."""

    settings: RelaySettings
    ledger: Ledger | None = None
    outbox: list[str] | None = None
    # Once SIGNL4 was unavailable for one element of a batch (or the batch ran out of inline
    # time), the rest are parked without trying inline, for this reason: a batch must not
    # spend (elements x retry budget) past functionTimeout.
    park_reason: str = ""
    # SIGNL4's query parameters of the request.
    params: SignalParams = NO_PARAMS
    # The sender port; None: shared.adapters.signl4.send_event.
    sender: Sender | None = None
    # The routing target of the event being delivered ("": SIGNL4_TEAM_SECRET's team).
    target: str = ""
    # "Now" for quiet hours and maintenance windows (the tests' is fixed); None: the clock.
    clock: Callable[[], datetime] | None = None
    # Record SIGNL4's acceptance after answering (the HTTP path: Halo waits for the answer).
    confirm_after_answer: bool = False

    def now(self) -> datetime:
        if self.clock is not None:
            return self.clock()
        if self.ledger is not None:
            return self.ledger.clock()
        return datetime.now(timezone.utc)

    def send(self, payload: dict[str, Any]) -> SendResult:
        settings = target_settings(self.settings, self.target)
        if not TIMING:
            return (self.sender or send_event)(payload, settings)
        from shared.timing import phase

        mark = time.perf_counter_ns()
        try:
            return (self.sender or send_event)(payload, settings)
        finally:
            phase("signl4.send", mark)


def target_settings(settings: RelaySettings, target: str) -> RelaySettings:
    """The settings that send to routing target `target`; ConfigurationError (naming the
    setting) when its secret is gone since the alert went there."""
    try:
        return settings.for_target(target)
    except SettingsError as error:
        raise ConfigurationError(str(error)) from None


@dataclass
class EventTrace:
    """What the per-event log line reports."""

    external_id: str | None = None
    halo_event: str | None = None
    decision: str = "error"
    signl4_status: int | None = None
    route: str = "-"  # the RELAY_ROUTES rule that matched ("default": none did)


@dataclass(frozen=True)
class Outcome:
    """What became of one HTTP event; relay.py turns it into the answer."""

    result: Literal[
        "sent", "duplicate", "queued", "skipped", "dry-run", "suppressed", "ignored", "recorded"
    ]
    external_id: str
    status: EventStatus | None = None
    event_id: str | None = None
    reason: str = ""
    payload: dict[str, Any] | None = None
    route: str | None = None  # the RELAY_ROUTES rule that matched (SIGNL4 events only)
    window: str | None = None  # suppressed: the quiet hours or maintenance window


# --- the HTTP path ---


def deliver_halo_event(event: HaloEvent, delivery: Delivery, trace: EventTrace) -> Outcome:
    settings, ledger = delivery.settings, delivery.ledger
    external_id = event.ticket.external_id
    creation = event.event == NEW_TICKET_EVENT
    # A read costs a round trip before the page goes out. So the first round claims against a
    # guess instead: the ticket as this process last saw it, or absent (a ticket's first event:
    # create-if-absent). The claim is conditional on that state, so a wrong guess only
    # conflicts, and the next round reads. A decision that writes nothing (skip, duplicate,
    # suppressed, dry-run) is never taken on a guess: it reads first.
    guesses = 1 if ledger is not None else 0
    rounds = guesses + 2  # after the guess, a lost race means another delivery just changed it
    payload: dict[str, Any] = {}
    status: AlertStatus | None = None
    for attempt in range(rounds):
        guessed = attempt < guesses
        if guessed:
            assert ledger is not None
            state, ledger_ok = ledger.guess(external_id), True
        else:
            state, ledger_ok = _read(ledger, external_id)
        mark = time.perf_counter_ns() if TIMING else 0
        decision = decide(
            event,
            settings,
            last_sent=state.status if state.exists else None,
            params=delivery.params,
        )
        if TIMING:
            from shared.timing import phase

            phase("decide", mark)
        if decision.action == "skip" or decision.status is None:
            if guessed:
                continue
            trace.decision = "skip"
            if state.pending_count and delivery.outbox is not None:
                # A redelivered event skipped because its own claim is in the mailbox: that
                # claim's nudge may have died with its invocation (property tests found a
                # mailbox left behind this way). A spare nudge finds nothing to do.
                _nudge(delivery.outbox, external_id, state.status, state.seq, {}, "nudged again")
            return Outcome("skipped", external_id, reason=decision.reason)
        status = decision.status
        if guessed and not state.exists and not creation and status is not AlertStatus.NEW:
            # Never seen here, but an acknowledge or resolve is for a ticket paged before
            # (likely by another instance): creating would only conflict. Read.
            continue
        trace.decision = status.value
        rule = settings.relay_routes.route(event.ticket)
        trace.route = rule.name
        # A new alert goes where the rules say now; its acknowledge and resolve follow it to
        # the team recorded with it, even if the rules changed since.
        if status is AlertStatus.NEW or not state.exists:
            target = rule.target
        else:
            target = state.target or DEFAULT_TARGET
        delivery.target = "" if target == DEFAULT_TARGET else target
        arrival = Arrival(
            status,
            {},
            creation=creation,
            park_reason=delivery.park_reason,
            can_queue=delivery.outbox is not None,
        )
        if core.is_repeat(state, arrival):
            if guessed:
                continue
            trace.decision += " (duplicate)"
            if state.pending_count and delivery.outbox is not None:
                # Its queue message may never have been written (an invocation that died):
                # nudge the mailbox again. A spare nudge finds nothing to do.
                _nudge(delivery.outbox, external_id, status, state.seq, {}, "nudged again")
            return Outcome(
                "duplicate", external_id, status, event_id=state.event_id, route=rule.name
            )
        payload = with_route(build_payload(event, decision, settings), rule)
        if status is AlertStatus.NEW:
            window = rule.window_at(delivery.now())
            if window is not None:
                if guessed:
                    continue
                trace.decision += " (suppressed)"
                if rule.page_after_window and ledger is not None and ledger_ok:
                    held.hold(ledger, external_id, rule.name, window, delivery.target, payload)
                return Outcome("suppressed", external_id, status, route=rule.name, window=window)
        elif (
            status is AlertStatus.RESOLVED
            and settings.relay_routes.holds_back_pages
            and ledger is not None
            and ledger_ok
        ):
            held.release(ledger, external_id)  # closed: nothing to page when windows end
        if settings.dry_run:
            if guessed:
                continue
            trace.decision += " (dry-run)"
            return Outcome("dry-run", external_id, status, payload=payload, route=rule.name)
        target_settings(settings, delivery.target)  # a target without its secret: refused
        if ledger is None or not ledger_ok:
            return _deliver(external_id, status, payload, delivery, None, None, trace)
        arrival = Arrival(
            status,
            payload,
            creation=creation,
            park_reason=delivery.park_reason,
            can_queue=delivery.outbox is not None,
            target=delivery.target,
            opens=status is AlertStatus.NEW,
        )
        step = core.arrive(state, arrival, ledger.clock(), settings.relay_inflight_seconds)
        outcome = _claim_and_deliver(external_id, status, payload, delivery, state, step, trace)
        if outcome is not None:
            return outcome
    # Lost races in a row: another delivery for this ticket is busy. Do not make Halo retry;
    # deliver it as if the ledger were down (a duplicate beats a lost page).
    logger.warning(
        "relay: %s changed concurrently twice; sending unrecorded", log_safe(external_id)
    )
    assert status is not None
    return _deliver(external_id, status, payload, delivery, None, None, trace)


# --- held pages: a window ended (the timer) ---


def deliver_held(page: held.HeldPage, delivery: Delivery, trace: EventTrace) -> Outcome:
    """Page a ticket whose `new` a window held back, now the window has ended: unless the ticket
    was acknowledged, resolved or paged meanwhile. Sent inline (no outbox); SIGNL4 unavailable
    raises, and the page stays held for the next run. The caller releases the hold otherwise."""
    ledger = delivery.ledger
    external_id = page.external_id
    trace.decision = "new (after window)"
    delivery.target = "" if page.target == DEFAULT_TARGET else page.target
    state, ledger_ok = _read(ledger, external_id)
    if state.exists and state.status is not AlertStatus.NEW:
        trace.decision = "skip"
        return Outcome(
            "skipped",
            external_id,
            reason=f"the ticket was {_value(state.status)} during the window",
            route=page.rule,
        )
    arrival = Arrival(
        AlertStatus.NEW, page.payload, can_queue=False, target=delivery.target, opens=True
    )
    if core.is_repeat(state, arrival):
        trace.decision += " (duplicate)"
        return Outcome("duplicate", external_id, AlertStatus.NEW, event_id=state.event_id)
    target_settings(delivery.settings, delivery.target)
    if ledger is None or not ledger_ok:
        return _deliver(external_id, AlertStatus.NEW, page.payload, delivery, None, None, trace)
    step = core.arrive(state, arrival, ledger.clock(), delivery.settings.relay_inflight_seconds)
    # Without an outbox the claim is sent inline. A lost race (Conflict) or the store down
    # (Unavailable) raises: the page stays held for the next run.
    claimed = ledger.apply(state, step)
    return _deliver(external_id, AlertStatus.NEW, page.payload, delivery, state, claimed, trace)


# --- the HTTP path of the write-back direction (SIGNL4 -> Halo) ---

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


def deliver_notification(
    key: str,
    notification_id: str,
    payload: dict[str, Any],
    delivery: Delivery,
    trace: EventTrace,
) -> Outcome:
    """One write-back, exactly once per notification id, in order per ticket.

    The notification's `seen-<id>` row is created in the same transaction as its claim, so a
    redelivered notification finds it and is a duplicate; the claim itself is a conversation
    event like a SIGNL4 one (status: the notification id), so the write is sent inline, or
    joins the ticket's mailbox behind earlier ones, with the same core transitions. Halo
    refusing it for good releases the claim and the row (the error is raised to the caller);
    the ledger down: written unrecorded (a note twice beats a lost one)."""
    ledger = delivery.ledger
    if ledger is None:
        return _deliver(key, notification_id, payload, delivery, None, None, trace)
    row = seen_key(notification_id)
    for _ in range(3):
        try:
            rows = ledger.store.read_rows(key, [STATE_ROW, row])
        except Unavailable as error:
            logger.warning(
                "relay: ledger unreachable (%s); writing %s unrecorded",
                log_safe(error),
                log_safe(key),
            )
            return _deliver(key, notification_id, payload, delivery, None, None, trace)
        state = load(key, rows, str)
        if row in rows:
            trace.decision += " (duplicate)"
            if state.pending_count and delivery.outbox is not None:
                _nudge(delivery.outbox, key, state.status, state.seq, {}, "nudged again")
            return Outcome("duplicate", key, None, event_id=rows[row].entity.get("Notification"))
        arrival = Arrival(
            notification_id,
            payload,
            park_reason=delivery.park_reason,
            can_queue=delivery.outbox is not None,
        )
        step = core.arrive(state, arrival, ledger.clock(), delivery.settings.relay_inflight_seconds)
        seen = Op("create", row, {"Notification": notification_id[:200], "SeenUtc": ledger.clock()})
        try:
            outcome = _claim_and_deliver(
                key, notification_id, payload, delivery, state, step, trace, [seen], "writing"
            )
        except DeliveryRejected:
            _forget_seen(ledger, key, row)
            raise
        if outcome is not None:
            if (state.seq + 1) % PRUNE_EVERY == 0:
                prune_seen(ledger, key)
            return outcome
    logger.warning("relay: %s changed concurrently three times; writing unrecorded", log_safe(key))
    return _deliver(key, notification_id, payload, delivery, None, None, trace)


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
    return deliver_notification(key, notification.id, payload, delivery, trace)


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


def _read(ledger: Ledger | None, external_id: str) -> tuple[Conversation, bool]:
    if ledger is None:
        return core.absent(external_id), False
    try:
        return ledger.read(external_id), True
    except Unavailable as error:
        logger.warning(
            "relay: ledger unreachable (%s); %s may be paged twice",
            log_safe(error),
            log_safe(external_id),
        )
        return core.absent(external_id), False


def _claim_and_deliver(
    key: str,
    status: EventStatus,
    payload: dict[str, Any],
    delivery: Delivery,
    state: Conversation,
    step: core.Step,
    trace: EventTrace,
    extra: Sequence[Op] = (),
    verb: str = "sending",
) -> Outcome | None:
    """Commit an arrival's step, then act on it: join the mailbox behind earlier events of the
    key (queued), or send. None: a lost race, read again. The store down: sent unrecorded (a
    duplicate beats a lost event). Both directions (pages, write-backs) come through here."""
    ledger = delivery.ledger
    assert ledger is not None
    try:
        claimed = ledger.apply(state, step, extra)
    except Conflict:
        return None
    except Unavailable as error:
        logger.warning(
            "relay: ledger unreachable (%s); %s %s unrecorded",
            log_safe(error),
            verb,
            log_safe(key),
        )
        return _deliver(key, status, payload, delivery, None, None, trace)
    if isinstance(step.effect, core.Queued):
        assert delivery.outbox is not None
        return _queued(
            key,
            status,
            claimed.seq,
            payload,
            delivery.outbox,
            trace,
            step.effect.reason,
            target=delivery.target,
        )
    return _deliver(key, status, payload, delivery, state, claimed, trace)


def _deliver(
    external_id: str,
    status: EventStatus,
    payload: dict[str, Any],
    delivery: Delivery,
    previous: Conversation | None,
    claimed: Conversation | None,
    trace: EventTrace,
) -> Outcome:
    """Send inline; if SIGNL4 cannot take it now, park it and nudge the outbox. `claimed` is
    None when the ledger is out of the picture (unreachable, or lost races)."""
    ledger, outbox = delivery.ledger, delivery.outbox
    if delivery.park_reason and outbox is not None:
        # Without a claim to park, the queue message itself carries the event.
        if claimed is not None and ledger is not None:
            return _park(
                external_id, status, payload, delivery, claimed, trace, delivery.park_reason
            )
        return _queued(
            external_id,
            status,
            0,
            payload,
            outbox,
            trace,
            delivery.park_reason,
            target=delivery.target,
        )
    try:
        result = delivery.send(payload)
    except DeliveryUnavailable as error:
        trace.signl4_status = error.remote_status
        delivery.park_reason = SIGNL4_DOWN
        if outbox is None:
            if ledger is not None and claimed is not None:
                ledger.release(claimed, previous)
            raise
        if ledger is not None and claimed is not None:
            return _park(external_id, status, payload, delivery, claimed, trace, error.message)
        return _queued(
            external_id,
            status,
            0,
            payload,
            outbox,
            trace,
            error.message,
            target=delivery.target,
        )
    except Exception:
        # SIGNL4 refused for good, or anything unexpected: the claim must not stand, or Halo's
        # retry would be answered 'duplicate' for an event that was never delivered.
        if ledger is not None and claimed is not None:
            ledger.release(claimed, previous)
        raise
    trace.signl4_status = result.status_code
    if ledger is not None and claimed is not None:
        opened = status is AlertStatus.NEW  # its event id is the alert's anchor
        if delivery.confirm_after_answer:
            ledger.confirm_later(claimed, result.event_id, opened=opened)
        else:
            ledger.confirm(claimed, result.event_id, opened=opened)
    return Outcome("sent", external_id, status, event_id=result.event_id)


def _park(
    external_id: str,
    status: EventStatus,
    payload: dict[str, Any],
    delivery: Delivery,
    claimed: Conversation,
    trace: EventTrace,
    reason: str,
) -> Outcome:
    """Put claim `claimed.seq` in the ticket's mailbox (by sequence, so it still goes before
    any newer event that joined meanwhile) and nudge the outbox."""
    ledger, outbox = delivery.ledger, delivery.outbox
    assert ledger is not None and outbox is not None
    pending = Pending(claimed.seq, status, payload, reason)
    current = claimed
    for _ in range(4):
        if not current.exists:
            break
        step = core.park(current, pending, ledger.clock(), delivery.settings.relay_inflight_seconds)
        if isinstance(step.effect, core.Superseded):
            # A newer event for the ticket was already sent inline: this older one would
            # arrive after it and undo it.
            logger.warning(
                "relay: %s #%d superseded by #%d",
                log_safe(external_id),
                claimed.seq,
                step.effect.by_seq,
            )
            trace.decision += " (superseded)"
            return Outcome(
                "skipped",
                external_id,
                reason=f"superseded by a newer event for this ticket (#{step.effect.by_seq})",
            )
        try:
            ledger.apply(current, step)
            return _queued(
                external_id,
                status,
                claimed.seq,
                payload,
                outbox,
                trace,
                reason,
                target=delivery.target,
            )
        except Conflict:
            try:
                current = ledger.read(external_id)
            except Unavailable:
                break
        except Unavailable as error:
            logger.warning(
                "relay: could not park %s in its mailbox (%s)",
                log_safe(external_id),
                log_safe(error),
            )
            break
    # Still not lost: the queue message carries the payload itself.
    return _queued(external_id, status, 0, payload, outbox, trace, reason, target=delivery.target)


def _nudge(
    outbox: list[str],
    external_id: str,
    status: EventStatus,
    seq: int,
    payload: dict[str, Any],
    reason: str,
    target: str = "",
) -> None:
    """seq > 0: the event is in the ticket's mailbox; 0: it is not, and the message's own
    payload is what gets sent (to its routing target)."""
    outbox.append(
        OutboxMessage(
            externalId=external_id,
            status=status,
            seq=seq,
            payload=payload,
            reason=reason,
            target=target,
        ).to_json()
    )


def _queued(
    external_id: str,
    status: EventStatus,
    seq: int,
    payload: dict[str, Any],
    outbox: list[str],
    trace: EventTrace,
    reason: str,
    *,
    target: str = "",
) -> Outcome:
    _nudge(outbox, external_id, status, seq, payload, reason, target)
    trace.decision += " (queued)"
    return Outcome("queued", external_id, status, reason=reason)


# --- the queue path ---


class MailboxUnavailable(Exception):
    """The ticket's mailbox cannot be read or is being sent by another worker: retry later."""


def deliver_queued(
    raw: str, settings: RelaySettings, ledger: Ledger | None, sender: Sender | None = None
) -> QueueOutcome:
    """Deliver what a queue message stands for.

    With the ledger (the message has a sequence number) the message is a nudge: the ticket's
    mailbox is sent oldest first, so events reach SIGNL4 in the order Halo sent them. Without
    it (the ledger was unreachable when the event was queued) the message's own payload is sent.
    Raises the sender's DeliveryUnavailable (Signl4Unavailable, HaloUnavailable) or
    MailboxUnavailable when the queue should try again later.
    """
    send = sender or send_event
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
        return _send_unrecorded(message, settings, send)
    try:
        return flush_mailbox(message.external_id, settings, ledger, send)
    except Unavailable as error:
        # The mailbox holds the events in order; without it, sending the message's own copy
        # could overtake them. Try again later.
        raise MailboxUnavailable(
            f"ledger unreachable ({error}); {message.external_id} waits"
        ) from None


def _send_unrecorded(message: OutboxMessage, settings: RelaySettings, send: Sender) -> QueueOutcome:
    try:
        result = send(message.payload, target_settings(settings, message.target))
    except DeliveryRejected as error:
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


def flush_mailbox(
    external_id: str, settings: RelaySettings, ledger: Ledger, send: Sender
) -> QueueOutcome:
    """Send the ticket's mailbox, oldest first."""
    sent, poison, reasons = 0, [], []
    event_id: str | None = None
    # A mark younger than this is a live sender; older, a dead one (no invocation outlives
    # host.json's functionTimeout, which RELAY_INFLIGHT_SECONDS exceeds).
    alive = settings.relay_inflight_seconds
    deadline = time.monotonic() + FLUSH_SECONDS
    for _ in range(MAX_FLUSH_STEPS):
        state = ledger.read(external_id, mailbox=True)
        if not state.exists or not state.pending_count or not state.mailbox:
            break
        if time.monotonic() > deadline:
            # Stay well inside functionTimeout; the queue brings the message back to go on.
            raise MailboxUnavailable(
                f"{external_id}: {len(state.mailbox)} event(s) left for the next try"
            )
        # The ticket's alert went to this target: every event of it follows (checked before
        # anything is marked: a target whose secret is gone is a configuration error).
        target = target_settings(settings, state.target)
        step = core.next_send(state, ledger.clock(), alive)
        effect = step.effect
        if isinstance(effect, core.Wait):
            raise MailboxUnavailable(effect.reason)
        if isinstance(effect, core.Settled):
            # The worker that marked it died after (presumably) sending: paging twice is the
            # worse failure here, so it counts as delivered.
            try:
                ledger.apply(state, step)
            except Conflict:
                continue
            reasons.append(effect.note)
            continue
        if not isinstance(effect, core.Send):
            break
        try:
            marked = ledger.apply(state, step)
        except Conflict:
            continue  # changed under us (a new event joined): read again
        except Unavailable:
            # The mark may have been written before the answer was lost: take it back, since
            # nothing was sent, then let the queue try again.
            ledger.clear_sending(external_id, effect.seq)
            raise
        head = state.mailbox[0]
        try:
            result = send(effect.payload, target)
        except DeliveryUnavailable:
            ledger.clear_sending(external_id, effect.seq)
            raise
        except DeliveryRejected as error:
            _settle(ledger, marked, effect.seq, failed_reason=error.message)
            message = OutboxMessage(
                externalId=external_id,
                status=head.status,
                seq=head.seq,
                payload=head.payload,
                reason=head.reason,
            )
            poison.append(
                PoisonRecord(
                    externalId=external_id,
                    status=head.status,
                    reason=error.message,
                    message=message,
                ).to_json()
            )
            reasons.append(f"#{head.seq} {error.message}")
            continue
        opened = head.status is AlertStatus.NEW
        _settle(ledger, marked, effect.seq, event_id=result.event_id, opened=opened)
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


def _settle(ledger: Ledger, marked: Conversation, seq: int, **outcome: Any) -> None:
    """Take the event out of the mailbox, re-reading when a new event joined meanwhile."""
    try:
        ledger.apply(marked, core.settle(marked, seq, **outcome))
        return
    except Conflict:
        pass
    try:
        ledger.retry(marked.key, lambda state: core.settle(state, seq, **outcome), mailbox=True)
    except Conflict:
        raise MailboxUnavailable(f"{marked.key}: could not settle #{seq}") from None


# --- the poison path ---


def give_up(external_id: str, reason: str, seq: int, ledger: Ledger | None) -> str:
    """The ledger's side of giving up: a nudge (seq > 0) that ran out of attempts abandons the
    ticket's mailbox, so a re-send from Halo pages once; anything else marks the ticket failed,
    so a re-send is not a duplicate. Returns the events given up ('#3 new, #4 resolved')."""
    if ledger is None or external_id == "-":
        return ""
    try:
        if seq:
            abandoned = ledger.abandon(external_id, reason)
            return ", ".join(f"#{e.seq} {_value(e.status)}" for e in abandoned)
        ledger.mark_failed(external_id, reason)
    except Unavailable as error:
        logger.warning(
            "relay: ledger unreachable (%s) while giving up %s",
            log_safe(error),
            log_safe(external_id),
        )
    return ""


def _value(status: Any) -> str:
    return str(getattr(status, "value", status))
