"""Normalising every Halo shape into one ticket."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shared.errors import InvalidJson, InvalidStatus, MissingTicketId, UnsupportedPayload
from shared.halo import (
    AlertStatus,
    html_to_text,
    parse_event,
    parse_halo_date,
    parse_json_body,
)
from tests.conftest import fixture_bytes, fixture_json


def test_webhook_small_object() -> None:
    event = parse_event(fixture_json("webhook_new_small.json"))
    assert event.shape == "webhook"
    assert event.event == "new ticket logged"  # case-folded from "New Ticket Logged"
    assert event.delivery_id == "6f1c2a7e-3b0d-4c55-9a43-1d2e3f4a5b6c"
    ticket = event.ticket
    assert ticket.id == 4242
    assert ticket.external_id == "HaloPSA-4242"
    assert ticket.summary == "Exchange server down at Contoso HQ"
    assert (ticket.status_id, ticket.status_name) == (1, None)
    assert ticket.priority_id == 1 and ticket.team_id == 2 and ticket.agent_id == 3
    assert ticket.closed is False


def test_webhook_full_object_normalises_strings_html_and_dates() -> None:
    ticket = parse_event(fixture_json("webhook_new_full.json")).ticket
    assert ticket.id == 4243  # object_id came as the string "4243"
    assert ticket.summary == "Backups failing for Fabrikam"
    assert ticket.status_id == 1 and ticket.status_name == "New"
    assert ticket.priority == "P1 - Critical" and ticket.priority_id == 2
    assert ticket.ticket_type == "Incident"
    assert (ticket.client, ticket.site, ticket.user) == ("Fabrikam Ltd", "Main Office", "Sam Smith")
    assert (ticket.team, ticket.agent, ticket.reference) == (
        "1st Line Support",
        "Alex Agent",
        "IN-0009499",
    )
    assert ticket.date_occurred == datetime(2026, 9, 25, 7, 1, 59, 123456, tzinfo=timezone.utc)
    assert ticket.date_closed is None  # 1900-01-01 is Halo's "no date"
    assert ticket.closed is False  # "false" as a string
    assert ticket.details is not None
    assert "<" not in ticket.details and "alert(1)" not in ticket.details
    assert "The nightly backup job failed three times." in ticket.details
    assert "Error: disk full & retention exceeded" in ticket.details
    assert "NAS01\n" in ticket.details


def test_event_information_only_envelope() -> None:
    event = parse_event(fixture_json("webhook_closed_event_only.json"))
    assert event.event == "closed"
    assert event.ticket.id == 4242
    assert event.ticket.summary is None
    assert event.message == "Ticket 4242 closed"


def test_guide_body() -> None:
    event = parse_event(fixture_json("guide_new.json"))
    assert event.shape == "guide" and event.event is None
    ticket = event.ticket
    assert ticket.id == 4242
    assert ticket.summary == "Exchange server down at Contoso HQ"
    assert ticket.details == "Users cannot send mail.\nStarted 06:40."
    assert (ticket.priority, ticket.client, ticket.site) == ("P1 - Critical", "Contoso", "HQ")
    assert ticket.status_name == "New" and ticket.status_id is None
    assert ticket.date_closed is None  # 1899-12-30 sentinel
    assert event.requested_status is None


def test_guide_close_body() -> None:
    event = parse_event(fixture_json("guide_close.json"))
    assert event.ticket.id == 4242
    assert event.requested_status is AlertStatus.RESOLVED


@pytest.mark.parametrize("name", ["ticket_bare.json", "ticket_wrapped.json"])
def test_bare_and_wrapped_ticket(name: str) -> None:
    event = parse_event(fixture_json(name))
    assert event.shape == "ticket" and event.event is None
    assert event.ticket.id in (4244, 4245)


def test_wrapped_closed_ticket_keeps_its_close_date() -> None:
    ticket = parse_event(fixture_json("ticket_wrapped.json")).ticket
    assert ticket.closed is True
    assert ticket.date_closed == datetime(2026, 9, 25, 10, 0, 0, 123456, tzinfo=timezone.utc)


def test_keys_are_read_case_insensitively() -> None:
    event = parse_event({"x-s4-externalid": "halopsa-77", "x-s4-status": "Acknowledged"})
    assert event.ticket.id == 77
    assert event.requested_status is AlertStatus.ACKNOWLEDGED


def test_nulls_and_empty_strings_are_tolerated() -> None:
    event = parse_event(
        {
            "event": "new ticket logged",
            "object_id": 9,
            "ticket": {
                "summary": "",
                "details": None,
                "status_id": "",
                "priority": None,
                "team": {},
            },
        }
    )
    ticket = event.ticket
    assert ticket.id == 9
    assert ticket.summary is None and ticket.details is None and ticket.status_id is None
    assert ticket.priority is None and ticket.team is None


def test_ticket_id_falls_back_from_object_id_to_ticket_id() -> None:
    assert parse_event({"event": "x", "ticket": {"id": "31"}}).ticket.id == 31
    assert parse_event({"event": "x", "ticket_id": 32}).ticket.id == 32


@pytest.mark.parametrize(
    "body",
    [
        {"event": "new ticket logged"},
        {"event": "new ticket logged", "object_id": None, "ticket": {"summary": "no id"}},
        {"X-S4-ExternalID": "HaloPSA-", "Title": "empty placeholder"},
        {"Title": "guide body without an external id"},
        {"ticket": {"summary": "no id", "status_id": 1}},
    ],
)
def test_missing_ticket_id_is_an_error_not_a_guess(body: dict) -> None:
    with pytest.raises(MissingTicketId):
        parse_event(body)


@pytest.mark.parametrize(
    "body",
    [
        {"event": "new ticket logged", "object_id": "abc"},
        {"X-S4-ExternalID": "Zendesk-12", "Title": "x"},
        {"event": "x", "object_id": -4},
        {"event": "x", "object_id": "\u00b2"},  # a superscript two is a digit to str.isdigit
        {"event": "x", "object_id": "--5"},
        {"event": "x", "object_id": 1e300},
        {"event": "x", "object_id": 10**20},
        {"event": "x", "object_id": True},
    ],
)
def test_a_ticket_id_that_is_not_a_number_is_rejected(body: dict) -> None:
    with pytest.raises(MissingTicketId, match="not a HaloPSA ticket number"):
        parse_event(body)


def test_unknown_x_s4_status_is_rejected() -> None:
    with pytest.raises(InvalidStatus, match="closed"):
        parse_event({"X-S4-ExternalID": "HaloPSA-1", "X-S4-Status": "closed"})


@pytest.mark.parametrize("value", [["resolved"], {"name": "resolved"}, 4, True])
def test_a_non_string_x_s4_status_is_rejected_not_ignored(value: object) -> None:
    with pytest.raises(InvalidStatus, match="must be a string"):
        parse_event({"X-S4-ExternalID": "HaloPSA-1", "X-S4-Status": value})


@pytest.mark.parametrize(
    ("value", "closed"),
    [
        (True, True),
        ("TRUE", True),
        (1, True),
        (float("nan"), False),
        (2, False),
        ("maybe", False),
        ([1], False),
    ],
)
def test_only_a_clear_yes_closes(value: object, closed: bool) -> None:
    ticket = parse_event({"event": "x", "object_id": 1, "ticket": {"hasbeenclosed": value}}).ticket
    assert ticket.closed is closed


def test_a_lone_surrogate_is_replaced_not_fatal() -> None:
    ticket = parse_event(
        {"event": "x", "object_id": 1, "ticket": {"summary": "Server down \ud83d"}}
    ).ticket
    assert ticket.summary == "Server down ?"
    assert ticket.summary.encode("utf-8")


@pytest.mark.parametrize("body", [[1, 2], "text", 42, None, {"hello": "world"}, {"id": 5}])
def test_unsupported_shapes(body: object) -> None:
    with pytest.raises(UnsupportedPayload):
        parse_event(body)


def test_json_python_cannot_hold_is_invalid_json_not_a_crash() -> None:
    with pytest.raises(InvalidJson, match="RecursionError"):
        parse_json_body(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(InvalidJson, match="ValueError"):
        parse_json_body(b'{"object_id": ' + b"9" * 5000 + b"}")


def test_invalid_json_names_the_position() -> None:
    with pytest.raises(InvalidJson, match="line 1"):
        parse_json_body(b'{"event": ')
    with pytest.raises(InvalidJson, match="empty"):
        parse_json_body(b"  ")
    with pytest.raises(InvalidJson, match="UTF-8"):
        parse_json_body(b'{"a": "\xff"}')


def test_empty_placeholders_from_a_halo_template_are_read_as_null() -> None:
    body = parse_json_body(fixture_bytes("guide_empty_values.txt"))
    assert body["Site"] is None and body["Agent"] is None
    assert parse_event(body).ticket.id == 4246


def test_a_byte_order_mark_is_accepted() -> None:
    assert parse_json_body(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "2026-09-25T06:41:08.7895915Z",
            datetime(2026, 9, 25, 6, 41, 8, 789591, tzinfo=timezone.utc),
        ),
        ("2026-09-25T06:41:08", datetime(2026, 9, 25, 6, 41, 8, tzinfo=timezone.utc)),
        ("2026-09-25T06:41:08+02:00", datetime(2026, 9, 25, 4, 41, 8, tzinfo=timezone.utc)),
        ("1900-01-01T00:00:00", None),
        ("1899-12-30T00:00:00", None),
        ("0001-01-01T00:00:00", None),
        ("", None),
        ("yesterday", None),
        (None, None),
        (20260925, None),
    ],
)
def test_halo_dates(value: object, expected: datetime | None) -> None:
    assert parse_halo_date(value) == expected


def test_html_to_text_keeps_text_and_structure() -> None:
    assert html_to_text("a<br/>b<p>c</p>") == "a\nb\nc"
    assert html_to_text("<p>one</p>\n\n\n<p>two</p>") == "one\n\ntwo"
    assert html_to_text("plain &lt;tag&gt;") == "plain <tag>"
    assert html_to_text("<style>p{}</style>   ") is None
    assert html_to_text(None) is None
