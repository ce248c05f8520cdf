"""The SIGNL4 payload, and the client against a real loopback SIGNL4 that fails on purpose."""

from __future__ import annotations

import json
import logging
import re
import time
from urllib.parse import quote

import pytest

from shared.errors import Signl4Rejected, Signl4Unavailable
from shared.halo import AlertStatus, parse_event
from shared.policy import Decision, decide
from shared.settings import RelaySettings
from shared.signl4 import build_payload, send_event, webhook_url
from tests.conftest import TEAM_SECRET, Signl4Fake, fixture_json


def _payload(fixture: str, **env: str) -> dict:
    settings = RelaySettings.from_env(env)
    event = parse_event(fixture_json(fixture))
    return build_payload(event, decide(event, settings), settings)


def test_payload_from_full_webhook() -> None:
    payload = _payload("webhook_new_full.json", HALO_BASE_URL="https://contoso.halopsa.com/")
    assert payload["Title"] == "IN-0009499: Backups failing for Fabrikam"
    assert payload["X-S4-ExternalID"] == "HaloPSA-4243"
    assert payload["X-S4-Status"] == "new"
    assert payload["X-S4-SourceSystem"] == "HaloPSA"
    assert "<" not in payload["Message"] and "failed three times" in payload["Message"]
    assert payload["TicketId"] == 4243
    assert payload["Client"] == "Fabrikam Ltd" and payload["Site"] == "Main Office"
    assert payload["Priority"] == "P1 - Critical" and payload["Type"] == "Incident"
    assert payload["Team"] == "1st Line Support" and payload["Agent"] == "Alex Agent"
    assert payload["Status"] == "New"
    assert payload["Link"] == "https://contoso.halopsa.com/ticket?id=4243"
    assert "X-S4-AlertingScenario" not in payload


def test_payload_leaves_out_empty_parameters_and_link_without_base_url() -> None:
    payload = _payload("webhook_closed_event_only.json")
    assert payload["X-S4-Status"] == "resolved"
    assert payload["Title"] == "HaloPSA ticket 4242"  # never empty
    assert payload["Message"] == "Ticket 4242 closed"
    assert "Link" not in payload and "Client" not in payload
    assert None not in payload.values()


def test_guide_close_body_maps_to_the_same_external_id() -> None:
    assert _payload("guide_close.json")["X-S4-ExternalID"] == "HaloPSA-4242"


def test_message_and_title_are_bounded() -> None:
    settings = RelaySettings.from_env({})
    event = parse_event(
        {
            "event": "new ticket logged",
            "object_id": 1,
            "ticket": {"id": 1, "summary": "s" * 1000, "details": "<p>" + "x" * 20000 + "</p>"},
        }
    )
    payload = build_payload(event, decide(event, settings), settings)
    assert len(payload["Title"]) == 250 and payload["Title"].endswith("…")
    assert len(payload["Message"]) == 4000


def test_every_parameter_is_bounded() -> None:
    settings = RelaySettings.from_env({})
    body = {
        "event": "new ticket logged",
        "object_id": 1,
        "ticket": {"id": 1, "client_name": "c" * 9000, "site_name": "s" * 600},
    }
    event = parse_event(body)
    payload = build_payload(event, decide(event, settings), settings)
    assert len(payload["Client"]) == 500 and payload["Client"].endswith("…")
    assert len(payload["Site"]) == 500
    assert len(json.dumps(payload)) < 16_000


def test_emergency_scenario_reaches_the_payload() -> None:
    settings = RelaySettings.from_env({"RELAY_EMERGENCY_PRIORITIES": "1"})
    event = parse_event(fixture_json("webhook_new_small.json"))
    assert (
        build_payload(event, decide(event, settings), settings)["X-S4-AlertingScenario"]
        == "emergency"
    )


def test_skip_decision_has_no_payload() -> None:
    event = parse_event(fixture_json("webhook_status_changed.json"))
    with pytest.raises(ValueError):
        build_payload(event, Decision(action="skip", reason="r"), RelaySettings.from_env({}))


@pytest.mark.parametrize(
    "base", ["https://connect.signl4.com/webhook", "https://connect.signl4.com/webhook/"]
)
def test_webhook_url_joins_with_or_without_slash(base: str) -> None:
    settings = RelaySettings.from_env({"SIGNL4_WEBHOOK_URL": base, "SIGNL4_TEAM_SECRET": " ab/c "})
    assert webhook_url(settings) == "https://connect.signl4.com/webhook/ab%2Fc"


# --- client against the loopback SIGNL4 ---

PAYLOAD = {"Title": "t", "X-S4-ExternalID": "HaloPSA-1", "X-S4-Status": AlertStatus.NEW.value}


def _settings(live_env: dict[str, str], **overrides: str) -> RelaySettings:
    return RelaySettings.from_env({**live_env, **overrides})


def test_success_keeps_the_event_id(signl4: Signl4Fake, live_env: dict[str, str]) -> None:
    result = send_event(PAYLOAD, _settings(live_env))
    assert (result.status_code, result.event_id, result.attempts) == (201, "evt-1", 1)
    assert signl4.events == [PAYLOAD]
    assert signl4.paths == [f"/webhook/{TEAM_SECRET}"]


