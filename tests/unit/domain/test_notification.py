"""SIGNL4's outbound webhook (shared/domain/notification.py): one notification read into a typed
model, keys case-insensitive (older senders write `userName` / `mailAddress`), every field the
relay acts on checked, and the answer's wording when one cannot be read."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from shared.domain.halo import parse_json_body
from shared.domain.notification import Signl4Notification, parse_notification
from shared.errors import InvalidField, UnsupportedPayload

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "signl4_outbound"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def body(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"eventType": 201, "id": "n-1", "alert": {"statusCode": 2}}
    value.update(overrides)
    return value


# --- the whole notification, as SIGNL4 sends it (signl4.com/outbound-webhooks) ---


def test_every_field_of_an_acknowledgement() -> None:
    assert parse_notification(fixture("acknowledged.json")) == Signl4Notification(
        id="5f1c2f0e-8a61-4b8e-9d0c-2a4e7c0b9f11",
        event_type=201,
        raised=datetime(2026, 9, 25, 6, 41, 8, 789591, tzinfo=timezone.utc),
        status_code=2,
        alert_id="alert-8d10",
        alert_event_id="event-2c44",
        external_id="HaloPSA-4242",
        user_name="Ann Example",
        user_email="ann@contoso.example",
        annotation=None,
    )
    assert parse_notification(fixture("acknowledged.json")).ticket_id == 4242


def test_every_field_of_an_annotation_with_keys_in_any_case() -> None:
    parsed = parse_notification(fixture("annotated.json"))
    assert parsed == Signl4Notification(
        id="9b0e4c1d-33aa-4f2e-b0c1-7e5d2a6f8c20",
        event_type=203,
        raised=datetime(2026, 9, 25, 7, 2, tzinfo=timezone(timedelta(hours=2))),
        status_code=2,
        alert_id="alert-8d10",
        alert_event_id="event-2c44",
        external_id="haloPSA-4242",
        user_name="Bob Example",
        user_email="bob@contoso.example",
        annotation="Switch rebooted, watching it",
    )
    assert parsed.ticket_id == 4242


def test_every_field_of_an_escalation_which_names_no_escalation() -> None:
    """SIGNL4's 202 carries the alert and the time: no `user`, no escalation object."""
    assert parse_notification(fixture("escalated.json")) == Signl4Notification(
        id="c3d9a7e2-1f40-4b6d-8e25-6a0b9c4d7e31",
        event_type=202,
        raised=datetime(2026, 9, 25, 6, 56, 8, 123456, tzinfo=timezone.utc),
        status_code=1,
        alert_id="alert-8d10",
        alert_event_id="event-2c44",
        external_id="HaloPSA-4242",
    )


# --- the ticket id: only HaloPSA-<id>, within Halo's ids ---


@pytest.mark.parametrize(
    ("external_id", "ticket"),
    [
        ("HaloPSA-9007199254740992", 2**53),  # the largest JSON-safe id
        ("HaloPSA-9007199254740993", None),
        ("HaloPSA-0000000000000007", 7),  # 16 digits
        ("HaloPSA-1-2", None),
        ("xHaloPSA-1", None),
        ("HALOPSA-5", 5),
        ("", None),
    ],
)
def test_ticket_id_bounds(external_id: str, ticket: int | None) -> None:
    parsed = parse_notification(body(alert={"externalEventId": external_id}))
    assert parsed.ticket_id == ticket


