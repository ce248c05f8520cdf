"""A Halo event -> SIGNL4: claim in the ledger, send inline, or park in the ticket's mailbox.

The page is planned by shared/domain/page.py; the core (shared/delivery/conversation.py) decides
what the claim does. Inline first; parked with an outbox nudge when SIGNL4 is unavailable or
earlier events of the ticket wait; the ledger down, or lost races: sent unrecorded (a duplicate
beats a lost page). Also the claim/send/park steps the write-backs (writebacks.py) share, and the
held pages a window let go (deliver_held). Ports: a Ledger, a sender, the outbox list.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Literal

from shared import TIMING
from shared.adapters.sender import Sender, SendResult
from shared.adapters.store import Conflict, Op, Unavailable
from shared.adapters.ticket_source import TicketReader
from shared.delivery import conversation as core
from shared.delivery import held
from shared.delivery.conversation import Arrival, Conversation, Pending
from shared.delivery.ledger import Ledger
from shared.delivery.outbox import EventStatus, OutboxMessage
from shared.delivery.ticket_reads import ReadEvent, read_in_full
from shared.domain.alert import AlertStatus
from shared.domain.halo import HaloEvent
from shared.domain.page import PagePlan, Prior, Triage, plan_page
from shared.domain.policy import NEW_TICKET_EVENT
from shared.domain.routing import DEFAULT_TARGET
from shared.domain.signl4_params import NO_PARAMS, SignalParams
from shared.errors import ConfigurationError, DeliveryUnavailable
from shared.redaction import log_safe
from shared.settings import RelaySettings, SettingsError

SIGNL4_DOWN = "SIGNL4 was unavailable for an earlier event of this request"


logger = logging.getLogger("shared.relay")


@dataclass
class Delivery:
    """What one request delivers with: settings, ledger, outbox, sender, clock. Per request, not
    per event: `park_reason` is set once SIGNL4 was unavailable for one element of a batch (or
    the batch ran out of inline time), and the rest of the request is parked without trying
    inline, on purpose: a batch must not spend (elements x retry budget) past functionTimeout.
    What varies per event (status, payload, routing target) travels in an Envelope."""

    settings: RelaySettings
    ledger: Ledger | None = None
    outbox: list[str] | None = None
    park_reason: str = ""
    # SIGNL4's query parameters of the request.
    params: SignalParams = NO_PARAMS
    # The sender port (shared/adapters/sender.py): the entry layer wires SIGNL4's or Halo's client.
    sender: Sender | None = None
    # "Now" for quiet hours and maintenance windows (the tests' is fixed); None: the clock.
    clock: Callable[[], datetime] | None = None
    # Record SIGNL4's acceptance after answering (the HTTP path: Halo waits for the answer).
    confirm_after_answer: bool = False
    # Reads a ticket a payload carries too little of (event-only, small object); None: no
    # Halo API credentials, such events are judged on their payload and the answer says so.
    tickets: TicketReader | None = None

    def now(self) -> datetime:
        if self.clock is not None:
            return self.clock()
        if self.ledger is not None:
            return self.ledger.clock()
        return datetime.now(timezone.utc)

    def send(self, payload: dict[str, Any], target: str) -> SendResult:
        """Send `payload` to routing target `target` ("": SIGNL4_TEAM_SECRET's team)."""
        settings = target_settings(self.settings, target)
        if self.sender is None:
            raise RuntimeError("no sender wired: the entry layer passes one")
        if not TIMING:
            return self.sender(payload, settings)
        from shared.timing import phase

        mark = time.perf_counter_ns()
        try:
            return self.sender(payload, settings)
        finally:
            phase("signl4.send", mark)


def target_settings(settings: RelaySettings, target: str) -> RelaySettings:
    """The settings that send to routing target `target`; ConfigurationError (naming the
    setting) when its secret is gone since the alert went there."""
    try:
        return settings.for_target(target)
    except SettingsError as error:
        raise ConfigurationError(str(error)) from None


@dataclass(frozen=True)
class Envelope:
    """One event on its way: its key, status, payload and routing target ("": the default)."""

    key: str
    status: EventStatus
    payload: dict[str, Any]
    target: str = ""


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
    escalation: str | None = None  # sent/queued: why a ticket that did not page now does
    # Why the event was judged on its payload though it lacked a field the decision needs.
    incomplete: str = ""


# --- the HTTP path ---


def deliver_halo_event(event: HaloEvent, delivery: Delivery, trace: EventTrace) -> Outcome:
    """Deliver one Halo event, read in full first when its payload lacks what the decision
    needs (ticket_reads.py); the answer says when it was judged on less."""
    read = read_in_full(event, delivery.settings, delivery.tickets)
    outcome = _deliver_read(read, event, delivery, trace)
    return replace(outcome, incomplete=read.note) if read.note else outcome


def _deliver_read(
    read: ReadEvent, payload: HaloEvent, delivery: Delivery, trace: EventTrace
) -> Outcome:
    """Deliver the event as read. A read costs a round trip before the page goes out, so the
    first round claims against a guess instead: the ticket as this process last saw it, or
    absent (a ticket's first event: create-if-absent). The claim is conditional on that state,
    so a wrong guess only conflicts and the next round reads. A decision that writes nothing
    (skip, duplicate, suppressed, dry-run) is never taken on a guess: it reads first."""
    ledger, event = delivery.ledger, read.event
    external_id = event.ticket.external_id
    guesses = 1 if ledger is not None else 0
    envelope: Envelope | None = None
    for attempt in range(guesses + 2):  # after the guess, a lost race: another delivery wrote
        guessed = attempt < guesses
        memory: Memory = (None, None)
        if guessed and ledger is not None:
            state, ledger_ok = ledger.guess(external_id), True
        else:
            state, ledger_ok = read_state(ledger, external_id)
            memory = _read_memory(ledger if ledger_ok else None, state)
        read, page = _plan_read(read, payload, delivery, state, triage=memory[0])
        event = read.event
        arrival = _arrival(event, page, delivery)
        if guessed and not _claims_on_guess(page, state, arrival, delivery.settings):
            continue
        if not delivery.settings.dry_run:
            memo = ledger if ledger_ok else None
            _remember(memo, external_id, page, memory, downgraded=state.downgraded)
        answered = _answer_unsent(
            event, page, delivery, trace, state=state, arrival=arrival, ledger_ok=ledger_ok
        )
        if answered is not None:
            return answered
        envelope = Envelope(external_id, page.status, page.payload or {}, page.send_target)
        if ledger is None or not ledger_ok:
            return _escalated(send_unrecorded(envelope, delivery, trace), page)
        assert arrival is not None
        step = core.arrive(state, arrival, ledger.clock(), delivery.settings.relay_inflight_seconds)
        outcome = claim_and_send(envelope, delivery, trace, state=state, step=step)
        if outcome is not None:
            return _escalated(outcome, page)
    # Lost races in a row: another delivery for this ticket is busy. Do not make Halo retry;
    # deliver it as if the ledger were down (a duplicate beats a lost page).
    logger.warning(
        "relay: %s changed concurrently twice; sending unrecorded", log_safe(external_id)
    )
    assert envelope is not None
    return send_unrecorded(envelope, delivery, trace)


# A ticket's remembered triage and its row's ETag ((None, None): none remembered).
Memory = tuple[Triage | None, str | None]


def _plan_read(
    read: ReadEvent,
    payload: HaloEvent,
    delivery: Delivery,
    state: Conversation,
    *,
    triage: Triage | None,
) -> tuple[ReadEvent, PagePlan]:
    """The plan for the event as read. A `new` planned on cached fields reads the ticket again
    (it may have closed since); an event judged on a payload lacking fields remembers nothing
    (its unknown fields are no transition to escalate on later)."""
    page = _plan(read.event, delivery, state, triage)
    if read.cached and page.status is AlertStatus.NEW:
        read = read_in_full(payload, delivery.settings, delivery.tickets, fresh=True)
        page = _plan(read.event, delivery, state, triage)
    if read.note and not page.downgrade:  # a downgrade rests on known fields: it remembers
        page = replace(page, triage=None)
    return read, page


def _read_memory(ledger: Ledger | None, state: Conversation) -> Memory:
    """The triage remembered of a ticket without an alert, or whose alert a downgrade resolved
    (only read then: with an alert, nothing escalates). Unreadable: none, so the ticket is
    judged as one never seen."""
    if ledger is None or (state.exists and not state.downgraded):
        return None, None
    try:
        return ledger.read_triage(state.key)
    except Unavailable as error:
        logger.warning("relay: triage of %s unreadable (%s)", log_safe(state.key), log_safe(error))
        return None, None


def _remember(
    ledger: Ledger | None, external_id: str, page: PagePlan, memory: Memory, *, downgraded: bool
) -> None:
    """Remember the fields a decision not to page rested on: a ticket the filters held back, or
    one remembered already whose fields changed. Only when they change; never for a page sent
    (its alert row speaks for it: nothing escalates while an alert is open). A close forgets
    them, unless a downgrade resolved the alert (its memory is what a reopen is judged by)."""
    if ledger is not None and page.downgrade and memory[1] is None:
        memory = _read_memory(ledger, core.absent(external_id))  # its row from before, if any
    triage, before = page.triage, memory[0]
    if page.status is AlertStatus.RESOLVED and not page.downgrade:
        if ledger is not None and memory[1] is not None and not downgraded:  # nothing to escalate
            ledger.forget_triage(external_id, etag=memory[1])
        return
    if ledger is None or triage is None or triage == before:
        return
    if before is None and not page.decision.filtered:
        return  # never held back by a filter: judged as today, nothing to remember
    if page.status is AlertStatus.NEW and page.window is None:
        return  # it pages now: the alert row speaks for it
    ledger.remember_triage(external_id, triage, etag=memory[1])


def _escalated(outcome: Outcome, page: PagePlan) -> Outcome:
    """An escalation's answer says why, and so does a log line; a downgrade's log line too."""
    if outcome.result not in ("sent", "queued"):
        return outcome
    if page.downgrade:
        reason = log_safe(page.decision.reason)
        logger.info("relay: %s resolved: %s", log_safe(outcome.external_id), reason)
    if page.escalation is None:
        return outcome
    logger.info("relay: %s escalated: %s", log_safe(outcome.external_id), log_safe(page.escalation))
    return replace(outcome, escalation=page.escalation)


def _plan(
    event: HaloEvent, delivery: Delivery, state: Conversation, triage: Triage | None = None
) -> PagePlan:
    """The domain's plan for the event, given what the ledger says the ticket had."""
    prior = Prior(triage=triage)
    if state.exists:
        last = state.status if isinstance(state.status, AlertStatus) else None
        learned = state.learned and last is AlertStatus.RESOLVED
        prior = Prior(
            last,
            state.target or DEFAULT_TARGET,
            triage if state.downgraded else None,
            closed_in_signl4=learned,
            opened=state.opened_at,
            basis=_basis_of(state.basis),
            downgraded=state.downgraded,
        )
    if not TIMING:
        return plan_page(
            event, delivery.settings, prior, now=delivery.now(), params=delivery.params
        )
    from shared.timing import phase

    mark = time.perf_counter_ns()
    page = plan_page(event, delivery.settings, prior, now=delivery.now(), params=delivery.params)
    phase("decide", mark)
    return page


def _arrival(event: HaloEvent, page: PagePlan, delivery: Delivery) -> Arrival | None:
    """The event as the core sees it (None: a skip, which never arrives)."""
    if page.status is None:
        return None
    return Arrival(
        page.status,
        page.payload or {},
        creation=event.event == NEW_TICKET_EVENT,
        park_reason=delivery.park_reason,
        can_queue=delivery.outbox is not None,
        target=page.send_target,
        opens=page.status is AlertStatus.NEW,
        basis=_basis_text(page.basis),
        downgrade=page.downgrade,
    )


def _basis_text(basis: Triage | None) -> str:
    """The fields a `new` rests on, as the alert row keeps them (the core holds them opaque)."""
    if basis is None:
        return ""
    fields = {"priority": basis.priority, "team": basis.team, "qualified": basis.qualified}
    return json.dumps(fields, ensure_ascii=False)


def _basis_of(text: str) -> Triage | None:
    """The fields the alert's page rested on; None when not recorded (or unreadable)."""
    try:
        fields = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(fields, dict):
        return None
    priority, team = str(fields.get("priority") or ""), str(fields.get("team") or "")
    return Triage(priority=priority, team=team, qualified=fields.get("qualified") is True)


def _claims_on_guess(
    page: PagePlan, state: Conversation, arrival: Arrival | None, settings: RelaySettings
) -> bool:
    """Whether the guessed state may be claimed against: only a decision that writes."""
    if arrival is None or core.is_repeat(state, arrival) or settings.dry_run:
        return False
    if page.window is not None:
        return False
    # Never seen here, but an acknowledge or resolve is for a ticket paged before (likely by
    # another instance): creating would only conflict. Read.
    return state.exists or arrival.creation or page.status is AlertStatus.NEW


def _answer_unsent(
    event: HaloEvent,
    page: PagePlan,
    delivery: Delivery,
    trace: EventTrace,
    *,
    state: Conversation,
    arrival: Arrival | None,
    ledger_ok: bool,
) -> Outcome | None:
    """The answer of an event that sends nothing (skip, duplicate, suppressed, dry-run); None
    when it is to be sent. Holds a suppressed page, or releases a resolved ticket's."""
    external_id, outbox = event.ticket.external_id, delivery.outbox
    if arrival is None or page.rule is None:
        trace.decision = "skip"
        if state.pending_count and outbox is not None:
            # A redelivered event skipped because its own claim is in the mailbox: that claim's
            # nudge may have died with its invocation. A spare nudge finds nothing to do.
            nudge(outbox, Envelope(external_id, state.status, {}), seq=state.seq)
        return Outcome("skipped", external_id, reason=page.decision.reason)
    status, route = AlertStatus(arrival.status), page.rule.name
    trace.decision, trace.route = status.value, route
    ledger = delivery.ledger if ledger_ok else None
    holds_back = delivery.settings.relay_routes.holds_back_pages
    if status is AlertStatus.RESOLVED and holds_back and ledger is not None:
        held.release(ledger, external_id)  # closed, even again: nothing to page when windows end
    if core.is_repeat(state, arrival):
        trace.decision += " (duplicate)"
        if state.pending_count and outbox is not None:
            # Its queue message may never have been written (an invocation that died).
            nudge(outbox, Envelope(external_id, status, {}), seq=state.seq)
        if ledger_ok and delivery.ledger is not None:
            _confirm_learned(delivery.ledger, state)
        return Outcome("duplicate", external_id, status, event_id=state.event_id, route=route)
    if page.window is not None:
        trace.decision += " (suppressed)"
        if page.rule.page_after_window and ledger is not None:
            held.hold(
                ledger,
                external_id,
                rule=route,
                window=page.window,
                target=page.send_target,
                payload=arrival.payload,
                basis=arrival.basis,
            )
        return Outcome("suppressed", external_id, status, route=route, window=page.window)
    if delivery.settings.dry_run:
        trace.decision += " (dry-run)"
        return Outcome("dry-run", external_id, status, payload=arrival.payload, route=route)
    target_settings(delivery.settings, page.send_target)  # a target without its secret: refused
    return None


def _confirm_learned(ledger: Ledger, state: Conversation) -> None:
    """Halo reached the status SIGNL4 closed the alert with: a later reopen is news again. Best
    effort: not recorded, a reopen stays unpaged until Halo closes the ticket again."""
    step = core.confirmed(state)
    if not step.changed:
        return
    try:
        ledger.apply(state, step)
    except (Conflict, Unavailable) as error:
        logger.warning("relay: %s: close not recorded (%s)", log_safe(state.key), log_safe(error))


def read_state(ledger: Ledger | None, external_id: str) -> tuple[Conversation, bool]:
    """The ticket's conversation, and whether the ledger answered (absent when it did not)."""
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


# --- held pages: a window ended (the timer) ---


def deliver_held(page: held.HeldPage, delivery: Delivery, trace: EventTrace) -> Outcome:
    """Page a ticket whose `new` a window held back, now the window has ended: unless the ticket
    was acknowledged or paged meanwhile (a close drops the hold: a resolved alert is one from
    before it, which the held `new` reopens). Sent inline (no outbox); SIGNL4 unavailable
    raises, and the page stays held for the next run. The caller releases the hold otherwise."""
    ledger = delivery.ledger
    external_id = page.external_id
    trace.decision = "new (after window)"
    target = "" if page.target == DEFAULT_TARGET else page.target
    envelope = Envelope(external_id, AlertStatus.NEW, page.payload, target)
    state, ledger_ok = read_state(ledger, external_id)
    if state.exists and state.status is AlertStatus.ACKNOWLEDGED:
        trace.decision = "skip"
        return Outcome(
            "skipped",
            external_id,
            reason=f"the ticket was {value_of(state.status)} during the window",
            route=page.rule,
        )
    arrival = Arrival(
        AlertStatus.NEW, page.payload, can_queue=False, target=target, opens=True, basis=page.basis
    )
    if core.is_repeat(state, arrival):
        trace.decision += " (duplicate)"
        return Outcome("duplicate", external_id, AlertStatus.NEW, event_id=state.event_id)
    target_settings(delivery.settings, target)
    if ledger is None or not ledger_ok:
        return send_unrecorded(envelope, delivery, trace)
    step = core.arrive(state, arrival, ledger.clock(), delivery.settings.relay_inflight_seconds)
    # Without an outbox the claim is sent inline. A lost race (Conflict) or the store down
    # (Unavailable) raises: the page stays held for the next run.
    claimed = ledger.apply(state, step)
    return _deliver(envelope, delivery, trace, previous=state, claimed=claimed)


# --- claim, send, park: both directions (pages, write-backs) ---


def claim_and_send(
    envelope: Envelope,
    delivery: Delivery,
    trace: EventTrace,
    *,
    state: Conversation,
    step: core.Step,
    extra: Sequence[Op] = (),
    verb: str = "sending",
) -> Outcome | None:
    """Commit an arrival's step, then act on it: join the mailbox behind earlier events of the
    key (queued), or send. None: a lost race, read again. The store down: sent unrecorded (a
    duplicate beats a lost event)."""
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
            log_safe(envelope.key),
        )
        return send_unrecorded(envelope, delivery, trace)
    if isinstance(step.effect, core.Queued):
        assert delivery.outbox is not None
        return queued(envelope, delivery.outbox, trace, seq=claimed.seq, reason=step.effect.reason)
    return _deliver(envelope, delivery, trace, previous=state, claimed=claimed)


