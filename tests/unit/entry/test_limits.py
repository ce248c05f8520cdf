"""Bounds (issue #8): a request carries at most RELAY_MAX_BATCH events, and what the relay
stores stays inside Azure's limits after encoding: a queue message (base64 of UTF-8 JSON) at
most 65,536 bytes, a ledger string property at most 32,768 UTF-16 units, an entity 1 MiB.
Worst-case inputs are written to Azurite for real and read back."""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Callable
from typing import Any

import azure.functions as func
import pytest

from shared.delivery.outbox import (
    QUEUE_MESSAGE_MAX_BYTES,
    OutboxMessage,
    PoisonRecord,
    queue_message_bytes,
)
from shared.delivery.schema import (
    REASON_MAX_CHARS,
)
from shared.domain.alert import (
    PAYLOAD_MAX_BYTES,
    AlertStatus,
    build_payload,
    encoded_size,
    fit_payload,
)
from shared.domain.halo import HaloEvent, Ticket, parse_event
from shared.domain.policy import decide
from shared.entry import responses
from shared.entry.responses import MAX_BODY_BYTES
from shared.errors import BatchTooLarge
from shared.ops.preview import preview_body
from shared.settings import DEFAULT_MAX_BATCH, RelaySettings
from tests.conftest import (
    Signl4Fake,
    answer,
    call_halopsa,
    http_post,
)

Functions = dict[str, Callable[..., func.HttpResponse]]


def post(functions: Functions, body: object) -> tuple[int, Any]:
    response, queued = call_halopsa(functions, http_post(body))
    assert queued == []
    return answer(response)


def new_ticket(ticket_id: int) -> dict[str, Any]:
    return {"event": "new ticket logged", "object_id": ticket_id, "ticket": {"id": ticket_id}}


def relay_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "shared.relay"]


# --- batch limit ---


