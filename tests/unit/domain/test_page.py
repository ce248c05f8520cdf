"""The one page pipeline (shared/domain/page.py): decide -> route -> build -> clean -> window,
with the ticket's prior state as an input, as both the relay and `preview` use it."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from shared.domain.alert import AlertStatus
from shared.domain.halo import parse_event
from shared.domain.page import NEVER_PAGED, Prior, plan_page
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
