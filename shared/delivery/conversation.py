"""The delivery core (pure): one conversation per key, and every rule of "nothing lost, nothing
paged twice" as a transition `(state, input, now) -> Step(new state, rows to write, effect)`.

A conversation is one key's state (a Halo ticket, `HaloPSA-<id>`): the last status claimed and
its sequence number, the last accepted, a mailbox of waiting events, and two marks: `inflight`
(sent inline; newer events must not overtake it) and `sending` (a mailbox event being sent; after
a worker died it means "presumably delivered"); a mark older than `alive` s is a dead worker's.
No I/O, no clock: the service (shared/delivery/pages.py) commits each Step and performs its effect.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Pending:
    """An event in a conversation's mailbox."""

    seq: int
    status: Hashable
    payload: dict[str, Any]
    reason: str = ""
    version: str | None = None  # the stored row's ETag, when read

    def __repr__(self) -> str:
        return f"Pending(#{self.seq} {_name(self.status)})"


@dataclass(frozen=True)
class Conversation:
    """What is known about one key. `exists` False: nothing stored yet (or deleted)."""

    key: str
    status: Hashable = None  # last status claimed for sending
    seq: int = 0
    delivered_seq: int = 0
    event_id: str | None = None
    sending_seq: int = 0
    sending_since: datetime | None = None
    inflight_seq: int = 0
    inflight_since: datetime | None = None
    pending_count: int = 0
    failed_reason: str | None = None
    exists: bool = False
    # Where the conversation's events go (a routing target, shared/domain/routing.py): recorded with
    # the claim that opened the alert, so its acknowledge and resolve follow it. "" = default.
    target: str = ""
    # The trust anchor of the other side's notifications: the event id SIGNL4 answered to the
    # accepted `new` that raised the current alert (`event_id` is the latest send's, which an
    # acknowledge or resolve overwrites). Cleared when a new opening is claimed, set when it is
    # accepted. None: no alert of ours to verify a notification against.
    raised_event_id: str | None = None
    # The last status is the other side's own (`learned`: SIGNL4 closed the alert), not seen
    # from this side since: a Halo ticket still open is not "open again" then.
    learned: bool = False
    # When the claim that opened the current (or last) alert was made, and what its page rested
    # on (opaque here: the page service encodes it). None/"": not recorded (rows from before).
    opened_at: datetime | None = None
    basis: str = ""
    # The last alert was resolved because the ticket no longer qualified (a downgrade): kept
    # until the next opening, so the ticket is judged as one held back, not as "open again".
    downgraded: bool = False
    version: str | None = None  # the stored state row's ETag
    # The mailbox, oldest first, when it was read with the state (else empty).
    mailbox: tuple[Pending, ...] = field(default=(), compare=False)

    def inflight_at(self, now: datetime, alive: float) -> bool:
        return _recent(self.inflight_seq, self.inflight_since, now, alive)

    def sending_at(self, now: datetime, alive: float) -> bool:
        return _recent(self.sending_seq, self.sending_since, now, alive)

    def already_has(self, status: Hashable) -> bool:
        """Sending `status` again would be a repeat: claimed (delivered or waiting), not failed."""
        return self.exists and self.status == status and not self.failed_reason


def absent(key: str) -> Conversation:
    return Conversation(key=key)


def _recent(seq: int, since: datetime | None, now: datetime, alive: float) -> bool:
    if not seq or since is None:
        return False
    return (now - since).total_seconds() < alive


def _name(status: Hashable) -> str:
    return str(getattr(status, "value", status))


# --- effects: what the service does after committing a step ---


@dataclass(frozen=True)
class Send:
    """Send `payload` (claim `seq`) now."""

    seq: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class Duplicate:
    """Already claimed: answer 'duplicate'. `nudge`: the mailbox still holds events, so nudge
    the outbox again (the first nudge may have died with its invocation)."""

    event_id: str | None
    nudge: bool
    seq: int


@dataclass(frozen=True)
class Queued:
    """The event is in the mailbox as `seq`: nudge the outbox and answer 'queued'."""

    seq: int
    reason: str


@dataclass(frozen=True)
class Superseded:
    """A newer event was sent inline meanwhile: the older one must not follow it."""

    by_seq: int


@dataclass(frozen=True)
class Wait:
    """The mailbox cannot be sent now (a live mark); the queue tries again later."""

    reason: str


@dataclass(frozen=True)
class Settled:
    """A mailbox event left the mailbox: delivered, presumed delivered, or given up."""

    pending: Pending
    note: str = ""


@dataclass(frozen=True)
class Nothing:
    """Nothing to do (already done, or nothing waits)."""


Effect = Send | Duplicate | Queued | Superseded | Wait | Settled | Nothing


@dataclass(frozen=True)
class Step:
    """The new state, the mailbox row to add or remove with it (one transaction), the effect."""

    state: Conversation
    effect: Effect = field(default_factory=Nothing)
    add: Pending | None = None
    remove: int = 0  # mailbox seq to delete
    changed: bool = True  # False: nothing to write

    def __repr__(self) -> str:
        return f"Step({self.effect!r})"


