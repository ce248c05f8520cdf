"""The write-back planner (shared/writeback.py): what each SIGNL4 event writes into the Halo
ticket (the private note an engineer reads there, word for word), what it ignores and why, and
the Halo API bodies (../shared/REFERENCE.md, "HaloPSA REST API")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shared import writeback
from shared.settings import RelaySettings
from shared.signl4 import AlertStatus
from shared.signl4_outbound import Signl4Notification, parse_notification

ON = {
    "HALO_BASE_URL": "https://contoso.halopsa.com",
    "HALO_CLIENT_ID": "id",
    "HALO_CLIENT_SECRET": "sec-ret-value",
}
RAISED = "2026-09-25T06:41:08Z"
AT = " at 2026-09-25 06:41:08 UTC"


def settings(**values: str) -> RelaySettings:
    return RelaySettings.from_env({**ON, **values})


def notification(event_type: int = 201, **overrides: Any) -> Signl4Notification:
    value: dict[str, Any] = {
        "eventType": event_type,
        "eventRaisedUtc": RAISED,
        "id": "n-1",
        "user": {"username": "Ann", "mailaddress": "ann@contoso.example"},
        "alert": {"statusCode": 2, "externalEventId": "HaloPSA-4242", "id": "a-1"},
    }
    value.update(overrides)
    return parse_notification(value)


def alert(status_code: int | None = 2, **extra: Any) -> dict[str, Any]:
    return {"statusCode": status_code, "externalEventId": "HaloPSA-4242", **extra}


def written(planned: writeback.Plan) -> writeback.Write:
    assert isinstance(planned, writeback.Write), planned
    return planned


def test_conversation_keys() -> None:
    assert writeback.conversation_key(4242) == "halo:HaloPSA-4242"
    assert writeback.signl4_key(4242) == "HaloPSA-4242"


# --- the note each event writes: what the engineer reads in the ticket ---


@pytest.mark.parametrize(
    ("user", "who"),
    [
        (
            {"username": "Ann", "mailaddress": "ann@contoso.example"},
            " by Ann (ann@contoso.example)",
        ),
        ({"username": "Ann"}, " by Ann"),
        ({"mailaddress": "ann@contoso.example"}, " by ann@contoso.example"),
        (
            {"username": "Ann@Contoso.example", "mailaddress": "ann@contoso.example"},
            " by Ann@Contoso.example",
        ),
        (None, ""),
    ],
)
def test_the_note_names_who_did_it(user: dict[str, str] | None, who: str) -> None:
    acked = written(writeback.plan(notification(user=user), settings()))
    assert acked.payload["note"] == f"Acknowledged in SIGNL4{who}{AT}."
    closed = written(writeback.plan(notification(user=user, alert=alert(4)), settings()))
    assert closed.payload["note"] == f"Closed in SIGNL4{who}{AT}."
    annotated = written(
        writeback.plan(notification(203, user=user, annotation={"message": "on it"}), settings())
    )
    assert annotated.payload["note"] == f"Annotation in SIGNL4{who}{AT}:\non it"


@pytest.mark.parametrize(
    ("raised", "when"),
    [
        (None, ""),
        ("2026-09-25T08:41:08+02:00", AT),  # SIGNL4's time in UTC, whatever offset it came with
        ("2026-09-24T23:00:00-07:00", " at 2026-09-25 06:00:00 UTC"),
    ],
)
def test_the_note_says_when_in_utc(raised: str | None, when: str) -> None:
    acked = written(writeback.plan(notification(user=None, eventRaisedUtc=raised), settings()))
    assert acked.payload["note"] == f"Acknowledged in SIGNL4{when}."


@pytest.fixture
def host_in_kathmandu(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone is UTC+05:45 (a developer's machine, not Azure's UTC)."""
    monkeypatch.setenv("TZ", "Asia/Kathmandu")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("host_in_kathmandu")
def test_the_notes_time_is_utc_whatever_zone_the_host_runs_in() -> None:
    naive = Signl4Notification(
        id="n", event_type=202, raised=datetime(2026, 9, 25, 6, 41, 8), external_id="HaloPSA-1"
    )
    aware = naive.model_copy(
        update={"raised": datetime(2026, 9, 25, 8, 41, 8, tzinfo=timezone(timedelta(hours=2)))}
    )
    for parsed in (naive, aware, notification(202)):
        assert written(writeback.plan(parsed, settings())).payload["note"] == (
            f"Escalated in SIGNL4{AT}."
        )


