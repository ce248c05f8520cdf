"""Deciding whether and how to page."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.alert import AlertStatus
from shared.domain.halo import parse_event
from shared.domain.policy import decide
from shared.domain.signl4_params import NO_PARAMS, SignalParams, parse_signal_params
from shared.settings import RelaySettings
from tests.conftest import fixture_json


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
    decision = decide(parse_event(fixture_json(fixture)), settings())
    assert decision.action == "send"
    assert decision.status is status


def test_update_that_changes_nothing_is_skipped_with_a_reason() -> None:
    decision = decide(parse_event(fixture_json("webhook_status_changed.json")), settings())
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
    assert decide(event, settings()).action == "skip"
    by_name = decide(event, settings(RELAY_ACK_STATUSES="in progress"))
    by_id = decide(event, settings(RELAY_ACK_STATUSES="2"))
    assert by_name.status is AlertStatus.ACKNOWLEDGED and by_id.status is AlertStatus.ACKNOWLEDGED


def test_closed_wins_over_new_ticket_event() -> None:
    event = parse_event(webhook("new ticket logged", hasbeenclosed=True))
    assert decide(event, settings()).status is AlertStatus.RESOLVED


def test_explicit_x_s4_status_wins() -> None:
    body = {"X-S4-ExternalID": "HaloPSA-10", "X-S4-Status": "acknowledged", "Status": "Closed"}
    assert decide(parse_event(body), settings()).status is AlertStatus.ACKNOWLEDGED


def test_guide_body_for_a_closed_status_resolves() -> None:
    body = {"X-S4-ExternalID": "HaloPSA-10", "Title": "t", "Status": "Closed"}
    assert decide(parse_event(body), settings()).status is AlertStatus.RESOLVED


def test_reopened_ticket_pages_again_when_the_last_alert_was_resolved() -> None:
    event = parse_event(webhook("ticket status changed", status_id=1))
    assert decide(event, settings()).action == "skip"
    again = decide(event, settings(), last_sent=AlertStatus.RESOLVED)
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


# --- every rule with the reason an operator reads in Halo's webhook log ---


def guide_body(**fields: Any) -> dict[str, Any]:
    return {"X-S4-ExternalID": "HaloPSA-10", "Title": "t", **fields}


QUERY_NEW_OPEN = parse_signal_params({"NewStatus": "Open", "AckStatus": "Working"})


@pytest.mark.parametrize(
    ("body", "env", "last_sent", "params", "status", "reason"),
    [
        (
            guide_body(**{"X-S4-Status": "new", "Status": "Closed"}),
            {},
            None,
            NO_PARAMS,
            AlertStatus.NEW,
            "the body asks for X-S4-Status new",
        ),
        (
            guide_body(**{"X-S4-Status": "acknowledged"}),
            {},
            None,
            NO_PARAMS,
            AlertStatus.ACKNOWLEDGED,
            "the body asks for X-S4-Status acknowledged",
        ),
        (
            guide_body(**{"X-S4-Status": "RESOLVED"}),
            {},
            None,
            NO_PARAMS,
            AlertStatus.RESOLVED,
            "the body asks for X-S4-Status resolved",
        ),
        (
            webhook("ticket status changed", hasbeenclosed=True, status_id=9),
            {},
            None,
            NO_PARAMS,
            AlertStatus.RESOLVED,
            "the ticket has been closed",
        ),
        (
            webhook("Closed", status_id=9),
            {},
            None,
            NO_PARAMS,
            AlertStatus.RESOLVED,
            "Halo event 'closed'",
        ),
        (
            webhook("ticket status changed", status_id=9, status_name="Closed"),
            {},
            None,
            NO_PARAMS,
            AlertStatus.RESOLVED,
            "status 9 (Closed) is a resolved status",
        ),
        (
            webhook("ticket status changed", status_name="Cancelled"),
            {},
            None,
            NO_PARAMS,
            AlertStatus.RESOLVED,
            "status 'Cancelled' is a resolved status",
        ),
        (
            webhook("ticket status changed", status_id=9),
            {},
            None,
            NO_PARAMS,
            AlertStatus.RESOLVED,
            "status 9 is a resolved status",
        ),
        (
            webhook("ticket status changed", status_id=1, status_name="Open"),
            {},
            None,
            QUERY_NEW_OPEN,
            AlertStatus.NEW,
            "status 1 (Open) is the NewStatus",
        ),
        (
            webhook("new ticket logged", status_id=3, status_name="Waiting"),
            {},
            None,
            QUERY_NEW_OPEN,
            None,
            "status 3 (Waiting) is neither NewStatus, ResolvedStatus nor AckStatus "
            "(SIGNL4 discards such events)",
        ),
        (
            webhook("ticket status changed", status_id=2, status_name="Working"),
            {},
            None,
            QUERY_NEW_OPEN,
            AlertStatus.ACKNOWLEDGED,
            "status 2 (Working) is an acknowledge status",
        ),
        (
            webhook("New Ticket Logged", status_id=1, status_name="New"),
            {},
            None,
            NO_PARAMS,
            AlertStatus.NEW,
            "Halo event 'new ticket logged'",
        ),
        (
            webhook("ticket status changed", status_id=2, status_name="In Progress"),
            {"RELAY_ACK_STATUSES": "In Progress"},
            None,
            NO_PARAMS,
            AlertStatus.ACKNOWLEDGED,
            "status 2 (In Progress) is an acknowledge status",
        ),
        (
            webhook("ticket status changed", status_id=1),
            {},
            AlertStatus.RESOLVED,
            NO_PARAMS,
            AlertStatus.NEW,
            "the ticket is open again after its alert was resolved",
        ),
        (
            webhook("ticket status changed", status_id=1),
            {},
            AlertStatus.ACKNOWLEDGED,
            NO_PARAMS,
            None,
            "Halo event 'ticket status changed' with status 1 changes nothing SIGNL4 tracks",
        ),
        (
            guide_body(Status="New"),
            {},
            None,
            NO_PARAMS,
            AlertStatus.NEW,
            "an open ticket in a guide body without event information",
        ),
        (
            {"ticket": {"id": 10, "summary": "s"}},
            {},
            None,
            NO_PARAMS,
            AlertStatus.NEW,
            "an open ticket in a ticket body without event information",
        ),
        (
            webhook("ticket status changed", status_id=4, status_name="Pending"),
            {},
            None,
            NO_PARAMS,
            None,
            "Halo event 'ticket status changed' with status 4 (Pending) changes nothing SIGNL4 "
            "tracks",
        ),
        (
            webhook("ticket updated", status_name="Pending"),
            {},
            None,
            NO_PARAMS,
            None,
            "Halo event 'ticket updated' with status 'Pending' changes nothing SIGNL4 tracks",
        ),
        (
            webhook("ticket updated"),
            {},
            None,
            NO_PARAMS,
            None,
            "Halo event 'ticket updated' with status unknown changes nothing SIGNL4 tracks",
        ),
        (
            webhook("new ticket logged", priority_id=1, priority_name="P1"),
            {"RELAY_EMERGENCY_PRIORITIES": "1"},
            None,
            NO_PARAMS,
            AlertStatus.NEW,
            "Halo event 'new ticket logged'; emergency priority",
        ),
        (
            webhook("new ticket logged", priority_id=4, priority_name="P4 - Low"),
            {"RELAY_PAGE_PRIORITIES": "1"},
            None,
            NO_PARAMS,
            None,
            "priority 4 (P4 - Low) is not in RELAY_PAGE_PRIORITIES",
        ),
        (
            webhook("new ticket logged", team_id=7, team="Service Desk"),
            {"RELAY_PAGE_TEAMS": "NOC"},
            None,
            NO_PARAMS,
            None,
            "team 7 (Service Desk) is not in RELAY_PAGE_TEAMS",
        ),
    ],
)
def test_each_rule_and_its_reason(
    body: dict[str, Any],
    env: dict[str, str],
    last_sent: AlertStatus | None,
    params: SignalParams,
    status: AlertStatus | None,
    reason: str,
) -> None:
    decision = decide(parse_event(body, params), settings(**env), last_sent, params)
    assert (decision.action, decision.status, decision.reason) == (
        "skip" if status is None else "send",
        status,
        reason,
    )
    assert decision.scenario == ("emergency" if "emergency" in reason else None)


def test_x_s4_status_new_still_obeys_the_paging_filters() -> None:
    """The body's X-S4-Status new opens an alert, but only one the filters let through."""
    only_p1 = settings(RELAY_PAGE_PRIORITIES="P1", RELAY_EMERGENCY_PRIORITIES="P1")
    low = parse_event(guide_body(**{"X-S4-Status": "new", "Priority": "P4"}))
    high = parse_event(guide_body(**{"X-S4-Status": "new", "Priority": "p1"}))
    skipped = decide(low, only_p1)
    assert (skipped.action, skipped.reason) == (
        "skip",
        "priority 'P4' is not in RELAY_PAGE_PRIORITIES",
    )
    paged = decide(high, only_p1)
    assert (paged.status, paged.scenario) == (AlertStatus.NEW, "emergency")
    assert paged.reason == "the body asks for X-S4-Status new; emergency priority"


