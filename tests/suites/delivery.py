"""Delivery guarantees, proved against real parts: the function app host-less, its queues and
ledger, the queue functions run by the local queue runner, SIGNL4 on loopback.

The behavioural suite, written once and run over both ledger adapters: each tier imports these
cases and gives them its `harness` fixture (tests/unit/delivery/test_pages.py: MemoryStore and
in-process queues; tests/integration/test_delivery.py: TableStore and storage queues on Azurite).

Each case asserts the exact number of events SIGNL4 received and the final state."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from shared.delivery.conversation import Conversation
from shared.domain.alert import AlertStatus
from shared.entry.storage import open_ledger
from shared.settings import RelaySettings
from tests.conftest import (
    GENEROUS_TIMEOUT,
    OUTBOX,
    Harness,
    Signl4Fake,
    new_ticket_id,
)


def ledger_entry(external_id: str) -> Conversation | None:
    import os

    ledger = open_ledger(RelaySettings.from_env(os.environ))
    assert ledger is not None
    state = ledger.read(external_id)
    return state if state.exists else None


def webhook(ticket_id: int, event: str, **ticket: Any) -> dict[str, Any]:
    return {
        "event": event,
        "object_id": ticket_id,
        "ticket": {"id": ticket_id, "summary": f"ticket {ticket_id}", "status_id": 1, **ticket},
    }


# Caps on waits for an event the test itself causes: hang guards, never reached when it works.
# Below live_env's SIGNL4_TIMEOUT_SECONDS, so a held answer is released before the relay gives up.
HANG_GUARD_SECONDS = 20


def sent(signl4: Signl4Fake, external_id: str) -> list[str]:
    return [e["X-S4-Status"] for e in signl4.events if e["X-S4-ExternalID"] == external_id]


# --- nothing paged twice ---


def test_duplicate_halo_deliveries_page_once(harness: Harness, signl4: Signl4Fake) -> None:
    tid = new_ticket_id()
    first = harness.post(webhook(tid, "new ticket logged"))
    again = harness.post(webhook(tid, "new ticket logged"))
    guide = harness.post(
        {"Title": "same ticket via the guide body", "X-S4-ExternalID": f"HaloPSA-{tid}"}
    )
    assert first == (
        200,
        {"result": "sent", "externalId": f"HaloPSA-{tid}", "status": "new", "eventId": "evt-1"},
    )
    assert again[1]["result"] == "duplicate" and again[1]["eventId"] == "evt-1"
    assert guide[1]["result"] == "duplicate"
    assert sent(signl4, f"HaloPSA-{tid}") == ["new"]


def test_reopened_ticket_raises_a_new_alert(harness: Harness, signl4: Signl4Fake) -> None:
    tid = new_ticket_id()
    assert harness.post(webhook(tid, "new ticket logged"))[1]["result"] == "sent"
    assert (
        harness.post(webhook(tid, "closed", hasbeenclosed=True, status_id=9))[1]["result"] == "sent"
    )
    assert (
        harness.post(webhook(tid, "closed", hasbeenclosed=True, status_id=9))[1]["result"]
        == "duplicate"
    )
    reopened = harness.post(webhook(tid, "ticket status changed", status_id=2))
    assert reopened[1]["result"] == "sent" and reopened[1]["status"] == "new"
    assert sent(signl4, f"HaloPSA-{tid}") == ["new", "resolved", "new"]
    entry = ledger_entry(f"HaloPSA-{tid}")
    assert entry is not None and (entry.status, entry.seq, entry.delivered_seq) == (
        AlertStatus.NEW,
        3,
        3,
    )


def test_resolved_for_a_ticket_never_alerted_is_still_sent(
    harness: Harness, signl4: Signl4Fake
) -> None:
    tid = new_ticket_id()
    code, body = harness.post({"X-S4-ExternalID": f"HaloPSA-{tid}", "X-S4-Status": "resolved"})
    assert (code, body["result"]) == (200, "sent")
    assert sent(signl4, f"HaloPSA-{tid}") == ["resolved"]


# --- nothing lost: the fault matrix ---


def test_5xx_within_the_inline_budget(harness: Harness, signl4: Signl4Fake) -> None:
    tid = new_ticket_id()
    signl4.script(500, 503)
    assert harness.post(webhook(tid, "new ticket logged"))[1]["result"] == "sent"
    assert len(signl4.events) == 3


def test_5xx_past_the_inline_budget_is_queued_then_delivered(
    harness: Harness, signl4: Signl4Fake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shared")
    tid = new_ticket_id()
    signl4.script(500, 500, 500, 500, 500)  # 3 inline attempts, then 2 more from the queue
    code, body = harness.post(webhook(tid, "new ticket logged"))
    assert (code, body["result"]) == (202, "queued")
    harness.drain()
    assert len(signl4.events) == 6 and sent(signl4, f"HaloPSA-{tid}")[-1] == "new"
    entry = ledger_entry(f"HaloPSA-{tid}")
    assert entry is not None and entry.delivered_seq == 1 and entry.event_id == "evt-6"
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("outbox ")]
    assert f"externalId=HaloPSA-{tid} result=sent sent=1 eventId=evt-6" in line
    assert harness.post(webhook(tid, "new ticket logged"))[1]["result"] == "duplicate"
    assert len(signl4.events) == 6


def test_429_retry_after_past_the_budget_is_queued(harness: Harness, signl4: Signl4Fake) -> None:
    tid = new_ticket_id()
    signl4.script((429, {"Retry-After": "30"}))
    assert harness.post(webhook(tid, "new ticket logged"))[0] == 202
    assert len(signl4.events) == 1  # gave up at once instead of sleeping 30 s
    harness.drain()
    assert len(signl4.events) == 2


def test_429_rate_limit_reset_within_the_budget_waits_inline(
    harness: Harness, signl4: Signl4Fake
) -> None:
    tid = new_ticket_id()
    signl4.script(
        (429, {"X-RateLimit-Reset": str(int(time.time()) + 1), "X-RateLimit-Remaining": "0"})
    )
    assert harness.post(webhook(tid, "new ticket logged"))[1]["result"] == "sent"
    assert len(signl4.events) == 2


def test_hang_past_the_timeout_is_queued_then_delivered(
    harness: Harness, signl4: Signl4Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNL4_TIMEOUT_SECONDS", "0.2")  # fires: "hang" holds until teardown
    monkeypatch.setenv("SIGNL4_MAX_ATTEMPTS", "2")
    signl4.script("hang", "hang")
    tid = new_ticket_id()
    assert harness.post(webhook(tid, "new ticket logged"))[0] == 202
    # The queue's attempt must not time out however slow the machine: only the hangs may.
    monkeypatch.setenv("SIGNL4_TIMEOUT_SECONDS", GENEROUS_TIMEOUT)
    harness.drain()
    assert len(signl4.events) == 3  # two hung (SIGNL4 saw them), one delivered from the queue


def test_connection_refused_is_queued_until_signl4_is_back(
    harness: Harness, signl4: Signl4Fake, monkeypatch: pytest.MonkeyPatch, unused_port: int
) -> None:
    monkeypatch.setenv("SIGNL4_WEBHOOK_URL", f"http://127.0.0.1:{unused_port}/webhook/")
    tid = new_ticket_id()
    assert harness.post(webhook(tid, "new ticket logged"))[1]["result"] == "queued"
    monkeypatch.setenv("SIGNL4_WEBHOOK_URL", signl4.base_url)
    harness.drain()
    assert sent(signl4, f"HaloPSA-{tid}") == ["new"]


def test_later_events_wait_behind_a_queued_one_and_keep_their_order(
    harness: Harness, signl4: Signl4Fake
) -> None:
    tid = new_ticket_id()
    signl4.script(503, 503, 503)
    assert harness.post(webhook(tid, "new ticket logged"))[1]["result"] == "queued"
    # SIGNL4 is back, but the close must not overtake the queued new, nor the reopen the close.
    closed = harness.post(webhook(tid, "closed", hasbeenclosed=True))
    assert closed[0] == 202 and "earlier event" in closed[1]["reason"]
    assert harness.post(webhook(tid, "ticket status changed", status_id=2))[1]["result"] == "queued"
    assert harness.post(webhook(tid, "closed", hasbeenclosed=True))[1]["result"] == "queued"
    assert len(signl4.events) == 3
    harness.drain()
    assert sent(signl4, f"HaloPSA-{tid}") == ["new"] * 3 + ["new", "resolved", "new", "resolved"]
    entry = ledger_entry(f"HaloPSA-{tid}")
    assert entry is not None and (entry.pending_count, entry.delivered_seq) == (0, 4)
    # Drained: the next event goes inline again.
    assert harness.post(webhook(tid, "ticket status changed", status_id=2))[1]["result"] == "sent"


def test_permanent_4xx_from_the_queue_goes_to_poison_with_the_reason(
    harness: Harness, signl4: Signl4Fake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    tid = new_ticket_id()
    signl4.script(503, 503, 503, 400)
    assert harness.post(webhook(tid, "new ticket logged"))[0] == 202
    harness.drain()
    assert len(signl4.events) == 4
    poison = [
        r
        for r in caplog.records
        if r.levelno == logging.ERROR and r.getMessage().startswith("poison")
    ]
    assert len(poison) == 1
    assert f"HaloPSA-{tid}" in poison[0].getMessage() and "HTTP 400" in poison[0].getMessage()
    entry = ledger_entry(f"HaloPSA-{tid}")
    assert entry is not None and "HTTP 400" in (entry.failed_reason or "")
    signl4.script()
    assert harness.post(webhook(tid, "new ticket logged"))[1]["result"] == "sent"  # not a duplicate


def test_queue_redelivery_after_delivery_does_not_page_twice(
    harness: Harness, signl4: Signl4Fake
) -> None:
    """The queue function ran to the end but its message came back (host died before deleting
    it): the ledger knows this claim was delivered."""
    tid = new_ticket_id()
    signl4.script(503, 503, 503)
    harness.post(webhook(tid, "new ticket logged"))
    [message] = harness.queues.receive(OUTBOX, 1, 1)
    harness.queues.put(OUTBOX, message.text)  # a copy survives the delivery
    harness.drain()  # runs both: the copy now, the original once its visibility ends
    assert sent(signl4, f"HaloPSA-{tid}") == ["new"] * 4  # 3 failed inline + 1, not 5
    assert json.loads(message.text)["seq"] == 1


# --- found by review: batches, lost nudges, re-sent creations, concurrent sends, poison ---


def test_a_batch_stops_trying_inline_once_signl4_is_down(
    harness: Harness, signl4: Signl4Fake
) -> None:
    ids = [new_ticket_id() for _ in range(4)]
    signl4.script(503, 503, 503)
    code, body = harness.post([webhook(tid, "new ticket logged") for tid in ids])
    assert code == 202 and [r["result"] for r in body["results"]] == ["queued"] * 4
    assert "earlier event of this request" in body["results"][1]["reason"]
    assert len(signl4.events) == 3  # only the first element spent the retry budget
    harness.drain()
    assert all(sent(signl4, f"HaloPSA-{tid}")[-1] == "new" for tid in ids)
    assert len(signl4.events) == 3 + 4


def test_a_duplicate_nudges_a_mailbox_whose_queue_message_was_lost(
    harness: Harness, signl4: Signl4Fake
) -> None:
    tid = new_ticket_id()
    signl4.script(503, 503, 503)
    assert harness.post(webhook(tid, "new ticket logged"))[0] == 202
    harness.clear(OUTBOX)  # the invocation died before its output binding
    again = harness.post(webhook(tid, "new ticket logged"))  # Halo re-sends
    assert again[1]["result"] == "duplicate"
    harness.drain()
    assert sent(signl4, f"HaloPSA-{tid}") == ["new"] * 4  # delivered, once


def test_a_re_sent_creation_after_close_does_not_open_a_second_alert(
    harness: Harness, signl4: Signl4Fake
) -> None:
    tid = new_ticket_id()
    created = webhook(tid, "new ticket logged")
    assert harness.post(created)[1]["result"] == "sent"
    assert harness.post(webhook(tid, "closed", hasbeenclosed=True))[1]["result"] == "sent"
    assert (
        harness.post(created)[1]["result"] == "duplicate"
    )  # the creation, re-sent from Halo's log
    assert sent(signl4, f"HaloPSA-{tid}") == ["new", "resolved"]


def test_an_event_arriving_while_an_older_one_is_in_flight_waits_behind_it(
    harness: Harness, signl4: Signl4Fake
) -> None:
    import threading

    from werkzeug import Response

    tid = new_ticket_id()
    arrived, release = threading.Event(), threading.Event()

    def slow_503(request):  # SIGNL4 holds the first attempt of "new", then fails it
        arrived.set()
        # Held until the test releases it (the relay's generous timeout does not fire first);
        # the cap is only a hang guard.
        release.wait(HANG_GUARD_SECONDS)
        return Response(
            '{"code": 3004, "message": "busy"}', status=503, mimetype="application/json"
        )

    signl4.script(slow_503, 503, 503)
    first: dict[str, Any] = {}
    sender = threading.Thread(
        target=lambda: first.update(answer=harness.post(webhook(tid, "new ticket logged")))
    )
    sender.start()
    try:
        assert arrived.wait(HANG_GUARD_SECONDS)
        closed = harness.post(webhook(tid, "closed", hasbeenclosed=True))  # "new" is in flight
    finally:
        release.set()
    assert closed[0] == 202 and "being sent" in closed[1]["reason"]
    sender.join(HANG_GUARD_SECONDS)
    assert first["answer"][0] == 202
    harness.drain()
    # "new" parked behind "closed" in time, but ahead of it by sequence: order is kept.
    assert sent(signl4, f"HaloPSA-{tid}") == ["new", "new", "new", "new", "resolved"]


def test_exhausted_queue_attempts_land_in_poison_and_a_re_send_pages_once(
    harness: Harness,
    signl4: Signl4Fake,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIGNL4_MAX_ATTEMPTS", "1")
    signl4.script(*([503] * 4))  # inline once, then 3 queue attempts: poison
    tid = new_ticket_id()
    created = webhook(tid, "new ticket logged")
    assert harness.post(created)[0] == 202
    harness.drain()
    assert len(signl4.events) == 4
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("poison")]
    assert f"HaloPSA-{tid}" in line and "attempts exhausted" in line and "events=#1 new" in line
    entry = ledger_entry(f"HaloPSA-{tid}")
    assert entry is not None and entry.pending_count == 0 and entry.failed_reason
    assert harness.post(created)[1]["result"] == "sent"  # the operator re-sends from Halo's log
    harness.drain()
    assert sent(signl4, f"HaloPSA-{tid}") == ["new"] * 5  # 4 failed tries, then exactly one