def test_an_acknowledgement_with_its_status_and_assignment() -> None:
    planned = writeback.plan(
        notification(), settings(HALO_ACK_STATUS_ID="22", HALO_ASSIGN_ON_ACK="true")
    )
    assert planned == writeback.Write(
        4242,
        "acknowledged",
        {
            "ticketId": 4242,
            "note": f"Acknowledged in SIGNL4 by Ann (ann@contoso.example){AT}.",
            "notificationId": "n-1",
            "statusId": 22,
            "assignEmail": "ann@contoso.example",
        },
        AlertStatus.ACKNOWLEDGED,
    )


def test_assignment_needs_the_setting_and_an_email() -> None:
    off = written(writeback.plan(notification(), settings(HALO_ACK_STATUS_ID="22")))
    assert "assignEmail" not in off.payload and off.payload["statusId"] == 22
    nameless = written(
        writeback.plan(notification(user={"username": "Ann"}), settings(HALO_ASSIGN_ON_ACK="true"))
    )
    assert "assignEmail" not in nameless.payload and "statusId" not in nameless.payload


def test_a_close_with_its_status_never_assigns() -> None:
    planned = writeback.plan(
        notification(alert=alert(4)),
        settings(HALO_CLOSE_STATUS_ID="9", HALO_ACK_STATUS_ID="22", HALO_ASSIGN_ON_ACK="true"),
    )
    assert planned == writeback.Write(
        4242,
        "closed",
        {
            "ticketId": 4242,
            "note": f"Closed in SIGNL4 by Ann (ann@contoso.example){AT}.",
            "notificationId": "n-1",
            "statusId": 9,
        },
        AlertStatus.RESOLVED,
    )


@pytest.mark.parametrize(
    ("escalation", "note"),
    [
        (None, f"Escalated in SIGNL4{AT}."),
        ("Tier 2", f"Escalated in SIGNL4{AT}: Tier 2."),
        ({"level": 2}, f"Escalated in SIGNL4{AT}: level 2."),
    ],
)
def test_an_escalation_names_no_user_but_the_escalation(escalation: Any, note: str) -> None:
    planned = writeback.plan(
        notification(202, escalation=escalation), settings(HALO_ACK_STATUS_ID="22")
    )
    assert planned == writeback.Write(
        4242, "escalated", {"ticketId": 4242, "note": note, "notificationId": "n-1"}, None
    )


def test_an_annotation_is_a_note_without_status() -> None:
    planned = writeback.plan(
        notification(203, annotation={"message": "Switch rebooted"}),
        settings(HALO_ACK_STATUS_ID="22", HALO_ASSIGN_ON_ACK="true"),
    )
    assert planned == writeback.Write(
        4242,
        "annotated",
        {
            "ticketId": 4242,
            "note": f"Annotation in SIGNL4 by Ann (ann@contoso.example){AT}:\nSwitch rebooted",
            "notificationId": "n-1",
        },
        None,
    )


def test_alert_created_records_the_alert_id_even_without_one() -> None:
    assert writeback.plan(notification(200), settings()) == writeback.RecordAlert(4242, "a-1")
    bare = notification(200, alert={"externalEventId": "HaloPSA-7"})
    assert writeback.plan(bare, settings()) == writeback.RecordAlert(7, None)


# --- ignored, with the reason Halo's side never sees but the operator's log does ---


@pytest.mark.parametrize(
    ("event_type", "overrides", "reason"),
    [
        (1, {}, "a SIGNL4 test notification"),
        (300, {}, "a SIGNL4 duty notification (eventType 300)"),
        (301, {}, "a SIGNL4 duty notification (eventType 301)"),
        (303, {}, "a SIGNL4 duty notification (eventType 303)"),
        (204, {}, "eventType 204 is not one the relay writes back"),
        (0, {}, "eventType 0 is not one the relay writes back"),
        (
            201,
            {"alert": {"statusCode": 2, "externalEventId": "Zabbix-1"}},
            "not an alert raised by the relay (its externalEventId is not HaloPSA-<ticket id>)",
        ),
        (
            200,
            {"alert": {"id": "a-1"}},
            "not an alert raised by the relay (its externalEventId is not HaloPSA-<ticket id>)",
        ),
        (
            201,
            {"alert": alert(1)},
            "alert status 1 is neither acknowledged (2) nor closed (4)",
        ),
        (
            201,
            {"alert": alert(None)},
            "alert status None is neither acknowledged (2) nor closed (4)",
        ),
        (203, {}, "an annotation without text"),
    ],
)
def test_ignored_with_the_reason(event_type: int, overrides: dict[str, Any], reason: str) -> None:
    planned = writeback.plan(notification(event_type, **overrides), settings())
    assert planned == writeback.Ignore(reason)


