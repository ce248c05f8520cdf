"""Queued sends: the outbox's messages, the ticket's mailbox flushed oldest first, and giving up.

A queue message with a sequence number is a nudge: the ticket's mailbox is sent in order, each
event marked as sending before it goes; a permanent refusal goes to the poison queue and the
mailbox carries on. Without one (the ledger was down) the message's own payload is sent.
Poison path (`give_up`): the ticket's waiting events leave the mailbox with the reason.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from shared.adapters.store import Conflict, Unavailable
from shared.delivery import conversation as core
from shared.delivery.conversation import Conversation
from shared.delivery.ledger import Ledger
from shared.delivery.outbox import OutboxMessage, PoisonRecord, QueueOutcome, parse_message
from shared.delivery.pages import Sender, target_settings, value_of
from shared.domain.alert import AlertStatus
from shared.errors import DeliveryRejected, DeliveryUnavailable
from shared.redaction import log_safe
from shared.settings import RelaySettings

MAX_FLUSH_STEPS = 100  # per queue message; a longer mailbox continues on the next try
FLUSH_SECONDS = 60.0  # per queue message: well inside host.json's functionTimeout (120 s)

logger = logging.getLogger("shared.relay")


class MailboxUnavailable(Exception):
    """The ticket's mailbox cannot be read or is being sent by another worker: retry later."""


def deliver_queued(
    raw: str, settings: RelaySettings, ledger: Ledger | None, sender: Sender
) -> QueueOutcome:
    """Deliver what a queue message stands for.

    With the ledger (the message has a sequence number) the message is a nudge: the ticket's
    mailbox is sent oldest first, so events reach SIGNL4 in the order Halo sent them. Without
    it (the ledger was unreachable when the event was queued) the message's own payload is sent.
    Raises the sender's DeliveryUnavailable (Signl4Unavailable, HaloUnavailable) or
    MailboxUnavailable when the queue should try again later.
    """
    send = sender
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
        return _send_own_copy(message, settings, send)
    try:
        return flush_mailbox(message.external_id, settings, ledger, send)
    except Unavailable as error:
        # The mailbox holds the events in order; without it, sending the message's own copy
        # could overtake them. Try again later.
        raise MailboxUnavailable(
            f"ledger unreachable ({error}); {message.external_id} waits"
        ) from None


def _send_own_copy(message: OutboxMessage, settings: RelaySettings, send: Sender) -> QueueOutcome:
    """The ledger was down when the event was queued: the message carries the event itself."""
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


@dataclass
class _Flush:
    """What one flush of a mailbox got done so far."""

    sent: int = 0
    event_id: str | None = None
    poison: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def outcome(self, external_id: str) -> QueueOutcome:
        reason = "; ".join(self.reasons)
        if self.poison:
            return QueueOutcome(
                external_id=external_id,
                result="poison",
                sent=self.sent,
                reason=reason,
                poison=self.poison,
            )
        if self.sent:
            return QueueOutcome(
                external_id=external_id,
                result="sent",
                sent=self.sent,
                event_id=self.event_id,
                reason=reason,
            )
        return QueueOutcome(
            external_id=external_id,
            result="duplicate",
            reason=reason or "nothing left to send",
        )


def flush_mailbox(
    external_id: str, settings: RelaySettings, ledger: Ledger, send: Sender
) -> QueueOutcome:
    """Send the ticket's mailbox, oldest first, one step per read."""
    done = _Flush()
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
        if not _flush_step(state, settings, ledger, send, done=done):
            break
    else:
        raise MailboxUnavailable(
            f"{external_id}: more than {MAX_FLUSH_STEPS} steps; continuing later"
        )
    return done.outcome(external_id)


def _flush_step(
    state: Conversation, settings: RelaySettings, ledger: Ledger, send: Sender, *, done: _Flush
) -> bool:
    """One step of a flush: settle a dead sender's mark, or send the head of the mailbox.
    False: nothing more to send. A lost race is a step too (the next reads again)."""
    # The ticket's alert went to this target: every event of it follows (checked before
    # anything is marked: a target whose secret is gone is a configuration error).
    target = target_settings(settings, state.target)
    # A mark younger than this is a live sender; older, a dead one (no invocation outlives
    # host.json's functionTimeout, which RELAY_INFLIGHT_SECONDS exceeds).
    step = core.next_send(state, ledger.clock(), settings.relay_inflight_seconds)
    effect = step.effect
    if isinstance(effect, core.Wait):
        raise MailboxUnavailable(effect.reason)
    if isinstance(effect, core.Settled):
        # The worker that marked it died after (presumably) sending: paging twice is the
        # worse failure here, so it counts as delivered.
        try:
            ledger.apply(state, step)
        except Conflict:
            return True
        done.reasons.append(effect.note)
        return True
    if not isinstance(effect, core.Send):
        return False
    try:
        marked = ledger.apply(state, step)
    except Conflict:
        return True  # changed under us (a new event joined): read again
    except Unavailable:
        # The mark may have been written before the answer was lost: take it back, since
        # nothing was sent, then let the queue try again.
        ledger.clear_sending(state.key, effect.seq)
        raise
    _send_head(state, marked, effect, send, target=target, ledger=ledger, done=done)
    return True


def _send_head(
    state: Conversation,
    marked: Conversation,
    effect: core.Send,
    send: Sender,
    *,
    target: RelaySettings,
    ledger: Ledger,
    done: _Flush,
) -> None:
    """Send the marked head of the mailbox and settle it: sent, or poisoned when refused."""
    head = state.mailbox[0]
    try:
        result = send(effect.payload, target)
    except DeliveryUnavailable:
        ledger.clear_sending(state.key, effect.seq)
        raise
    except DeliveryRejected as error:
        _settle(ledger, marked, effect.seq, failed_reason=error.message)
        message = OutboxMessage(
            externalId=state.key,
            status=head.status,
            seq=head.seq,
            payload=head.payload,
            reason=head.reason,
        )
        done.poison.append(
            PoisonRecord(
                externalId=state.key, status=head.status, reason=error.message, message=message
            ).to_json()
        )
        done.reasons.append(f"#{head.seq} {error.message}")
        return
    _settle(
        ledger, marked, effect.seq, event_id=result.event_id, opened=head.status is AlertStatus.NEW
    )
    done.sent, done.event_id = done.sent + 1, result.event_id


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
            return ", ".join(f"#{e.seq} {value_of(e.status)}" for e in abandoned)
        ledger.mark_failed(external_id, reason)
    except Unavailable as error:
        logger.warning(
            "relay: ledger unreachable (%s) while giving up %s",
            log_safe(error),
            log_safe(external_id),
        )
    return ""
