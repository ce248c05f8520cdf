"""The ledger: claims are conditional, the mailbox keeps order.

The behavioural suite, written once and run over both adapters: each tier's test_ledger.py
imports these cases and gives them its `ledger` fixture (tests/unit: MemoryStore;
tests/integration: TableStore on Azurite)."""

from __future__ import annotations

import pytest

from shared.ledger import Ledger, LedgerConflict
from shared.signl4 import AlertStatus
from tests.conftest import new_ticket_id


def test_claim_confirm_and_read_back(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    assert ledger.get(external_id) is None
    claimed = ledger.claim(external_id, AlertStatus.NEW, None)
    assert (claimed.seq, claimed.status, claimed.delivered_seq) == (1, AlertStatus.NEW, 0)
    ledger.confirm(claimed, "evt-9")
    entry = ledger.get(external_id)
    assert entry is not None
    assert (entry.seq, entry.delivered_seq, entry.event_id) == (1, 1, "evt-9")
    assert entry.already_has(AlertStatus.NEW) and not entry.already_has(AlertStatus.RESOLVED)
    resolved = ledger.claim(external_id, AlertStatus.RESOLVED, entry)
    assert resolved.seq == 2 and resolved.event_id == "evt-9"


def test_two_claims_from_the_same_read_cannot_both_win(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    ledger.claim(external_id, AlertStatus.NEW, None)
    with pytest.raises(LedgerConflict):
        ledger.claim(external_id, AlertStatus.NEW, None)
    first = ledger.get(external_id)
    assert first is not None
    ledger.claim(external_id, AlertStatus.RESOLVED, first)
    with pytest.raises(LedgerConflict):
        ledger.claim(external_id, AlertStatus.ACKNOWLEDGED, first)  # stale ETag


def test_mailbox_keeps_events_in_order_and_settles_them(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    first = ledger.claim(external_id, AlertStatus.NEW, None)
    assert first.inflight(60) and first.inflight_seq == 1  # being sent inline
    first = ledger.add_to_mailbox(
        first, 1, AlertStatus.NEW, {"X-S4-Status": "new"}, "SIGNL4 answered HTTP 503"
    )
    assert not first.inflight(60)  # parked, no longer in flight
    second = ledger.claim(
        external_id, AlertStatus.RESOLVED, first, mailbox={"X-S4-Status": "resolved"}
    )
    assert second.pending_count == 2
    events = ledger.pending(external_id)
    assert [(e.seq, e.status, e.payload["X-S4-Status"]) for e in events] == [
        (1, AlertStatus.NEW, "new"),
        (2, AlertStatus.RESOLVED, "resolved"),
    ]
    assert events[0].reason == "SIGNL4 answered HTTP 503"
    sending = ledger.begin_send(second, events[0])
    with pytest.raises(LedgerConflict):
        ledger.begin_send(second, events[0])  # a second worker cannot send it too
    settled = ledger.settle(sending, events[0], event_id="evt-1")
    assert (settled.pending_count, settled.delivered_seq, settled.sending_seq) == (1, 1, 0)
    assert [e.seq for e in ledger.pending(external_id)] == [2]


def test_clear_sending_removes_only_its_own_mark(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    claimed = ledger.claim(external_id, AlertStatus.NEW, None, mailbox={"X-S4-Status": "new"})
    [event] = ledger.pending(external_id)
    ledger.begin_send(claimed, event)
    ledger.clear_sending(external_id, seq=event.seq + 1)  # someone else's: left alone
    entry = ledger.get(external_id)
    assert entry is not None and entry.sending_seq == event.seq and entry.sending(60)
    ledger.clear_sending(external_id, seq=event.seq)
    entry = ledger.get(external_id)
    assert entry is not None and entry.sending_seq == 0 and not entry.sending(60)


def test_abandon_empties_the_mailbox_with_the_reason(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    first = ledger.claim(external_id, AlertStatus.NEW, None, mailbox={"n": 1})
    ledger.claim(external_id, AlertStatus.RESOLVED, first, mailbox={"n": 2})
    abandoned = ledger.abandon(external_id, "delivery attempts exhausted")
    assert [(e.seq, e.status) for e in abandoned] == [
        (1, AlertStatus.NEW),
        (2, AlertStatus.RESOLVED),
    ]
    entry = ledger.get(external_id)
    assert entry is not None and entry.pending_count == 0 and ledger.pending(external_id) == []
    assert entry.failed_reason == "delivery attempts exhausted"


def test_release_undoes_a_refused_claim(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    first = ledger.claim(external_id, AlertStatus.NEW, None)
    ledger.release(first, None)
    assert ledger.get(external_id) is None
    first = ledger.claim(external_id, AlertStatus.NEW, None)
    ledger.confirm(first, "evt-1")
    previous = ledger.get(external_id)
    assert previous is not None
    second = ledger.claim(external_id, AlertStatus.RESOLVED, previous)
    ledger.release(second, previous)
    restored = ledger.get(external_id)
    assert restored is not None
    assert restored.status is AlertStatus.NEW and restored.seq == 2  # the sequence never goes back


def test_a_failed_event_is_not_a_duplicate(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    ledger.claim(external_id, AlertStatus.NEW, None)
    ledger.mark_failed(external_id, "SIGNL4 rejected the event with HTTP 400")
    entry = ledger.get(external_id)
    assert entry is not None and entry.failed_reason
    assert not entry.already_has(AlertStatus.NEW)