# --- the mailbox payload ---


def test_a_note_is_cut_to_what_halo_takes() -> None:
    parsed = notification()
    payload = writeback.halo_payload(7, "n" * 6000, parsed, status_id=3, assign_email="")
    assert payload == {"ticketId": 7, "note": "n" * 5000, "notificationId": "n-1", "statusId": 3}


# --- Halo API bodies ---


@pytest.mark.parametrize(
    ("agent", "note"),
    [
        (None, "Acked.\nNot assigned: no Halo agent has the e-mail address ann@x."),
        ({"id": 3, "name": "Ann Agent"}, "Acked.\nAssigned to Ann Agent (matched by e-mail)."),
        ({"id": 3, "name": ""}, "Acked.\nAssigned to agent 3 (matched by e-mail)."),
        ({"id": 3}, "Acked.\nAssigned to agent 3 (matched by e-mail)."),
    ],
)
def test_the_note_says_what_became_of_the_assignment(agent: dict | None, note: str) -> None:
    assert writeback.assignment_note("Acked.", "ann@x", agent) == note


@pytest.mark.parametrize(
    ("agents", "found"),
    [
        ([{"id": 4, "email": " ann@x "}], 4),
        ({"agents": [{"id": 4, "email": "ann@x"}]}, 4),
        ({"records": [{"id": 4, "email": "ann@x"}]}, 4),
        ({"agents": [], "records": [{"id": 5, "email": "ann@x"}]}, 5),
        ({"agents": None}, None),
        ({"agents": "ann@x"}, None),
        ({}, None),
        (None, None),
        ([{"id": "4", "email": "ann@x"}, {"id": 6, "email": "ANN@X"}], 6),  # an id must be a number
        (["ann@x", {"id": 6, "email": "ann@x"}], 6),
        ([{"id": 4, "email": None}, {"id": 5}], None),
        ([{"id": 4, "email": "bob@x"}, {"id": 5, "email": "ann@x"}], 5),
        ([{"id": 4, "email": "ann@x"}, {"id": 5, "email": "ann@x"}], 4),  # the first
    ],
)
def test_agents_are_matched_by_email(agents: Any, found: int | None) -> None:
    match = writeback.match_agent(agents, " Ann@X")
    assert (match or {}).get("id") == found


def test_no_agent_matches_an_empty_email() -> None:
    assert writeback.match_agent([{"id": 4, "email": ""}, {"id": 5}], "ann@x") is None
    assert writeback.match_agent([{"id": 4, "email": "ann@x"}], "") is None


def test_action_body_with_outcome_by_name_and_no_status() -> None:
    payload = {"ticketId": 5, "note": "n", "statusId": None}
    body = writeback.action_body(payload, "text", settings(HALO_NOTE_OUTCOME="SIGNL4 note"))
    assert body == [
        {"ticket_id": 5, "note": "text", "hiddenfromuser": True, "outcome": "SIGNL4 note"}
    ]


def test_action_body_with_outcome_id_and_status() -> None:
    body = writeback.action_body(
        {"ticketId": 5, "statusId": 22}, "t", settings(HALO_NOTE_OUTCOME_ID="7")
    )
    assert body == [
        {"ticket_id": 5, "note": "t", "hiddenfromuser": True, "outcome_id": 7, "new_status": 22}
    ]


def test_action_body_carries_the_resolved_outcome_id_and_the_new_agent() -> None:
    """Assignment rides on the action (`new_agent`, Halo's Actions model), not a second call;
    Halo's id for the outcome name wins over the name, HALO_NOTE_OUTCOME_ID over both."""
    body = writeback.action_body({"ticketId": 4242}, "t", settings(), outcome_id=12, agent_id=3)
    assert body == [
        {"ticket_id": 4242, "note": "t", "hiddenfromuser": True, "outcome_id": 12, "new_agent": 3}
    ]
    by_id = writeback.action_body({"ticketId": 1}, "t", settings(HALO_NOTE_OUTCOME_ID="7"))
    assert by_id[0]["outcome_id"] == 7 and "new_agent" not in by_id[0]