def _same(state: Conversation, effect: Effect | None = None) -> Step:
    return Step(state, effect or Nothing(), changed=False)


# --- the HTTP path ---


@dataclass(frozen=True)
class Arrival:
    """An event as it arrives over HTTP, after the policy chose its status."""

    status: Hashable
    payload: dict[str, Any]
    creation: bool = False  # it creates the conversation (Halo's "new ticket logged")
    park_reason: str = ""  # the request already knows the event cannot go inline
    can_queue: bool = True  # there is an outbox to nudge
    target: str | None = None  # the routing target to record with the claim (None: keep)
    opens: bool = False  # it raises a new alert: the old alert's anchor no longer holds
    basis: str = ""  # an opening: what its page rested on, recorded with the alert
    downgrade: bool = False  # a resolve because the ticket no longer qualifies


def is_repeat(state: Conversation, arrival: Arrival) -> bool:
    """Already claimed (delivered or on its way); or a re-sent creation of a known key, which
    would otherwise open a second alert after the ticket closed."""
    if not state.exists:
        return False
    if state.already_has(arrival.status):
        return True
    return arrival.creation and not state.failed_reason


def must_wait(state: Conversation, arrival: Arrival, now: datetime, alive: float) -> str:
    """Why this event cannot go inline now ('' when it can)."""
    if arrival.park_reason:
        return arrival.park_reason
    if not state.exists:
        return ""
    if state.pending_count:
        return f"{state.pending_count} earlier event(s) of this ticket are still queued"
    if state.inflight_at(now, alive):
        return "an earlier event of this ticket is being sent"
    return ""


def arrive(state: Conversation, arrival: Arrival, now: datetime, alive: float) -> Step:
    """An event arrives: a duplicate, a claim to send inline, or a claim joining the mailbox."""
    if is_repeat(state, arrival):
        return _same(state, Duplicate(state.event_id, state.pending_count > 0, state.seq))
    return claim(state, arrival, must_wait(state, arrival, now, alive), now)


def claim(state: Conversation, arrival: Arrival, wait_reason: str, now: datetime) -> Step:
    """Claim the next sequence number for `arrival`: inline (the claim is its in-flight mark),
    or, with a `wait_reason` and an outbox, joining the mailbox in the same write."""
    seq = state.seq + 1
    claimed = replace(
        state,
        status=arrival.status,
        seq=seq,
        failed_reason=None,
        exists=True,
        mailbox=(),
        target=state.target if arrival.target is None else arrival.target,
        raised_event_id=None if arrival.opens else state.raised_event_id,
        learned=False,
        opened_at=now if arrival.opens else state.opened_at,
        basis=arrival.basis if arrival.opens else state.basis,
        downgraded=arrival.downgrade or (state.downgraded and not arrival.opens),
    )
    reason = wait_reason
    if reason and arrival.can_queue:
        pending = Pending(seq, arrival.status, arrival.payload, reason)
        return Step(
            replace(claimed, pending_count=state.pending_count + 1),
            Queued(seq, reason),
            add=pending,
        )
    # Being sent inline: the claim itself is the mark newer events wait behind.
    return Step(replace(claimed, inflight_seq=seq, inflight_since=now), Send(seq, arrival.payload))


def accepted(state: Conversation, seq: int, event_id: str | None, *, opened: bool = False) -> Step:
    """The other side accepted claim `seq` inline; `opened`: it raised an alert, whose event id
    becomes the anchor its notifications are verified against."""
    if not state.exists:
        return _same(state)
    changes: dict[str, Any] = {"failed_reason": None}
    if seq >= state.delivered_seq:
        changes.update(delivered_seq=seq, event_id=event_id)
        if opened:
            changes.update(raised_event_id=event_id)
    if state.inflight_seq == seq:
        changes.update(inflight_seq=0, inflight_since=None)
    return Step(replace(state, **changes))


def refused(state: Conversation, seq: int, previous: Conversation) -> Step:
    """Claim `seq` was refused for good (or failed unexpectedly): it must not stand, or the
    retry would be answered 'duplicate' for an event never delivered. The sequence never goes
    back; a claim nobody built on since is undone whole."""
    if not state.exists:
        return _same(state)
    if state.seq != seq:
        # Newer claims came in behind it: only its mark goes.
        if state.inflight_seq != seq:
            return _same(state)
        return Step(replace(state, inflight_seq=0, inflight_since=None))
    if not previous.exists and not state.pending_count:
        return Step(absent(state.key))
    return Step(
        replace(
            state,
            status=previous.status if previous.exists else state.status,
            target=previous.target if previous.exists else state.target,
            raised_event_id=(
                previous.raised_event_id if previous.exists else state.raised_event_id
            ),
            opened_at=previous.opened_at if previous.exists else state.opened_at,
            basis=previous.basis if previous.exists else state.basis,
            downgraded=previous.downgraded if previous.exists else state.downgraded,
            failed_reason=None,
            inflight_seq=0,
            inflight_since=None,
        )
    )


