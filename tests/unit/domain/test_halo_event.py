"""Halo's event bodies into one ticket (shared/domain/halo.parse_event): the webhook, the SIGNL4
guide body and a bare or wrapped ticket; which shape a body is read as; the ticket id, status,
priority, flags, dates and text fields with their fallbacks; and the 4xx a wrong value gets,
named with a short preview (never the whole value)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shared.domain.alert import AlertStatus
from shared.domain.halo import Ticket, parse_event, parse_halo_date
from shared.domain.policy import decide
from shared.domain.signl4_params import parse_signal_params
from shared.errors import InvalidField, InvalidStatus, MissingTicketId, UnsupportedPayload
from shared.settings import RelaySettings
from tests.conftest import fixture_json

NOT_AN_OBJECT = "expected a JSON object (a Halo webhook, the SIGNL4 guide body or a ticket), got"
NO_SHAPE = (
    "the body is neither a Halo webhook (event/object_id), the SIGNL4 guide body "
    "(Title/X-S4-ExternalID) nor a Halo ticket (id with summary/status_id)"
)
NOT_A_NUMBER = "is not a HaloPSA ticket number"
BAD_FLAG = "hasbeenclosed must be true or false (or 1/0, yes/no), not"
BAD_STATUS = "X-S4-Status must be new, acknowledged or resolved, not"


def _webhook_ticket(**ticket: object) -> Ticket:
    return parse_event({"event": "x", "object_id": 1, "ticket": ticket}).ticket


# --- each shape, from the fixtures ---


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


# --- which shape a body is read as ---


@pytest.mark.parametrize(
    ("body", "query", "shape", "ticket_id"),
    [
        ({"X-S4-ExternalID": "HaloPSA-5", "event": "closed"}, {}, "guide", 5),
        ({"X-S4-Status": "resolved", "ticket_id": 5}, {}, "guide", 5),
        ({"Title": "t", "object_id": 9, "id": 5}, {}, "guide", 5),
        ({"X-S4-Status": "resolved", "object_id": 5, "id": "guid"}, {}, "webhook", 5),
        ({"id": 5, "summary": "s"}, {"ExtIDParam": "trigger_id"}, "ticket", 5),
        ({"trigger_id": "HaloPSA-5", "summary": "s"}, {"ExtIDParam": "trigger_id"}, "guide", 5),
        # each webhook key makes a webhook; each ticket key with an id makes a bare ticket
        *(
            ({key: "7" if key == "object_id" else "x", "ticket_id": 7}, {}, "webhook", 7)
            for key in ("event", "object_id", "webhook_id", "notification_id", "escmsg_id")
        ),
        *(
            ({"id": 7, key: None}, {}, "ticket", 7)
            for key in (
                "summary",
                "details",
                "status_id",
                "hasbeenclosed",
                "tickettype_id",
                "client_id",
                "dateoccurred",
            )
        ),
    ],
)
def test_which_shape_a_body_is_read_as(body: dict, query: dict, shape: str, ticket_id: int) -> None:
    event = parse_event(body, parse_signal_params(query))
    assert (event.shape, event.ticket.id) == (shape, ticket_id)


def test_a_wrapped_ticket_must_be_alone() -> None:
    with pytest.raises(UnsupportedPayload):
        parse_event({"ticket": {"id": 7, "summary": "s"}, "extra": 1})
    assert parse_event({"Ticket": {"ID": 7}}).ticket.id == 7


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], f"{NOT_AN_OBJECT} list"),
        ("text", f"{NOT_AN_OBJECT} str"),
        (42, f"{NOT_AN_OBJECT} int"),
        (None, f"{NOT_AN_OBJECT} null"),
        ({"hello": "world"}, NO_SHAPE),
        ({"id": 5}, NO_SHAPE),
    ],
)
def test_a_body_of_no_known_shape_is_refused_by_name(body: object, message: str) -> None:
    with pytest.raises(UnsupportedPayload) as caught:
        parse_event(body)
    assert caught.value.message == message and caught.value.status_code == 400


def test_a_webhook_with_object_id_and_no_event_is_an_open_ticket_without_event_information() -> (
    None
):
    event = parse_event({"object_id": 77, "message": "m", "id": "guid-1"})
    assert (event.shape, event.event, event.ticket.id) == ("webhook", None, 77)
    assert (event.message, event.delivery_id, event.requested_status) == ("m", "guid-1", None)
    decision = decide(event, RelaySettings.from_env({}))
    assert decision.status is AlertStatus.NEW
    assert decision.reason == "an open ticket in a webhook body without event information"


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


# --- the ticket id ---


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # a webhook: object_id, then ticket.id, then ticket_id
        *(
            ({"event": "x", "object_id": object_id}, expected)
            for object_id, expected in (
                (1, 1),
                (2**53, 2**53),
                ("9007199254740992", 2**53),
                (123.0, 123),
                (" 42 ", 42),
                ("0042", 42),
            )
        ),
        ({"event": "x", "ticket": {"id": "31"}}, 31),
        ({"event": "x", "ticket_id": 32}, 32),
        # a ticket without its id: ticket_id
        ({"ticket": {"ticket_id": 5, "summary": "s"}}, 5),
        ({"id": "", "ticket_id": "5", "summary": "s"}, 5),
        # the guide body: X-S4-ExternalID (prefixed or a bare number), then ticket_id, then id
        *(
            ({"X-S4-ExternalID": external_id, "Title": "t"}, expected)
            for external_id, expected in (
                (12, 12),
                ("HaloPSA-13", 13),
                ("halopsa-14", 14),
                (" 15 ", 15),
                (16.0, 16),
            )
        ),
        ({"Title": "t", "ticket_id": 5}, 5),
        ({"Title": "t", "id": "6"}, 6),
        ({"Title": "t", "X-S4-ExternalID": " HALOPSA-7 ", "id": 8}, 7),
        ({"Title": "t", "X-S4-ExternalID": "12", "id": 8}, 12),
        ({"Title": "t", "X-S4-ExternalID": "", "ticket_id": 9}, 9),
        ({"Title": "t", "X-S4-ExternalID": None, "ticket_id": 10, "id": 11}, 10),
    ],
)
def test_which_ticket_id_is_read(body: dict, expected: int) -> None:
    assert parse_event(body).ticket.id == expected


@pytest.mark.parametrize(
    ("body", "looked_at"),
    [
        ({"event": "new ticket logged"}, "object_id, ticket.id, ticket_id"),
        (
            {"event": "new ticket logged", "object_id": None, "ticket": {"summary": "no id"}},
            "object_id, ticket.id, ticket_id",
        ),
        (
            {"event": "x", "object_id": "  ", "ticket": {"summary": "s"}},
            "object_id, ticket.id, ticket_id",
        ),
        (
            {"X-S4-ExternalID": "HaloPSA-", "Title": "empty placeholder"},
            "X-S4-ExternalID, ticket_id, id",
        ),
        ({"Title": "guide body without an external id"}, "X-S4-ExternalID, ticket_id, id"),
        ({"ticket": {"summary": "no id", "status_id": 1}}, "ticket.id, ticket_id"),
    ],
)
def test_a_missing_ticket_id_is_an_error_naming_where_it_looked(body: dict, looked_at: str) -> None:
    with pytest.raises(MissingTicketId) as caught:
        parse_event(body)
    assert caught.value.message == f"no ticket id in the body (looked at {looked_at})"


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        *(
            ({"event": "x", "object_id": object_id}, f"object_id {str(object_id)[:40]!r}")
            for object_id in (
                0,
                "0",
                -1,
                -4,
                2**53 + 1,
                "9007199254740993",
                "12345678901234567",
                123.5,
                "1.0",
                "1e3",
                "+5",
                "abc",
                "\u00b2",  # a superscript two is a digit to str.isdigit
                "--5",
                1e300,
                10**20,
                True,
                "x" * 100,  # cut at 40 characters
            )
        ),
        ({"X-S4-ExternalID": "Zendesk-12", "Title": "x"}, "X-S4-ExternalID 'Zendesk-12'"),
    ],
)
def test_a_ticket_id_that_is_not_a_ticket_number_is_refused(body: dict, shown: str) -> None:
    with pytest.raises(MissingTicketId) as caught:
        parse_event(body)
    assert caught.value.message == f"{shown} {NOT_A_NUMBER}"


# --- the closed flag ---


@pytest.mark.parametrize(
    ("value", "closed"),
    [
        (True, True),
        ("TRUE", True),
        (1, True),
        (1.0, True),
        (" yes ", True),
        ("1", True),
        ("Y", True),
        ("on", True),
        (False, False),
        (0, False),
        (0.0, False),
        ("false", False),
        ("0", False),
        ("No", False),
        ("n", False),
        ("OFF", False),
        ("", False),
        ("  ", False),
        (None, False),
    ],
)
def test_only_a_clear_yes_closes(value: object, closed: bool) -> None:
    ticket = parse_event({"event": "x", "object_id": 1, "ticket": {"hasbeenclosed": value}}).ticket
    assert ticket.closed is closed


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (2, "2"),
        (-1, "-1"),
        (0.5, "0.5"),
        ("maybe", "'maybe'"),
        ("tru", "'tru'"),
        ("yes please", "'yes please'"),
        ("m" * 20, repr("m" * 20)),
        ("m" * 21, "a string of 21 characters"),
        ("closed-" + "x" * 500, "a string of 507 characters"),  # a long value is not echoed
        (12345678901234567890, "12345678901234567890"),  # 20 characters: shown
        (123456789012345678901, "a JSON number"),  # 21: only its kind
        (1.2345678901234567e300, "a JSON number"),
        ([1], "a JSON array"),
        ({"a": 1}, "a JSON object"),
    ],
)
def test_a_flag_neither_clearly_true_nor_false_is_invalid_and_named_briefly(
    value: object, shown: str
) -> None:
    # Before, these were read as open: a garbled "closed" must not be guessed either way.
    for body in (
        {"event": "x", "object_id": 1, "ticket": {"hasbeenclosed": value}},
        {"X-S4-ExternalID": "HaloPSA-1", "Title": "t", "HasBeenClosed": value},
    ):
        with pytest.raises(InvalidField) as caught:
            parse_event(body)
        assert caught.value.message == f"{BAD_FLAG} {shown}"
        assert caught.value.code == "invalid_field" and caught.value.status_code == 422


@pytest.mark.parametrize(
    ("fields", "closed", "status_id", "status_name"),
    [
        ({"HasBeenClosed": "true"}, True, None, "New"),
        ({"HasBeenClosed": "False"}, False, None, "New"),
        ({"Status": "9"}, False, 9, None),
        ({"Status": 9}, False, 9, None),
        ({"Status": " Closed "}, False, None, "Closed"),
    ],
)
def test_guide_body_closed_flag_and_numeric_status(
    fields: dict, closed: bool, status_id: int | None, status_name: str | None
) -> None:
    body = {"X-S4-ExternalID": "HaloPSA-4242", "Title": "t", "Status": "New", **fields}
    ticket = parse_event(body).ticket
    assert (ticket.closed, ticket.status_id, ticket.status_name) == (closed, status_id, status_name)


@pytest.mark.parametrize("fields", [{"HasBeenClosed": "true"}, {"Status": "9"}])
def test_a_closed_guide_body_resolves(fields: dict) -> None:
    body = {"X-S4-ExternalID": "HaloPSA-4242", "Title": "t", "Status": "New", **fields}
    decision = decide(parse_event(body), RelaySettings.from_env({}))
    assert (decision.action, decision.status) == ("send", AlertStatus.RESOLVED)


# --- X-S4-Status ---


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("  ", None),
        (None, None),
        (" Resolved ", AlertStatus.RESOLVED),
        ("NEW", AlertStatus.NEW),
    ],
)
def test_x_s4_status_blank_is_not_given_and_any_case_is_read(
    value: object, expected: AlertStatus | None
) -> None:
    body = {"X-S4-ExternalID": "HaloPSA-1", "X-S4-Status": value}
    assert parse_event(body).requested_status is expected


def test_x_s4_status_inside_a_webhook_envelope() -> None:
    body = {"event": "ticket updated", "object_id": 5, "X-S4-Status": "Resolved"}
    event = parse_event(body)
    assert (event.shape, event.requested_status) == ("webhook", AlertStatus.RESOLVED)
    with pytest.raises(InvalidStatus) as caught:
        parse_event({**body, "X-S4-Status": "closed"})
    assert caught.value.status_code == 422
    assert caught.value.message == "X-S4-Status must be new, acknowledged or resolved, not 'closed'"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("closed", f"{BAD_STATUS} 'closed'"),
        ("s" * 100, f"{BAD_STATUS} {'s' * 40!r}"),  # cut at 40 characters
        (["resolved"], "X-S4-Status must be a string, not list"),
        ({"name": "resolved"}, "X-S4-Status must be a string, not dict"),
        (4, "X-S4-Status must be a string, not int"),
        (True, "X-S4-Status must be a string, not bool"),
    ],
)
def test_an_x_s4_status_the_relay_cannot_read_is_refused_by_name(
    value: object, message: str
) -> None:
    with pytest.raises(InvalidStatus) as caught:
        parse_event({"X-S4-ExternalID": "HaloPSA-1", "X-S4-Status": value})
    assert caught.value.message == message and caught.value.status_code == 422


# --- the ticket's fields and their fallbacks ---


@pytest.mark.parametrize(
    ("ticket", "expected"),
    [
        ({"status": {"name": "In Progress", "id": 2}}, (None, "In Progress")),
        ({"status": {"Name": "Waiting"}}, (None, "Waiting")),
        ({"status": 2}, (2, None)),
        ({"status": "3"}, (3, None)),
        ({"status": "Open"}, (None, "Open")),
        ({"status_id": 4, "status": 5}, (4, None)),
        ({"status_id": 4, "status_name": "Pending", "status": "Other"}, (4, "Pending")),
    ],
)
def test_halo_status_as_object_number_or_name(ticket: dict, expected: tuple) -> None:
    parsed = _webhook_ticket(**ticket)
    assert (parsed.status_id, parsed.status_name) == expected


@pytest.mark.parametrize(
    ("ticket", "expected"),
    [
        ({"priority": {"name": "P1 - Critical", "priorityid": 4}}, (4, "P1 - Critical")),
        ({"priority": 3}, (3, None)),
        ({"priority": "2"}, (2, None)),
        ({"priority": "P2"}, (None, "P2")),
        ({"priority_id": 1, "priority": {"name": "P1", "priorityid": 4}}, (1, "P1")),
        ({"priority_name": "Urgent", "priority": "P2"}, (None, "Urgent")),
        ({"priority_id": 0}, (0, None)),
    ],
)
def test_halo_priority_as_object_number_or_name(ticket: dict, expected: tuple) -> None:
    parsed = _webhook_ticket(**ticket)
    assert (parsed.priority_id, parsed.priority) == expected


@pytest.mark.parametrize(
    ("ticket", "field", "expected"),
    [
        ({"details_html": "<p>from html</p>"}, "details", "from html"),
        ({"details": "plain", "details_html": "<p>html</p>"}, "details", "plain"),
        ({"details": "", "details_html": "<p>html</p>"}, "details", None),
        (
            {"tickettype_name": "Incident", "tickettype": "T", "type": "X"},
            "ticket_type",
            "Incident",
        ),
        ({"tickettype": "Problem", "type": "X"}, "ticket_type", "Problem"),
        ({"type": "Change"}, "ticket_type", "Change"),
        ({"client_name": "Contoso", "client": "C"}, "client", "Contoso"),
        ({"client": "Fabrikam"}, "client", "Fabrikam"),
        ({"client": {"name": "Northwind"}}, "client", "Northwind"),
        ({"site_name": "HQ", "site": "S"}, "site", "HQ"),
        ({"site": "Branch"}, "site", "Branch"),
        ({"agent_name": "Alex", "agent": "A"}, "agent", "Alex"),
        ({"agent": "Bo"}, "agent", "Bo"),
        ({"user_name": "Sam", "user": "U"}, "user", "Sam"),
        ({"user": "Kim"}, "user", "Kim"),
        ({"team": "NOC", "team_name": "T"}, "team", "NOC"),
        ({"team_name": "Service Desk"}, "team", "Service Desk"),
        ({"team_id": "12"}, "team_id", 12),
        ({"agent_id": 7}, "agent_id", 7),
        ({"reference": " IN-1 "}, "reference", "IN-1"),
        ({"summary": ["not", "text"]}, "summary", None),
    ],
)
def test_webhook_ticket_fields_and_their_fallbacks(
    ticket: dict, field: str, expected: object
) -> None:
    assert getattr(_webhook_ticket(**ticket), field) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"Client": "Contoso", "Organisation": "O", "OppCompanyName": "P"}, "Contoso"),
        ({"Organisation": "Org", "OppCompanyName": "P"}, "Org"),
        ({"OppCompanyName": "Prospect"}, "Prospect"),
        ({"Client": "", "Organisation": None, "OppCompanyName": "Prospect"}, "Prospect"),
    ],
)
def test_guide_body_client_falls_back_to_organisation(fields: dict, expected: str) -> None:
    body = {"X-S4-ExternalID": "HaloPSA-1", "Title": "t", **fields}
    assert parse_event(body).ticket.client == expected


def test_guide_body_fields() -> None:
    body = {
        "X-S4-ExternalID": "HaloPSA-1",
        "Title": "Disk full",
        "Message": "<p>msg</p>",
        "Priority": "3",
        "Type": "Incident",
        "Site": "HQ",
        "Team": "NOC",
        "Agent": "Alex",
        "Reference": "IN-7",
        "DateOccurred": "2026-09-25T06:40:00Z",
        "DateClosed": "2026-09-25T07:40:00Z",
    }
    ticket = parse_event(body).ticket
    assert (ticket.summary, ticket.details, ticket.priority_id, ticket.priority) == (
        "Disk full",
        "msg",
        3,
        "3",
    )
    assert (ticket.ticket_type, ticket.site, ticket.team, ticket.agent, ticket.reference) == (
        "Incident",
        "HQ",
        "NOC",
        "Alex",
        "IN-7",
    )
    assert ticket.date_occurred == datetime(2026, 9, 25, 6, 40, tzinfo=timezone.utc)
    assert ticket.date_closed == datetime(2026, 9, 25, 7, 40, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("body", "ids"),
    [
        (fixture_json("webhook_new_full.json"), (1, 15, 20)),
        ({"id": 7, "tickettype_id": "3", "client_id": 4.0, "site_id": 5}, (3, 4, 5)),
        ({"id": 7, "summary": "s"}, (None, None, None)),
    ],
)
def test_type_client_and_site_ids_are_read_for_routing(body: dict, ids: tuple) -> None:
    """RELAY_ROUTES rules match a ticket's type, client and site by id (shared/domain/routing.py)."""
    ticket = parse_event(body).ticket
    assert (ticket.ticket_type_id, ticket.client_id, ticket.site_id) == ids