@pytest.mark.parametrize(
    ("ticket", "pages"),
    [
        ({"priority_name": "P1 - Critical"}, True),  # by name, any case
        ({"priority_name": "P3 - Low"}, False),
        ({"priority_id": 2}, True),  # by id
        ({"priority_id": 3}, False),
        ({"priority": {"name": "p1 - critical", "priorityid": 9}}, True),
        ({"priority": {"name": "P3", "priorityid": 2}}, True),  # the object's id matches
        ({"priority": "p1 - CRITICAL"}, True),
        ({"priority": "5"}, False),
        ({}, True),  # unknown priority pages anyway
    ],
)
def test_page_priorities_match_by_name_or_id(ticket: dict[str, Any], pages: bool) -> None:
    only = settings(RELAY_PAGE_PRIORITIES="P1 - Critical, 2")
    decision = decide(parse_event(webhook("new ticket logged", **ticket)), only)
    assert decision.action == ("send" if pages else "skip")


@pytest.mark.parametrize(
    ("ticket", "pages"),
    [
        ({"team_id": 12}, True),  # by id
        ({"team_id": 13}, False),
        ({"team": "noc"}, True),  # by name, any case
        ({"team_name": "NOC"}, True),
        ({"team_id": 13, "team": "NOC"}, True),  # either key matches
        ({"team_id": 12, "team": "Service Desk"}, True),
        ({"team_id": 13, "team": "Service Desk"}, False),
        ({}, True),  # unknown team pages anyway
    ],
)
def test_page_teams_match_by_id_or_name(ticket: dict[str, Any], pages: bool) -> None:
    only = settings(RELAY_PAGE_TEAMS="12,NOC")
    decision = decide(parse_event(webhook("new ticket logged", **ticket)), only)
    assert decision.action == ("send" if pages else "skip")


def test_emergency_priority_matches_by_name_too() -> None:
    env = settings(RELAY_EMERGENCY_PRIORITIES="P1 - Critical")
    event = parse_event(webhook("new ticket logged", priority_name="p1 - critical"))
    assert decide(event, env).scenario == "emergency"


def test_the_paging_filters_never_hold_back_acknowledge_or_resolve() -> None:
    strict = settings(RELAY_PAGE_PRIORITIES="1", RELAY_PAGE_TEAMS="NOC", RELAY_ACK_STATUSES="2")
    ticket = {"priority_id": 4, "team": "Service Desk"}
    ack = decide(parse_event(webhook("ticket status changed", status_id=2, **ticket)), strict)
    closed = decide(parse_event(webhook("ticket status changed", status_id=9, **ticket)), strict)
    reopened = decide(
        parse_event(webhook("ticket status changed", status_id=1, **ticket)),
        strict,
        last_sent=AlertStatus.RESOLVED,
    )
    assert ack.status is AlertStatus.ACKNOWLEDGED and closed.status is AlertStatus.RESOLVED
    assert reopened.action == "skip" and "RELAY_PAGE_PRIORITIES" in reopened.reason