def send_unrecorded(envelope: Envelope, delivery: Delivery, trace: EventTrace) -> Outcome:
    """Deliver without the ledger (unreachable, or lost races): sent inline, or queued with the
    payload in the queue message itself."""
    return _deliver(envelope, delivery, trace)


def _deliver(
    envelope: Envelope,
    delivery: Delivery,
    trace: EventTrace,
    *,
    previous: Conversation | None = None,
    claimed: Conversation | None = None,
) -> Outcome:
    """Send inline; if SIGNL4 cannot take it now, park it and nudge the outbox. `claimed` is
    None when the ledger is out of the picture (unreachable, or lost races)."""
    ledger, outbox = delivery.ledger, delivery.outbox
    if ledger is None:
        claimed = None
    if delivery.park_reason and outbox is not None:
        return _park(envelope, delivery, trace, claimed=claimed, reason=delivery.park_reason)
    try:
        result = delivery.send(envelope.payload, envelope.target)
    except DeliveryUnavailable as error:
        trace.signl4_status = error.remote_status
        delivery.park_reason = SIGNL4_DOWN
        if outbox is None:
            _release(ledger, claimed, previous)
            raise
        return _park(envelope, delivery, trace, claimed=claimed, reason=error.message)
    except Exception:
        # SIGNL4 refused for good, or anything unexpected: the claim must not stand, or Halo's
        # retry would be answered 'duplicate' for an event that was never delivered.
        _release(ledger, claimed, previous)
        raise
    trace.signl4_status = result.status_code
    if ledger is not None and claimed is not None:
        opened = envelope.status is AlertStatus.NEW  # its event id is the alert's anchor
        if delivery.confirm_after_answer:
            ledger.confirm_later(claimed, result.event_id, opened=opened)
        else:
            ledger.confirm(claimed, result.event_id, opened=opened)
    return Outcome("sent", envelope.key, envelope.status, event_id=result.event_id)


