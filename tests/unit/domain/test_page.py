"""The one page pipeline (shared/domain/page.py): decide -> route -> build -> clean -> window,
with the ticket's prior state as an input, as both the relay and `preview` use it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.domain.alert import AlertStatus
from shared.domain.halo import parse_event
from shared.domain.page import NEVER_PAGED, Prior, Triage, plan_page
from shared.domain.routing import DEFAULT_TARGET
from shared.ops import preview
from shared.settings import RelaySettings
from tests.suites.delivery import webhook

NOW = datetime(2050, 1, 1, tzinfo=timezone.utc)
ROUTES = json.dumps(
    [
        {
            "name": "network",
            "when": {"team": ["Network"]},
            "target": "network",
            "service": "Net\u202eworks",
            "windows": [
                {"from": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z", "name": "freeze"}
            ],
        }
    ]
)
SETTINGS = RelaySettings.from_env(
    {
        "SIGNL4_TEAM_SECRET": "s",
        "SIGNL4_TEAM_SECRET_NETWORK": "n",
        "RELAY_ROUTES": ROUTES,
        "RELAY_ACK_STATUSES": "In Progress",
    }
)


def test_an_open_ticket_after_a_resolved_alert_pages_again_only_with_that_prior() -> None:
    event = parse_event(webhook(7, "updated"))
    assert plan_page(event, SETTINGS, NEVER_PAGED, now=NOW).status is None
    page = plan_page(event, SETTINGS, Prior(AlertStatus.RESOLVED, DEFAULT_TARGET), now=NOW)
    assert page.status is AlertStatus.NEW
    assert "open again" in page.decision.reason
    assert page.payload is not None and page.payload["X-S4-Status"] == "new"


def test_an_acknowledge_follows_the_prior_alert_not_the_rules() -> None:
    event = parse_event(webhook(7, "updated", team="Network", status_name="In Progress"))
    followed = plan_page(event, SETTINGS, Prior(AlertStatus.NEW, DEFAULT_TARGET), now=NOW)
    assert (followed.rule and followed.rule.name, followed.target) == ("network", DEFAULT_TARGET)
    assert followed.send_target == "" and followed.window is None  # only a `new` is held
    unknown = plan_page(event, SETTINGS, NEVER_PAGED, now=NOW)
    assert (unknown.target, unknown.send_target) == ("network", "network")


def test_a_new_page_is_routed_cleaned_and_held_by_its_window() -> None:
    page = plan_page(
        parse_event(webhook(7, "new ticket logged", team="Network")), SETTINGS, now=NOW
    )
    assert page.payload is not None and page.payload["X-S4-Service"] == "Networks"
    assert page.window == "freeze"
    later = datetime(2101, 1, 1, tzinfo=timezone.utc)
    event = parse_event(webhook(7, "new ticket logged", team="Network"))
    assert plan_page(event, SETTINGS, now=later).window is None


def test_preview_shows_the_decision_for_a_given_prior_state() -> None:
    body = json.dumps(webhook(7, "updated", team="Network")).encode()
    [never] = preview.preview_body(body, SETTINGS).events
    assert never.decision == "skip"
    [reopened] = preview.preview_body(
        body, SETTINGS, prior=Prior(AlertStatus.RESOLVED, "network")
    ).events
    assert (reopened.decision, reopened.route, reopened.target) == ("new", "network", "network")
    assert reopened.payload is not None and reopened.payload["X-S4-Service"] == "Networks"


# --- RELAY_RESOLVE_ON_DOWNGRADE (issue 22 item 4) ---

DOWNGRADING = RelaySettings.from_env(
    {
        "SIGNL4_TEAM_SECRET": "s",
        "SIGNL4_TEAM_SECRET_NETWORK": "n",
        "RELAY_PAGE_PRIORITIES": "1",
        "RELAY_RESOLVE_ON_DOWNGRADE": "true",
    }
)
PAGED_AT_1 = Prior(AlertStatus.NEW, "network", basis=Triage(priority="1", qualified=True))
LOWERED = "Downgraded: priority 4 is not in RELAY_PAGE_PRIORITIES"


def test_a_paged_ticket_lowered_past_the_filters_resolves_to_its_recorded_team() -> None:
    event = parse_event(webhook(7, "ticket updated", priority_id=4))
    page = plan_page(event, DOWNGRADING, PAGED_AT_1, now=NOW)
    assert (page.status, page.decision.reason, page.downgrade) == (
        AlertStatus.RESOLVED,
        LOWERED,
        True,
    )
    assert page.send_target == "network"  # the team recorded with the alert, not the rules'
    assert page.payload is not None and page.payload["X-S4-Status"] == "resolved"
    assert page.payload["Message"].startswith(LOWERED + ". ")
    assert page.triage == Triage(priority="4", route="default", qualified=False)  # remembered
    acked = Prior(AlertStatus.ACKNOWLEDGED, "network", basis=PAGED_AT_1.basis)
    assert plan_page(event, DOWNGRADING, acked, now=NOW).status is AlertStatus.RESOLVED


def test_no_downgrade_when_off_unknown_unchanged_or_never_through_the_filters() -> None:
    lowered = parse_event(webhook(7, "ticket updated", priority_id=4))
    off = RelaySettings.from_env({"SIGNL4_TEAM_SECRET": "s", "RELAY_PAGE_PRIORITIES": "1"})
    assert plan_page(lowered, off, PAGED_AT_1, now=NOW).status is None
    unknown = parse_event(webhook(7, "ticket updated"))  # no priority in the payload
    assert plan_page(unknown, DOWNGRADING, PAGED_AT_1, now=NOW).status is None
    # Paged at 4 under other settings: the ticket did not change, so nothing resolves.
    at_4 = Prior(AlertStatus.NEW, basis=Triage(priority="4", qualified=True))
    assert plan_page(lowered, DOWNGRADING, at_4, now=NOW).status is None
    # An SLA page past the filters never qualified: a later update does not resolve it.
    sla = Prior(AlertStatus.NEW, basis=Triage(priority="1", qualified=False))
    assert plan_page(lowered, DOWNGRADING, sla, now=NOW).status is None
    # Team left out of the payload, priority as paged: new settings, not a changed ticket.
    teams = RelaySettings.from_env(
        {
            "SIGNL4_TEAM_SECRET": "s",
            "RELAY_PAGE_TEAMS": "Network",
            "RELAY_RESOLVE_ON_DOWNGRADE": "1",
        }
    )
    as_paged = Prior(AlertStatus.NEW, basis=Triage(priority="1", team="Servers", qualified=True))
    same_team = parse_event(webhook(7, "ticket updated", team="Servers"))
    assert plan_page(same_team, teams, as_paged, now=NOW).status is None
    # A row from before the alert recorded its fields: not known to have changed.
    assert plan_page(lowered, DOWNGRADING, Prior(AlertStatus.NEW), now=NOW).status is None
    # Resolved already (by Halo, or by SIGNL4 with the ticket open): nothing to resolve.
    closed = Prior(AlertStatus.RESOLVED, basis=PAGED_AT_1.basis)
    assert plan_page(lowered, DOWNGRADING, closed, now=NOW).status is not AlertStatus.RESOLVED


def test_a_close_of_a_lowered_ticket_is_a_close_not_a_downgrade() -> None:
    event = parse_event(webhook(7, "closed", priority_id=4, hasbeenclosed=True, status_id=9))
    page = plan_page(event, DOWNGRADING, PAGED_AT_1, now=NOW)
    assert (page.status, page.downgrade) == (AlertStatus.RESOLVED, False)
    assert page.decision.reason == "the ticket has been closed"


def _downgraded(opened: datetime | None) -> Prior:
    held = Triage(priority="4", route="default", qualified=False)
    return Prior(AlertStatus.RESOLVED, "network", held, opened=opened, downgraded=True)


def test_raised_again_after_a_downgrade_is_an_escalation_at_most_once_per_15_minutes() -> None:
    raised = parse_event(webhook(7, "ticket updated", priority_id=1))
    soon = plan_page(raised, DOWNGRADING, _downgraded(NOW - timedelta(minutes=14)), now=NOW)
    assert (soon.status, soon.payload, soon.triage) == (None, None, None)  # memory unchanged
    assert soon.decision.reason.startswith("Escalated: priority 4 \u2192 1; not paged: ")
    assert "opened at 2049-12-31 23:46:00 UTC; it may page from 2050-01-01 00:01:00 UTC" in (
        soon.decision.reason
    )
    later = plan_page(raised, DOWNGRADING, _downgraded(NOW - timedelta(minutes=15)), now=NOW)
    assert (later.status, later.escalation) == (AlertStatus.NEW, "Escalated: priority 4 \u2192 1")
    assert later.basis is not None and later.basis.qualified  # recorded with the new alert
    # A row from before the opening time was recorded: no limit.
    assert plan_page(raised, DOWNGRADING, _downgraded(None), now=NOW).status is AlertStatus.NEW


def test_a_downgraded_ticket_is_judged_from_its_triage_never_open_again() -> None:
    still_low = parse_event(webhook(7, "ticket updated", priority_id=4, summary="more"))
    page = plan_page(still_low, DOWNGRADING, _downgraded(NOW - timedelta(hours=1)), now=NOW)
    assert page.status is None and "open again" not in page.decision.reason


def test_a_field_the_payload_no_longer_says_is_no_escalation() -> None:
    """Remembered at priority 4, then an update without a priority (a small-object payload
    whose ticket could not be read): unknown pages a ticket never seen, but for a remembered
    one it is no transition, so it does not escalate on a guess."""
    settings = RelaySettings.from_env({"SIGNL4_TEAM_SECRET": "s", "RELAY_PAGE_PRIORITIES": "1"})
    logged = plan_page(
        parse_event(webhook(42, "new ticket logged", priority_id=4)), settings, now=NOW
    )
    assert logged.decision.filtered and logged.triage is not None
    prior = Prior(triage=logged.triage)
    unknown = plan_page(parse_event(webhook(42, "ticket updated")), settings, prior, now=NOW)
    raised = plan_page(
        parse_event(webhook(42, "ticket updated", priority_id=1)), settings, prior, now=NOW
    )
    assert (unknown.status, unknown.escalation) == (None, None)
    assert (raised.status, raised.escalation) == (AlertStatus.NEW, "Escalated: priority 4 → 1")


# --- the escalation's and the downgrade's words, and their guards (each a mutant once) ---

P1 = RelaySettings.from_env(
    {"SIGNL4_TEAM_SECRET": "s", "RELAY_PAGE_PRIORITIES": "1", "RELAY_RESOLVE_ON_DOWNGRADE": "1"}
)


def planned(prior: Prior, event: str = "ticket updated", **fields: object) -> Any:
    return plan_page(parse_event(webhook(42, event, **fields)), P1, prior, now=NOW)


def test_an_escalated_message_keeps_the_original_after_the_reason() -> None:
    plain = planned(NEVER_PAGED, "new ticket logged", priority_id=1, summary="Disk full")
    before = Triage(priority="4", route="default")
    escalated = planned(Prior(triage=before), priority_id=1, summary="Disk full")
    assert escalated.escalation == "Escalated: priority 4 → 1"
    assert escalated.payload["Message"] == f"{escalated.escalation}. {plain.payload['Message']}"


def test_each_moved_field_is_named_and_an_unknown_one_is_a_question_mark() -> None:
    before = Triage(priority="4", team="Servers", client="Acme", route="default")
    moved = planned(Prior(triage=before), priority_id=1, team="Network", client_name="Contoso")
    assert moved.escalation == (
        "Escalated: priority 4 → 1; Moved to team Network; Moved to client Contoso"
    )
    unknown = Triage(team="Servers", route="default")
    unknown_before = planned(Prior(triage=unknown), priority_id=1, team="Servers")
    assert unknown_before.escalation == "Escalated: priority ? → 1"


def test_no_escalation_from_a_qualified_memory_or_for_a_closed_ticket() -> None:
    qualified = Triage(priority="4", route="default", qualified=True)  # e.g. remembered while a window held it
    assert planned(Prior(triage=qualified), priority_id=1).escalation is None
    remembered = Triage(priority="4", route="default")
    closed = planned(Prior(triage=remembered), priority_id=1, hasbeenclosed=True)
    assert (closed.escalation, closed.status) == (None, AlertStatus.RESOLVED)


def test_a_ticket_with_an_alert_remembers_no_triage() -> None:
    plan = planned(Prior(AlertStatus.NEW, DEFAULT_TARGET), priority_id=4)
    assert (plan.status, plan.triage) == (None, None)


def test_a_downgrade_says_why_before_the_original_message() -> None:
    basis = Triage(priority="1", qualified=True)
    prior = Prior(AlertStatus.NEW, DEFAULT_TARGET, basis=basis)
    plain = planned(NEVER_PAGED, "closed", priority_id=4, hasbeenclosed=True, summary="Disk")
    down = planned(prior, priority_id=4, summary="Disk")
    assert (down.status, down.downgrade) == (AlertStatus.RESOLVED, True)
    reason = "Downgraded: priority 4 is not in RELAY_PAGE_PRIORITIES"
    assert down.payload["Message"] == f"{reason}. {plain.payload['Message']}"


def test_the_flap_limit_names_its_minutes_and_utc_times() -> None:
    opened = datetime(2050, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))  # 23:00 UTC
    remembered = Triage(priority="4", route="default")
    prior = Prior(
        AlertStatus.RESOLVED, DEFAULT_TARGET, remembered, downgraded=True, opened=opened
    )
    held = plan_page(
        parse_event(webhook(42, "ticket updated", priority_id=1)),
        P1,
        prior,
        now=opened + timedelta(minutes=5),
    )
    assert held.status is None
    assert "at most once per 15 minutes" in held.decision.reason
    assert "opened at 2049-12-31 23:00:00 UTC" in held.decision.reason
    assert "it may page from 2049-12-31 23:15:00 UTC" in held.decision.reason