def test_keys_for_the_settings_lists_are_ids_and_case_folded_names() -> None:
    ticket = Ticket(id=1, status_id=0, status_name="New", priority_id=3, team="NOC", team_id=None)
    assert ticket.status_keys() == {"0", "new"}
    assert ticket.priority_keys() == {"3"}
    assert ticket.team_keys() == {"noc"}
    assert Ticket(id=1).status_keys() == frozenset()
    assert ticket.external_id == "HaloPSA-1"


def test_a_field_is_cut_at_10000_characters_and_ids_are_json_safe_both_ways() -> None:
    assert _webhook_ticket(summary="s" * 10_001).summary == "s" * 10_000
    assert _webhook_ticket(status_id=-(2**53)).status_id == -(2**53)
    assert _webhook_ticket(status_id=-(2**53) - 1).status_id is None
    assert _webhook_ticket(status_id=2**53 + 1).status_id is None


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
        ("2026-09-25T06:41:08z", datetime(2026, 9, 25, 6, 41, 8, tzinfo=timezone.utc)),
        (" 2026-09-25T06:41:08Z ", datetime(2026, 9, 25, 6, 41, 8, tzinfo=timezone.utc)),
        (
            "2026-09-25T06:41:08.1234567",
            datetime(2026, 9, 25, 6, 41, 8, 123456, tzinfo=timezone.utc),
        ),
        ("   ", None),
    ],
)
def test_halo_dates(value: object, expected: datetime | None) -> None:
    assert parse_halo_date(value) == expected


