"""Bounds (issue #8): a request carries at most RELAY_MAX_BATCH events; refused whole before
anything is sent when it carries more."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import azure.functions as func
import pytest

from shared import relay
from shared.relay import MAX_BODY_BYTES
from shared.settings import DEFAULT_MAX_BATCH, RelaySettings
from tests.conftest import (
    Harness,
    Signl4Fake,
    answer,
    call_halopsa,
    http_post,
    new_ticket_id,
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


def test_a_batch_out_of_inline_time_queues_the_rest(
    harness: Harness, signl4: Signl4Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Count-based: with no inline time at all, only the first element is sent inline."""
    monkeypatch.setattr(relay, "BATCH_INLINE_SECONDS", 0.0)
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