@pytest.fixture(autouse=True)
def batch_inline_time_unbounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch is sent inline until BATCH_INLINE_SECONDS (60 s) of wall clock are spent, then
    the rest is queued: on a loaded machine 100 inline sends could reach it and turn "sent" into
    "queued". These cases are about counts, so that clock is off here (its own case sets it to 0:
    tests/integration/test_limits.py)."""
    monkeypatch.setattr(responses, "BATCH_INLINE_SECONDS", math.inf)


def test_a_batch_of_exactly_the_limit_is_sent(
    functions: Functions, signl4: Signl4Fake, live_env: dict, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert RelaySettings.from_env({}).relay_max_batch == DEFAULT_MAX_BATCH == 100
    code, body = post(functions, [new_ticket(1000 + n) for n in range(DEFAULT_MAX_BATCH)])
    assert code == 200 and [r["result"] for r in body["results"]] == ["sent"] * 100
    assert len(signl4.events) == 100
    assert len(relay_lines(caplog)) == 100  # one line per event: the log grows with the count


def test_one_event_over_the_limit_refuses_the_whole_batch_before_sending(
    functions: Functions, signl4: Signl4Fake, live_env: dict, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    code, body = post(functions, [new_ticket(2000 + n) for n in range(DEFAULT_MAX_BATCH + 1)])
    assert (code, body["error"]) == (413, "batch_too_large")
    assert "101 events" in body["message"] and "at most 100" in body["message"]
    assert "RELAY_MAX_BATCH" in body["message"]
    assert signl4.events == []
    assert relay_lines(caplog) == []  # no event was looked at


def test_the_limit_is_a_setting(
    functions: Functions, signl4: Signl4Fake, live_env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_MAX_BATCH", "3")
    code, body = post(functions, [new_ticket(3000 + n) for n in range(3)])
    assert code == 200 and len(signl4.events) == 3
    code, body = post(functions, [new_ticket(3100 + n) for n in range(4)])
    assert (code, body["error"]) == (413, "batch_too_large")
    assert "4 events" in body["message"] and "at most 3" in body["message"]
    assert len(signl4.events) == 3  # nothing more sent


@pytest.mark.parametrize("value", ["0", "151", "-1", "lots"])
def test_an_unusable_limit_is_a_configuration_error(
    functions: Functions, live_env: dict, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("RELAY_MAX_BATCH", value)
    code, body = post(functions, [new_ticket(1)])
    assert (code, body["error"]) == (500, "configuration_error")
    assert "RELAY_MAX_BATCH" in body["message"]


def test_a_mebibyte_of_empty_objects_gets_a_short_answer_and_no_log_line(
    functions: Functions, signl4: Signl4Fake, live_env: dict, caplog: pytest.LogCaptureFixture
) -> None:
    """The body that once produced a 66 MB answer and 340,000 log lines."""
    caplog.set_level(logging.INFO)
    count = (MAX_BODY_BYTES - 2) // 3
    body = ("[" + ",".join(["{}"] * count) + "]").encode()
    assert len(body) <= MAX_BODY_BYTES
    response, queued = call_halopsa(functions, http_post(body))
    code, answered = answer(response)
    assert (code, answered["error"]) == (413, "batch_too_large")
    assert len(response.get_body()) < 1000 and queued == []
    assert relay_lines(caplog) == [] and signl4.events == []


def test_the_answer_and_the_log_are_bounded_by_the_count(
    functions: Functions, signl4: Signl4Fake, live_env: dict, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response, _ = call_halopsa(functions, http_post([{}] * DEFAULT_MAX_BATCH))
    code, answered = answer(response)
    assert code == 400 and len(answered["results"]) == DEFAULT_MAX_BATCH
    assert all(r["error"] == "unsupported_payload" for r in answered["results"])
    assert len(response.get_body()) < DEFAULT_MAX_BATCH * 400
    assert len(relay_lines(caplog)) == DEFAULT_MAX_BATCH


# --- bytes after encoding: worst-case inputs ---

# Each fills every text field to its character limit with the costliest character of a kind:
# control characters (six bytes in JSON), 4-byte emoji, and the two characters JSON escapes.
FILLERS = {
    "control": "\x01",
    "emoji": "\U0001f600",
    "quote": '"',
    "backslash": "\\",
    "mixed": '\x01\U0001f600"\\\u2028\x9f',
    "surrogate": "\ud83d",
}
TEXT_FIELDS = (
    "summary",
    "details",
    "status_name",
    "priority",
    "ticket_type",
    "client",
    "site",
    "team",
    "agent",
    "user",
    "reference",
)


def worst_payload(filler: str, ticket_id: int = 2**53) -> dict[str, Any]:
    """Built from a ticket that skipped every parsing safeguard: the bound must hold anyway."""
    text = (filler * 20_000)[:20_000]
    ticket = Ticket.model_construct(
        id=ticket_id, **{name: text for name in TEXT_FIELDS}, closed=False
    )
    event = HaloEvent.model_construct(
        shape="webhook", event=text, ticket=ticket, requested_status=AlertStatus.NEW, message=text
    )
    settings = RelaySettings.from_env(
        {"HALO_BASE_URL": "https://" + "\U0001f600" * 2000, "RELAY_EMERGENCY_PRIORITIES": text}
    )
    return build_payload(event, decide(event, settings), settings)


@pytest.mark.parametrize("kind", FILLERS)
def test_worst_payloads_fit_the_byte_budget(kind: str) -> None:
    payload = worst_payload(FILLERS[kind])
    assert encoded_size(payload) <= PAYLOAD_MAX_BYTES
    assert payload["X-S4-ExternalID"] == f"HaloPSA-{2**53}" and payload["X-S4-Status"] == "new"
    assert payload["Title"] and payload["Message"]  # trimmed or replaced, never empty
    text = json.dumps(payload, ensure_ascii=False)
    assert not any(ord(c) < 0x20 and c not in "\n\t" for c in json.loads(text)["Message"])
    assert fit_payload(payload) == payload  # idempotent: a queue redelivery changes nothing


def test_the_budget_trims_message_first_then_parameters() -> None:
    emoji = "\U0001f600"
    payload = {
        "Title": emoji * 250,
        "Message": emoji * 4000,
        "Client": emoji * 500,
        "Site": "short",
        "X-S4-ExternalID": "HaloPSA-1",
    }
    assert encoded_size(payload) > 19_000
    fitted = fit_payload(payload, max_bytes=10_000)
    assert encoded_size(fitted) <= 10_000
    assert fitted["Title"] == payload["Title"] and fitted["Client"] == payload["Client"]
    assert fitted["Message"].endswith("…") and len(fitted["Message"]) > 1500
    fitted = fit_payload(payload, max_bytes=2_000)
    assert encoded_size(fitted) <= 2_000
    assert fitted["Message"] == "…" and fitted["Client"].endswith("…")
    assert fitted["Title"] == payload["Title"] and fitted["Site"] == "short"
    assert fitted["X-S4-ExternalID"] == "HaloPSA-1"


def test_any_text_fits_any_budget_seeded() -> None:
    """Seeded random payloads from the characters that cost most (and least) to encode."""
    rnd = random.Random(8)
    alphabet = ["a", " ", "é", "€", "…", '"', "\\", "\n", "\t", "\r", "\x01", "\x7f", "\x9f"]
    alphabet += ["\u2028", "\U0001f600", "\ud83d"]
    for _ in range(300):
        payload: dict[str, Any] = {
            key: "".join(rnd.choices(alphabet, k=rnd.randint(0, 3000)))
            for key in ("Title", "Message", "Client", "Site")
        }
        payload.update({"X-S4-ExternalID": "HaloPSA-1", "TicketId": rnd.randint(1, 2**53)})
        budget = rnd.choice([300, 3000, 8000, PAYLOAD_MAX_BYTES])
        fitted = fit_payload(payload, max_bytes=budget)
        assert encoded_size(fitted) <= budget
        assert fit_payload(fitted, max_bytes=budget) == fitted
        assert fitted["X-S4-ExternalID"] == "HaloPSA-1"  # never trimmed


def test_an_ordinary_payload_is_left_alone() -> None:
    settings = RelaySettings.from_env({})
    event = parse_event(
        {
            "event": "new ticket logged",
            "object_id": 7,
            "ticket": {"id": 7, "summary": 'Disk "C:\\" full 😀', "details": "line 1\nline 2"},
        }
    )
    payload = build_payload(event, decide(event, settings), settings)
    assert payload["Title"] == 'Disk "C:\\" full 😀' and payload["Message"] == "line 1\nline 2"


def worst_reason() -> str:
    """Reasons are kept as SIGNL4 said them: a control character costs six bytes in JSON."""
    return "\x01" * (REASON_MAX_CHARS * 3)


@pytest.mark.parametrize("kind", FILLERS)
def test_worst_queue_messages_fit_after_base64(kind: str) -> None:
    payload = worst_payload(FILLERS[kind])
    message = OutboxMessage(
        externalId=f"HaloPSA-{2**53}",
        status=AlertStatus.NEW,
        seq=2**31,
        payload=payload,
        reason=worst_reason(),
    )
    record = PoisonRecord(
        externalId=message.external_id,
        status=message.status,
        reason=worst_reason(),
        message=message,
    )
    for text in (message.to_json(), record.to_json()):
        assert queue_message_bytes(text) <= QUEUE_MESSAGE_MAX_BYTES
    assert OutboxMessage.model_validate_json(message.to_json()).payload == payload


def test_an_oversized_payload_is_fitted_by_the_message_itself() -> None:
    """Whatever built the payload, a queue message cannot outgrow Azure's limit."""
    raw = {"Title": "t", "Message": "\x01" * 60_000, "Client": "\U0001f600" * 60_000}
    message = OutboxMessage(externalId="HaloPSA-1", status=AlertStatus.NEW, payload=raw)
    assert encoded_size(message.payload) <= PAYLOAD_MAX_BYTES
    assert queue_message_bytes(message.to_json()) <= QUEUE_MESSAGE_MAX_BYTES