def _release(
    ledger: Ledger | None, claimed: Conversation | None, previous: Conversation | None
) -> None:
    """Take back a claim whose event did not go: Halo's retry must not be a duplicate."""
    if ledger is not None and claimed is not None:
        ledger.release(claimed, previous)


def _park(
    envelope: Envelope,
    delivery: Delivery,
    trace: EventTrace,
    *,
    claimed: Conversation | None,
    reason: str,
) -> Outcome:
    """Put claim `claimed.seq` in the ticket's mailbox (by sequence, so it still goes before
    any newer event that joined meanwhile) and nudge the outbox. Without a claim to park, or
    when parking fails, the queue message itself carries the event."""
    ledger, outbox = delivery.ledger, delivery.outbox
    assert outbox is not None
    current = claimed
    for _ in range(4):
        if ledger is None or claimed is None or current is None or not current.exists:
            break
        pending = Pending(claimed.seq, envelope.status, envelope.payload, reason)
        step = core.park(current, pending, ledger.clock(), delivery.settings.relay_inflight_seconds)
        if isinstance(step.effect, core.Superseded):
            return _superseded(envelope.key, claimed.seq, step.effect.by_seq, trace)
        try:
            ledger.apply(current, step)
            return queued(envelope, outbox, trace, seq=claimed.seq, reason=reason)
        except Conflict:
            try:
                current = ledger.read(envelope.key)
            except Unavailable:
                break
        except Unavailable as error:
            logger.warning(
                "relay: could not park %s in its mailbox (%s)",
                log_safe(envelope.key),
                log_safe(error),
            )
            break
    return queued(envelope, outbox, trace, seq=0, reason=reason)


