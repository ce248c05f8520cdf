"""Routing to several SIGNL4 teams (RELAY_ROUTES), proved against real parts over both ledger
adapters: each tier's test_routing_delivery.py imports these cases with its `harness` fixture
(tests/unit: MemoryStore; tests/integration: TableStore on Azurite). SIGNL4 is the loopback
fake, answering at /webhook/<secret> for the default team and for the team `network`.

Windows here are dated far in the past and future (2000 to 2100), so whether one holds is
never a question of the machine's clock; the held-pages timer gets its `now` injected."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any

import pytest

from shared.delivery.schema import HELD_PARTITION
from shared.entry.storage import open_ledger
from shared.entry.timers import release_held_pages
from shared.settings import RelaySettings
from tests.conftest import TEAM_SECRET, Harness, Signl4Fake, new_ticket_id
from tests.suites.delivery import webhook

NETWORK_SECRET = "n3tw0rk-TEAM-77b2e0"
ALWAYS = {"from": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z", "name": "freeze"}
INSIDE = datetime(2050, 1, 1, tzinfo=timezone.utc)
AFTER = datetime(2100, 1, 1, tzinfo=timezone.utc)


def network_rules(**extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": "network",
            "when": {"team": ["Network"]},
            "target": "network",
            "service": "Network",
            "scenario": "multi_ack",
            "filtering": True,
            **extra,
        },
        {"name": "rest", "when": {}, "target": "default", "service": "Servers"},
    ]


@pytest.fixture
def network_team(signl4: Signl4Fake, monkeypatch: pytest.MonkeyPatch) -> Signl4Fake:
    """A second SIGNL4 team on the same fake, and its secret as the relay reads it."""
    signl4.server.expect_request(f"/webhook/{NETWORK_SECRET}", method="POST").respond_with_handler(
        signl4.handle
    )
    monkeypatch.setenv("SIGNL4_TEAM_SECRET_NETWORK", NETWORK_SECRET)
    return signl4


def set_rules(monkeypatch: pytest.MonkeyPatch, rules: list[dict[str, Any]]) -> None:
    monkeypatch.setenv("RELAY_ROUTES", json.dumps(rules))


def teams(signl4: Signl4Fake, external_id: str) -> list[tuple[str, str]]:
    """(status, team) of each event SIGNL4 got for the ticket, in order."""
    names = {f"/webhook/{TEAM_SECRET}": "default", f"/webhook/{NETWORK_SECRET}": "network"}
    return [
        (event["X-S4-Status"], names[path])
        for event, path in zip(signl4.events, signl4.paths, strict=True)
        if event["X-S4-ExternalID"] == external_id
    ]


def held_rows() -> dict[str, Any]:
    ledger = open_ledger(RelaySettings.from_env(os.environ))
    assert ledger is not None
    return ledger.store.read(HELD_PARTITION)


def test_two_teams_get_their_own_tickets_with_their_categories(
    harness: Harness, network_team: Signl4Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_rules(monkeypatch, network_rules())
    net, srv = new_ticket_id(), new_ticket_id()
    assert harness.post(webhook(net, "new ticket logged", team="network"))[1]["result"] == "sent"
    assert harness.post(webhook(srv, "new ticket logged", team="Servers"))[1]["result"] == "sent"
    assert teams(network_team, f"HaloPSA-{net}") == [("new", "network")]
    assert teams(network_team, f"HaloPSA-{srv}") == [("new", "default")]
    by_id = {e["X-S4-ExternalID"]: e for e in network_team.events}
    assert {k: v for k, v in by_id[f"HaloPSA-{net}"].items() if k.startswith("X-S4-S")} == {
        "X-S4-Status": "new",
        "X-S4-Service": "Network",
        "X-S4-SourceSystem": "HaloPSA",
    }
    assert by_id[f"HaloPSA-{net}"]["X-S4-AlertingScenario"] == "multi_ack"
    assert by_id[f"HaloPSA-{net}"]["X-S4-Filtering"] == "true"
    assert by_id[f"HaloPSA-{srv}"]["X-S4-Service"] == "Servers"
    assert "X-S4-AlertingScenario" not in by_id[f"HaloPSA-{srv}"]


def test_ack_and_close_follow_the_alert_after_the_rules_changed(
    harness: Harness, network_team: Signl4Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_ACK_STATUSES", "In Progress")
    set_rules(monkeypatch, network_rules())
    tid = new_ticket_id()
    assert harness.post(webhook(tid, "new ticket logged", team="Network"))[1]["result"] == "sent"
    # The network team's rule goes away: new Network tickets go to the default team now...
    set_rules(monkeypatch, [{"name": "everything", "when": {}, "target": "default"}])
    other = new_ticket_id()
    assert harness.post(webhook(other, "new ticket logged", team="Network"))[1]["result"] == "sent"
    # ...but the open alert's acknowledge and close still reach the team that got it.
    ack = harness.post(webhook(tid, "status changed", team="Network", status_name="In Progress"))
    close = harness.post(webhook(tid, "closed", team="Network", hasbeenclosed=True, status_id=9))
    assert (ack[1]["result"], close[1]["result"]) == ("sent", "sent")
    assert teams(network_team, f"HaloPSA-{tid}") == [
        ("new", "network"),
        ("acknowledged", "network"),
        ("resolved", "network"),
    ]
    assert teams(network_team, f"HaloPSA-{other}") == [("new", "default")]


def test_a_window_holds_back_the_page_but_not_the_close(
    harness: Harness, network_team: Signl4Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_rules(monkeypatch, network_rules(windows=[ALWAYS]))
    tid = new_ticket_id()
    held = harness.post(webhook(tid, "new ticket logged", team="Network"))
    assert held == (
        200,
        {
            "result": "suppressed",
            "externalId": f"HaloPSA-{tid}",
            "window": "freeze",
            "route": "network",
        },
    )
    assert teams(network_team, f"HaloPSA-{tid}") == []
    close = harness.post(webhook(tid, "closed", team="Network", hasbeenclosed=True, status_id=9))
    assert close[1]["result"] == "sent"
    assert teams(network_team, f"HaloPSA-{tid}") == [("resolved", "network")]
    assert f"HaloPSA-{tid}" not in held_rows()  # no page_after_window: nothing was kept


def test_a_ticket_still_open_when_the_window_ends_pages_then(
    harness: Harness, network_team: Signl4Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_rules(monkeypatch, network_rules(windows=[ALWAYS], page_after_window=True))
    open_one, closed_one = new_ticket_id(), new_ticket_id()
    for tid in (open_one, closed_one):
        answer = harness.post(webhook(tid, "new ticket logged", team="Network"))
        assert answer[1]["result"] == "suppressed"
    assert {f"HaloPSA-{open_one}", f"HaloPSA-{closed_one}"} <= set(held_rows())
    harness.post(webhook(closed_one, "closed", team="Network", hasbeenclosed=True, status_id=9))
    assert f"HaloPSA-{closed_one}" not in held_rows()  # closed: nothing to page later

    # Inside the window the timer pages nothing.
    assert release_held_pages(os.environ, now=lambda: INSIDE) == []
    assert teams(network_team, f"HaloPSA-{open_one}") == []
    # Once it has ended, the open ticket pages its team, once.
    lines = release_held_pages(os.environ, now=lambda: AFTER)
    assert f"held externalId=HaloPSA-{open_one} route=network window='freeze' result=sent" in lines
    assert release_held_pages(os.environ, now=lambda: AFTER) == []
    assert teams(network_team, f"HaloPSA-{open_one}") == [("new", "network")]
    assert teams(network_team, f"HaloPSA-{closed_one}") == [("resolved", "network")]
    assert f"HaloPSA-{open_one}" not in held_rows()
    # The page was recorded like any other: the close follows it to its team.
    harness.post(webhook(open_one, "closed", team="Network", hasbeenclosed=True, status_id=9))
    assert teams(network_team, f"HaloPSA-{open_one}") == [
        ("new", "network"),
        ("resolved", "network"),
    ]


def test_a_held_ticket_acknowledged_meanwhile_does_not_page(
    harness: Harness, network_team: Signl4Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_ACK_STATUSES", "In Progress")
    set_rules(monkeypatch, network_rules(windows=[ALWAYS], page_after_window=True))
    tid = new_ticket_id()
    assert harness.post(webhook(tid, "new ticket logged", team="Network"))[1]["result"] == (
        "suppressed"
    )
    ack = harness.post(webhook(tid, "status changed", team="Network", status_name="In Progress"))
    assert ack[1]["result"] == "sent"
    lines = release_held_pages(os.environ, now=lambda: AFTER)
    assert any(f"HaloPSA-{tid}" in line and "result=skipped" in line for line in lines)
    assert teams(network_team, f"HaloPSA-{tid}") == [("acknowledged", "network")]
    assert f"HaloPSA-{tid}" not in held_rows()


def test_a_ticket_reopened_in_a_window_pages_after_it_unless_closed_again(
    harness: Harness, network_team: Signl4Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reopen held by a window pages when it ends, though the ticket's last alert was
    resolved; a close during the window drops the hold, even one that repeats the last close."""
    set_rules(monkeypatch, network_rules(windows=[ALWAYS], page_after_window=True))
    stays_open, closed_again = new_ticket_id(), new_ticket_id()
    for tid in (stays_open, closed_again):
        harness.post(webhook(tid, "new ticket logged", team="Network"))
        release_held_pages(os.environ, now=lambda: AFTER)  # paged after the first window
        harness.post(webhook(tid, "closed", team="Network", hasbeenclosed=True, status_id=9))
        reopened = harness.post(webhook(tid, "ticket status changed", team="Network"))
        assert reopened[1]["result"] == "suppressed", reopened
    closed = webhook(closed_again, "closed", team="Network", hasbeenclosed=True, status_id=9)
    assert harness.post(closed)[1]["result"] == "duplicate"  # its alert is resolved already
    assert f"HaloPSA-{closed_again}" not in held_rows()
    release_held_pages(os.environ, now=lambda: AFTER)
    opened_twice = [("new", "network"), ("resolved", "network"), ("new", "network")]
    assert teams(network_team, f"HaloPSA-{stays_open}") == opened_twice
    assert teams(network_team, f"HaloPSA-{closed_again}") == opened_twice[:2]


def test_a_parked_batch_keeps_each_events_own_team(
    harness: Harness, network_team: Signl4Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The routing target travels with each event, not with the request: once SIGNL4 is down for
    the first element, the rest are parked, and each still reaches its own team."""
    set_rules(monkeypatch, network_rules())
    net, srv = new_ticket_id(), new_ticket_id()
    network_team.script(503, 503, 503)
    code, body = harness.post(
        [webhook(net, "new ticket logged", team="Network"), webhook(srv, "new ticket logged")]
    )
    assert code == 202 and [r["result"] for r in body["results"]] == ["queued", "queued"]
    harness.drain()
    assert teams(network_team, f"HaloPSA-{net}") == [("new", "network")] * 4
    assert teams(network_team, f"HaloPSA-{srv}") == [("new", "default")]
