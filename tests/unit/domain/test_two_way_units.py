"""Two-way sync, the pure parts: reading SIGNL4's notification, the Halo API bodies, the
settings, and the core transition that prevents loops (what each event writes: test_writeback)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shared.delivery import conversation as core
from shared.domain import writeback
from shared.domain.alert import AlertStatus
from shared.domain.notification import parse_notification
from shared.errors import InvalidField, UnsupportedPayload
from shared.settings import RelaySettings, SettingsError

BASE = {"HALO_BASE_URL": "https://contoso.halopsa.com"}
ON = {**BASE, "HALO_CLIENT_ID": "id", "HALO_CLIENT_SECRET": "sec-ret-value"}
NOW = datetime(2026, 9, 25, 6, 41, tzinfo=timezone.utc)


def settings(**values: str) -> RelaySettings:
    return RelaySettings.from_env({**ON, **values})


def body(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "eventType": 201,
        "eventRaisedUtc": "2026-09-25T06:41:08.7895915Z",
        "id": "n-1",
        "user": {"username": "Ann", "mailaddress": "ann@contoso.example"},
        "alert": {"statusCode": 2, "externalEventId": "HaloPSA-4242", "id": "a-1"},
    }
    value.update(overrides)
    return value


# --- parsing ---


def test_keys_are_read_case_insensitively_as_older_senders_write_them() -> None:
    parsed = parse_notification(
        {
            "EventType": "201",
            "ID": "n-9",
            "User": {"userName": "Bob", "mailAddress": "bob@contoso.example"},
            "ALERT": {"StatusCode": 4, "ExternalEventID": "haloPSA-17"},
        }
    )
    assert (parsed.id, parsed.event_type, parsed.status_code) == ("n-9", 201, 4)
    assert (parsed.user_name, parsed.user_email, parsed.ticket_id) == (
        "Bob",
        "bob@contoso.example",
        17,
    )


@pytest.mark.parametrize(
    ("external_id", "ticket"),
    [
        ("HaloPSA-4242", 4242),
        (" HaloPSA-1 ", 1),
        ("HaloPSA-0", None),
        ("HaloPSA-12a", None),
        ("HaloPSA-", None),
        ("Zabbix-4242", None),
        ("HaloPSA-99999999999999999", None),
        (None, None),
    ],
)
def test_only_our_external_ids_name_a_ticket(external_id: str | None, ticket: int | None) -> None:
    alert = {"statusCode": 2, "externalEventId": external_id}
    assert parse_notification(body(alert=alert)).ticket_id == ticket


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ([body()], UnsupportedPayload),
        (body(id=None), UnsupportedPayload),
        (body(eventType=None), UnsupportedPayload),
        ({**body(), "Id": "again"}, UnsupportedPayload),
        (body(eventType=True), InvalidField),
        (body(alert="HaloPSA-1"), InvalidField),
        (body(alert={"statusCode": "acked"}), InvalidField),
    ],
)
def test_unreadable_notifications_are_refused_by_name(value: Any, error: type) -> None:
    with pytest.raises(error):
        parse_notification(value)


# --- Halo API bodies ---


def test_action_body_is_a_private_note_with_outcome_by_name_or_id() -> None:
    payload = {"ticketId": 5, "note": "n", "statusId": 9}
    assert writeback.action_body(payload, "text", settings()) == [
        {
            "ticket_id": 5,
            "note_html": "text",
            "hiddenfromuser": True,
            "outcome": "Private Note",
            "new_status": 9,
        }
    ]
    by_id = writeback.action_body({"ticketId": 5}, "t", settings(HALO_NOTE_OUTCOME_ID="7"))
    assert by_id == [{"ticket_id": 5, "note_html": "t", "hiddenfromuser": True, "outcome_id": 7}]


def test_agents_are_matched_by_email_case_insensitively() -> None:
    agents = [{"id": 3, "email": "Other@x"}, {"id": 4, "email": "ANN@Contoso.example"}]
    assert writeback.match_agent(agents, "ann@contoso.example") == agents[1]
    assert writeback.match_agent({"agents": agents}, "ann@contoso.example") == agents[1]
    assert writeback.match_agent(agents, "nobody@x") is None
    assert writeback.match_agent("garbage", "ann@contoso.example") is None


# --- settings ---


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({**BASE, "HALO_CLIENT_ID": "id"}, "HALO_CLIENT_ID and HALO_CLIENT_SECRET"),
        ({**BASE, "HALO_CLIENT_SECRET": "s3cr3t"}, "HALO_CLIENT_ID and HALO_CLIENT_SECRET"),
        ({"HALO_CLIENT_ID": "id", "HALO_CLIENT_SECRET": "s3cr3t"}, "HALO_BASE_URL"),
        ({**ON, "HALO_ACK_STATUS_ID": "ack"}, "HALO_ACK_STATUS_ID"),
        ({**ON, "HALO_CLOSE_STATUS_ID": "0"}, "HALO_CLOSE_STATUS_ID"),
        ({**ON, "HALO_NOTE_OUTCOME_ID": "-1"}, "HALO_NOTE_OUTCOME_ID"),
        ({**ON, "HALO_ASSIGN_ON_ACK": "maybe"}, "HALO_ASSIGN_ON_ACK"),
        ({**ON, "HALO_AUTH_URL": "http://halo.example/auth"}, "HALO_AUTH_URL"),
    ],
)
def test_bad_two_way_settings_are_named_never_echoed(values: dict, named: str) -> None:
    with pytest.raises(SettingsError, match=named) as raised:
        RelaySettings.from_env(values)
    assert "s3cr3t" not in str(raised.value)


def test_two_way_is_off_by_default_and_on_with_the_credentials() -> None:
    assert not RelaySettings.from_env(BASE).two_way
    assert settings().two_way
    assert "HALO_CLIENT_SECRET" in RelaySettings.secret_setting_names()


# --- the loop: SIGNL4's own change recorded on the SIGNL4 side ---


def test_learned_status_makes_the_echo_a_repeat() -> None:
    sent = core.Conversation(
        "HaloPSA-1", status=AlertStatus.NEW, seq=1, delivered_seq=1, exists=True
    )
    step = core.learned(sent, AlertStatus.ACKNOWLEDGED, NOW, 150)
    assert (step.state.status, step.state.seq, step.state.delivered_seq) == (
        AlertStatus.ACKNOWLEDGED,
        1,
        1,
    )
    echo = core.Arrival(AlertStatus.ACKNOWLEDGED, {})
    assert isinstance(core.arrive(step.state, echo, NOW, 150).effect, core.Duplicate)
    # A ticket the relay never paged for (the guide's direct setup raised the alert).
    fresh = core.learned(core.absent("HaloPSA-2"), AlertStatus.RESOLVED, NOW, 150).state
    assert fresh.exists and fresh.status is AlertStatus.RESOLVED and fresh.seq == 0


def test_learned_status_leaves_waiting_and_live_events_alone() -> None:
    waiting = core.Conversation(
        "HaloPSA-1", status=AlertStatus.NEW, seq=2, pending_count=1, exists=True
    )
    assert not core.learned(waiting, AlertStatus.ACKNOWLEDGED, NOW, 150).changed
    live = core.Conversation(
        "HaloPSA-1", status=AlertStatus.NEW, seq=1, inflight_seq=1, inflight_since=NOW, exists=True
    )
    assert not core.learned(live, AlertStatus.ACKNOWLEDGED, NOW, 150).changed
    dead = core.learned(live, AlertStatus.ACKNOWLEDGED, NOW + timedelta(seconds=151), 150)
    assert dead.changed and dead.state.status is AlertStatus.ACKNOWLEDGED


def test_a_status_is_learned_only_while_the_verified_alert_is_still_the_current_one() -> None:
    """Between verifying a notification and learning its status, the ticket may be reopened:
    a new alert (a new anchor), which the notification says nothing about."""
    from shared.adapters.store import MemoryStore
    from shared.delivery.ledger import Ledger
    from shared.delivery.writebacks import learn_status

    ledger, key = Ledger(MemoryStore()), "HaloPSA-7"
    opened = ledger.apply(
        core.absent(key),
        core.claim(core.absent(key), core.Arrival(AlertStatus.NEW, {}, opens=True), "", NOW),
    )
    ledger.confirm(opened, "evt-1", opened=True)
    verified = ledger.read(key)  # what the notification about alert evt-1 was verified against
    assert verified.raised_event_id == "evt-1"
    closed = ledger.apply(
        verified, core.claim(verified, core.Arrival(AlertStatus.RESOLVED, {}), "", NOW)
    )
    ledger.confirm(closed, "evt-2")
    current = ledger.read(key)
    reopened = ledger.apply(
        current, core.claim(current, core.Arrival(AlertStatus.NEW, {}, opens=True), "", NOW)
    )
    ledger.confirm(reopened, "evt-3", opened=True)
    learn_status(ledger, key, AlertStatus.ACKNOWLEDGED, 150, verified=verified)
    after = ledger.read(key)
    assert (after.status, after.raised_event_id) == (AlertStatus.NEW, "evt-3")  # nothing learned
    learn_status(ledger, key, AlertStatus.ACKNOWLEDGED, 150, verified=after)  # the current one
    assert ledger.read(key).status is AlertStatus.ACKNOWLEDGED
