"""POST /api/webhook/{token}: SIGNL4's URL shape on the relay, host-less (func.HttpRequest into
the decorated function), SIGNL4 played by the loopback fake. The token is the credential."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import azure.functions as func
import pytest

from devhost.functions import OutValue
from shared.entry.halo_webhook import NOT_FOUND
from tests.conftest import TEAM_SECRET, Signl4Fake, answer, call_halopsa, fixture_json

Functions = dict[str, Callable[..., func.HttpResponse]]
TOKEN = "tok-9f3Qe7Zr-inbound"
BASE = "http://localhost:7071/api/webhook/"


def request(
    url: str, body: Any, headers: dict[str, str] | None = None, token: str | None = None
) -> func.HttpRequest:
    """What the host hands the function for `url`: route parameter and query parsed."""
    parts = urlsplit(url)
    segment = parts.path.removeprefix("/api/webhook").strip("/")
    route_params = {"token": token if token is not None else segment} if segment else {}
    return func.HttpRequest(
        method="POST",
        url=url,
        headers={"Content-Type": "application/json", **(headers or {})},
        params=dict(parse_qsl(parts.query, keep_blank_values=True)),
        route_params=route_params,
        body=json.dumps(body).encode("utf-8"),
    )


def call_webhook(functions: Functions, req: func.HttpRequest) -> tuple[int, Any, list[str]]:
    queued = OutValue()
    response = functions["webhook"](req, queued=queued)
    code, body = answer(response)
    return code, body, list(queued.get() or [])


@pytest.fixture
def token_env(live_env: dict, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("RELAY_INBOUND_TOKEN", TOKEN)
    return {**live_env, "RELAY_INBOUND_TOKEN": TOKEN}


def test_the_token_in_the_path_relays_the_guide_body(
    functions: Functions, signl4: Signl4Fake, token_env: dict
) -> None:
    code, body, queued = call_webhook(
        functions, request(BASE + TOKEN, fixture_json("guide_new.json"))
    )
    assert (code, body["result"], body["externalId"]) == (200, "sent", "HaloPSA-4242")
    assert queued == []
    [sent] = signl4.events
    assert sent["X-S4-Status"] == "new" and sent["X-S4-ExternalID"] == "HaloPSA-4242"


def test_the_token_may_come_in_a_header_instead_so_no_url_carries_it(
    functions: Functions, signl4: Signl4Fake, token_env: dict
) -> None:
    """What the host and Application Insights record is the URL: with the header form it holds
    no token (query strings are stripped from request telemetry, paths are not)."""
    url = BASE + "?ExtIDParam=X-S4-ExternalID&ExtStatusParam=Status&ResolvedStatus=Closed"
    req = request(url, fixture_json("guide_new.json"), {"X-Relay-Token": TOKEN})
    assert TOKEN not in req.url
    code, body, _ = call_webhook(functions, req)
    assert (code, body["result"]) == (200, "sent")
    assert len(signl4.events) == 1


def refusals() -> list[tuple[str, dict[str, str], str | None]]:
    """(url, headers, path token) that must all be refused alike."""
    return [
        (BASE, {}, None),  # no token at all
        (BASE + "wrong", {}, None),
        (BASE + TOKEN[:-1], {}, None),  # a prefix is not the token
        (BASE + TOKEN + "x", {}, None),
        (BASE + TOKEN.upper(), {}, None),  # compared exactly
        (BASE, {"X-Relay-Token": "wrong"}, None),
        (BASE + TOKEN, {"X-Relay-Token": "wrong"}, None),  # every token given must match
        (BASE + "wrong", {"X-Relay-Token": TOKEN}, None),
        (BASE + quote(TEAM_SECRET), {}, None),  # the SIGNL4 team secret is not the token
        (BASE + "x", {}, "ü\x00"),  # not ASCII, control character: refused, not a 500
    ]


@pytest.mark.parametrize(("url", "headers", "path_token"), refusals())
def test_a_wrong_or_missing_token_is_the_same_404_as_a_missing_route(
    functions: Functions,
    signl4: Signl4Fake,
    token_env: dict,
    url: str,
    headers: dict[str, str],
    path_token: str | None,
) -> None:
    req = request(url, fixture_json("guide_new.json"), headers, path_token)
    code, body, queued = call_webhook(functions, req)
    assert (code, body, queued) == (404, NOT_FOUND, [])
    assert signl4.events == []


def test_without_the_setting_the_route_does_not_exist(
    functions: Functions, signl4: Signl4Fake, live_env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    for value in (None, "", "   "):
        if value is None:
            monkeypatch.delenv("RELAY_INBOUND_TOKEN", raising=False)
        else:
            monkeypatch.setenv("RELAY_INBOUND_TOKEN", value)
        for token in ("", " ", "anything"):
            req = request(BASE + "x", fixture_json("guide_new.json"), token=token)
            assert call_webhook(functions, req)[:2] == (404, NOT_FOUND)
    assert signl4.events == []


def test_unusable_settings_are_refused_like_a_missing_route_and_logged(
    functions: Functions,
    signl4: Signl4Fake,
    token_env: dict,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SIGNL4_MAX_ATTEMPTS", "many")
    code, body, _ = call_webhook(functions, request(BASE + TOKEN, fixture_json("guide_new.json")))
    assert (code, body) == (404, NOT_FOUND)
    assert "SIGNL4_MAX_ATTEMPTS" in caplog.text and TOKEN not in caplog.text


def test_basic_auth_is_not_asked_for_on_the_token_route(
    functions: Functions, signl4: Signl4Fake, token_env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGNL4's setup sends no Basic auth; the token is the credential there. /api/halopsa
    still asks for it."""
    monkeypatch.setenv("HALO_WEBHOOK_USERNAME", "halo")
    monkeypatch.setenv("HALO_WEBHOOK_PASSWORD", "pw-8d1")
    code, body, _ = call_webhook(functions, request(BASE + TOKEN, fixture_json("guide_new.json")))
    assert (code, body["result"]) == (200, "sent")
    response, _ = call_halopsa(functions, request(BASE, fixture_json("guide_new.json")))
    assert answer(response)[0] == 401
    credentials = base64.b64encode(b"halo:pw-8d1").decode()
    response, _ = call_halopsa(
        functions,
        request(BASE, fixture_json("guide_close.json"), {"Authorization": f"Basic {credentials}"}),
    )
    assert answer(response)[1]["result"] == "sent"