def _superseded(key: str, seq: int, by_seq: int, trace: EventTrace) -> Outcome:
    """A newer event for the ticket was already sent inline: this older one would arrive
    after it and undo it."""
    logger.warning("relay: %s #%d superseded by #%d", log_safe(key), seq, by_seq)
    trace.decision += " (superseded)"
    return Outcome(
        "skipped", key, reason=f"superseded by a newer event for this ticket (#{by_seq})"
    )


def nudge(outbox: list[str], envelope: Envelope, *, seq: int, reason: str = "nudged again") -> None:
    """seq > 0: the event is in the ticket's mailbox; 0: it is not, and the message's own
    payload is what gets sent (to its routing target)."""
    outbox.append(
        OutboxMessage(
            externalId=envelope.key,
            status=envelope.status,
            seq=seq,
            payload=envelope.payload,
            reason=reason,
            target=envelope.target,
        ).to_json()
    )


def queued(
    envelope: Envelope, outbox: list[str], trace: EventTrace, *, seq: int, reason: str
) -> Outcome:
    """Nudge the outbox for the event and answer `queued`."""
    nudge(outbox, envelope, seq=seq, reason=reason)
    trace.decision += " (queued)"
    return Outcome("queued", envelope.key, envelope.status, reason=reason)


def value_of(status: Any) -> str:
    """A status as text (AlertStatus or a write-back's notification id)."""
    return str(getattr(status, "value", status))
