"""Tickets that become urgent page too (issue 22), proved through the HTTP route over both
ledger adapters: each tier's test_escalation_delivery.py imports these cases with its `harness`
(tests/unit: MemoryStore; tests/integration: TableStore on Azurite). SIGNL4 is the loopback fake.

A ticket the paging filters held back is remembered (row `triage`, apart from its `alert` row);
a later event where it qualifies pages once, saying why. Windows are dated 2000 to 2100, so
whether one holds is never a question of the machine's clock."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shared.delivery.schema import STATE_ROW, TRIAGE_ROW
from shared.entry.storage import open_ledger
from shared.entry.timers import release_held_pages
from shared.settings import RelaySettings
from tests.conftest import Harness, Signl4Fake, new_ticket_id
from tests.suites.delivery import sent, webhook
from tests.suites.routing import AFTER, ALWAYS, network_rules, set_rules, teams

ESCALATED = "Escalated: priority 4 \u2192 1"


def rows(tid: int) -> dict[str, Any]:
    """The ticket's rows in the ledger, by row key."""
    ledger = open_ledger(RelaySettings.from_env(os.environ))
    assert ledger is not None
    return ledger.store.read(f"HaloPSA-{tid}")


def events_of(signl4: Signl4Fake, tid: int) -> list[dict[str, Any]]:
    return [e for e in signl4.events if e["X-S4-ExternalID"] == f"HaloPSA-{tid}"]


@pytest.fixture
def p1_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_PAGE_PRIORITIES", "1")


def test_logged_at_4_then_raised_to_1_pages_once_then_closes(
    harness: Harness, signl4: Signl4Fake, p1_only: None
) -> None:
    tid = new_ticket_id()
    logged = harness.post(webhook(tid, "new ticket logged", priority_id=4))
    assert logged[1]["result"] == "skipped"
    assert set(rows(tid)) == {TRIAGE_ROW}  # remembered, and no alert row: no alert exists
    raised = harness.post(webhook(tid, "ticket updated", priority_id=1))
    assert raised[0] == 200
    assert (raised[1]["result"], raised[1]["status"]) == ("sent", "new")
    assert raised[1]["escalation"] == ESCALATED
    (page,) = events_of(signl4, tid)
    assert page["Escalation"] == ESCALATED
    assert page["Message"].startswith(ESCALATED + ". ")
    assert not any(key.startswith("X-S4-Escal") for key in page)
    again = harness.post(webhook(tid, "ticket updated", priority_id=1, summary="more detail"))
    assert again[1]["result"] in ("skipped", "duplicate")
    assert "escalation" not in again[1]
    closed = harness.post(webhook(tid, "closed", priority_id=1, hasbeenclosed=True, status_id=9))
    assert (closed[1]["result"], closed[1]["status"]) == ("sent", "resolved")
    assert sent(signl4, f"HaloPSA-{tid}") == ["new", "resolved"]


