"""shared/adapters/signl4.py's pure parts, called directly: SIGNL4's answers mapped to the relay's
outcome; and shared/adapters/http.py's, the retry policy both remote clients use (Retry-After,
X-RateLimit-Reset and its floor, the wall-clock budget), timeouts and the description of
transport failures. No network: urllib3's own response and
exception objects stand for what a connection would give, and a fake clock stands for time.
The same rules end to end, over a loopback SIGNL4, are in tests/unit/domain/test_alert.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.response import HTTPResponse

from shared.adapters import http
from shared.adapters.http import (
    RETRY_STATUSES,
    RetryBudgetSpent,
    budgeted_retry,
    describe_request_failure,
    request_timeout,
)
from shared.adapters.sender import SendResult
from shared.adapters.signl4 import read_answer, webhook_url
from shared.errors import Signl4Rejected, Signl4Unavailable
from shared.settings import RelaySettings
from tests.conftest import TEAM_SECRET

ENV = {
    "SIGNL4_TEAM_SECRET": TEAM_SECRET,
    "SIGNL4_WEBHOOK_URL": "https://connect.signl4.com/webhook",
    "SIGNL4_MAX_ATTEMPTS": "4",
    "SIGNL4_RETRY_BUDGET_SECONDS": "10",
    "SIGNL4_BACKOFF_SECONDS": "0.5",
}
NOW = 1_800_000_000.0  # the fake clock's epoch seconds (and monotonic seconds)


def _settings(**overrides: str) -> RelaySettings:
    return RelaySettings.from_env({**ENV, **overrides})


class Clock:
    """time as the retry policy sees it: fixed until a sleep moves it; sleeps are recorded."""

    def __init__(self) -> None:
        self.now = NOW
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(http, "time", fake)
    return fake


def _answer(status: int, **headers: str) -> HTTPResponse:
    return HTTPResponse(body=b"", headers=headers, status=status, preload_content=False)


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


# --- SIGNL4's answer ---


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_a_2xx_is_delivered_with_signl4s_event_id(status: int) -> None:
    result = read_answer(status, _body({"eventId": "evt-9"}), 2, _settings())
    assert result == SendResult(status_code=status, event_id="evt-9", attempts=2)


@pytest.mark.parametrize(
    ("data", "event_id"),
    [
        (_body({"eventId": "evt-1"}), "evt-1"),
        (_body({"eventId": 42}), "42"),
        (_body({"eventId": "e" * 150}), "e" * 100),  # kept in the ledger: cut at 100
        (_body({"eventId": None}), None),
        (_body({"id": "evt-1"}), None),
        (_body(["evt-1"]), None),
        (b"", None),
        (b"null", None),
        (b"<html>accepted</html>", None),
    ],
)
def test_the_event_id_is_read_from_signl4s_json_when_there_is_one(
    data: bytes, event_id: str | None
) -> None:
    assert read_answer(201, data, 1, _settings()).event_id == event_id


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 599])
def test_429_and_5xx_after_the_retries_are_unavailable(status: int) -> None:
    with pytest.raises(Signl4Unavailable) as raised:
        read_answer(status, _body({"message": "busy"}), 3, _settings())
    assert raised.value.message == f"SIGNL4 answered HTTP {status} after 3 attempt(s)"
    assert raised.value.signl4_status == status and raised.value.status_code == 503


@pytest.mark.parametrize(
    "status", [100, 199, 300, 301, 302, 304, 307, 308, 400, 401, 404, 413, 600]
)
def test_any_other_answer_is_rejected_a_redirect_included(status: int) -> None:
    with pytest.raises(Signl4Rejected) as raised:
        read_answer(status, b"", 1, _settings())
    assert raised.value.message == f"SIGNL4 rejected the event with HTTP {status}"
    assert raised.value.signl4_status == status and raised.value.status_code == 502


def test_the_retried_statuses_are_429_and_every_5xx() -> None:
    assert {429, *range(500, 600)} == RETRY_STATUSES


# SIGNL4's own error text, as the engineer reads it in Halo's webhook log.
@pytest.mark.parametrize(
    ("body", "suffix"),
    [
        ({"code": 3001, "message": "Unknown team."}, " (SIGNL4 error 3001: Unknown team.)"),
        ({"message": "Unknown team."}, " (SIGNL4 error: Unknown team.)"),
        ({"code": "3001", "message": "m"}, " (SIGNL4 error: m)"),  # only an int is a code
        ({"code": True, "message": "m"}, " (SIGNL4 error: m)"),  # a bool is no code
        ({"code": 3001, "message": 12}, " (SIGNL4 error 3001: 12)"),
        ({"code": 3001, "message": ""}, ""),
        ({"code": 3001}, ""),
        ({"code": 3001, "message": None}, ""),
        (["Unknown team."], ""),
        ("Unknown team.", ""),
    ],
)
def test_signl4s_error_text_is_passed_on(body: Any, suffix: str) -> None:
    with pytest.raises(Signl4Rejected) as raised:
        read_answer(400, _body(body), 1, _settings())
    assert raised.value.message == f"SIGNL4 rejected the event with HTTP 400{suffix}"


@pytest.mark.parametrize("data", [b"Bad Request", b"{", b"\xff\xfe"])
def test_an_error_answer_that_is_not_json_adds_nothing(data: bytes) -> None:
    with pytest.raises(Signl4Rejected) as raised:
        read_answer(400, data, 1, _settings())
    assert raised.value.message == "SIGNL4 rejected the event with HTTP 400"


def test_signl4s_error_text_is_cut_at_200_characters() -> None:
    with pytest.raises(Signl4Rejected) as raised:
        read_answer(400, _body({"message": "x" * 199 + "yz"}), 1, _settings())
    assert raised.value.message.endswith(f" (SIGNL4 error: {'x' * 199}y)")


def test_signl4s_error_text_is_scrubbed_of_the_secret_then_cut() -> None:
    # Scrubbed first: a cut first would keep the secret's first half, past recognition.
    echoed = {"code": 3001, "message": "x" * 190 + TEAM_SECRET + " tail"}
    with pytest.raises(Signl4Rejected) as raised:
        read_answer(404, _body(echoed), 1, _settings())
    assert raised.value.message == (
        "SIGNL4 rejected the event with HTTP 404 (SIGNL4 error 3001: " + "x" * 190 + "*** tail)"
    )


def test_signl4s_error_text_is_withheld_when_a_piece_of_the_secret_survives() -> None:
    entities = "".join(f"&#x{ord(c):x};" for c in TEAM_SECRET)  # scrub() does not know these
    with pytest.raises(Signl4Rejected) as raised:
        read_answer(404, _body({"code": 3001, "message": f"team {entities}"}), 1, _settings())
    assert raised.value.message == (
        "SIGNL4 rejected the event with HTTP 404 (SIGNL4 error 3001; SIGNL4's error text "
        "withheld: it echoed the secret)"
    )


def test_without_a_team_secret_the_error_text_is_passed_on_as_it_is() -> None:
    settings = RelaySettings.from_env({"SIGNL4_WEBHOOK_URL": ENV["SIGNL4_WEBHOOK_URL"]})
    assert settings.signl4_team_secret is None
    with pytest.raises(Signl4Rejected) as raised:
        read_answer(400, _body({"message": f"team {TEAM_SECRET}"}), 1, settings)
    assert raised.value.message.endswith(f" (SIGNL4 error: team {TEAM_SECRET})")


# --- the webhook URL and timeouts ---


def test_dry_run_has_no_webhook_url() -> None:
    settings = RelaySettings.from_env({})
    with pytest.raises(ValueError, match="no SIGNL4 team secret: the relay is in dry-run"):
        webhook_url(settings)


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [("0.5", (0.5, 0.5)), ("2.9", (2.9, 2.9)), ("3", (3.0, 3.0)), ("10", (3.0, 10.0))],
)
def test_connecting_waits_at_most_3_seconds_reading_the_whole_timeout(
    timeout: str, expected: tuple[float, float]
) -> None:
    assert request_timeout(_settings(SIGNL4_TIMEOUT_SECONDS=timeout)) == expected


# --- the retry policy ---


def _fail(retry: Any, status: int = 503, **headers: str) -> Any:
    """The retry urllib3 uses after one more failed attempt answered `status`."""
    return retry.increment(method="POST", url="/webhook/x", response=_answer(status, **headers))


def test_a_send_tries_max_attempts_times_then_gives_the_last_answer_back(clock: Clock) -> None:
    retry = budgeted_retry(_settings(SIGNL4_MAX_ATTEMPTS="4"))
    for _ in range(3):  # three retries after the first attempt
        retry = _fail(retry)
    with pytest.raises(MaxRetryError):  # the fourth answer is the last
        _fail(retry)
    # raise_on_status off: urllib3 hands that last 503 back instead of raising MaxRetryError.
    assert retry.raise_on_status is False and retry.raise_on_redirect is False
    with pytest.raises(MaxRetryError):  # one attempt, no retry
        _fail(budgeted_retry(_settings(SIGNL4_MAX_ATTEMPTS="1")))


@pytest.mark.parametrize(
    ("method", "status", "retry_after", "retried"),
    [
        ("POST", 429, False, True),
        ("POST", 500, False, True),
        ("POST", 503, False, True),
        ("POST", 599, False, True),
        ("GET", 502, False, True),  # the Halo write-back's calls use the same policy
        ("POST", 400, False, False),
        ("POST", 404, False, False),
        ("POST", 413, False, False),
        ("POST", 301, False, False),
        ("POST", 201, False, False),
        # A 413 that says when to come back is a passing condition (RFC 9110 15.5.14).
        ("POST", 413, True, True),
        ("POST", 400, True, False),
    ],
)
def test_429_and_5xx_are_retried_for_any_method(
    method: str, status: int, retry_after: bool, retried: bool
) -> None:
    retry = budgeted_retry(_settings())
    assert retry.is_retry(method, status, has_retry_after=retry_after) is retried


def test_backoff_doubles_from_the_second_retry_up_to_the_budget(clock: Clock) -> None:
    retry = budgeted_retry(_settings(SIGNL4_BACKOFF_SECONDS="0.5", SIGNL4_MAX_ATTEMPTS="10"))
    waits = []
    for _ in range(8):
        retry = _fail(retry)
        waits.append(retry.get_backoff_time())
    assert waits == [0, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_retry_after_seconds_are_honoured(clock: Clock) -> None:
    retry = budgeted_retry(_settings())
    assert retry.get_retry_after(_answer(429, **{"Retry-After": "3"})) == 3
    retry.sleep(_answer(429, **{"Retry-After": "3"}))
    assert clock.sleeps == [3]


def test_retry_after_wins_over_x_ratelimit_reset(clock: Clock) -> None:
    retry = budgeted_retry(_settings())
    both = _answer(429, **{"Retry-After": "2", "X-RateLimit-Reset": str(int(NOW) + 7)})
    assert retry.get_retry_after(both) == 2


@pytest.mark.parametrize(
    ("reset", "wait"),
    [
        (str(int(NOW) + 7), 7.0),
        (f" {int(NOW) + 7} ", 7.0),  # padded
        (str(int(NOW)), 0.0),
        (str(int(NOW) - 30), 0.0),  # a window already past: no negative wait, at once
        ("0", 0.0),
    ],
)
def test_x_ratelimit_reset_waits_until_the_window_opens_never_less_than_zero(
    clock: Clock, reset: str, wait: float
) -> None:
    retry = budgeted_retry(_settings())
    assert retry.get_retry_after(_answer(429, **{"X-RateLimit-Reset": reset})) == wait


@pytest.mark.parametrize("reset", ["", "soon", "-5", "1.5e9", "12 34"])
def test_an_unreadable_x_ratelimit_reset_is_ignored(clock: Clock, reset: str) -> None:
    retry = budgeted_retry(_settings())
    assert retry.get_retry_after(_answer(429, **{"X-RateLimit-Reset": reset})) is None
    assert retry.get_retry_after(_answer(429)) is None


def test_an_unreadable_retry_after_falls_back_to_x_ratelimit_reset(clock: Clock) -> None:
    retry = budgeted_retry(_settings())
    odd = {"Retry-After": "in a while", "X-RateLimit-Reset": str(int(NOW) + 4)}
    assert retry.get_retry_after(_answer(429, **odd)) == 4.0
    assert retry.get_retry_after(_answer(429, **{"Retry-After": "in a while"})) is None


def test_without_a_wait_from_signl4_the_backoff_is_slept(clock: Clock) -> None:
    retry = budgeted_retry(_settings(SIGNL4_BACKOFF_SECONDS="0.5"))
    retry = _fail(_fail(retry))  # the second retry: 1 s of backoff
    retry.sleep(_answer(503))
    retry.sleep(None)  # a connection error: no answer to read a wait from
    assert clock.sleeps == [1.0, 1.0]


def test_a_zero_wait_does_not_sleep(clock: Clock) -> None:
    retry = budgeted_retry(_settings())
    retry.sleep(None)  # the first retry has no backoff
    retry.sleep(_answer(429, **{"Retry-After": "0"}))
    assert clock.sleeps == []


def test_a_wait_that_ends_exactly_at_the_budget_is_slept(clock: Clock) -> None:
    retry = budgeted_retry(_settings(SIGNL4_RETRY_BUDGET_SECONDS="10"))
    retry.sleep(_answer(429, **{"Retry-After": "4"}))
    retry.sleep(_answer(429, **{"Retry-After": "6"}))  # 4 + 6: exactly the budget
    assert clock.sleeps == [4, 6]


def test_a_wait_past_the_budget_gives_up_without_sleeping(clock: Clock) -> None:
    retry = budgeted_retry(_settings(SIGNL4_RETRY_BUDGET_SECONDS="10"))
    with pytest.raises(RetryBudgetSpent) as raised:
        retry.sleep(_answer(429, **{"Retry-After": "11"}))
    assert (raised.value.wait, raised.value.status) == (11, 429)
    assert str(raised.value) == "next retry in 11.0s would pass the retry budget"
    assert clock.sleeps == []
    with pytest.raises(RetryBudgetSpent) as raised:
        retry.sleep(_answer(503, **{"X-RateLimit-Reset": str(int(NOW) + 60)}))
    assert (raised.value.wait, raised.value.status) == (60.0, 503)


def test_a_backoff_past_the_budget_after_a_connection_error_has_no_status(clock: Clock) -> None:
    retry = budgeted_retry(_settings(SIGNL4_RETRY_BUDGET_SECONDS="3", SIGNL4_BACKOFF_SECONDS="2"))
    retry = _fail(_fail(retry))  # backoff 4 s, capped at the budget: 3 s
    clock.now += 1  # the first attempts took a second
    with pytest.raises(RetryBudgetSpent) as raised:
        retry.sleep(None)
    assert (raised.value.wait, raised.value.status) == (3.0, None)


def test_the_budget_is_kept_across_retries(clock: Clock) -> None:
    """urllib3 makes a new Retry per attempt: each one keeps the first one's deadline."""
    retry = budgeted_retry(_settings(SIGNL4_RETRY_BUDGET_SECONDS="10"))
    assert retry.deadline == NOW + 10
    clock.now += 9
    later = _fail(_fail(retry, 429), 429)
    assert later.deadline == NOW + 10
    with pytest.raises(RetryBudgetSpent):
        later.sleep(_answer(429, **{"Retry-After": "2"}))  # 9 + 2 > 10


