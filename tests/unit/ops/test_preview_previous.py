"""preview --previous (shared/ops/preview.py): a body judged from the state the relay would hold
after the ticket's previous body, so an escalation shows, and the report says what it assumed.
Pure: no ledger, no network. Windows are dated 2000 to 2100 (never a question of the clock)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.domain.alert import AlertStatus
from shared.domain.page import NEVER_PAGED, Prior, Triage
from shared.errors import InvalidJson, RelayError
from shared.ops.preview import (
    LEDGER_NOTE,
    LEDGER_NOTE_PREVIOUS,
    Preview,
    preview_body,
    previous_state,
    render_json,
    render_text,
)
from shared.settings import RelaySettings
from tests.suites.delivery import webhook
from tests.suites.routing import ALWAYS, network_rules

TID = 555
ESCALATED = "Escalated: priority 4 \u2192 1"
P1_ONLY = RelaySettings.from_env({"SIGNL4_TEAM_SECRET": "s", "RELAY_PAGE_PRIORITIES": "1"})
ROUTED = RelaySettings.from_env(
    {
        "SIGNL4_TEAM_SECRET": "s",
        "SIGNL4_TEAM_SECRET_NETWORK": "n",
        "RELAY_PAGE_TEAMS": "Network",
        "RELAY_ROUTES": json.dumps(network_rules()),
    }
)


def body(event: str, tid: int = TID, **ticket: Any) -> bytes:
    return json.dumps(webhook(tid, event, **ticket)).encode()


LOGGED_AT_4 = body("new ticket logged", priority_id=4, team="Servers")
RAISED_TO_1 = body("ticket updated", priority_id=1, team="Servers")


def previewed(
    update: bytes, previous: bytes | None, settings: RelaySettings = P1_ONLY, **kw: Any
) -> Preview:
    state = None if previous is None else previous_state(previous, settings, **kw)
    return preview_body(update, settings, previous=state)


def test_logged_at_4_then_raised_to_1_shows_the_escalation() -> None:
    report = previewed(RAISED_TO_1, LOGGED_AT_4)
    [event] = report.events
    assert (event.decision, event.escalation) == ("new", ESCALATED)
    assert event.payload is not None and event.payload["Escalation"] == ESCALATED
    assert event.previous == "priority 4, team Servers, not paged (filtered)"
    assert report.previous is not None and report.previous.decision == "skip"
    assert report.previous.triage is not None and report.previous.triage.priority == "4"
    text = render_text(report)
    assert f"  Escalation: {ESCALATED}\n" in text
    assert "  Previous: priority 4, team Servers, not paged (filtered)\n" in text
    assert "Note: " + LEDGER_NOTE_PREVIOUS in text
    assert json.loads(render_json(report))["events"][0]["escalation"] == ESCALATED


def test_the_same_priority_again_is_a_skip_without_escalation() -> None:
    [event] = previewed(body("ticket updated", priority_id=4, team="Servers"), LOGGED_AT_4).events
    assert (event.decision, event.escalation) == ("skip", None)
    assert "Escalation:" not in render_text(previewed(LOGGED_AT_4, LOGGED_AT_4))


def test_an_alert_closed_in_signl4_pages_nothing() -> None:
    report = previewed(RAISED_TO_1, LOGGED_AT_4, alert="closed-in-signl4")
    [event] = report.events
    assert (event.decision, event.escalation) == ("skip", None)
    assert "closed in SIGNL4" in event.reason
    assert report.previous is not None and report.previous.alert == "closed-in-signl4"
    assert report.previous.triage is None  # with an alert, the relay never reads the triage
    assert event.previous is not None and event.previous.endswith("(--alert)")
    # The same with the alert resolved by a Halo close: open again, so it pages (not escalates).
    [reopened] = previewed(RAISED_TO_1, LOGGED_AT_4, alert="resolved").events
    assert (reopened.decision, reopened.escalation) == ("new", None)


def test_without_previous_the_update_is_judged_as_never_seen() -> None:
    report = previewed(RAISED_TO_1, None)
    [event] = report.events
    assert (event.decision, event.escalation, event.previous) == ("skip", None, None)
    assert report.note == LEDGER_NOTE and report.previous is None
    assert "Previous" not in render_text(report)


def test_a_previous_page_is_an_open_alert_at_its_routing_target() -> None:
    logged = body("new ticket logged", team="Network")
    state = previous_state(logged, ROUTED)
    assert (state.alert, state.target, state.decision) == ("open", "network", "new")
    assert state.summary == "alert open (new) at team network"
    basis = Triage(priority="", team="Network", qualified=True)  # what a downgrade compares
    assert state.prior() == Prior(AlertStatus.NEW, "network", basis=basis)
    # An update with the alert open pages nothing new; a close goes to the alert's team.
    [update] = preview_body(body("ticket updated", team="Servers"), ROUTED, previous=state).events
    assert update.decision == "skip"
    closed = body("closed", team="Servers", hasbeenclosed=True)
    [close] = preview_body(closed, ROUTED, previous=state).events
    assert (close.decision, close.route, close.target) == ("resolved", "rest", "network")


def test_a_previous_filtered_by_team_escalates_when_moved_into_it() -> None:
    logged = body("new ticket logged", team="Servers")
    state = previous_state(logged, ROUTED)
    assert state.summary == "team Servers, route rest, not paged (filtered)"
    assert state.prior() == Prior(triage=Triage(team="Servers", route="rest"))
    [moved] = preview_body(body("ticket updated", team="Network"), ROUTED, previous=state).events
    assert moved.escalation == "Moved to team Network; Moved to route network"
    assert (moved.decision, moved.target) == ("new", "network")


def test_a_previous_close_is_a_resolved_alert_and_the_ticket_reopens() -> None:
    state = previous_state(body("closed", hasbeenclosed=True, status_id=9), P1_ONLY)
    assert (state.alert, state.summary) == ("resolved", "alert resolved at team default")
    [reopened] = preview_body(body("ticket updated", priority_id=1), P1_ONLY, previous=state).events
    assert reopened.decision == "new" and "open again" in reopened.reason


@pytest.mark.parametrize(
    ("previous", "settings"),
    [
        (body("ticket updated", priority_id=4), P1_ONLY),  # a skip not by a filter
        (
            body("new ticket logged", priority_id=1),  # a page held back by a window
            RelaySettings.from_env(
                {
                    "SIGNL4_TEAM_SECRET": "s",
                    "RELAY_PAGE_PRIORITIES": "1",
                    "RELAY_ROUTES": json.dumps([{"name": "a", "when": {}, "windows": [ALWAYS]}]),
                }
            ),
        ),
    ],
)
def test_other_previous_bodies_leave_nothing_remembered(
    previous: bytes, settings: RelaySettings
) -> None:
    state = previous_state(previous, settings)
    assert state.prior() == NEVER_PAGED
    assert state.summary.startswith("nothing remembered")
    [event] = preview_body(RAISED_TO_1, settings, previous=state).events
    assert event.escalation is None and event.decision in ("skip", "new")


def test_events_of_another_ticket_are_judged_as_never_seen() -> None:
    batch = json.dumps(
        [json.loads(RAISED_TO_1), webhook(TID + 1, "ticket updated", priority_id=1)]
    ).encode()
    report = preview_body(batch, P1_ONLY, previous=previous_state(LOGGED_AT_4, P1_ONLY))
    mine, other = report.events
    assert (mine.decision, mine.escalation) == ("new", ESCALATED)
    assert (other.decision, other.escalation) == ("skip", None)
    assert other.previous == f"none: judged as never seen (--previous is for HaloPSA-{TID})"


def test_a_previous_body_the_relay_refuses_or_of_several_events_is_an_error() -> None:
    with pytest.raises(InvalidJson):
        previous_state(b"{oops", P1_ONLY)
    with pytest.raises(RelayError, match="neither a Halo webhook"):
        previous_state(b'{"ticket": 1}', P1_ONLY)
    with pytest.raises(ValueError, match="holds 2 events"):
        previous_state(b"[" + LOGGED_AT_4 + b"," + LOGGED_AT_4 + b"]", P1_ONLY)
    one = previous_state(b"[" + LOGGED_AT_4 + b"]", P1_ONLY)  # a batch of one is that event
    assert one == previous_state(LOGGED_AT_4, P1_ONLY)


def test_a_payload_lacking_what_its_decision_needs_says_so() -> None:
    event_only = json.dumps({"event": "ticket status changed", "object_id": TID}).encode()
    without = preview_body(event_only, P1_ONLY)
    (event,) = without.events
    assert event.incomplete == (
        "the payload has no status, priority: without HALO_CLIENT_ID and HALO_CLIENT_SECRET "
        "the relay judges it as shown"
    )
    assert "  Incomplete: the payload has no status, priority" in render_text(without)
    two_way = P1_ONLY.model_copy(
        update={"halo_client_id": "id", "halo_client_secret": "s", "halo_base_url": "https://h"}
    )
    (read,) = preview_body(event_only, two_way).events
    assert read.incomplete is not None and "reads them from Halo" in read.incomplete
    (full,) = preview_body(
        json.dumps(webhook(TID, "ticket updated", priority_id=1)).encode(), P1_ONLY
    ).events
    assert full.incomplete is None
