"""Limits on Azurite: the worst rows and queue messages are written and read back, a batch out of
inline time queues the rest, and Azurite enforces the limits the unit tier relies on
(tests/unit/entry/test_limits.py)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from shared.delivery import conversation as core
from shared.delivery.conversation import Arrival, Conversation, absent
from shared.delivery.ledger import Ledger
from shared.delivery.outbox import (
    QUEUE_MESSAGE_MAX_BYTES,
    OutboxMessage,
)
from shared.delivery.schema import (
    REASON_MAX_CHARS,
    TABLE_ENTITY_MAX_BYTES,
    TABLE_STRING_MAX_UTF16_UNITS,
    utf16_units,
)
from shared.domain.alert import PAYLOAD_MAX_BYTES, AlertStatus, encoded_size
from shared.entry import responses
from shared.entry.storage import open_ledger
from shared.settings import RelaySettings
from tests.conftest import (
    Harness,
    Signl4Fake,
    new_ticket_id,
)
from tests.unit.entry.test_limits import (
    FILLERS,
    new_ticket,
    worst_payload,
    worst_reason,
)


def test_a_batch_out_of_inline_time_queues_the_rest(
    harness: Harness, signl4: Signl4Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Count-based: with no inline time at all, only the first element is sent inline."""
    monkeypatch.setattr(responses, "BATCH_INLINE_SECONDS", 0.0)
    ids = [new_ticket_id() for _ in range(3)]
    code, body = harness.post([new_ticket(tid) for tid in ids])
    assert code == 202
    assert [r["result"] for r in body["results"]] == ["sent", "queued", "queued"]
    assert "sending inline" in body["results"][1]["reason"]
    assert len(signl4.events) == 1
    harness.drain()
    assert sorted(e["X-S4-ExternalID"] for e in signl4.events) == sorted(
        f"HaloPSA-{tid}" for tid in ids
    )


@pytest.fixture
def ledger(azurite: str) -> Ledger:
    opened = open_ledger(RelaySettings.from_env({"AzureWebJobsStorage": azurite}))
    assert opened is not None
    return opened


def _park(
    ledger: Ledger, state: Conversation, status: AlertStatus, payload: dict[str, Any]
) -> Conversation:
    """A claim joining the mailbox, with the worst reason, as the service writes it."""
    arrival = Arrival(status, payload)
    return ledger.apply(state, core.claim(state, arrival, worst_reason(), ledger.clock()))


@pytest.mark.parametrize("kind", FILLERS)
def test_worst_mailbox_rows_are_written_and_read_back(ledger: Ledger, kind: str) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    payload = worst_payload(FILLERS[kind])
    # A claim that joins the mailbox: state row and mailbox row in one transaction.
    first = _park(ledger, absent(external_id), AlertStatus.NEW, payload)
    # Park a second one behind it: the mailbox holds several payloads, one row each.
    second = _park(ledger, first, AlertStatus.RESOLVED, payload)
    assert second.pending_count == 2
    state = ledger.read(external_id, mailbox=True)
    events = state.mailbox
    assert [e.payload for e in events] == [payload, payload]
    assert all(len(e.reason) == REASON_MAX_CHARS for e in events)
    settled = ledger.apply(state, core.settle(state, events[0].seq, failed_reason=worst_reason()))
    assert settled.pending_count == 1
    entry = ledger.read(external_id)
    assert entry.exists and entry.failed_reason is not None
    assert len(entry.failed_reason) == REASON_MAX_CHARS
    # What Azure would measure: every string property and the whole row.
    stored = json.dumps(payload, ensure_ascii=False)
    assert utf16_units(stored) <= TABLE_STRING_MAX_UTF16_UNITS
    assert 2 * utf16_units(stored) + 4 * REASON_MAX_CHARS + 1024 < TABLE_ENTITY_MAX_BYTES


@pytest.mark.parametrize("kind", ["control", "emoji"])
def test_worst_queue_messages_go_through_azurite(
    harness: Harness, signl4: Signl4Fake, kind: str
) -> None:
    """Real queue writes (base64, like the host) of the largest messages; they deliver."""
    tid = new_ticket_id()
    payload = worst_payload(FILLERS[kind], ticket_id=tid)
    message = OutboxMessage(
        externalId=f"HaloPSA-{tid}", status=AlertStatus.NEW, payload=payload, reason=worst_reason()
    ).to_json()
    harness.queues.put("signl4-outbox", message)
    harness.drain()
    [sent] = signl4.events
    assert sent == payload


def test_worst_event_over_http_is_queued_stored_and_delivered(
    harness: Harness, signl4: Signl4Fake
) -> None:
    """End to end: emoji-filled fields, SIGNL4 down, the event parked in the mailbox and on the
    queue, then delivered intact."""
    tid = new_ticket_id()
    emoji = "\U0001f600" * 10_000
    body = {
        "event": "new ticket logged",
        "object_id": tid,
        "ticket": {"id": tid, **{name: emoji for name in ("summary", "details", "client")}},
    }
    signl4.script(503, 503, 503)
    code, answered = harness.post(body)
    assert (code, answered["result"]) == (202, "queued")
    harness.drain()
    delivered = signl4.events[-1]
    assert delivered["X-S4-ExternalID"] == f"HaloPSA-{tid}"
    assert delivered == signl4.events[0]  # the exact payload, through table and queue
    assert encoded_size(delivered) <= PAYLOAD_MAX_BYTES


def test_azurite_enforces_the_limits_these_tests_rely_on(azurite: str) -> None:
    """The Azurite tests above have teeth: one unit or byte over Azure's limit is refused."""
    from azure.core.exceptions import HttpResponseError
    from azure.data.tables import TableClient
    from azure.storage.queue import QueueClient, TextBase64EncodePolicy

    table = TableClient.from_connection_string(azurite, table_name="relaylimits")
    with contextlib.suppress(HttpResponseError):  # exists already
        table.create_table()
    row = {"PartitionKey": f"p{new_ticket_id()}", "RowKey": "r"}
    table.create_entity({**row, "S": "a" * TABLE_STRING_MAX_UTF16_UNITS})
    with pytest.raises(HttpResponseError):
        table.upsert_entity({**row, "S": "a" * (TABLE_STRING_MAX_UTF16_UNITS + 1)})
    queue = QueueClient.from_connection_string(
        azurite, "relay-limits", message_encode_policy=TextBase64EncodePolicy()
    )
    with contextlib.suppress(HttpResponseError):
        queue.create_queue()
    largest = QUEUE_MESSAGE_MAX_BYTES * 3 // 4  # 49,152 bytes: 65,536 after base64
    queue.send_message("a" * largest)
    with pytest.raises(HttpResponseError):
        queue.send_message("a" * (largest + 1))
    queue.clear_messages()
