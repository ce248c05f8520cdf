"""The ledger: claims are conditional, the mailbox keeps order.

The behavioural suite, written once and run over both adapters: each tier's test_ledger.py
imports these cases and gives them its `ledger` fixture (tests/unit: MemoryStore;
tests/integration: TableStore on Azurite)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shared.adapters.sender import SendResult
from shared.adapters.store import Conflict, Op, PartitionStore, Row
from shared.delivery import conversation as core
from shared.delivery.conversation import Arrival, Conversation, Pending, absent
from shared.delivery.ledger import Ledger
from shared.delivery.pages import Delivery, EventTrace, Outcome, deliver_halo_event
from shared.domain.alert import AlertStatus
from shared.domain.halo import parse_event
from shared.settings import RelaySettings
from tests.conftest import new_ticket_id


def _claim(
    ledger: Ledger,
    state: Conversation,
    status: AlertStatus,
    *,
    mailbox: dict[str, Any] | None = None,
    reason: str = "",
) -> Conversation:
    """Claim `status` as the service does (core.claim, written by `apply`): sent inline, or
    with `mailbox` (its payload) joining the ticket's mailbox in the same transaction."""
    arrival = Arrival(status, mailbox or {}, can_queue=mailbox is not None)
    wait = (reason or "queued") if mailbox is not None else ""
    return ledger.apply(state, core.claim(state, arrival, wait, ledger.clock()))


def _now(ledger: Ledger) -> datetime:
    return ledger.clock()