def test_a_ticket_reopened_at_the_ack_status_is_open_again_not_acknowledged(
    harness: Harness, signl4: Signl4Fake, p1_only: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by tests/unit/delivery/test_two_way_escalation_properties.py: after a close, an
    update at an acknowledge status sent SIGNL4 `acknowledged` for the resolved alert, and that
    row kept the ticket from paging when it reopened and qualified."""
    monkeypatch.setenv("RELAY_ACK_STATUSES", "22")
    straight, filtered = new_ticket_id(), new_ticket_id()
    for tid in (straight, filtered):
        harness.post(webhook(tid, "new ticket logged", priority_id=1))
        harness.post(webhook(tid, "closed", priority_id=1, hasbeenclosed=True, status_id=9))
    # Reopened straight into the acknowledge status: open again, paged through the filters.
    reopened = harness.post(webhook(straight, "ticket status changed", priority_id=1, status_id=22))
    assert (reopened[1]["result"], reopened[1]["status"]) == ("sent", "new"), reopened
    assert sent(signl4, f"HaloPSA-{straight}") == ["new", "resolved", "new"]
    # Reopened at priority 4 (held back), set to the acknowledge status, then raised: one page.
    for priority, status in ((4, 2), (4, 22), (1, 22)):
        harness.post(webhook(filtered, "ticket updated", priority_id=priority, status_id=status))
    assert sent(signl4, f"HaloPSA-{filtered}") == ["new", "resolved", "new"]


def test_a_filtered_ticket_closed_leaves_no_memory_and_a_reopen_is_judged_as_today(
    harness: Harness, signl4: Signl4Fake, p1_only: None
) -> None:
    tid = new_ticket_id()
    harness.post(webhook(tid, "new ticket logged", priority_id=4))
    assert TRIAGE_ROW in rows(tid)
    closed = harness.post(webhook(tid, "closed", priority_id=4, hasbeenclosed=True, status_id=9))
    assert closed[1]["status"] == "resolved"
    assert TRIAGE_ROW not in rows(tid)  # closed: nothing left to escalate, the row goes
    reopened = harness.post(webhook(tid, "ticket status changed", priority_id=1, status_id=2))
    assert (reopened[1]["result"], reopened[1]["status"]) == ("sent", "new")
    assert "escalation" not in reopened[1]  # open again, as a closed ticket reopened always was


def test_a_filtered_ticket_updated_again_unqualified_pages_nothing(
    harness: Harness, signl4: Signl4Fake, p1_only: None
) -> None:
    tid = new_ticket_id()
    harness.post(webhook(tid, "new ticket logged", priority_id=4))
    harness.post(webhook(tid, "new ticket logged", priority_id=4))  # Halo's redelivery
    assert harness.post(webhook(tid, "ticket updated", priority_id=3))[1]["result"] == "skipped"
    assert rows(tid)[TRIAGE_ROW].entity["Priority"] == "3"  # the fields it rests on now
    assert events_of(signl4, tid) == []
    # Raised from 3, as remembered last.
    raised = harness.post(webhook(tid, "ticket updated", priority_id=1))
    assert raised[1]["escalation"] == "Escalated: priority 3 \u2192 1"


def test_a_filtered_ticket_set_to_the_ack_status_then_raised_pages_once(
    harness: Harness, signl4: Signl4Fake, p1_only: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by tests/unit/delivery/test_two_way_escalation_properties.py: an agent set the
    held-back ticket to an acknowledge status; the relay sent SIGNL4 `acknowledged` for an alert
    that never existed, and that alert row kept the later raise to 1 from paging."""
    monkeypatch.setenv("RELAY_ACK_STATUSES", "22")
    tid = new_ticket_id()
    harness.post(webhook(tid, "new ticket logged", priority_id=4))
    picked = harness.post(webhook(tid, "ticket status changed", priority_id=4, status_id=22))
    assert picked[1]["result"] == "skipped", picked
    assert "no alert" in picked[1]["reason"]
    assert set(rows(tid)) == {TRIAGE_ROW}  # still no alert row
    raised = harness.post(webhook(tid, "ticket updated", priority_id=1, status_id=22))
    assert (raised[1]["result"], raised[1]["status"]) == ("sent", "new"), raised
    assert raised[1]["escalation"] == ESCALATED
    assert sent(signl4, f"HaloPSA-{tid}") == ["new"]
    # Now it has an alert: the acknowledge status acknowledges it.
    again = harness.post(webhook(tid, "ticket status changed", priority_id=1, status_id=22))
    assert again[1]["status"] == "acknowledged", again
    assert sent(signl4, f"HaloPSA-{tid}") == ["new", "acknowledged"]


def test_first_seen_at_an_update_is_judged_as_today(
    harness: Harness, signl4: Signl4Fake, p1_only: None
) -> None:
    """No memory (its first event after go-live): never called an escalation."""
    tid = new_ticket_id()
    first = harness.post(webhook(tid, "ticket updated", priority_id=4))
    assert first[1]["result"] == "skipped"
    assert "changes nothing SIGNL4 tracks" in first[1]["reason"]
    raised = harness.post(webhook(tid, "ticket updated", priority_id=1))
    assert raised[1]["result"] == "skipped"
    assert "escalation" not in raised[1]
    assert events_of(signl4, tid) == []
    assert rows(tid) == {}  # nothing remembered, nothing written


def test_moved_into_a_paging_team_pages_that_routes_team(
    harness: Harness, network_team: Signl4Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_PAGE_TEAMS", "Network")
    set_rules(monkeypatch, network_rules())
    tid = new_ticket_id()
    logged = harness.post(webhook(tid, "new ticket logged", team="Servers"))
    assert logged[1]["result"] == "skipped"
    moved = harness.post(webhook(tid, "ticket updated", team="Network"))
    assert (moved[1]["result"], moved[1]["status"]) == ("sent", "new")
    assert moved[1]["escalation"] == "Moved to team Network; Moved to route network"
    assert teams(network_team, f"HaloPSA-{tid}") == [("new", "network")]


def test_raised_in_a_window_without_page_after_window_is_never_paged(
    harness: Harness, signl4: Signl4Fake, p1_only: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_rules(monkeypatch, [{"name": "all", "when": {}, "target": "default", "windows": [ALWAYS]}])
    tid = new_ticket_id()
    harness.post(webhook(tid, "new ticket logged", priority_id=4))
    raised = harness.post(webhook(tid, "ticket updated", priority_id=1))
    assert (raised[1]["result"], raised[1]["window"]) == ("suppressed", "freeze")
    release_held_pages(os.environ, now=lambda: AFTER)
    # The window is gone; a later update is no transition: the escalation was taken.
    set_rules(monkeypatch, [{"name": "all", "when": {}, "target": "default"}])
    assert harness.post(webhook(tid, "ticket updated", priority_id=1))[1]["result"] == "skipped"
    assert events_of(signl4, tid) == []


def test_raised_in_a_window_with_page_after_window_pages_after_it(
    harness: Harness, signl4: Signl4Fake, p1_only: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule = {"name": "all", "when": {}, "target": "default", "windows": [ALWAYS]}
    set_rules(monkeypatch, [{**rule, "page_after_window": True}])
    tid = new_ticket_id()
    harness.post(webhook(tid, "new ticket logged", priority_id=4))
    raised = harness.post(webhook(tid, "ticket updated", priority_id=1))
    assert raised[1]["result"] == "suppressed"
    assert events_of(signl4, tid) == []
    release_held_pages(os.environ, now=lambda: AFTER)
    (page,) = events_of(signl4, tid)
    assert (page["X-S4-Status"], page["Escalation"]) == ("new", ESCALATED)
    assert STATE_ROW in rows(tid)


# --- SLA warnings: RELAY_PAGE_ON_EVENTS ---

SLA = "1st SLA Warning"  # as Halo may spell it; compared case-insensitively


def test_an_sla_event_pages_once_past_the_filters(
    harness: Harness, signl4: Signl4Fake, p1_only: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_PAGE_ON_EVENTS", "1st sla warning, sla breached")
    tid = new_ticket_id()
    assert harness.post(webhook(tid, "new ticket logged", priority_id=4))[1]["result"] == "skipped"
    warned = harness.post(webhook(tid, SLA, priority_id=4))
    assert (warned[1]["result"], warned[1]["status"]) == ("sent", "new")
    assert warned[1]["escalation"] == "Halo event '1st sla warning'"
    (page,) = events_of(signl4, tid)
    assert page["Escalation"] == "Halo event '1st sla warning'"
    # With the alert open, a second SLA event and the priority raise add nothing.
    breached = harness.post(webhook(tid, "SLA breached", priority_id=4))
    assert breached[1]["result"] == "skipped"
    assert "alert is open" in breached[1]["reason"]
    assert harness.post(webhook(tid, "ticket updated", priority_id=1))[1]["result"] == "skipped"
    assert sent(signl4, f"HaloPSA-{tid}") == ["new"]


def test_an_sla_event_not_listed_or_for_a_closed_ticket_pages_nothing(
    harness: Harness, signl4: Signl4Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    tid = new_ticket_id()
    assert harness.post(webhook(tid, SLA))[1]["result"] == "skipped"  # the setting is empty
    monkeypatch.setenv("RELAY_PAGE_ON_EVENTS", SLA)
    closed = harness.post(webhook(tid, SLA, hasbeenclosed=True, status_id=9))
    assert closed[1].get("status") != "new"
    assert "new" not in sent(signl4, f"HaloPSA-{tid}")


def test_an_sla_event_in_a_window_is_held_like_any_page(
    harness: Harness, signl4: Signl4Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_PAGE_ON_EVENTS", SLA)
    set_rules(monkeypatch, [{"name": "all", "when": {}, "target": "default", "windows": [ALWAYS]}])
    tid = new_ticket_id()
    held = harness.post(webhook(tid, SLA))
    assert (held[1]["result"], held[1]["window"]) == ("suppressed", "freeze")
    assert events_of(signl4, tid) == []


# --- with an alert open, nothing new pages ---


def test_an_open_alert_raised_into_emergency_or_moved_is_not_paged_again(
    harness: Harness, network_team: Signl4Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_EMERGENCY_PRIORITIES", "1")
    set_rules(monkeypatch, network_rules())
    tid = new_ticket_id()
    logged = harness.post(webhook(tid, "new ticket logged", priority_id=3, team="Servers"))
    assert logged[1]["result"] == "sent"
    raised = harness.post(webhook(tid, "ticket updated", priority_id=1, team="Network"))
    assert raised[1]["result"] == "skipped"
    assert "escalation" not in raised[1]
    closed = harness.post(webhook(tid, "closed", team="Network", hasbeenclosed=True, status_id=9))
    assert closed[1]["result"] == "sent"
    # The alert stayed with the team it went to, and it was never paged again.
    assert teams(network_team, f"HaloPSA-{tid}") == [("new", "default"), ("resolved", "default")]
    assert "X-S4-AlertingScenario" not in events_of(network_team, tid)[0]


# --- RELAY_RESOLVE_ON_DOWNGRADE (issue 22 item 4) ---
# The ledger's clock is fixed (the Ledger the route builds reads shared.delivery.ledger._now)
# and moved by the test: whether 15 minutes have passed is never a question of the machine's.

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=timezone.utc)  # inside the suites' windows' span
LOWERED = "Downgraded: priority 4 is not in RELAY_PAGE_PRIORITIES"


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, minutes: float) -> None:
        self.now = T0 + timedelta(minutes=minutes)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fixed = Clock()
    monkeypatch.setattr("shared.delivery.ledger._now", fixed)
    return fixed


@pytest.fixture
def downgrading(monkeypatch: pytest.MonkeyPatch, p1_only: None) -> None:
    monkeypatch.setenv("RELAY_RESOLVE_ON_DOWNGRADE", "true")


def test_a_downgrade_resolves_the_alert_at_the_team_recorded_with_it(
    harness: Harness,
    network_team: Signl4Fake,
    downgrading: None,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="shared")
    set_rules(monkeypatch, network_rules())
    tid = new_ticket_id()
    key = f"HaloPSA-{tid}"
    harness.post(webhook(tid, "new ticket logged", priority_id=1, team="Network"))
    clock.at(1)
    # Lowered, and moved to a team the rules send elsewhere: the resolve follows the alert.
    lowered = harness.post(webhook(tid, "ticket updated", priority_id=4, team="Servers"))
    assert (lowered[0], lowered[1]["result"], lowered[1]["status"]) == (200, "sent", "resolved")
    assert "escalation" not in lowered[1]
    assert teams(network_team, key) == [("new", "network"), ("resolved", "network")]
    resolve = events_of(network_team, tid)[-1]
    assert resolve["Message"].startswith(LOWERED + ". ")
    assert f"relay: {key} resolved: {LOWERED}" in caplog.messages
    assert rows(tid)[TRIAGE_ROW].entity["Priority"] == "4"  # remembered like a filtered ticket
    # Still low: nothing, and not "open again". Closed in Halo: its alert is resolved already.
    still = harness.post(webhook(tid, "ticket updated", priority_id=4, summary="more"))
    assert still[1]["result"] == "skipped" and "open again" not in still[1]["reason"]
    closed = harness.post(webhook(tid, "closed", priority_id=4, hasbeenclosed=True, status_id=9))
    assert closed[1]["result"] == "duplicate"
    assert sent(network_team, key) == ["new", "resolved"]


def test_without_the_setting_a_lowered_ticket_keeps_its_alert(
    harness: Harness, signl4: Signl4Fake, p1_only: None, clock: Clock
) -> None:
    tid = new_ticket_id()
    harness.post(webhook(tid, "new ticket logged", priority_id=1))
    clock.at(1)
    assert harness.post(webhook(tid, "ticket updated", priority_id=4))[1]["result"] == "skipped"
    assert sent(signl4, f"HaloPSA-{tid}") == ["new"]
    assert TRIAGE_ROW not in rows(tid)


def test_an_unknown_priority_never_resolves(
    harness: Harness, signl4: Signl4Fake, downgrading: None, clock: Clock
) -> None:
    tid = new_ticket_id()
    harness.post(webhook(tid, "new ticket logged", priority_id=1))
    clock.at(1)
    unknown = harness.post(webhook(tid, "ticket updated"))  # no priority in the payload
    assert unknown[1]["result"] == "skipped"
    assert sent(signl4, f"HaloPSA-{tid}") == ["new"]


def test_flapping_pages_once_in_15_minutes_and_the_next_event_after_escalates(
    harness: Harness, signl4: Signl4Fake, downgrading: None, clock: Clock
) -> None:
    tid = new_ticket_id()
    key = f"HaloPSA-{tid}"
    harness.post(webhook(tid, "new ticket logged", priority_id=1))  # opened at T0
    clock.at(1)
    assert harness.post(webhook(tid, "ticket updated", priority_id=4))[1]["status"] == "resolved"
    for minute in (5, 14.9):  # raised again, twice, within 15 minutes of the opening
        clock.at(minute)
        raised = harness.post(webhook(tid, "ticket updated", priority_id=1))
        assert raised[1]["result"] == "skipped"
        assert raised[1]["reason"].startswith(ESCALATED + "; not paged: ")
        assert "it may page from 2030-01-01 09:15:00 UTC" in raised[1]["reason"]
    assert sent(signl4, key) == ["new", "resolved"]
    assert rows(tid)[TRIAGE_ROW].entity["Priority"] == "4"  # the skip left the memory as it was
    clock.at(15)
    again = harness.post(webhook(tid, "ticket updated", priority_id=1))
    assert (again[1]["result"], again[1]["status"]) == ("sent", "new")
    assert again[1]["escalation"] == ESCALATED
    assert sent(signl4, key) == ["new", "resolved", "new"]
    # The new alert is counted from its own opening: down and up again soon is held back again.
    clock.at(16)
    assert harness.post(webhook(tid, "ticket updated", priority_id=4))[1]["status"] == "resolved"
    clock.at(29)
    held = harness.post(webhook(tid, "ticket updated", priority_id=1))
    assert "it may page from 2030-01-01 09:30:00 UTC" in held[1]["reason"]
    assert sent(signl4, key) == ["new", "resolved", "new", "resolved"]
