"""Which fields a decision lacks, and the event completed with Halo's ticket
(shared/domain/full_ticket.py): pure, every rule in memory."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.domain.full_ticket import completed, missing_fields
from shared.domain.halo import parse_event
from shared.errors import UnsupportedPayload
from shared.settings import RelaySettings

BARE = RelaySettings.from_env({})
P1 = RelaySettings.from_env({"RELAY_PAGE_PRIORITIES": "1"})
TEAMS = RelaySettings.from_env({"RELAY_PAGE_TEAMS": "Network"})
BY_CLIENT = RelaySettings.from_env(
    {"RELAY_ROUTES": json.dumps([{"name": "acme", "when": {"client": ["Acme"]}}])}
)


def routed_by(key: str) -> RelaySettings:
    """A rule matching on `key` alone: the field must be known to route."""
    return RelaySettings.from_env({"RELAY_ROUTES": json.dumps([{"name": "r", "when": {key: [1]}}])})


def envelope(event: str, ticket: dict[str, Any] | None = None, **extra: Any) -> Any:
    body: dict[str, Any] = {"event": event, "object_id": 42, **extra}
    if ticket is not None:
        body["ticket"] = {"id": 42, **ticket}
    return parse_event(body)


@pytest.mark.parametrize(
    ("event", "settings", "missing"),
    [
        (envelope("ticket status changed"), BARE, ("status", "summary")),
        (envelope("ticket status changed", message="m"), BARE, ("status",)),
        (envelope("new ticket logged", message="m"), BARE, ()),
        (envelope("new ticket logged", message="m"), P1, ("priority",)),
        (envelope("ticket updated", {"summary": "s", "status_id": 2}), P1, ("priority",)),
        (envelope("ticket updated", {"summary": "s", "status_id": 2, "priority_id": 4}), P1, ()),
        (envelope("ticket updated", {"summary": "s", "status_id": 2}), TEAMS, ("team",)),
        (envelope("ticket updated", {"summary": "s", "status_id": 2, "team_id": 5}), TEAMS, ()),
        (envelope("ticket updated", {"summary": "s", "status_id": 2}), BY_CLIENT, ("client",)),
        (
            envelope("ticket updated", {"summary": "s", "status_id": 2}),
            routed_by("priority"),
            ("priority",),
        ),
        (
            envelope("ticket updated", {"summary": "s", "status_id": 2}),
            routed_by("team"),
            ("team",),
        ),
        (
            envelope("ticket updated", {"summary": "s", "status_id": 2}),
            routed_by("site"),
            ("site",),
        ),
        (
            envelope("ticket updated", {"summary": "s", "status_id": 2}),
            routed_by("type"),
            ("type",),
        ),
        (
            envelope("ticket updated", {"summary": "s", "status_id": 2, "site_id": 1}),
            routed_by("site"),
            (),
        ),
        (envelope("ticket updated", {"summary": "s", "status_name": "Open"}), BARE, ()),
        (envelope("closed"), P1, ()),
        (envelope("ticket updated", {"hasbeenclosed": True}), P1, ()),
        (envelope("ticket updated", **{"X-S4-Status": "resolved"}), P1, ()),
        (parse_event({"Title": "t", "X-S4-ExternalID": "HaloPSA-42"}), P1, ()),
    ],
)
def test_missing_fields(event: Any, settings: RelaySettings, missing: tuple[str, ...]) -> None:
    assert missing_fields(event, settings) == missing


def test_the_read_fills_only_what_the_payload_lacks_group_by_group() -> None:
    event = envelope("ticket updated", {"summary": "ours", "status_id": 2, "team_id": 5})
    record = {
        "id": 42,
        "summary": "theirs",
        "status_id": 9,
        "status_name": "Closed",
        "priority_id": 1,
        "priority_name": "Critical",
        "team": "Network",
        "client_name": "Acme",
    }
    ticket = completed(event, record).ticket
    assert (ticket.summary, ticket.status_id, ticket.status_name) == ("ours", 2, None)
    assert (ticket.team_id, ticket.team) == (5, None)  # the payload's pair, kept whole
    assert (ticket.priority_id, ticket.priority, ticket.client) == (1, "Critical", "Acme")


def test_a_ticket_closed_in_either_is_closed() -> None:
    event = envelope("ticket status changed")
    assert completed(event, {"id": 42, "hasbeenclosed": True}).ticket.closed
    closed = envelope("ticket updated", {"hasbeenclosed": True})
    assert completed(closed, {"id": 42, "hasbeenclosed": False}).ticket.closed


def test_another_tickets_record_is_refused() -> None:
    with pytest.raises(UnsupportedPayload, match="ticket 43, not 42"):
        completed(envelope("ticket status changed"), {"id": 43, "status_id": 9})


def test_an_event_only_payload_takes_the_whole_ticket_read() -> None:
    record = {"id": 42, "summary": "Disk full", "details": "C: at 99%", "user_name": "Ann"}
    ticket = completed(envelope("ticket updated"), record).ticket
    assert (ticket.summary, ticket.details, ticket.user) == ("Disk full", "C: at 99%", "Ann")