def test_claim_confirm_and_read_back(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    state = ledger.read(external_id)
    assert not state.exists
    claimed = _claim(ledger, state, AlertStatus.NEW)
    assert (claimed.seq, claimed.status, claimed.delivered_seq) == (1, AlertStatus.NEW, 0)
    ledger.confirm(claimed, "evt-9")
    entry = ledger.read(external_id)
    assert entry.exists
    assert (entry.seq, entry.delivered_seq, entry.event_id) == (1, 1, "evt-9")
    assert entry.already_has(AlertStatus.NEW) and not entry.already_has(AlertStatus.RESOLVED)
    resolved = _claim(ledger, entry, AlertStatus.RESOLVED)
    assert resolved.seq == 2 and resolved.event_id == "evt-9"


def test_two_claims_from_the_same_read_cannot_both_win(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    _claim(ledger, absent(external_id), AlertStatus.NEW)
    with pytest.raises(Conflict):
        _claim(ledger, absent(external_id), AlertStatus.NEW)
    first = ledger.read(external_id)
    assert first.exists
    _claim(ledger, first, AlertStatus.RESOLVED)
    with pytest.raises(Conflict):
        _claim(ledger, first, AlertStatus.ACKNOWLEDGED)  # stale ETag


def test_mailbox_keeps_events_in_order_and_settles_them(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    first = _claim(ledger, absent(external_id), AlertStatus.NEW)
    assert first.inflight_at(_now(ledger), 60) and first.inflight_seq == 1  # sent inline
    parked = Pending(1, AlertStatus.NEW, {"X-S4-Status": "new"}, "SIGNL4 answered HTTP 503")
    first = ledger.apply(first, core.park(first, parked, _now(ledger), 60))
    assert not first.inflight_at(_now(ledger), 60)  # parked, no longer in flight
    second = _claim(ledger, first, AlertStatus.RESOLVED, mailbox={"X-S4-Status": "resolved"})
    assert second.pending_count == 2
    state = ledger.read(external_id, mailbox=True)
    events = state.mailbox
    assert [(e.seq, e.status, e.payload["X-S4-Status"]) for e in events] == [
        (1, AlertStatus.NEW, "new"),
        (2, AlertStatus.RESOLVED, "resolved"),
    ]
    assert events[0].reason == "SIGNL4 answered HTTP 503"
    step = core.next_send(state, _now(ledger), 60)
    assert step.state.sending_seq == 1
    sending = ledger.apply(state, step)
    with pytest.raises(Conflict):
        ledger.apply(state, step)  # a second worker cannot send it too
    settled = ledger.apply(sending, core.settle(sending, 1, event_id="evt-1"))
    assert (settled.pending_count, settled.delivered_seq, settled.sending_seq) == (1, 1, 0)
    assert [e.seq for e in ledger.read(external_id, mailbox=True).mailbox] == [2]


def test_clear_sending_removes_only_its_own_mark(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    _claim(ledger, absent(external_id), AlertStatus.NEW, mailbox={"X-S4-Status": "new"})
    state = ledger.read(external_id, mailbox=True)
    [event] = state.mailbox
    ledger.apply(state, core.next_send(state, _now(ledger), 60))
    ledger.clear_sending(external_id, seq=event.seq + 1)  # someone else's: left alone
    entry = ledger.read(external_id)
    assert entry.sending_seq == event.seq and entry.sending_at(_now(ledger), 60)
    ledger.clear_sending(external_id, seq=event.seq)
    entry = ledger.read(external_id)
    assert entry.sending_seq == 0 and not entry.sending_at(_now(ledger), 60)


def test_abandon_empties_the_mailbox_with_the_reason(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    first = _claim(ledger, absent(external_id), AlertStatus.NEW, mailbox={"n": 1})
    _claim(ledger, first, AlertStatus.RESOLVED, mailbox={"n": 2})
    abandoned = ledger.abandon(external_id, "delivery attempts exhausted")
    assert [(e.seq, e.status) for e in abandoned] == [
        (1, AlertStatus.NEW),
        (2, AlertStatus.RESOLVED),
    ]
    entry = ledger.read(external_id, mailbox=True)
    assert entry.exists and entry.pending_count == 0 and entry.mailbox == ()
    assert entry.failed_reason == "delivery attempts exhausted"


def test_release_undoes_a_refused_claim(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    first = _claim(ledger, absent(external_id), AlertStatus.NEW)
    ledger.release(first, None)
    assert not ledger.read(external_id).exists
    first = _claim(ledger, absent(external_id), AlertStatus.NEW)
    ledger.confirm(first, "evt-1")
    previous = ledger.read(external_id)
    assert previous.exists
    second = _claim(ledger, previous, AlertStatus.RESOLVED)
    ledger.release(second, previous)
    restored = ledger.read(external_id)
    assert restored.exists
    assert restored.status is AlertStatus.NEW and restored.seq == 2  # the sequence never goes back


def test_a_failed_event_is_not_a_duplicate(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    _claim(ledger, absent(external_id), AlertStatus.NEW)
    ledger.mark_failed(external_id, "SIGNL4 rejected the event with HTTP 400")
    entry = ledger.read(external_id)
    assert entry.exists and entry.failed_reason
    assert not entry.already_has(AlertStatus.NEW)


# --- claims without a read: the state this process last saw (Ledger.guess) ---
# The delivery service, as the HTTP path runs it, over the ledger under test wrapped to count
# its calls; SIGNL4 is the sender port (accepting at once). Another instance of the relay is a
# second wrapper around the same table: it shares the rows, not what this process remembers.


class CountingStore:
    """The store under test, each call recorded: read, write, or conflict (a write that lost)."""

    def __init__(self, inner: PartitionStore) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def read(self, partition: str, row: str | None = None) -> dict[str, Row]:
        self.calls.append("read")
        return self.inner.read(partition, row)

    def read_rows(self, partition: str, rows: Sequence[str]) -> dict[str, Row]:
        self.calls.append("read")
        return self.inner.read_rows(partition, rows)

    def commit(self, partition: str, ops: Sequence[Op]) -> dict[str, str]:
        try:
            etags = self.inner.commit(partition, ops)
        except Conflict:
            self.calls.append("conflict")
            raise
        self.calls.append("write")
        return etags


class Instance:
    """One relay process: its own view of the ledger, its deliveries, what SIGNL4 got."""

    def __init__(self, inner: PartitionStore, signl4: list[dict[str, Any]]) -> None:
        self.store = CountingStore(inner)
        self.ledger = Ledger(self.store)
        self.signl4 = signl4

    def deliver(self, body: dict[str, Any], **delivery: Any) -> Outcome:
        self.store.calls.clear()
        settings = RelaySettings.from_env({"SIGNL4_TEAM_SECRET": "team-secret-for-the-suite"})
        return deliver_halo_event(
            parse_event(body),
            Delivery(settings, self.ledger, [], sender=self._send, **delivery),
            EventTrace(),
        )

    def _send(self, payload: dict[str, Any], _: RelaySettings) -> SendResult:
        self.signl4.append(payload)
        return SendResult(status_code=201, event_id=f"evt-{len(self.signl4)}")


def _event(tid: int, event: str, **ticket: Any) -> dict[str, Any]:
    return {"event": event, "object_id": tid, "ticket": {"id": tid, "summary": "s", **ticket}}


def _closed(tid: int) -> dict[str, Any]:
    return _event(tid, "closed", hasbeenclosed=True, status_id=9)


def _statuses(signl4: list[dict[str, Any]]) -> list[str]:
    return [payload["X-S4-Status"] for payload in signl4]


def test_a_ticket_this_process_knows_is_claimed_without_a_read(ledger: Ledger) -> None:
    tid, signl4 = new_ticket_id(), []
    relay = Instance(ledger.store, signl4)
    assert relay.deliver(_event(tid, "new ticket logged")).result == "sent"
    assert relay.store.calls == ["write", "write"]  # create-if-absent claim, confirm
    assert relay.deliver(_closed(tid)).result == "sent"
    assert relay.store.calls == ["write", "write"]  # claim on the remembered ETag, confirm
    assert _statuses(signl4) == ["new", "resolved"]
    entry = relay.ledger.read(f"HaloPSA-{tid}")
    assert entry.exists and (entry.seq, entry.delivered_seq, entry.event_id) == (2, 2, "evt-2")


def test_a_guide_body_for_a_ticket_never_seen_is_created_without_a_read(ledger: Ledger) -> None:
    tid, signl4 = new_ticket_id(), []
    relay = Instance(ledger.store, signl4)
    body = {"Title": "guide body", "X-S4-ExternalID": f"HaloPSA-{tid}", "X-S4-Status": "new"}
    assert relay.deliver(body).result == "sent"
    assert relay.store.calls == ["write", "write"]
    # An acknowledge or resolve this process never saw the ticket for: read first (the ticket
    # was paged before, likely by another instance: creating would only conflict).
    stranger = Instance(ledger.store, signl4)
    assert stranger.deliver(_closed(tid)).result == "sent"
    assert stranger.store.calls == ["read", "write", "write"]
    assert _statuses(signl4) == ["new", "resolved"]


def test_a_stale_guess_conflicts_then_reads_and_never_pages_twice(ledger: Ledger) -> None:
    tid, signl4 = new_ticket_id(), []
    first, other = Instance(ledger.store, signl4), Instance(ledger.store, signl4)
    assert first.deliver(_event(tid, "new ticket logged")).result == "sent"
    assert other.deliver(_closed(tid)).result == "sent"  # another instance resolves it
    # Halo redelivers the close to the first instance, which remembers the ticket as new: the
    # claim on that ETag loses, the read finds it resolved, and the answer is "duplicate".
    assert first.deliver(_closed(tid)).result == "duplicate"
    assert first.store.calls == ["conflict", "read"]
    assert _statuses(signl4) == ["new", "resolved"]


def test_a_decision_that_writes_nothing_is_never_taken_on_a_guess(ledger: Ledger) -> None:
    tid, signl4 = new_ticket_id(), []
    first, other = Instance(ledger.store, signl4), Instance(ledger.store, signl4)
    assert first.deliver(_event(tid, "new ticket logged")).result == "sent"
    assert first.deliver(_closed(tid)).result == "sent"
    # Another instance reopens the alert; the first still remembers "resolved".
    reopened = {"Title": "reopened", "X-S4-ExternalID": f"HaloPSA-{tid}", "X-S4-Status": "new"}
    assert other.deliver(reopened).result == "sent"
    # On its guess the next close would be a duplicate (it writes nothing, so no conflict
    # would catch the guess being wrong): it reads first, and the reopened alert is closed.
    assert first.deliver(_closed(tid)).result == "sent"
    assert first.store.calls == ["read", "write", "write"]
    assert _statuses(signl4) == ["new", "resolved", "new", "resolved"]


# --- the confirm after the answer (the HTTP path) ---


class GatedStore(CountingStore):
    """Holds the n-th write until the test opens the gate (a hang guard caps the wait)."""

    def __init__(self, inner: PartitionStore, hold_write: int) -> None:
        super().__init__(inner)
        self.hold_write, self.writes = hold_write, 0
        self.gate, self.held = threading.Event(), threading.Event()

    def commit(self, partition: str, ops: Sequence[Op]) -> dict[str, str]:
        self.writes += 1
        if self.writes == self.hold_write:
            self.held.set()
            self.gate.wait(HANG_GUARD_SECONDS)
        return super().commit(partition, ops)


HANG_GUARD_SECONDS = 20


def test_the_confirm_is_written_after_the_answer(ledger: Ledger) -> None:
    tid, signl4 = new_ticket_id(), []
    relay = Instance(ledger.store, signl4)
    relay.store = gated = GatedStore(ledger.store, hold_write=2)  # the confirm
    relay.ledger = Ledger(gated)
    outcome = relay.deliver(_event(tid, "new ticket logged"), confirm_after_answer=True)
    # Answered while the confirm is held: the table still shows the claim in flight.
    assert (outcome.result, outcome.event_id) == ("sent", "evt-1")
    assert gated.held.wait(HANG_GUARD_SECONDS)
    stored = ledger.store.read(f"HaloPSA-{tid}", "alert")["alert"].entity
    assert (stored["InflightSeq"], stored["DeliveredSeq"]) == (1, 0)
    gated.gate.set()
    # A read in this process waits for its own write behind the answer.
    entry = relay.ledger.read(f"HaloPSA-{tid}")
    assert entry.exists
    assert (entry.inflight_seq, entry.delivered_seq, entry.event_id) == (0, 1, "evt-1")


# --- point reads (read_rows) and the alert's anchor (RaisedEventId), on every adapter ---


def test_read_rows_returns_the_named_rows_that_exist_with_their_etags(ledger: Ledger) -> None:
    key = f"HaloPSA-{new_ticket_id()}"
    store = ledger.store
    store.commit(key, [Op("create", "a", {"V": 1}), Op("create", "seen-b", {"V": 2})])
    store.commit(key, [Op("create", "c", {"V": 3})])
    rows = store.read_rows(key, ["seen-b", "missing", "a", "a"])
    assert list(rows) == ["a", "seen-b"]
    assert (rows["a"].entity["V"], rows["seen-b"].entity["V"]) == (1, 2)
    assert rows["a"].etag == store.read(key, "a")["a"].etag
    store.commit(key, [Op("replace", "a", {"V": 9}, rows["a"].etag)])  # the ETag conditions
    with pytest.raises(Conflict):
        store.commit(key, [Op("replace", "a", {"V": 8}, rows["a"].etag)])
    assert store.read_rows(key, []) == {}
    assert store.read_rows(f"HaloPSA-{new_ticket_id()}", ["a"]) == {}


def test_the_anchor_is_the_opening_event_id_and_later_sends_leave_it(ledger: Ledger) -> None:
    tid, signl4 = new_ticket_id(), []
    relay = Instance(ledger.store, signl4)
    assert relay.deliver(_event(tid, "new ticket logged", status_id=1)).event_id == "evt-1"
    assert relay.deliver(_closed(tid)).event_id == "evt-2"
    entry = Ledger(ledger.store).read(f"HaloPSA-{tid}")
    assert entry.exists
    assert (entry.event_id, entry.raised_event_id) == ("evt-2", "evt-1")
    # Reopened: a new alert, a new anchor.
    assert relay.deliver(_event(tid, "ticket status changed", status_id=2)).event_id == "evt-3"
    entry = Ledger(ledger.store).read(f"HaloPSA-{tid}")
    assert entry.exists and entry.raised_event_id == "evt-3"
    assert ledger.store.read(f"HaloPSA-{tid}", "alert")["alert"].entity["RaisedEventId"] == "evt-3"


@pytest.mark.parametrize(
    ("row", "anchor"),
    [
        ({"Status": "new", "Seq": 1, "DeliveredSeq": 1}, "evt-old"),  # the `new` was the last
        ({"Status": "acknowledged", "Seq": 2, "DeliveredSeq": 2}, None),  # overwritten since
        ({"Status": "new", "Seq": 2, "DeliveredSeq": 1}, None),  # a newer claim not accepted
        ({"Status": "new", "Seq": 1, "DeliveredSeq": 1, "PendingCount": 1}, None),
        ({"Status": "new", "Seq": 1, "DeliveredSeq": 1, "RaisedEventId": ""}, None),
    ],
)
def test_a_row_from_before_anchors_has_one_only_while_its_new_was_the_last_send(
    ledger: Ledger, row: dict[str, Any], anchor: str | None
) -> None:
    key = f"HaloPSA-{new_ticket_id()}"
    ledger.store.commit(key, [Op("create", "alert", {"EventId": "evt-old", **row})])
    entry = Ledger(ledger.store).read(key)
    assert entry.exists and entry.raised_event_id == anchor


def test_an_opening_keeps_its_time_and_basis_and_a_downgrade_its_mark(ledger: Ledger) -> None:
    """Both adapters give the opening's time back as an aware datetime, the same instant."""
    key = f"HaloPSA-{new_ticket_id()}"
    opened_at = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
    fixed = Ledger(ledger.store, clock=lambda: opened_at)
    arrival = Arrival(AlertStatus.NEW, {}, opens=True, basis='{"priority": "1"}')
    opened = fixed.apply(absent(key), core.claim(absent(key), arrival, "", opened_at))
    down = Arrival(AlertStatus.RESOLVED, {}, downgrade=True)
    fixed.apply(opened, core.claim(opened, down, "", opened_at + timedelta(minutes=3)))
    entry = Ledger(ledger.store).read(key)
    assert (entry.opened_at, entry.basis, entry.downgraded) == (
        opened_at,
        '{"priority": "1"}',
        True,
    )
    assert entry.opened_at is not None and entry.opened_at.tzinfo is not None


def test_a_row_from_before_openings_were_recorded_has_none(ledger: Ledger) -> None:
    key = f"HaloPSA-{new_ticket_id()}"
    ledger.store.commit(key, [Op("create", "alert", {"Status": "new", "Seq": 1})])
    entry = Ledger(ledger.store).read(key)
    assert (entry.opened_at, entry.basis, entry.downgraded) == (None, "", False)


# --- every other row of the table goes through the ledger too (issue 20): the write-back's
# `seen-` and `signl4-alert` rows, the held pages, the health probe ---


def _writeback(ledger: Ledger, **clock: Any) -> tuple[Ledger, str]:
    """The write-back direction's ledger (statuses are notification ids) and a fresh key."""
    return Ledger(ledger.store, status_type=str, **clock), f"halo:HaloPSA-{new_ticket_id()}"


def test_a_notification_is_seen_with_its_claim_and_forgotten_when_refused(ledger: Ledger) -> None:
    writeback, key = _writeback(ledger)
    state, seen = writeback.read_notification(key, "n-1")
    assert (state.exists, seen) == (False, None)
    arrival = Arrival("n-1", {"note": "x"})
    step = core.claim(state, arrival, "", writeback.clock())
    writeback.apply(state, step, [writeback.seen_op("n-1")])  # one transaction
    state, seen = writeback.read_notification(key, "n-1")
    assert state.exists and state.status == "n-1" and state.seq == 1
    assert seen is not None and seen.key == "seen-n-1" and seen.entity["Notification"] == "n-1"
    assert writeback.read_notification(key, "n-2")[1] is None  # another one: not seen
    writeback.forget_seen(key, "n-1")
    assert writeback.read_notification(key, "n-1")[1] is None
    writeback.forget_seen(key, "n-1")  # gone already: best effort, no error


def test_a_notification_id_a_row_key_cannot_hold_is_hashed_and_cut(ledger: Ledger) -> None:
    writeback, key = _writeback(ledger)
    odd = "a/b#c?" + "x" * 300
    step = core.claim(absent(key), Arrival(odd, {}), "", writeback.clock())
    writeback.apply(absent(key), step, [writeback.seen_op(odd)])
    _, seen = writeback.read_notification(key, odd)
    assert seen is not None and seen.key.startswith("seen-sha256-") and len(seen.key) == 76
    assert seen.entity["Notification"] == odd[:200]


def test_prune_seen_deletes_only_rows_older_than_kept_in_chunks(ledger: Ledger) -> None:
    now = datetime.now(timezone.utc)
    old, key = _writeback(ledger, clock=lambda: now - timedelta(days=8))
    for n in range(7):  # more than one transaction's worth (the rows as the ledger builds them)
        ledger.store.commit(key, [old.seen_op(f"old-{n}")])
    fresh = Ledger(ledger.store, status_type=str, clock=lambda: now)
    for n in range(2):
        ledger.store.commit(key, [fresh.seen_op(f"new-{n}")])
    ledger.store.commit(key, [Op("create", "seen-odd", {"SeenUtc": "not a time"})])
    assert fresh.prune_seen(key, timedelta(days=7)) == 7
    left = sorted(ledger.store.read(key))
    assert left == ["seen-new-0", "seen-new-1", "seen-odd"]  # unreadable: kept
    assert fresh.prune_seen(key, timedelta(days=7)) == 0


def test_the_alert_id_is_recorded_once_per_alert_and_replaced_for_a_new_one(
    ledger: Ledger,
) -> None:
    writeback, key = _writeback(ledger)

    def recorded() -> dict[str, Any]:
        return ledger.store.read(key, "signl4-alert")["signl4-alert"].entity

    assert writeback.record_alert_id(key, "alert-1", anchor="evt-1")
    assert (recorded()["AlertId"], recorded()["EventId"]) == ("alert-1", "evt-1")
    assert writeback.record_alert_id(key, "alert-1", anchor="evt-1")  # again: the same
    assert not writeback.record_alert_id(key, "alert-X", anchor="evt-1")  # another id: refused
    assert recorded()["AlertId"] == "alert-1"
    assert writeback.record_alert_id(key, "alert-2", anchor="evt-2")  # a new alert since
    assert (recorded()["AlertId"], recorded()["EventId"]) == ("alert-2", "evt-2")


def test_a_held_page_is_kept_once_listed_and_released_as_read(ledger: Ledger) -> None:
    first, second = f"HaloPSA-{new_ticket_id()}", f"HaloPSA-{new_ticket_id()}"
    ledger.hold(first, rule="night", window="w" * 150, target="ops", payload={"Title": "1"})
    with pytest.raises(Conflict):  # held already: the first payload stays
        ledger.hold(first, rule="other", window="w", target="", payload={"Title": "again"})
    ledger.hold(second, rule="night", window="22:00-06:00", target="", payload={"Title": "2"})
    pages = {p.external_id: p for p in ledger.held_pages() if p.external_id in (first, second)}
    assert (pages[first].rule, pages[first].target, pages[first].payload) == (
        "night",
        "ops",
        {"Title": "1"},
    )
    assert pages[first].window == "w" * 100 and pages[first].etag
    ledger.release_held(first, pages[first].etag)
    with pytest.raises(Conflict):
        ledger.release_held(second, pages[first].etag)  # not as read: another ETag
    assert [p.external_id for p in ledger.held_pages() if p.external_id in (first, second)] == [
        second
    ]
    ledger.release_held(second)


def test_no_write_is_larger_than_the_schema_is_sized_for(ledger: Ledger) -> None:
    writeback, key = _writeback(ledger)
    state = absent(key)
    step = core.claim(state, Arrival("n-1", {}), "", writeback.clock())
    too_many = [writeback.seen_op(f"n-{n}") for n in range(3)]  # + the state row: 4
    with pytest.raises(ValueError, match="sized for 3"):
        writeback.apply(state, step, too_many)
    assert ledger.store.read(key) == {}


def test_the_probe_reads_a_partition_nobody_writes(ledger: Ledger) -> None:
    ledger.probe()
    assert ledger.store.read("relay-health-probe") == {}
