"""The outbox's messages (shared/delivery/outbox.py): what a queue message and a poison record hold, the
size Azure counts for them, and what an operator reads about a message in the poison queue."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from shared.delivery.outbox import (
    OutboxMessage,
    PoisonRecord,
    describe_poison,
    parse_message,
    queue_message_bytes,
)
from shared.delivery.schema import REASON_MAX_CHARS
from shared.domain.alert import PAYLOAD_MAX_BYTES, AlertStatus, encoded_size

QUEUED_AT = datetime(2026, 9, 25, 6, 41, tzinfo=timezone.utc)


def test_a_message_is_written_with_the_wire_names_and_read_back() -> None:
    message = OutboxMessage(
        externalId="HaloPSA-4242",
        status=AlertStatus.ACKNOWLEDGED,
        seq=3,
        payload={"Title": "Printer on fire"},
        queuedAt=QUEUED_AT,
        reason="SIGNL4 unavailable: 503",
        target="night",
    )
    wire = json.loads(message.to_json())
    assert wire == {
        "externalId": "HaloPSA-4242",
        "status": "acknowledged",
        "seq": 3,
        "payload": {"Title": "Printer on fire"},
        "queuedAt": "2026-09-25T06:41:00Z",
        "reason": "SIGNL4 unavailable: 503",
        "target": "night",
    }
    assert parse_message(message.to_json()) == message


def test_a_message_defaults_to_no_claim_no_reason_the_default_route_and_now() -> None:
    before = datetime.now(timezone.utc)
    message = parse_message('{"externalId": "HaloPSA-1", "status": "new", "payload": {}}')
    after = datetime.now(timezone.utc)
    assert (message.seq, message.reason, message.target) == (0, "", "")
    assert message.status is AlertStatus.NEW
    assert message.queued_at.tzinfo == timezone.utc
    assert before <= message.queued_at <= after


@pytest.mark.parametrize(
    ("status", "read"),
    [
        pytest.param("new", AlertStatus.NEW, id="signl4-status"),
        pytest.param("resolved", AlertStatus.RESOLVED, id="signl4-status-2"),
        pytest.param("notification-9", "notification-9", id="write-back-notification-id"),
    ],
)
def test_a_status_is_signl4s_first_else_a_notification_id(status: str, read: object) -> None:
    message = parse_message(
        json.dumps({"externalId": "HaloPSA-1", "status": status, "payload": {}})
    )
    assert message.status == read and type(message.status) is type(read)


def test_a_message_fits_its_payload_and_shortens_its_reason() -> None:
    message = OutboxMessage(
        externalId="HaloPSA-1",
        status=AlertStatus.NEW,
        payload={"Title": "t", "Message": "x" * (PAYLOAD_MAX_BYTES + 1)},
        reason="r" * (REASON_MAX_CHARS + 10),
    )
    assert encoded_size(message.payload) <= PAYLOAD_MAX_BYTES
    assert message.payload["Title"] == "t"
    assert message.reason == "r" * REASON_MAX_CHARS
    # Clean text: a control character never reaches SIGNL4 from a queued event either.
    cleaned = OutboxMessage(externalId="HaloPSA-1", status="new", payload={"Title": "a\x00b"})
    assert cleaned.payload == {"Title": "ab"}


def test_a_poison_record_holds_the_reason_and_the_whole_message() -> None:
    message = OutboxMessage(
        externalId="HaloPSA-7", status="resolved", payload={"Title": "t"}, queuedAt=QUEUED_AT
    )
    record = PoisonRecord(
        externalId="HaloPSA-7",
        status=AlertStatus.RESOLVED,
        reason="refused by SIGNL4: 400 " + "y" * REASON_MAX_CHARS,
        message=message,
    )
    assert record.reason == ("refused by SIGNL4: 400 " + "y" * REASON_MAX_CHARS)[:REASON_MAX_CHARS]
    wire = json.loads(record.to_json())
    assert wire["externalId"] == "HaloPSA-7" and wire["status"] == "resolved"
    assert wire["message"] == json.loads(message.to_json())
    assert describe_poison(record.to_json()) == ("HaloPSA-7", record.reason, 0)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("", 0),
        ("a", 4),
        ("ab", 4),
        ("abc", 4),
        ("abcd", 8),
        ("abcdef", 8),
        ("é", 4),  # 2 UTF-8 bytes
        ("\U0001f600", 8),  # 4 UTF-8 bytes
        ("x" * 49_152, 65_536),  # the most JSON a queue message holds
    ],
)
def test_queue_message_bytes_is_base64_of_utf8(text: str, size: int) -> None:
    assert queue_message_bytes(text) == size


def _json(value: object) -> str:
    return json.dumps(value)


EXHAUSTED = "delivery attempts exhausted (first failure: {})"


@pytest.mark.parametrize(
    ("raw", "described"),
    [
        pytest.param("not json", ("-", "unreadable message", 0), id="not-json"),
        pytest.param("[1, 2]", ("-", "unreadable message", 0), id="not-an-object"),
        pytest.param('"HaloPSA-1"', ("-", "unreadable message", 0), id="a-string"),
        pytest.param(
            _json({"externalId": "HaloPSA-1", "reason": "refused: 400", "message": {}}),
            ("HaloPSA-1", "refused: 400", 0),
            id="poison-record",
        ),
        pytest.param(
            _json({"externalId": "HaloPSA-1", "message": {"seq": 4}, "seq": 4}),
            ("HaloPSA-1", "refused by SIGNL4", 0),
            id="poison-record-without-reason",
        ),
        pytest.param(
            _json({"externalId": "HaloPSA-2", "raw": "garbage", "reason": "bad JSON"}),
            ("HaloPSA-2", "bad JSON", 0),
            id="unreadable-kept-raw",
        ),
        pytest.param(
            _json({"raw": "garbage", "seq": 3}),
            ("-", "unreadable message", 0),
            id="unreadable-kept-raw-without-reason",
        ),
        pytest.param(
            _json({"externalId": "HaloPSA-3", "reason": "SIGNL4 unavailable: 503", "seq": 5}),
            ("HaloPSA-3", EXHAUSTED.format("SIGNL4 unavailable: 503"), 5),
            id="nudge-exhausted",
        ),
        pytest.param(
            _json({"externalId": "HaloPSA-3", "seq": 5}),
            ("HaloPSA-3", EXHAUSTED.format("SIGNL4 unavailable"), 5),
            id="nudge-without-reason",
        ),
        pytest.param(
            _json({"externalId": "HaloPSA-3", "reason": "", "seq": "5"}),
            ("HaloPSA-3", EXHAUSTED.format("SIGNL4 unavailable"), 0),
            id="seq-not-a-number",
        ),
        pytest.param(
            _json({"externalId": "HaloPSA-3", "reason": "r", "message": "text"}),
            ("HaloPSA-3", EXHAUSTED.format("r"), 0),
            id="message-not-an-object-is-a-nudge",
        ),
        pytest.param(_json({}), ("-", EXHAUSTED.format("SIGNL4 unavailable"), 0), id="empty"),
        pytest.param(
            _json({"externalId": "", "reason": "r"}),
            ("-", EXHAUSTED.format("r"), 0),
            id="empty-external-id",
        ),
        pytest.param(
            _json({"externalId": 42, "reason": "r", "message": {}}),
            ("42", "r", 0),
            id="numeric-external-id",
        ),
    ],
)
def test_describe_poison_tells_an_operator_what_happened(
    raw: str, described: tuple[str, str, int]
) -> None:
    assert describe_poison(raw) == described