def test_each_send_gets_its_own_budget(clock: Clock) -> None:
    first = budgeted_retry(_settings())
    clock.now += 5
    second = budgeted_retry(_settings())
    assert (first.deadline, second.deadline) == (NOW + 10, NOW + 15)
    assert first is not second and first.history == second.history == ()


# --- transport failures, described without the URL ---


class _Conn:  # what NewConnectionError names as its connection
    pass


URL = f"/webhook/{TEAM_SECRET}"


@pytest.mark.parametrize(
    ("error", "description"),
    [
        (
            requests.ConnectionError(
                MaxRetryError(None, URL, NewConnectionError(_Conn(), "refused"))  # type: ignore[arg-type]
            ),
            "connection failed",
        ),
        (
            requests.ConnectTimeout(
                MaxRetryError(None, URL, ConnectTimeoutError(f"connect to {URL}"))  # type: ignore[arg-type]
            ),
            "timed out connecting",
        ),
        (
            requests.ReadTimeout(ReadTimeoutError(None, URL, "read timed out")),  # type: ignore[arg-type]
            "timed out waiting for the answer",
        ),
        (  # the body's read timing out: requests wraps the urllib3 error itself
            requests.ConnectionError(ReadTimeoutError(None, URL, "read timed out")),  # type: ignore[arg-type]
            "timed out waiting for the answer",
        ),
        (
            requests.ConnectionError(ProtocolError("Connection aborted.", OSError(104, URL))),
            "ProtocolError",
        ),
        (requests.ConnectionError(MaxRetryError(None, URL, None)), "MaxRetryError"),  # type: ignore[arg-type]
        (requests.ConnectionError(f"to {URL}"), "ConnectionError"),
        (requests.RequestException(), "RequestException"),
    ],
)
def test_a_transport_failure_is_described_by_its_cause_only(
    error: BaseException, description: str
) -> None:
    assert describe_request_failure(error) == description