@pytest.mark.parametrize("function", ["webhook", "halopsa"])
def test_resolved_status_done_closes_a_done_ticket_on_both_routes(
    functions: Functions, signl4: Signl4Fake, token_env: dict, function: str
) -> None:
    """The issue's case: before, the relay decided `new` and the alert never closed."""
    body = {**fixture_json("guide_new.json"), "Status": "Done"}
    path = TOKEN if function == "webhook" else ""
    url = f"{BASE}{path}?ExtIDParam=X-S4-ExternalID&ExtStatusParam=Status&ResolvedStatus=Done"
    req = request(url, body)
    if function == "webhook":
        code, answered, _ = call_webhook(functions, req)
    else:
        response, _ = call_halopsa(functions, req)
        code, answered = answer(response)
    assert (code, answered["status"]) == (200, "resolved")
    assert signl4.events[0]["X-S4-Status"] == "resolved"


def test_unknown_query_parameters_are_named_at_debug_level_never_their_values(
    functions: Functions,
    signl4: Signl4Fake,
    token_env: dict,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="shared.relay")
    url = f"{BASE}{TOKEN}?Verbose=v4lue-77&code=fk-123&ResolvedStatus=Closed"
    code, _, _ = call_webhook(functions, request(url, fixture_json("guide_new.json")))
    assert code == 200
    [line] = [r for r in caplog.records if "ignoring query parameter" in r.getMessage()]
    assert line.levelno == logging.DEBUG and "'Verbose'" in line.getMessage()
    for secret in ("v4lue-77", "fk-123", TOKEN):
        assert secret not in caplog.text


def test_the_token_is_in_no_log_line_answer_or_queue_message(
    functions: Functions,
    signl4: Signl4Fake,
    token_env: dict,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    signl4.script(503, 503, 503)  # SIGNL4 down: the event is queued (no storage: in the answer)
    seen = []
    for url, headers, path_token in [(BASE + TOKEN, {}, None), *refusals()]:
        req = request(url, fixture_json("guide_new.json"), headers, path_token)
        seen.append(call_webhook(functions, req))
    assert seen[0][0] in (202, 503)
    everything = caplog.text + repr(seen)
    assert TOKEN not in everything and quote(TOKEN) not in everything


def test_health_says_whether_the_route_is_on_never_the_token(
    functions: Functions, live_env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    off = answer(functions["health"](func.HttpRequest("GET", "/api/health", body=b"")))[1]
    assert off["webhookRoute"] == "off"
    monkeypatch.setenv("RELAY_INBOUND_TOKEN", TOKEN)
    on = answer(functions["health"](func.HttpRequest("GET", "/api/health", body=b"")))[1]
    assert on["webhookRoute"] == "on" and TOKEN not in json.dumps(on)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '"POST /api/webhook/abc?x=1 HTTP/1.1" 200 -',
            '"POST /api/webhook/***?x=1 HTTP/1.1" 200 -',
        ),
        ("POST /API/WEBHOOK/a%2Fb HTTP/1.1", "POST /API/WEBHOOK/*** HTTP/1.1"),
        ("POST /api/webhook/ HTTP/1.1", "POST /api/webhook/ HTTP/1.1"),
        ("POST /api/halopsa?code=k HTTP/1.1", "POST /api/halopsa?code=k HTTP/1.1"),
    ],
)
def test_the_local_hosts_access_log_masks_the_token_segment(line: str, expected: str) -> None:
    from devhost.http_host import redact_path_secrets

    assert redact_path_secrets(line) == expected