# --- hostile ticket text: what end users can put into a ticket (e-mail to ticket) ---


def test_a_lone_surrogate_is_replaced_not_fatal() -> None:
    ticket = parse_event(
        {"event": "x", "object_id": 1, "ticket": {"summary": "Server down \ud83d"}}
    ).ticket
    assert ticket.summary == "Server down ?"
    assert ticket.summary.encode("utf-8")


def test_control_characters_never_reach_a_text_field() -> None:
    event = parse_event(
        {
            "event": "New Ticket Logged\x00",
            "object_id": 1,
            "message": "m\x1b[31mred",
            "ticket": {
                "summary": "Server\x00 down\x07\r\nnow\x85\x9f\x7f",
                "details": "<p>a\x08b\rc\x0bd</p>",
                "client_name": "Con\u0000toso\u009b",
                "status_name": "\tNew\x0c",
            },
        }
    )
    assert event.event == "new ticket logged"
    assert event.message == "m[31mred"
    ticket = event.ticket
    assert ticket.summary == "Server down\nnow"
    assert ticket.details == "ab\nc d"
    assert ticket.client == "Contoso"
    assert ticket.status_name == "New"


def test_format_characters_that_hide_or_reorder_text_never_reach_a_text_field() -> None:
    """The same cleaner as the SIGNL4 payload's (shared/domain/alert.clean_text): raw, or decoded from
    an entity in HTML details."""
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    ticket = parse_event(
        {
            "id": 1,
            "summary": "Pay \u202eexe.fdp\u202c invoice\u2028now",
            "details": "<p>&#x202E;rev&#8236; zero&#x200B;width&#xFEFF;&#8288; a&#x2028;b</p>"
            f"<p>\u2066{family}\u2069</p>",
            "client_name": "\ufeff\u200bContoso\u2060",
        }
    ).ticket
    assert ticket.summary == "Pay exe.fdp invoice\nnow"
    assert ticket.details == f"rev zerowidth a\nb\n\n{family}"  # ZWJ kept: one emoji
    assert ticket.client == "Contoso"