def test_queue_message_bytes_is_base64_of_utf8() -> None:
    assert queue_message_bytes("") == 0
    assert queue_message_bytes("abc") == 4
    assert queue_message_bytes("\U0001f600") == 8  # 4 UTF-8 bytes -> 8 base64 characters


# --- body limit: one figure for every route that reads a body ---


def _route_request(route: str, body: bytes) -> func.HttpRequest:
    """What the host hands each body-reading function (the webhook's token in the path)."""
    return func.HttpRequest(
        method="POST",
        url=f"http://localhost:7071/api/{route}",
        headers={"Content-Type": "application/json"},
        params={},
        route_params={"token": "tok-limits"} if route.startswith("webhook") else {},
        body=body,
    )


@pytest.mark.parametrize("route", ["halopsa", "webhook/tok-limits", "signl4"])
@pytest.mark.parametrize("two_way", [False, True])
def test_every_route_refuses_a_body_over_the_limit_and_reads_one_at_it(
    functions: Functions,
    signl4: Signl4Fake,
    live_env: dict,
    monkeypatch: pytest.MonkeyPatch,
    route: str,
    two_way: bool,
) -> None:
    """The size check comes before anything else is read, on every route (with two-way off,
    /api/signl4 still refuses the body rather than ignoring it)."""
    from devhost.functions import OutValue

    monkeypatch.setenv("RELAY_INBOUND_TOKEN", "tok-limits")
    if two_way:
        monkeypatch.setenv("HALO_CLIENT_ID", "id")
        monkeypatch.setenv("HALO_CLIENT_SECRET", "secret")
        monkeypatch.setenv("HALO_BASE_URL", "https://contoso.halopsa.com")
    function = functions[route.split("/")[0]]
    over = answer(function(_route_request(route, b" " * (MAX_BODY_BYTES + 1)), queued=OutValue()))
    assert (over[0], over[1]["error"]) == (413, "payload_too_large")
    assert str(MAX_BODY_BYTES) in over[1]["message"]
    at_limit = answer(function(_route_request(route, b" " * MAX_BODY_BYTES), queued=OutValue()))
    # Read, then answered for its content: not JSON (or ignored: two-way is off).
    ignored = route == "signl4" and not two_way
    assert at_limit[1].get("result" if ignored else "error") == (
        "ignored" if ignored else "invalid_json"
    )
    assert signl4.events == []


def test_preview_refuses_an_oversized_batch_with_the_relays_check_in_its_own_words() -> None:
    """One check for the batch limit: the relay's answer says nothing was sent and what to set
    in Halo; the preview's says nothing would be sent."""
    settings = RelaySettings.from_env({"RELAY_MAX_BATCH": "2"})
    body = json.dumps([new_ticket(n) for n in range(3)]).encode()
    with pytest.raises(BatchTooLarge) as relayed:
        responses.check_batch_size(json.loads(body), settings.relay_max_batch)
    assert relayed.value.message.endswith(
        "Nothing was sent: set HaloPSA's webhook batching to "
        "Count with at most 2, or turn batching off"
    )
    previewed = preview_body(body, settings)
    assert previewed.error == "batch_too_large"
    with pytest.raises(BatchTooLarge) as shared_check:
        responses.check_batch_size(json.loads(body), 2, consequence=": nothing would be sent")
    assert previewed.message == shared_check.value.message