def park(state: Conversation, pending: Pending, now: datetime, alive: float) -> Step:
    """The other side could not take claim `pending.seq` inline: put it in the mailbox (by
    sequence, so it still goes before any newer event that joined meanwhile) - unless a newer
    event was already sent inline, which this older one would undo."""
    if (
        state.exists
        and not state.pending_count
        and state.seq > pending.seq
        and not state.inflight_at(now, alive)
    ):
        return _same(state, Superseded(state.seq))
    changes: dict[str, Any] = {"pending_count": state.pending_count + 1, "exists": True}
    if not state.exists:  # deleted meanwhile: record it again
        changes.update(status=pending.status, seq=max(state.seq, pending.seq))
    if state.inflight_seq == pending.seq:
        changes.update(inflight_seq=0, inflight_since=None)
    return Step(replace(state, **changes), Queued(pending.seq, pending.reason), add=pending)


# --- the outbox path: the mailbox, oldest first ---


PRESUMED = "presumed delivered before a crash"


def next_send(state: Conversation, now: datetime, alive: float) -> Step:
    """What the queue worker does next with a mailbox (`state.mailbox` read with the state)."""
    if not state.exists or not state.pending_count or not state.mailbox:
        return _same(state)
    if state.inflight_at(now, alive):
        # An inline send of an older claim is still running; it goes first.
        return _same(state, Wait(f"{state.key} #{state.inflight_seq} is being sent inline"))
    head = state.mailbox[0]
    if state.sending_seq == head.seq:
        if state.sending_at(now, alive):
            return _same(state, Wait(f"{state.key} #{head.seq} is being sent by another worker"))
        # The worker that marked it died after (presumably) sending.
        return settle(state, head.seq, note=f"#{head.seq} {PRESUMED}")
    return Step(
        replace(state, sending_seq=head.seq, sending_since=now), Send(head.seq, head.payload)
    )


def settle(
    state: Conversation,
    seq: int,
    *,
    event_id: str | None = None,
    failed_reason: str | None = None,
    note: str = "",
    opened: bool = False,
) -> Step:
    """Take mailbox event `seq` out: delivered (event id) or given up (reason). `opened`: it
    raised an alert (its event id becomes the anchor, as in `accepted`)."""
    pending = next((p for p in state.mailbox if p.seq == seq), None)
    if not state.exists or (state.mailbox and pending is None):
        return _same(state)  # settled by someone else already
    pending = pending or Pending(seq, state.status, {})
    changes: dict[str, Any] = {
        "sending_seq": 0,
        "sending_since": None,
        "pending_count": max(0, state.pending_count - 1),
        "mailbox": tuple(p for p in state.mailbox if p.seq != seq),
    }
    if failed_reason is None:
        changes.update(delivered_seq=max(seq, state.delivered_seq), event_id=event_id)
        if opened and seq >= state.delivered_seq:
            changes.update(raised_event_id=event_id)
    else:
        changes.update(failed_reason=failed_reason)
    return Step(replace(state, **changes), Settled(pending, note), remove=seq)


def clear_sending(state: Conversation, seq: int) -> Step:
    """The send of `seq` did not happen: remove its mark, or a retry would take it for a crash
    after sending. Only that mark: another worker's must stay."""
    if not state.exists or state.sending_seq != seq:
        return _same(state)
    return Step(replace(state, sending_seq=0, sending_since=None))


def mark_failed(state: Conversation, reason: str) -> Step:
    """Given up outside the mailbox: a later delivery of the same status is not a duplicate."""
    if not state.exists:
        return _same(state)  # nothing recorded (it went unrecorded): nothing to mark
    return Step(replace(state, failed_reason=reason))


# --- the other side's own changes (two-way sync) ---


def learned(state: Conversation, status: Hashable, now: datetime, alive: float) -> Step:
    """The other side reached `status` on its own (SIGNL4 acknowledged or closed the alert):
    record it as the last status, so the same status coming back from Halo (the echo of the
    relay's own write-back, or an engineer closing the ticket afterwards) is a repeat and is not
    sent. Events still waiting or in flight keep their claim: they go out as they are."""
    busy = state.pending_count or state.inflight_at(now, alive)
    if state.exists and (state.status == status or busy):
        return _same(state)
    changed = replace(state, status=status, failed_reason=None, exists=True, mailbox=())
    return Step(replace(changed, learned=True))


def confirmed(state: Conversation) -> Step:
    """This side reached the status the other side learned it (Halo closed the ticket SIGNL4
    closed): from now on, the ticket open again is news again."""
    if not state.exists or not state.learned:
        return _same(state)
    return Step(replace(state, learned=False))
