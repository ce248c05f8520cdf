"""Deciding whether and how to page."""

from __future__ import annotations

from typing import Any

import pytest

from shared.halo import parse_event
from shared.policy import decide
from shared.settings import RelaySettings
from shared.signl4 import AlertStatus
from tests.conftest import fixture_json

DEFAULTS = RelaySettings.from_env({})


def settings(**env: str) -> RelaySettings:
    return RelaySettings.from_env(env)


def webhook(event: str | None, **ticket: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"object_id": 10, "ticket": {"id": 10, **ticket}}
    if event is not None:
        body["event"] = event
    return body


@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("webhook_new_small.json", AlertStatus.NEW),
        ("webhook_new_full.json", AlertStatus.NEW),
        ("webhook_closed_event_only.json", AlertStatus.RESOLVED),
        ("guide_new.json", AlertStatus.NEW),
        ("guide_close.json", AlertStatus.RESOLVED),
        ("ticket_bare.json", AlertStatus.NEW),
        ("ticket_wrapped.json", AlertStatus.RESOLVED),
    ],
)
def test_fixture_decisions(fixture: str, status: AlertStatus) -> None:
    decision = decide(parse_event(fixture_json(fixture)), DEFAULTS)
    assert decision.action == "send"
    assert decision.status is status


def test_update_that_changes_nothing_is_skipped_with_a_reason() -> None:
    decision = decide(parse_event(fixture_json("webhook_status_changed.json")), DEFAULTS)
    assert decision.action == "skip" and decision.status is None
    assert "ticket status changed" in decision.reason and "2" in decision.reason


@pytest.mark.parametrize(
    ("ticket", "env"),
    [
        ({"hasbeenclosed": True, "status_id": 4}, {}),
        ({"status_id": 9}, {}),
        ({"status_name": "RESOLVED"}, {}),
        ({"status_name": "cancelled"}, {}),
        ({"status_id": 17}, {"RELAY_RESOLVED_STATUSES": "17, Done"}),
        ({"status_name": "done"}, {"RELAY_RESOLVED_STATUSES": "17, Done"}),
    ],
)
def test_resolved(ticket: dict[str, Any], env: dict[str, str]) -> None:
    decision = decide(parse_event(webhook("ticket status changed", **ticket)), settings(**env))
    assert decision.status is AlertStatus.RESOLVED


def test_resolved_statuses_are_configurable_and_replace_the_default() -> None:
    event = parse_event(webhook("ticket status changed", status_id=9))
    assert decide(event, settings(RELAY_RESOLVED_STATUSES="17")).action == "skip"


def test_acknowledged_is_off_by_default_and_on_when_configured() -> None:
    event = parse_event(webhook("ticket status changed", status_id=2, status_name="In Progress"))
    assert decide(event, DEFAULTS).action == "skip"
    by_name = decide(event, settings(RELAY_ACK_STATUSES="in progress"))
    by_id = decide(event, settings(RELAY_ACK_STATUSES="2"))
    assert by_name.status is AlertStatus.ACKNOWLEDGED and by_id.status is AlertStatus.ACKNOWLEDGED


def test_closed_wins_over_new_ticket_event() -> None:
    event = parse_event(webhook("new ticket logged", hasbeenclosed=True))
    assert decide(event, DEFAULTS).status is AlertStatus.RESOLVED


def test_explicit_x_s4_status_wins() -> None:
    body = {"X-S4-ExternalID": "HaloPSA-10", "X-S4-Status": "acknowledged", "Status": "Closed"}
    assert decide(parse_event(body), DEFAULTS).status is AlertStatus.ACKNOWLEDGED


def test_guide_body_for_a_closed_status_resolves() -> None:
    body = {"X-S4-ExternalID": "HaloPSA-10", "Title": "t", "Status": "Closed"}
    assert decide(parse_event(body), DEFAULTS).status is AlertStatus.RESOLVED


def test_reopened_ticket_pages_again_when_the_last_alert_was_resolved() -> None:
    event = parse_event(webhook("ticket status changed", status_id=1))
    assert decide(event, DEFAULTS).action == "skip"
    again = decide(event, DEFAULTS, last_sent=AlertStatus.RESOLVED)
    assert again.status is AlertStatus.NEW and "open again" in again.reason


def test_priority_filter_holds_back_new_but_never_resolved() -> None:
    only_p1 = settings(RELAY_PAGE_PRIORITIES="1,P1 - Critical")
    low = parse_event(webhook("new ticket logged", priority_id=4))
    high = parse_event(webhook("new ticket logged", priority={"name": "p1 - critical"}))
    closed_low = parse_event(webhook("closed", priority_id=4))
    skipped = decide(low, only_p1)
    assert skipped.action == "skip" and "RELAY_PAGE_PRIORITIES" in skipped.reason
    assert decide(high, only_p1).status is AlertStatus.NEW
    assert decide(closed_low, only_p1).status is AlertStatus.RESOLVED


def test_unknown_priority_pages_anyway() -> None:
    event = parse_event({"event": "new ticket logged", "object_id": 3})
    assert decide(event, settings(RELAY_PAGE_PRIORITIES="1")).status is AlertStatus.NEW


def test_team_filter() -> None:
    only_noc = settings(RELAY_PAGE_TEAMS="NOC")
    assert (
        decide(parse_event(webhook("new ticket logged", team="Service Desk")), only_noc).action
        == "skip"
    )
    assert decide(parse_event(webhook("new ticket logged", team="noc")), only_noc).action == "send"


def test_emergency_priority_sets_the_alerting_scenario() -> None:
    env = settings(RELAY_EMERGENCY_PRIORITIES="1")
    urgent = decide(parse_event(webhook("new ticket logged", priority_id=1)), env)
    normal = decide(parse_event(webhook("new ticket logged", priority_id=3)), env)
    assert urgent.scenario == "emergency"
    assert normal.scenario is None and normal.status is AlertStatus.NEW
