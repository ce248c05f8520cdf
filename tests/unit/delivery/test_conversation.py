"""The delivery core (shared/delivery/conversation.py), one transition at a time: for each rule a table of
(state, input, now) -> Step(new state, effect, mailbox row added/removed, changed).

Fixed datetimes, no clock: `alive` is 150 seconds and a mark exactly 150 seconds old belongs to
a dead worker. Each expected state is written as a delta from the input state (`delta(...)`,
`delta()`: left as it was), so a row shows what the transition changes; the steps are still
compared whole (the state, the effect, the rows) and, since a Conversation's equality leaves its
mailbox out, the mailbox is compared too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shared.delivery import conversation as core
from shared.delivery.conversation import (
    PRESUMED,
    Arrival,
    Conversation,
    Duplicate,
    Nothing,
    Pending,
    Queued,
    Send,
    Settled,
    Step,
    Superseded,
    Wait,
)
from shared.domain.alert import AlertStatus

NEW, ACK, RESOLVED = AlertStatus.NEW, AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED
KEY = "HaloPSA-4242"
ALIVE = 150.0
NOW = datetime(2026, 9, 25, 6, 41, tzinfo=timezone.utc)
FRESH = NOW - timedelta(seconds=149)  # a mark still alive at NOW
JUST_ALIVE = NOW - timedelta(seconds=149.999)
DEAD = NOW - timedelta(seconds=150)  # exactly `alive` old: its worker is gone
PAYLOAD = {"Title": "Printer on fire", "X-S4-ExternalID": KEY}


def known(**fields: Any) -> Conversation:
    """A stored conversation of KEY."""
    return Conversation(key=KEY, exists=True, **fields)


def pending(seq: int, status: Any = NEW, reason: str = "SIGNL4 unavailable") -> Pending:
    return Pending(seq, status, {"seq": seq}, reason)


@dataclass(frozen=True)
class Delta:
    """An expected state written as what the transition changes in the input state."""

    changes: dict[str, Any]


def delta(**changes: Any) -> Any:
    """The input state with these fields changed (none: the state is left as it was)."""
    return Delta(changes)


def assert_step(actual: Step, expected: Step, given: Conversation) -> None:
    """Compare whole steps, the expected state being `given` with its delta applied."""
    if isinstance(expected.state, Delta):
        expected = replace(expected, state=replace(given, **expected.state.changes))
    assert actual == expected
    assert actual.state.mailbox == expected.state.mailbox


# --- the models ---


@pytest.mark.parametrize(
    ("seq", "since", "alive"),
    [
        pytest.param(3, FRESH, True, id="recent"),
        pytest.param(3, JUST_ALIVE, True, id="just-under-alive"),
        pytest.param(3, DEAD, False, id="exactly-alive-old"),
        pytest.param(3, NOW - timedelta(hours=1), False, id="long-dead"),
        pytest.param(3, NOW, True, id="set-now"),
        pytest.param(0, NOW, False, id="no-seq"),
        pytest.param(3, None, False, id="no-time"),
    ],
)
def test_a_mark_is_alive_for_less_than_alive_seconds(
    seq: int, since: datetime | None, alive: bool
) -> None:
    inflight = known(inflight_seq=seq, inflight_since=since)
    sending = known(sending_seq=seq, sending_since=since)
    assert inflight.inflight_at(NOW, ALIVE) is alive
    assert sending.sending_at(NOW, ALIVE) is alive
    # Each mark is read from its own fields.
    assert inflight.sending_at(NOW, ALIVE) is False
    assert sending.inflight_at(NOW, ALIVE) is False


@pytest.mark.parametrize(
    ("state", "status", "has"),
    [
        pytest.param(known(status=NEW, seq=1), NEW, True, id="claimed"),
        pytest.param(known(status=NEW, seq=1), ACK, False, id="other-status"),
        pytest.param(known(status=NEW, seq=1, failed_reason="refused"), NEW, False, id="failed"),
        pytest.param(Conversation(KEY, status=NEW), NEW, False, id="not-stored"),
    ],
)
def test_already_has_a_status_claimed_and_not_failed(
    state: Conversation, status: AlertStatus, has: bool
) -> None:
    assert state.already_has(status) is has


def test_absent_is_nothing_stored_for_the_key() -> None:
    state = core.absent(KEY)
    assert state == Conversation(KEY)
    assert (state.key, state.exists, state.seq, state.status) == (KEY, False, 0, None)


def test_reprs_name_the_seq_and_the_status_value() -> None:
    assert repr(Pending(7, ACK, {})) == "Pending(#7 acknowledged)"
    assert repr(Pending(2, "notification-9", {})) == "Pending(#2 notification-9)"
    assert repr(Step(known(), Send(3, {}))) == "Step(Send(seq=3, payload={}))"
    assert repr(Step(known())) == "Step(Nothing())"


# --- the HTTP path: repeats, waiting, claims ---


@pytest.mark.parametrize(
    ("state", "arrival", "repeat"),
    [
        pytest.param(core.absent(KEY), Arrival(NEW, {}, creation=True), False, id="first"),
        pytest.param(core.absent(KEY), Arrival(NEW, {}), False, id="first-not-creation"),
        pytest.param(known(status=NEW, seq=1), Arrival(NEW, {}), True, id="same-status"),
        pytest.param(known(status=NEW, seq=1), Arrival(ACK, {}), False, id="next-status"),
        pytest.param(
            known(status=RESOLVED, seq=3),
            Arrival(NEW, {}, creation=True),
            True,
            id="creation-of-a-known-key",
        ),
        pytest.param(
            known(status=NEW, seq=1, failed_reason="refused: 400"),
            Arrival(NEW, {}, creation=True),
            False,
            id="creation-after-failure",
        ),
        pytest.param(
            known(status=NEW, seq=1, failed_reason="refused: 400"),
            Arrival(NEW, {}),
            False,
            id="same-status-after-failure",
        ),
        pytest.param(
            known(status=NEW, seq=2, pending_count=1),
            Arrival(NEW, {}),
            True,
            id="same-status-still-waiting",
        ),
    ],
)
def test_is_repeat(state: Conversation, arrival: Arrival, repeat: bool) -> None:
    assert core.is_repeat(state, arrival) is repeat


WAITING = "2 earlier event(s) of this ticket are still queued"
BEING_SENT = "an earlier event of this ticket is being sent"


@pytest.mark.parametrize(
    ("state", "arrival", "reason"),
    [
        pytest.param(core.absent(KEY), Arrival(NEW, {}), "", id="unknown-key"),
        pytest.param(
            core.absent(KEY),
            Arrival(NEW, {}, park_reason="SIGNL4 unavailable"),
            "SIGNL4 unavailable",
            id="park-reason-unknown-key",
        ),
        pytest.param(
            known(status=NEW, seq=3, pending_count=2),
            Arrival(ACK, {}, park_reason="rate limited"),
            "rate limited",
            id="park-reason-first",
        ),
        pytest.param(
            known(status=NEW, seq=3, pending_count=2), Arrival(ACK, {}), WAITING, id="queued"
        ),
        pytest.param(
            known(status=NEW, seq=1, pending_count=1),
            Arrival(ACK, {}),
            "1 earlier event(s) of this ticket are still queued",
            id="one-queued",
        ),
        pytest.param(
            known(status=NEW, seq=3, pending_count=2, inflight_seq=3, inflight_since=FRESH),
            Arrival(ACK, {}),
            WAITING,
            id="queued-before-inflight",
        ),
        pytest.param(
            known(status=NEW, seq=1, inflight_seq=1, inflight_since=FRESH),
            Arrival(ACK, {}),
            BEING_SENT,
            id="inflight",
        ),
        pytest.param(
            known(status=NEW, seq=1, inflight_seq=1, inflight_since=JUST_ALIVE),
            Arrival(ACK, {}),
            BEING_SENT,
            id="inflight-just-alive",
        ),
        pytest.param(
            known(status=NEW, seq=1, inflight_seq=1, inflight_since=DEAD),
            Arrival(ACK, {}),
            "",
            id="inflight-dead",
        ),
        pytest.param(
            known(status=NEW, seq=1, sending_seq=1, sending_since=FRESH),
            Arrival(ACK, {}),
            "",
            id="sending-mark-does-not-block-inline",
        ),
        pytest.param(known(status=NEW, seq=1, delivered_seq=1), Arrival(ACK, {}), "", id="idle"),
    ],
)
def test_must_wait_says_why(state: Conversation, arrival: Arrival, reason: str) -> None:
    assert core.must_wait(state, arrival, NOW, ALIVE) == reason


@pytest.mark.parametrize(
    ("state", "arrival", "expected"),
    [
        pytest.param(
            core.absent(KEY),
            Arrival(NEW, PAYLOAD, creation=True),
            Step(
                delta(exists=True, status=NEW, seq=1, inflight_seq=1, inflight_since=NOW),
                Send(1, PAYLOAD),
            ),
            id="first-event-goes-inline",
        ),
        pytest.param(
            known(status=NEW, seq=4, delivered_seq=4, event_id="ev-4"),
            Arrival(NEW, PAYLOAD),
            Step(
                delta(),
                Duplicate("ev-4", False, 4),
                changed=False,
            ),
            id="duplicate-no-nudge",
        ),
        pytest.param(
            known(status=ACK, seq=5, delivered_seq=4, event_id="ev-4", pending_count=1),
            Arrival(ACK, PAYLOAD),
            Step(
                delta(),
                Duplicate("ev-4", True, 5),
                changed=False,
            ),
            id="duplicate-while-waiting-nudges",
        ),
        pytest.param(
            known(status=NEW, seq=1, delivered_seq=1, event_id="ev-1"),
            Arrival(ACK, PAYLOAD),
            Step(
                delta(status=ACK, seq=2, inflight_seq=2, inflight_since=NOW),
                Send(2, PAYLOAD),
            ),
            id="next-status-inline",
        ),
        pytest.param(
            known(status=NEW, seq=1, inflight_seq=1, inflight_since=FRESH),
            Arrival(ACK, PAYLOAD),
            Step(
                delta(status=ACK, seq=2, pending_count=1),
                Queued(2, BEING_SENT),
                add=Pending(2, ACK, PAYLOAD, BEING_SENT),
            ),
            id="behind-a-live-inline-send-joins-the-mailbox",
        ),
        pytest.param(
            known(status=NEW, seq=3, pending_count=2),
            Arrival(RESOLVED, PAYLOAD),
            Step(
                delta(status=RESOLVED, seq=4, pending_count=3),
                Queued(4, WAITING),
                add=Pending(4, RESOLVED, PAYLOAD, WAITING),
            ),
            id="behind-queued-events",
        ),
    ],
)
def test_arrive(state: Conversation, arrival: Arrival, expected: Step) -> None:
    assert_step(core.arrive(state, arrival, NOW, ALIVE), expected, state)


@pytest.mark.parametrize(
    ("state", "arrival", "wait_reason", "expected"),
    [
        pytest.param(
            core.absent(KEY),
            Arrival(NEW, PAYLOAD, target="ops"),
            "",
            Step(
                delta(
                    exists=True, status=NEW, seq=1, inflight_seq=1, inflight_since=NOW, target="ops"
                ),
                Send(1, PAYLOAD),
            ),
            id="inline-records-the-target",
        ),
        pytest.param(
            known(
                status=NEW, seq=2, target="ops", failed_reason="refused: 400", mailbox=(pending(2),)
            ),
            Arrival(NEW, PAYLOAD),
            "",
            Step(
                delta(seq=3, inflight_seq=3, inflight_since=NOW, failed_reason=None, mailbox=()),
                Send(3, PAYLOAD),
            ),
            id="keeps-the-target-clears-failure-and-mailbox",
        ),
        pytest.param(
            known(status=NEW, seq=2, target="ops"),
            Arrival(ACK, PAYLOAD, target=""),
            "",
            Step(
                delta(status=ACK, seq=3, inflight_seq=3, inflight_since=NOW, target=""),
                Send(3, PAYLOAD),
            ),
            id="empty-target-is-the-default-route",
        ),
        pytest.param(
            known(status=NEW, seq=2, pending_count=1, target="ops"),
            Arrival(ACK, PAYLOAD, target="night"),
            "SIGNL4 unavailable",
            Step(
                delta(status=ACK, seq=3, pending_count=2, target="night"),
                Queued(3, "SIGNL4 unavailable"),
                add=Pending(3, ACK, PAYLOAD, "SIGNL4 unavailable"),
            ),
            id="queued",
        ),
        pytest.param(
            known(status=NEW, seq=2, pending_count=1),
            Arrival(ACK, PAYLOAD, can_queue=False),
            "SIGNL4 unavailable",
            Step(
                delta(status=ACK, seq=3, inflight_seq=3, inflight_since=NOW),
                Send(3, PAYLOAD),
            ),
            id="no-outbox-goes-inline",
        ),
    ],
)
def test_claim(state: Conversation, arrival: Arrival, wait_reason: str, expected: Step) -> None:
    assert_step(core.claim(state, arrival, wait_reason, NOW), expected, state)


@pytest.mark.parametrize(
    ("state", "seq", "event_id", "expected"),
    [
        pytest.param(
            core.absent(KEY),
            1,
            "ev-1",
            Step(delta(), changed=False),
            id="deleted-meanwhile",
        ),
        pytest.param(
            known(status=NEW, seq=1, inflight_seq=1, inflight_since=NOW),
            1,
            "ev-1",
            Step(delta(delivered_seq=1, event_id="ev-1", inflight_seq=0, inflight_since=None)),
            id="clears-its-mark",
        ),
        pytest.param(
            known(
                status=ACK,
                seq=2,
                delivered_seq=2,
                event_id="ev-old",
                inflight_seq=2,
                inflight_since=NOW,
                failed_reason="refused: 400",
            ),
            2,
            "ev-2",
            Step(delta(event_id="ev-2", inflight_seq=0, inflight_since=None, failed_reason=None)),
            id="same-seq-takes-the-new-event-id",
        ),
        pytest.param(
            known(
                status=RESOLVED,
                seq=3,
                delivered_seq=3,
                event_id="ev-3",
                inflight_seq=3,
                inflight_since=NOW,
            ),
            2,
            "ev-2",
            Step(delta()),
            id="older-seq-keeps-newer-delivery-and-mark",
        ),
        pytest.param(
            known(status=ACK, seq=3, delivered_seq=1, failed_reason="refused: 400"),
            2,
            None,
            Step(delta(delivered_seq=2, failed_reason=None)),
            id="clears-failure",
        ),
    ],
)
def test_accepted(state: Conversation, seq: int, event_id: str | None, expected: Step) -> None:
    assert_step(core.accepted(state, seq, event_id), expected, state)


@pytest.mark.parametrize(
    ("state", "seq", "previous", "expected"),
    [
        pytest.param(
            core.absent(KEY),
            1,
            core.absent(KEY),
            Step(delta(), changed=False),
            id="deleted-meanwhile",
        ),
        pytest.param(
            known(status=NEW, seq=1, inflight_seq=1, inflight_since=NOW, target="ops"),
            1,
            core.absent(KEY),
            Step(core.absent(KEY)),
            id="first-claim-nobody-built-on-is-undone-whole",
        ),
        pytest.param(
            known(
                status=ACK,
                seq=2,
                delivered_seq=1,
                event_id="ev-1",
                inflight_seq=2,
                inflight_since=NOW,
                target="night",
                failed_reason="x",
            ),
            2,
            known(status=NEW, seq=1, target="ops"),
            Step(
                delta(
                    status=NEW,
                    inflight_seq=0,
                    inflight_since=None,
                    failed_reason=None,
                    target="ops",
                )
            ),
            id="back-to-the-previous-status-seq-kept",
        ),
        pytest.param(
            known(
                status=ACK,
                seq=2,
                pending_count=1,
                inflight_seq=2,
                inflight_since=NOW,
                target="night",
            ),
            2,
            core.absent(KEY),
            Step(delta(inflight_seq=0, inflight_since=None)),
            id="first-claim-with-a-mailbox-stays",
        ),
        pytest.param(
            known(status=RESOLVED, seq=3, pending_count=1, inflight_seq=2, inflight_since=NOW),
            2,
            known(status=NEW, seq=1),
            Step(delta(inflight_seq=0, inflight_since=None)),
            id="newer-claims-only-the-mark-goes",
        ),
        pytest.param(
            known(status=RESOLVED, seq=3, pending_count=1, inflight_seq=3, inflight_since=NOW),
            2,
            known(status=NEW, seq=1),
            Step(
                delta(),
                changed=False,
            ),
            id="newer-claims-and-another-mark",
        ),
    ],
)
def test_refused(state: Conversation, seq: int, previous: Conversation, expected: Step) -> None:
    assert_step(core.refused(state, seq, previous), expected, state)


@pytest.mark.parametrize(
    ("state", "parked", "expected"),
    [
        pytest.param(
            known(status=ACK, seq=2, inflight_seq=2, inflight_since=FRESH),
            pending(2),
            Step(
                delta(inflight_seq=0, inflight_since=None, pending_count=1),
                Queued(2, "SIGNL4 unavailable"),
                add=pending(2),
            ),
            id="own-claim-clears-its-mark",
        ),
        pytest.param(
            # The ledger parks with alive 0: its own claim is the newest, never superseded.
            known(status=ACK, seq=2, delivered_seq=1, inflight_seq=2, inflight_since=DEAD),
            pending(2, ACK),
            Step(
                delta(inflight_seq=0, inflight_since=None, pending_count=1),
                Queued(2, "SIGNL4 unavailable"),
                add=pending(2, ACK),
            ),
            id="own-claim-with-a-dead-mark-still-parks",
        ),
        pytest.param(
            known(status=ACK, seq=3, pending_count=1, inflight_seq=2, inflight_since=FRESH),
            pending(2, ACK, "rate limited"),
            Step(
                delta(inflight_seq=0, inflight_since=None, pending_count=2),
                Queued(2, "rate limited"),
                add=pending(2, ACK, "rate limited"),
            ),
            id="newer-event-queued-meanwhile-parks-by-seq",
        ),
        pytest.param(
            known(status=RESOLVED, seq=3, delivered_seq=3),
            pending(2),
            Step(delta(), Superseded(3), changed=False),
            id="superseded-by-a-newer-inline-send",
        ),
        pytest.param(
            known(status=RESOLVED, seq=3, inflight_seq=3, inflight_since=DEAD),
            pending(2),
            Step(
                delta(),
                Superseded(3),
                changed=False,
            ),
            id="superseded-by-a-dead-inline-send",
        ),
        pytest.param(
            known(status=RESOLVED, seq=3, inflight_seq=3, inflight_since=JUST_ALIVE),
            pending(2),
            Step(
                delta(pending_count=1),
                Queued(2, "SIGNL4 unavailable"),
                add=pending(2),
            ),
            id="newer-still-in-flight-parks",
        ),
        pytest.param(
            known(status=NEW, seq=1),
            Pending(2, ACK, PAYLOAD, "late"),
            Step(
                delta(pending_count=1),
                Queued(2, "late"),
                add=Pending(2, ACK, PAYLOAD, "late"),
            ),
            id="newer-than-the-state-parks",
        ),
        pytest.param(
            core.absent(KEY),
            pending(5, ACK),
            Step(
                delta(exists=True, status=ACK, seq=5, pending_count=1),
                Queued(5, "SIGNL4 unavailable"),
                add=pending(5, ACK),
            ),
            id="deleted-meanwhile-recorded-again",
        ),
        pytest.param(
            Conversation(KEY, seq=7),
            pending(5, ACK),
            Step(
                delta(exists=True, status=ACK, pending_count=1),
                Queued(5, "SIGNL4 unavailable"),
                add=pending(5, ACK),
            ),
            id="recorded-again-seq-never-goes-back",
        ),
    ],
)
def test_park(state: Conversation, parked: Pending, expected: Step) -> None:
    assert_step(core.park(state, parked, NOW, ALIVE), expected, state)


# --- the outbox path ---


TWO = (pending(2, ACK), pending(3, RESOLVED))


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        pytest.param(core.absent(KEY), Step(delta(), changed=False), id="unknown"),
        pytest.param(
            known(status=NEW, seq=1, mailbox=(pending(1),)),
            Step(delta(), changed=False),
            id="nothing-pending",
        ),
        pytest.param(
            known(status=NEW, seq=1, pending_count=1),
            Step(delta(), changed=False),
            id="mailbox-not-read",
        ),
        pytest.param(
            known(status=RESOLVED, seq=3, pending_count=2, mailbox=TWO),
            Step(
                delta(sending_seq=2, sending_since=NOW),
                Send(2, {"seq": 2}),
            ),
            id="oldest-first-marked-as-sending",
        ),
        pytest.param(
            known(
                status=RESOLVED,
                seq=3,
                pending_count=2,
                inflight_seq=1,
                inflight_since=FRESH,
                mailbox=TWO,
            ),
            Step(
                delta(),
                Wait(f"{KEY} #1 is being sent inline"),
                changed=False,
            ),
            id="waits-for-a-live-inline-send",
        ),
        pytest.param(
            known(
                status=RESOLVED,
                seq=3,
                pending_count=2,
                inflight_seq=1,
                inflight_since=DEAD,
                mailbox=TWO,
            ),
            Step(
                delta(sending_seq=2, sending_since=NOW),
                Send(2, {"seq": 2}),
            ),
            id="dead-inline-send-does-not-block",
        ),
        pytest.param(
            known(
                status=RESOLVED,
                seq=3,
                pending_count=2,
                sending_seq=2,
                sending_since=JUST_ALIVE,
                mailbox=TWO,
            ),
            Step(
                delta(),
                Wait(f"{KEY} #2 is being sent by another worker"),
                changed=False,
            ),
            id="waits-for-a-live-worker",
        ),
        pytest.param(
            known(
                status=RESOLVED,
                seq=3,
                delivered_seq=1,
                event_id="ev-1",
                pending_count=2,
                sending_seq=2,
                sending_since=DEAD,
                mailbox=TWO,
            ),
            Step(
                delta(
                    delivered_seq=2,
                    event_id=None,
                    sending_seq=0,
                    sending_since=None,
                    pending_count=1,
                    mailbox=TWO[1:],
                ),
                Settled(TWO[0], f"#2 {PRESUMED}"),
                remove=2,
            ),
            id="dead-worker-presumed-delivered",
        ),
        pytest.param(
            known(
                status=RESOLVED,
                seq=3,
                pending_count=2,
                sending_seq=3,
                sending_since=FRESH,
                mailbox=TWO,
            ),
            Step(
                delta(sending_seq=2, sending_since=NOW),
                Send(2, {"seq": 2}),
            ),
            id="a-mark-on-another-seq-is-not-the-head",
        ),
    ],
)
def test_next_send(state: Conversation, expected: Step) -> None:
    assert_step(core.next_send(state, NOW, ALIVE), expected, state)


def test_presumed_note_wording() -> None:
    assert PRESUMED == "presumed delivered before a crash"


@pytest.mark.parametrize(
    ("state", "seq", "outcome", "expected"),
    [
        pytest.param(
            core.absent(KEY),
            2,
            {},
            Step(delta(), changed=False),
            id="deleted",
        ),
        pytest.param(
            known(status=RESOLVED, seq=3, pending_count=1, mailbox=TWO[1:]),
            2,
            {},
            Step(delta(), changed=False),
            id="settled-by-someone-else",
        ),
        pytest.param(
            known(
                status=RESOLVED,
                seq=3,
                delivered_seq=1,
                pending_count=2,
                sending_seq=2,
                sending_since=NOW,
                mailbox=TWO,
            ),
            2,
            {"event_id": "ev-2", "note": "sent"},
            Step(
                delta(
                    delivered_seq=2,
                    event_id="ev-2",
                    sending_seq=0,
                    sending_since=None,
                    pending_count=1,
                    mailbox=TWO[1:],
                ),
                Settled(TWO[0], "sent"),
                remove=2,
            ),
            id="delivered",
        ),
        pytest.param(
            known(
                status=RESOLVED,
                seq=3,
                delivered_seq=1,
                event_id="ev-1",
                pending_count=2,
                sending_seq=3,
                sending_since=NOW,
                mailbox=TWO,
            ),
            3,
            {"failed_reason": "refused: 400"},
            Step(
                delta(
                    sending_seq=0,
                    sending_since=None,
                    pending_count=1,
                    failed_reason="refused: 400",
                    mailbox=TWO[:1],
                ),
                Settled(TWO[1]),
                remove=3,
            ),
            id="given-up-keeps-the-delivery",
        ),
        pytest.param(
            known(
                status=RESOLVED,
                seq=3,
                delivered_seq=3,
                event_id="ev-3",
                pending_count=1,
                mailbox=(pending(2),),
            ),
            2,
            {"event_id": "ev-2"},
            Step(
                delta(event_id="ev-2", pending_count=0, mailbox=()),
                Settled(pending(2)),
                remove=2,
            ),
            id="delivered-seq-never-goes-back",
        ),
        pytest.param(
            known(status=ACK, seq=2, pending_count=1),
            2,
            {"event_id": "ev-2"},
            Step(
                delta(delivered_seq=2, event_id="ev-2", pending_count=0),
                Settled(Pending(2, ACK, {})),
                remove=2,
            ),
            id="mailbox-not-read",
        ),
        pytest.param(
            known(status=ACK, seq=2),
            2,
            {"failed_reason": "gone"},
            Step(
                delta(failed_reason="gone"),
                Settled(Pending(2, ACK, {})),
                remove=2,
            ),
            id="count-never-below-zero",
        ),
    ],
)
def test_settle(state: Conversation, seq: int, outcome: dict[str, Any], expected: Step) -> None:
    assert_step(core.settle(state, seq, **outcome), expected, state)


@pytest.mark.parametrize(
    ("state", "seq", "expected"),
    [
        pytest.param(core.absent(KEY), 2, Step(delta(), changed=False), id="deleted"),
        pytest.param(
            known(seq=2, pending_count=1, sending_seq=2, sending_since=NOW),
            2,
            Step(delta(sending_seq=0, sending_since=None)),
            id="own-mark",
        ),
        pytest.param(
            known(seq=3, pending_count=1, sending_seq=3, sending_since=NOW),
            2,
            Step(delta(), changed=False),
            id="another-workers-mark-stays",
        ),
    ],
)
def test_clear_sending(state: Conversation, seq: int, expected: Step) -> None:
    assert_step(core.clear_sending(state, seq), expected, state)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        pytest.param(core.absent(KEY), Step(delta(), changed=False), id="unrecorded"),
        pytest.param(
            known(status=NEW, seq=1),
            Step(delta(failed_reason="refused")),
            id="recorded",
        ),
    ],
)
def test_mark_failed(state: Conversation, expected: Step) -> None:
    assert_step(core.mark_failed(state, "refused"), expected, state)


def test_a_failed_status_is_sent_again() -> None:
    failed = core.mark_failed(known(status=NEW, seq=1, delivered_seq=0), "refused").state
    step = core.arrive(failed, Arrival(NEW, PAYLOAD, creation=True), NOW, ALIVE)
    assert step.effect == Send(2, PAYLOAD) and step.state.failed_reason is None


# --- the other side's own changes ---


@pytest.mark.parametrize(
    ("state", "status", "expected"),
    [
        pytest.param(
            core.absent(KEY),
            RESOLVED,
            Step(delta(exists=True, status=RESOLVED, learned=True)),
            id="unknown-key",
        ),
        pytest.param(
            known(status=NEW, seq=1, delivered_seq=1, failed_reason="x", mailbox=(pending(1),)),
            ACK,
            Step(delta(status=ACK, failed_reason=None, mailbox=(), learned=True)),
            id="idle",
        ),
        pytest.param(
            known(status=ACK, seq=1),
            ACK,
            Step(delta(), changed=False),
            id="already-there",
        ),
        pytest.param(
            known(status=NEW, seq=2, pending_count=1),
            ACK,
            Step(delta(), changed=False),
            id="waiting",
        ),
        pytest.param(
            known(status=NEW, seq=1, inflight_seq=1, inflight_since=JUST_ALIVE),
            ACK,
            Step(delta(), changed=False),
            id="in-flight",
        ),
        pytest.param(
            known(status=NEW, seq=1, inflight_seq=1, inflight_since=DEAD),
            ACK,
            Step(delta(status=ACK, learned=True)),
            id="dead-in-flight",
        ),
    ],
)
def test_learned(state: Conversation, status: AlertStatus, expected: Step) -> None:
    assert_step(core.learned(state, status, NOW, ALIVE), expected, state)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        pytest.param(known(status=RESOLVED, learned=True), Step(delta(learned=False)), id="learned"),
        pytest.param(known(status=RESOLVED), Step(delta(), changed=False), id="sent-by-us"),
        pytest.param(core.absent(KEY), Step(delta(), changed=False), id="unknown-key"),
    ],
)
def test_confirmed(state: Conversation, expected: Step) -> None:
    """Halo reached the status SIGNL4 learned the conversation with (issue 22)."""
    assert_step(core.confirmed(state), expected, state)


def test_a_claim_forgets_that_the_status_was_learned() -> None:
    state = known(status=RESOLVED, seq=1, delivered_seq=1, learned=True)
    step = core.arrive(state, Arrival(NEW, PAYLOAD, opens=True), NOW, ALIVE)
    assert step.state.learned is False and step.state.status is NEW


def test_effects_without_arguments_compare_equal() -> None:
    assert Step(known()).effect == Nothing()


# --- the anchor: the event id SIGNL4 answered to the `new` that raised the current alert ---


def test_the_anchor_is_set_by_an_accepted_opening_and_left_by_other_sends() -> None:
    claimed = core.claim(
        known(raised_event_id="evt-old"), Arrival(NEW, PAYLOAD, opens=True), "", NOW
    )
    assert claimed.state.raised_event_id is None  # a new alert: the old one's id no longer acts
    opened = core.accepted(claimed.state, claimed.state.seq, "evt-new", opened=True).state
    assert (opened.event_id, opened.raised_event_id) == ("evt-new", "evt-new")
    acked = core.claim(opened, Arrival(ACK, PAYLOAD), "", NOW).state
    assert acked.raised_event_id == "evt-new"
    done = core.accepted(acked, acked.seq, "evt-ack").state
    assert (done.event_id, done.raised_event_id) == ("evt-ack", "evt-new")


def test_an_older_opening_accepted_late_does_not_move_the_anchor() -> None:
    state = known(seq=3, delivered_seq=3, event_id="evt-3", raised_event_id="evt-3")
    assert core.accepted(state, 2, "evt-2", opened=True).state.raised_event_id == "evt-3"
    parked = known(
        seq=3, delivered_seq=3, raised_event_id="evt-3", pending_count=1, mailbox=(pending(2),)
    )
    settled = core.settle(parked, 2, event_id="evt-2", opened=True).state
    assert settled.raised_event_id == "evt-3"


def test_an_opening_from_the_mailbox_sets_the_anchor() -> None:
    state = known(seq=1, status=NEW, pending_count=1, mailbox=(pending(1),))
    assert core.settle(state, 1, event_id="evt-1", opened=True).state.raised_event_id == "evt-1"
    assert core.settle(state, 1, event_id="evt-1").state.raised_event_id is None


def test_a_refused_opening_gives_the_old_anchor_back() -> None:
    previous = known(seq=2, delivered_seq=2, status=RESOLVED, raised_event_id="evt-1")
    claimed = core.claim(previous, Arrival(NEW, PAYLOAD, opens=True), "", NOW).state
    assert core.refused(claimed, claimed.seq, previous).state.raised_event_id == "evt-1"


def test_an_opening_records_when_and_on_what_and_other_claims_keep_it() -> None:
    opened = core.claim(known(), Arrival(NEW, PAYLOAD, opens=True, basis="p1"), "", NOW).state
    assert (opened.opened_at, opened.basis, opened.downgraded) == (NOW, "p1", False)
    later = NOW + timedelta(minutes=5)
    down = core.claim(opened, Arrival(RESOLVED, PAYLOAD, downgrade=True), "", later).state
    assert (down.opened_at, down.basis, down.downgraded) == (NOW, "p1", True)
    # Until the next opening, the ticket stays downgraded (an acknowledge does not reopen it).
    acked = core.claim(down, Arrival(ACK, PAYLOAD), "", later).state
    assert acked.downgraded
    again = core.claim(acked, Arrival(NEW, PAYLOAD, opens=True, basis="p1'"), "", later).state
    assert (again.opened_at, again.basis, again.downgraded) == (later, "p1'", False)


def test_a_refused_downgrade_or_opening_gives_the_old_record_back() -> None:
    previous = known(seq=2, delivered_seq=2, status=NEW, opened_at=NOW, basis="p1")
    down = core.claim(previous, Arrival(RESOLVED, PAYLOAD, downgrade=True), "", NOW).state
    assert core.refused(down, down.seq, previous).state.downgraded is False
    was_down = replace(previous, status=RESOLVED, downgraded=True)
    later = NOW + timedelta(hours=1)
    opened = core.claim(was_down, Arrival(NEW, PAYLOAD, opens=True, basis="p2"), "", later).state
    back = core.refused(opened, opened.seq, was_down).state
    assert (back.opened_at, back.basis, back.downgraded) == (NOW, "p1", True)
