"""Event-only and small-object payloads read in full (issue 22 item 3), proved through the HTTP
route over both ledger adapters: each tier's test_full_ticket_delivery.py imports these cases
with its `harness` (tests/unit: MemoryStore; tests/integration: TableStore on Azurite).

Halo is the loopback fake (testkit/halo_fake.py): its GET /api/Tickets/{id} answers
`ticket_records`, checked against the ticket answer contract. SIGNL4 is the loopback fake too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.delivery.ticket_reads import CACHE
from tests.conftest import Harness, Signl4Fake, new_ticket_id
from tests.suites.delivery import sent, webhook
from tests.suites.two_way import HaloFake, halo_fixture, two_way  # noqa: F401 (fixtures)

TICKET_READ = "GET /api/Tickets/<id>"


@pytest.fixture(autouse=True)
def empty_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty cache whose clock stands still: a read stays cached however slow the machine
    (its expiry is tested on a test clock in tests/unit/delivery/test_ticket_reads.py)."""
    CACHE.clear()
    monkeypatch.setattr(CACHE, "clock", lambda: 0.0)
    yield
    CACHE.clear()


def event_only(tid: int, event: str) -> dict[str, Any]:
    """Halo's "event information only" payload: the envelope, no ticket."""
    return {
        "id": "3f1c2a9e-0000-4000-8000-000000000001",
        "webhook_id": "3f1c2a9e-0000-4000-8000-000000000002",
        "event": event,
        "object_id": tid,
        "message": f"{event} for #{tid}",
    }


def small_object(tid: int, event: str, **ticket: Any) -> dict[str, Any]:
    """Halo's small ticket object: ids, no priority (the shape a live tenant sends)."""
    small = {"id": tid, "summary": f"ticket {tid}", "status_id": 2, "team_id": 5, "client_id": 1}
    return {**event_only(tid, event), "ticket": {**small, **ticket}}


def record(tid: int, **fields: Any) -> dict[str, Any]:
    """Halo's answer to GET /api/Tickets/{id} (a few of a Fault's fields)."""
    return {"id": tid, "summary": f"ticket {tid} as Halo has it", "status_id": 2, **fields}


def reads(halo: HaloFake, tid: int) -> int:
    return sum(1 for r in halo.requests if r["path"] == f"/api/Tickets/{tid}")


@pytest.mark.usefixtures("two_way")
def test_event_only_status_change_for_a_closed_ticket_resolves(
    harness: Harness, signl4: Signl4Fake, halo: HaloFake
) -> None:
    tid = new_ticket_id()
    assert harness.post(webhook(tid, "new ticket logged"))[1]["result"] == "sent"
    halo.ticket_records[tid] = record(tid, status_id=9, hasbeenclosed=True)
    code, body = harness.post(event_only(tid, "ticket status changed"))
    assert (code, body["result"], body["status"]) == (200, "sent", "resolved")
    assert "incomplete" not in body
    assert sent(signl4, f"HaloPSA-{tid}") == ["new", "resolved"]
    assert reads(halo, tid) == 1


@pytest.mark.usefixtures("two_way")
def test_event_only_status_change_to_an_ack_status_acknowledges(
    harness: Harness, signl4: Signl4Fake, halo: HaloFake, monkeypatch: Any
) -> None:
    monkeypatch.setenv("RELAY_ACK_STATUSES", "In Progress")
    tid = new_ticket_id()
    harness.post(webhook(tid, "new ticket logged"))
    halo.ticket_records[tid] = record(tid, status_id=3, status_name="In Progress")
    code, body = harness.post(event_only(tid, "ticket status changed"))
    assert (code, body["result"], body["status"]) == (200, "sent", "acknowledged")


def test_without_credentials_the_answer_says_why_it_cannot_be_judged(
    harness: Harness, signl4: Signl4Fake
) -> None:
    tid = new_ticket_id()
    harness.post(webhook(tid, "new ticket logged"))
    code, body = harness.post(event_only(tid, "ticket status changed"))
    assert (code, body["result"]) == (200, "skipped")
    assert "no status" in body["incomplete"]
    assert "HALO_CLIENT_ID" in body["incomplete"]
    assert sent(signl4, f"HaloPSA-{tid}") == ["new"]


@pytest.mark.usefixtures("two_way")
def test_a_small_object_is_filtered_by_the_priority_halo_reads(
    harness: Harness, signl4: Signl4Fake, halo: HaloFake, monkeypatch: Any
) -> None:
    monkeypatch.setenv("RELAY_PAGE_PRIORITIES", "1")
    low, high = new_ticket_id(), new_ticket_id()
    halo.ticket_records[low] = record(low, priority_id=4)
    halo.ticket_records[high] = record(high, priority_id=1)
    skipped = harness.post(small_object(low, "new ticket logged"))
    paged = harness.post(small_object(high, "new ticket logged"))
    assert (skipped[1]["result"], paged[1]["result"]) == ("skipped", "sent")
    assert "priority 4" in skipped[1]["reason"]
    # The payload's own fields win; the read fills only the priority the payload lacks.
    (event,) = [e for e in signl4.events if e["X-S4-ExternalID"] == f"HaloPSA-{high}"]
    assert event["Title"].endswith(f"ticket {high}")


@pytest.mark.usefixtures("two_way")
def test_a_failed_read_is_judged_on_the_payload_and_said(
    harness: Harness, signl4: Signl4Fake, halo: HaloFake, monkeypatch: Any
) -> None:
    monkeypatch.setenv("RELAY_PAGE_PRIORITIES", "1")
    tid = new_ticket_id()
    halo.script(f"/api/Tickets/{tid}", 503, 503)
    code, body = harness.post(small_object(tid, "new ticket logged"))
    # Unknown priority pages anyway (an extra page beats a lost one), and the answer says why.
    assert (code, body["result"], body["status"]) == (200, "sent", "new")
    assert "could not be read" in body["incomplete"] and "503" in body["incomplete"]


@pytest.mark.usefixtures("two_way")
def test_a_burst_for_one_ticket_reads_it_once(
    harness: Harness, signl4: Signl4Fake, halo: HaloFake
) -> None:
    tid = new_ticket_id()
    harness.post(webhook(tid, "new ticket logged"))
    halo.ticket_records[tid] = record(tid)
    for event in ("ticket updated", "ticket status changed", "ticket updated"):
        assert harness.post(event_only(tid, event))[1]["result"] == "skipped"
    assert reads(halo, tid) == 1


@pytest.mark.usefixtures("two_way")
def test_a_cached_read_never_pages_a_ticket_closed_since(
    harness: Harness, signl4: Signl4Fake, halo: HaloFake
) -> None:
    tid = new_ticket_id()
    harness.post(webhook(tid, "new ticket logged"))
    halo.ticket_records[tid] = record(tid)
    assert harness.post(event_only(tid, "ticket updated"))[1]["result"] == "skipped"  # cached: open
    # Halo resolves it (a resolved status, in a full payload: nothing read) ...
    resolved = harness.post(webhook(tid, "ticket status changed", status_id=9))
    assert resolved[1]["status"] == "resolved"
    halo.ticket_records[tid] = record(tid, status_id=9, hasbeenclosed=True)
    # ... and a note on the closed ticket arrives event-only. The cache still says open, which
    # would be "open again": the relay reads again before paging, and sees it closed.
    code, body = harness.post(event_only(tid, "ticket updated"))
    assert (code, body["result"]) == (200, "duplicate")
    assert sent(signl4, f"HaloPSA-{tid}") == ["new", "resolved"]
    assert reads(halo, tid) == 2