def test_5xx_is_retried_then_succeeds(signl4: Signl4Fake, live_env: dict[str, str]) -> None:
    signl4.script(500, 503)
    result = send_event(PAYLOAD, _settings(live_env))
    assert result.attempts == 3 and result.event_id == "evt-3"
    assert len(signl4.events) == 3


def test_5xx_until_attempts_run_out(signl4: Signl4Fake, live_env: dict[str, str]) -> None:
    signl4.script(502, 502, 502, 502)
    with pytest.raises(Signl4Unavailable) as raised:
        send_event(PAYLOAD, _settings(live_env))
    assert raised.value.signl4_status == 502 and raised.value.status_code == 503
    assert len(signl4.events) == 3


def test_429_honours_retry_after(signl4: Signl4Fake, live_env: dict[str, str]) -> None:
    signl4.script((429, {"Retry-After": "1"}))
    started = time.monotonic()
    result = send_event(PAYLOAD, _settings(live_env))
    assert time.monotonic() - started >= 0.9
    assert result.attempts == 2 and len(signl4.events) == 2


def test_429_honours_x_ratelimit_reset(signl4: Signl4Fake, live_env: dict[str, str]) -> None:
    reset = int(time.time()) + 2
    signl4.script((429, {"X-RateLimit-Reset": str(reset), "X-RateLimit-Remaining": "0"}))
    result = send_event(PAYLOAD, _settings(live_env))
    assert time.time() >= reset - 1  # waited for the window, not just the backoff
    assert result.attempts == 2


def test_retry_after_past_the_budget_gives_up_at_once(
    signl4: Signl4Fake, live_env: dict[str, str]
) -> None:
    signl4.script((429, {"Retry-After": "60"}))
    started = time.monotonic()
    with pytest.raises(Signl4Unavailable, match="retry budget") as raised:
        send_event(PAYLOAD, _settings(live_env))
    # It did not sleep the 60 s: the bound is half of them, not a bar a slow machine can miss.
    assert time.monotonic() - started < 30
    assert raised.value.signl4_status == 429
    assert len(signl4.events) == 1


@pytest.mark.parametrize("status", [400, 401, 404, 405, 413])
def test_other_4xx_is_never_retried(
    signl4: Signl4Fake, live_env: dict[str, str], status: int
) -> None:
    signl4.script(status)
    with pytest.raises(Signl4Rejected) as raised:
        send_event(PAYLOAD, _settings(live_env))
    assert raised.value.signl4_status == status
    assert (
        f"HTTP {status}" in raised.value.message and "Error raising event." in raised.value.message
    )
    assert len(signl4.events) == 1


@pytest.mark.parametrize("secret", ["Ab c/d%2F?#é&=+~x", "ünïcødé sëcret", " spaced\n"])
def test_signl4_echoing_the_secret_in_any_form_is_scrubbed(
    signl4: Signl4Fake, live_env: dict[str, str], secret: str
) -> None:
    from werkzeug import Response

    def echo_path(request):  # a SIGNL4 that quotes the request path back in its error
        body = {
            "code": 3001,
            "message": f"unknown team {request.path} / {secret} / {secret.strip()}",
        }
        return Response(json.dumps(body), status=404, mimetype="application/json")

    env = _settings(live_env, SIGNL4_TEAM_SECRET=secret)
    signl4.server.expect_request(re.compile(r"^/webhook/.*")).respond_with_handler(echo_path)
    with pytest.raises(Signl4Rejected) as raised:
        send_event(PAYLOAD, env)
    message = raised.value.message
    assert "SIGNL4 error 3001" in message
    for form in (secret, secret.strip(), quote(secret.strip(), safe=""), quote(secret.strip())):
        assert form not in message, form


def test_hang_past_the_timeout_is_retried(signl4: Signl4Fake, live_env: dict[str, str]) -> None:
    signl4.script("hang")  # held until teardown: the first attempt's timeout always fires
    # One timeout covers both attempts, so the retry's 201 must come within it: 1 s is the
    # one clock bar left (a loopback answer; far above what a loaded machine takes).
    result = send_event(PAYLOAD, _settings(live_env, SIGNL4_TIMEOUT_SECONDS="1"))
    assert result.attempts == 2
    assert len(signl4.events) == 2  # the hung call did reach SIGNL4: a possible duplicate


def test_hang_every_time_is_unavailable(signl4: Signl4Fake, live_env: dict[str, str]) -> None:
    signl4.script("hang", "hang")  # held until teardown: every attempt times out
    env = _settings(live_env, SIGNL4_TIMEOUT_SECONDS="0.2", SIGNL4_MAX_ATTEMPTS="2")
    with pytest.raises(Signl4Unavailable, match="timed out"):
        send_event(PAYLOAD, env)


def test_connection_refused(live_env: dict[str, str], unused_port: int) -> None:
    env = _settings(live_env, SIGNL4_WEBHOOK_URL=f"http://127.0.0.1:{unused_port}/webhook/")
    with pytest.raises(Signl4Unavailable, match="connection failed") as raised:
        send_event(PAYLOAD, env)
    assert TEAM_SECRET not in str(raised.value)


def test_urllib3_logs_never_show_the_secret(
    signl4: Signl4Fake, live_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    signl4.script(503)
    send_event(PAYLOAD, _settings(live_env))
    assert any("urllib3" in record.name for record in caplog.records)  # it did log the URL...
    assert TEAM_SECRET not in caplog.text  # ...without the secret