# --- what cannot be read: refused by name, with the words the sender sees ---


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (
            "text",
            UnsupportedPayload,
            "a SIGNL4 outbound webhook sends one JSON object per notification",
        ),
        ({"eventType": 201}, UnsupportedPayload, "not a SIGNL4 notification: it has no id"),
        (body(id="  "), UnsupportedPayload, "not a SIGNL4 notification: it has no id"),
        (body(eventType=""), UnsupportedPayload, "not a SIGNL4 notification: it has no eventType"),
        (body(eventType=False), InvalidField, "eventType must be a number"),
        (body(eventType=201.0), InvalidField, "eventType must be a number"),
        (body(eventType="1234567890"), InvalidField, "eventType must be a number"),
        (body(eventType="20 1"), InvalidField, "eventType must be a number"),
        (body(alert={"statusCode": True}), InvalidField, "alert.statusCode must be a number"),
        (body(alert=[1]), InvalidField, "alert must be a JSON object"),
        (body(user="ann"), InvalidField, "user must be a JSON object"),
        (body(annotation="hi"), InvalidField, "annotation must be a JSON object"),
    ],
)
def test_unreadable_notifications_are_refused_with_a_reason(
    value: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        parse_notification(value)
    assert str(raised.value) == message


def test_keys_that_differ_only_in_case_are_ambiguous() -> None:
    with pytest.raises(UnsupportedPayload) as raised:
        parse_notification(body(alert={"statusCode": 2, "StatusCode": 4}))
    assert str(raised.value) == (
        "the keys 'statusCode' and 'StatusCode' differ only in case; the relay does not guess "
        "which value SIGNL4 meant"
    )
    with pytest.raises(UnsupportedPayload) as raised:
        parse_notification(parse_json_body(b'{"eventType": 201, "eventType": 202}'))
    assert str(raised.value).endswith("the relay does not guess which value SIGNL4 meant")


@pytest.mark.parametrize(
    ("value", "read"),
    [
        (" 201 ", 201),
        ("-5", -5),
        ("123456789", 123456789),
        (300, 300),
    ],
)
def test_event_type_as_a_number_or_its_digits(value: Any, read: int) -> None:
    assert parse_notification(body(eventType=value)).event_type == read


@pytest.mark.parametrize(("value", "read"), [(None, None), ("", None), ("4", 4), (2, 2)])
def test_status_code_may_be_absent(value: Any, read: int | None) -> None:
    assert parse_notification(body(alert={"statusCode": value})).status_code == read


def test_missing_objects_read_as_empty() -> None:
    parsed = parse_notification({"id": "n", "eventType": 203, "alert": None, "user": None})
    assert (parsed.status_code, parsed.alert_id, parsed.user_name, parsed.annotation) == (
        None,
        None,
        None,
        None,
    )
    assert parsed.ticket_id is None and parsed.raised is None


# --- lengths: ids and names cut, the annotation kept longer ---


def test_long_fields_are_cut() -> None:
    parsed = parse_notification(
        body(
            id="i" * 250,
            alert={"id": "a" * 250, "eventId": "e" * 250, "externalEventId": "x" * 250},
            user={"username": "u" * 250, "mailaddress": "m" * 250},
            annotation={"message": "w" * 5000},
        )
    )
    assert parsed.id == "i" * 200
    assert (parsed.alert_id, parsed.alert_event_id, parsed.external_id) == (
        "a" * 200,
        "e" * 200,
        "x" * 200,
    )
    assert (parsed.user_name, parsed.user_email) == ("u" * 200, "m" * 200)
    assert parsed.annotation == "w" * 4000


def test_blank_text_is_no_text() -> None:
    parsed = parse_notification(
        body(user={"username": " ", "mailaddress": ""}, annotation={"message": " \n "})
    )
    assert (parsed.user_name, parsed.user_email, parsed.annotation) == (None, None, None)


# --- an escalation object SIGNL4 does not send is not read, whatever its shape ---


@pytest.mark.parametrize(
    "escalation", ["Tier 2", {"name": "Night shift", "level": 2}, [1], None, {"x": {"y": 1}}]
)
def test_an_escalation_key_is_ignored(escalation: Any) -> None:
    plain = parse_notification(body(eventType=202))
    assert parse_notification(body(eventType=202, escalation=escalation)) == plain
    inside = body(eventType=202, alert={"statusCode": 2, "escalation": escalation})
    assert parse_notification(inside) == plain
