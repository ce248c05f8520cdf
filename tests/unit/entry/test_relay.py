"""POST /api/halopsa and GET /api/health end to end, host-less: func.HttpRequest into the
decorated functions, SIGNL4 played by the loopback fake."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Callable

import azure.functions as func
import pytest

from shared.delivery.outbox import OutboxMessage
from shared.domain.alert import AlertStatus
from shared.entry.bootstrap import secret_values
from shared.entry.halo_webhook import handle_halo_request
from shared.entry.queues import deliver_outbox_message, report_poison
from shared.entry.responses import MAX_BODY_BYTES
from shared.errors import ConfigurationError
from tests.conftest import (
    TEAM_SECRET,
    Signl4Fake,
    answer,
    call_halopsa,
    fixture_bytes,
    fixture_json,
    http_post,
)
from tests.unit.domain.test_alert import ECHO_SECRET, assert_no_piece_of, echo_forms

Functions = dict[str, Callable[..., func.HttpResponse]]


def post(
    functions: Functions, body: object, headers: dict[str, str] | None = None
) -> tuple[int, dict]:
    response, queued = call_halopsa(functions, http_post(body, headers=headers))
    assert queued == []  # these tests run without storage: nothing may be queued silently
    return answer(response)


@pytest.mark.parametrize(
    ("fixture", "external_id", "status"),
    [
        ("webhook_new_small.json", "HaloPSA-4242", "new"),
        ("webhook_new_full.json", "HaloPSA-4243", "new"),
        ("webhook_closed_event_only.json", "HaloPSA-4242", "resolved"),
        ("guide_new.json", "HaloPSA-4242", "new"),
        ("guide_close.json", "HaloPSA-4242", "resolved"),
        ("ticket_bare.json", "HaloPSA-4244", "new"),
        ("ticket_wrapped.json", "HaloPSA-4245", "resolved"),
        ("guide_empty_values.txt", "HaloPSA-4246", "new"),
    ],
)
def test_every_shape_is_sent(
    functions: Functions,
    signl4: Signl4Fake,
    live_env: dict,
    fixture: str,
    external_id: str,
    status: str,
) -> None:
    code, body = post(functions, fixture_bytes(fixture))
    assert code == 200
    assert body == {
        "result": "sent",
        "externalId": external_id,
        "status": status,
        "eventId": "evt-1",
    }
    [sent] = signl4.events
    assert sent["X-S4-ExternalID"] == external_id and sent["X-S4-Status"] == status
    assert sent["X-S4-SourceSystem"] == "HaloPSA" and sent["Title"]


def test_skipped_update_sends_nothing(
    functions: Functions, signl4: Signl4Fake, live_env: dict
) -> None:
    code, body = post(functions, fixture_json("webhook_status_changed.json"))
    assert code == 200 and body["result"] == "skipped" and body["externalId"] == "HaloPSA-4242"
    assert "changes nothing" in body["reason"]
    assert signl4.events == []


def test_without_a_secret_the_relay_is_a_dry_run(functions: Functions, signl4: Signl4Fake) -> None:
    code, body = post(functions, fixture_json("webhook_new_full.json"))
    assert code == 200 and body["result"] == "dry-run" and body["status"] == "new"
    assert body["payload"]["X-S4-ExternalID"] == "HaloPSA-4243"
    assert signl4.events == []


def test_dry_run_setting_holds_back_a_configured_relay(
    functions: Functions, signl4: Signl4Fake, live_env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_DRY_RUN", "true")
    code, body = post(functions, fixture_json("guide_new.json"))
    assert (code, body["result"]) == (200, "dry-run")
    assert signl4.events == []


def test_batch_is_answered_per_element(
    functions: Functions, signl4: Signl4Fake, live_env: dict
) -> None:
    code, body = post(functions, fixture_json("webhook_batch.json"))
    assert code == 200
    assert [r["result"] for r in body["results"]] == ["sent", "skipped", "sent"]
    assert [e["X-S4-ExternalID"] for e in signl4.events] == ["HaloPSA-5001", "HaloPSA-5003"]


def test_batch_answers_with_the_worst_status(
    functions: Functions, signl4: Signl4Fake, live_env: dict
) -> None:
    batch = [fixture_json("guide_new.json"), {"event": "new ticket logged"}, "nonsense"]
    code, body = post(functions, batch)
    assert code == 422
    assert body["results"][0]["result"] == "sent"
    assert body["results"][1]["error"] == "missing_ticket_id"
    assert body["results"][2]["error"] == "unsupported_payload"
    assert len(signl4.events) == 1  # the good element was not held back by the bad ones


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"", 400, "invalid_json"),
        (b"[]", 400, "unsupported_payload"),
        (b'{"hello": "world"}', 400, "unsupported_payload"),
        (b'{"event": "new ticket logged", "ticket": {"summary": "x"}}', 422, "missing_ticket_id"),
        (b'{"X-S4-ExternalID": "HaloPSA-1", "X-S4-Status": "open"}', 422, "invalid_status"),
        (b" " * (MAX_BODY_BYTES + 1), 413, "payload_too_large"),
    ],
)
def test_caller_errors(
    functions: Functions, signl4: Signl4Fake, live_env: dict, body: bytes, status: int, error: str
) -> None:
    code, answered = post(functions, body)
    assert (code, answered["error"]) == (status, error)
    assert answered["message"]
    assert signl4.events == []


def test_signl4_rejection_is_502_and_names_the_status(
    functions: Functions, signl4: Signl4Fake, live_env: dict
) -> None:
    signl4.script(404)
    code, body = post(functions, fixture_json("guide_new.json"))
    assert (code, body["error"], body["externalId"]) == (502, "signl4_rejected", "HaloPSA-4242")
    assert "HTTP 404" in body["message"]
    assert len(signl4.events) == 1


def test_signl4_unavailable_is_queued_and_answered_202(
    functions: Functions, signl4: Signl4Fake, live_env: dict
) -> None:
    signl4.script(500, 500, 500)
    response, queued = call_halopsa(functions, http_post(fixture_json("guide_new.json")))
    code, body = answer(response)
    assert (code, body["result"], body["externalId"], body["status"]) == (
        202,
        "queued",
        "HaloPSA-4242",
        "new",
    )
    assert len(signl4.events) == 3
    [message] = [json.loads(m) for m in queued]
    assert message["externalId"] == "HaloPSA-4242" and message["status"] == "new"
    assert message["payload"] == signl4.events[0]  # the exact event, ready to resend
    assert TEAM_SECRET not in str(queued)


def test_signl4_unavailable_without_an_outbox_is_503(signl4: Signl4Fake, live_env: dict) -> None:
    signl4.script(500, 500, 500)
    response = handle_halo_request(fixture_bytes("guide_new.json"), {}, os.environ)
    assert (response.status_code, response.body["error"]) == (503, "signl4_unavailable")
    assert "HTTP 500" in response.body["message"]


def test_bad_setting_is_named_in_a_configuration_error(
    functions: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNL4_MAX_ATTEMPTS", "lots")
    code, body = post(functions, fixture_json("guide_new.json"))
    assert (code, body["error"]) == (500, "configuration_error")
    assert "SIGNL4_MAX_ATTEMPTS" in body["message"] and "lots" not in body["message"]


# --- Basic auth ---

PASSWORD = "halo-Pa55-word!"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def basic_auth_env(live_env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HALO_WEBHOOK_USERNAME", "halo")
    monkeypatch.setenv("HALO_WEBHOOK_PASSWORD", PASSWORD)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("halo", "wrong"),
        basic("someone", PASSWORD),
        {"Authorization": "Basic !!!notbase64"},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic " + base64.b64encode(b"halo" + PASSWORD.encode()).decode()},
    ],
)
def test_basic_auth_rejects(
    functions: Functions, signl4: Signl4Fake, basic_auth_env: None, headers: dict[str, str]
) -> None:
    response, _ = call_halopsa(
        functions, http_post(fixture_json("guide_new.json"), headers=headers)
    )
    code, body = answer(response)
    assert (code, body["error"]) == (401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert PASSWORD not in body["message"]
    assert signl4.events == []


def test_basic_auth_accepts_the_right_credentials(
    functions: Functions, signl4: Signl4Fake, basic_auth_env: None
) -> None:
    code, body = post(functions, fixture_json("guide_new.json"), headers=basic("halo", PASSWORD))
    assert (code, body["result"]) == (200, "sent")


# --- health ---


def health(functions: Functions) -> tuple[int, dict]:
    request = func.HttpRequest(
        method="GET", url="http://localhost/api/health", body=b"", headers={}
    )
    return answer(functions["health"](request))


def test_health_dry_run_and_configured(
    functions: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, body = health(functions)
    assert (code, body["status"], body["signl4"]) == (200, "ok", "dry-run")
    assert body["version"]
    monkeypatch.setenv("SIGNL4_TEAM_SECRET", TEAM_SECRET)
    code, body = health(functions)
    assert (code, body["signl4"]) == (200, "configured")
    assert TEAM_SECRET not in str(body)


def test_health_reports_a_bad_setting(
    functions: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNL4_WEBHOOK_URL", "not a url")
    code, body = health(functions)
    assert (code, body["status"]) == (503, "misconfigured")
    assert "SIGNL4_WEBHOOK_URL" in body["message"]


# --- logs and secrets ---


def test_one_log_line_per_event_without_secret_or_body(
    functions: Functions,
    signl4: Signl4Fake,
    basic_auth_env: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    signl4.script(503, 404)  # a retry, then a rejection: the noisiest path
    responses = [
        post(functions, fixture_json("webhook_new_full.json"), headers=basic("halo", PASSWORD)),
        post(functions, fixture_json("webhook_batch.json"), headers=basic("halo", PASSWORD)),
        post(functions, fixture_json("guide_new.json"), headers=basic("halo", "bad")),
    ]
    lines = [r.getMessage() for r in caplog.records if r.name == "shared.relay"]
    assert len(lines) == 4  # one event + three batch elements; the 401 never reached an event
    assert lines[0].startswith("relay externalId=HaloPSA-4243 haloEvent='new ticket logged'")
    assert "signl4Status=404" in lines[0] and "elapsedMs=" in lines[0]
    assert "decision=skip" in lines[2]
    everything = caplog.text + str(responses)
    for secret in (TEAM_SECRET, PASSWORD):
        assert secret not in everything
    assert "nightly backup job" not in caplog.text  # no ticket body in the log


# --- SIGNL4's error text in answers, queue messages and log lines ---

FORGED = "bad team\r\npoison externalId=HaloPSA-1 reason=forged\x1b[31m red\x1b[0m\u2028end"
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def all_log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def rejecting(make_message: Callable[[str], str], after_503: int = 0) -> Callable:
    """A SIGNL4 that answers 503 `after_503` times, then 400 with `make_message(url)`."""
    from werkzeug import Response

    calls = iter(range(10_000))

    def handler(request):
        if next(calls) < after_503:
            return Response("{}", status=503, mimetype="application/json")
        body = {"code": 3004, "message": make_message(request.url)}
        return Response(json.dumps(body), status=400, mimetype="application/json")

    return handler


@pytest.mark.parametrize("form", sorted(echo_forms(ECHO_SECRET)))
def test_signl4_echo_of_the_secret_reaches_no_answer_queue_message_or_log_line(
    functions: Functions,
    signl4: Signl4Fake,
    live_env: dict,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    form: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SIGNL4_TEAM_SECRET", ECHO_SECRET)
    monkeypatch.setenv("SIGNL4_MAX_ATTEMPTS", "1")
    make_message = echo_forms(ECHO_SECRET)[form]
    signl4.server.expect_request(re.compile(r"^/webhook/.*")).respond_with_handler(
        rejecting(make_message, after_503=1)
    )
    # Inline: 503, so it is queued (no storage: the message carries the payload).
    response, queued = call_halopsa(functions, http_post(fixture_json("guide_new.json")))
    assert answer(response)[0] == 202
    # The queue function: SIGNL4 refuses for good, so the event goes to the poison queue...
    [poison] = deliver_outbox_message(queued[0], os.environ) or []
    # ...whose function logs the alertable line.
    report_poison(poison, os.environ)
    # And inline: SIGNL4 refuses at once, 502 to Halo.
    code, body = post(functions, fixture_json("guide_new.json"))
    assert (code, body["error"]) == (502, "signl4_rejected")
    assert "SIGNL4 error 3004" in body["message"]
    for text in [json.dumps(body), poison, *queued, *all_log_lines(caplog), caplog.text]:
        assert_no_piece_of(ECHO_SECRET, text)
    [line] = [m for m in all_log_lines(caplog) if m.startswith("poison ")]
    assert "HTTP 400" in line


def test_control_characters_from_signl4_and_halo_reach_no_log_line_raw(
    functions: Functions, signl4: Signl4Fake, live_env: dict, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    signl4.script(lambda request: rejecting(lambda url: FORGED)(request))
    code, body = post(functions, fixture_json("guide_new.json"))
    assert (code, body["error"]) == (502, "signl4_rejected")
    # Not mangled in what Halo gets: JSON escapes it.
    assert body["message"].endswith("(SIGNL4 error 3004: " + FORGED + ")")
    halo_event = dict(fixture_json("webhook_new_full.json"), event="New Ticket\r\n\x1b[2J")
    code, body = post(functions, halo_event)
    assert (code, body["result"]) == (200, "skipped")
    lines = all_log_lines(caplog)
    assert len([line for line in lines if line.startswith("relay ")]) == 2
    for line in lines:
        assert not CONTROL.search(line), line
    relay_line = [line for line in lines if line.startswith("relay ")][-1]
    # Halo's event, case-folded; halo strips the ESC and CR, the log line escapes the LF
    assert "haloEvent='new ticket\\n[2j'" in relay_line


def test_poison_error_line_stays_one_line(
    signl4: Signl4Fake, live_env: dict, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    signl4.script(lambda request: rejecting(lambda url: FORGED)(request))
    outbox: list[str] = []
    queued = OutboxMessage(
        externalId="HaloPSA-7\r\nforged", status=AlertStatus.NEW, payload={"Title": "t"}
    ).to_json()
    [poison] = deliver_outbox_message(queued, os.environ) or []
    report_poison(poison, os.environ)
    assert outbox == []
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2  # the outbox line and the poison line
    poison_lines = [line for line in errors if line.startswith("poison ")]
    assert len(poison_lines) == 1
    [line] = poison_lines
    assert len(line.splitlines()) == 1 and not CONTROL.search(line)
    assert "externalId=HaloPSA-7\\r\\nforged" in line
    assert "bad team\\r\\npoison externalId=HaloPSA-1 reason=forged\\x1b[31m" in line
    assert json.loads(poison)["reason"].endswith(FORGED + ")")  # stored as SIGNL4 said it


def test_secret_values_feed_the_local_hosts_access_log(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SIGNL4_TEAM_SECRET": f" {TEAM_SECRET} ",
        "HALO_WEBHOOK_USERNAME": "halo",
        "HALO_WEBHOOK_PASSWORD": PASSWORD,
        "AzureWebJobsStorage": "",
        "HALO_BASE_URL": "https://contoso.halopsa.com",
    }
    assert sorted(secret_values(env)) == sorted([TEAM_SECRET, PASSWORD])
    import function_app

    monkeypatch.setenv("SIGNL4_TEAM_SECRET", TEAM_SECRET)
    assert function_app.local_host_secrets() == [TEAM_SECRET]


def test_the_in_memory_storage_setting_is_not_scrubbed_as_a_secret() -> None:
    """`python -m devhost serve` sets AzureWebJobsStorage=memory when it is unset: the word is
    no secret, and scrubbing it would turn "in-memory" into "in-***" in every traceback."""
    connection = "UseDevelopmentStorage=true"
    assert secret_values({"AzureWebJobsStorage": connection}) == [connection]
    assert secret_values({"AzureWebJobsStorage": " memory "}) == []


def test_a_bad_setting_is_a_configuration_error_on_every_path(
    functions: Functions,
    signl4: Signl4Fake,
    live_env: dict,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The HTTP, queue and poison functions read settings through one loader (relay's
    load_settings): a bad value is answered (HTTP) or raised (queue, poison: the host retries
    the message) as configuration_error naming the setting, never its value."""
    from devhost.functions import OutValue

    monkeypatch.setenv("SIGNL4_MAX_ATTEMPTS", "lots")
    queued = OutboxMessage(
        externalId="HaloPSA-8", status=AlertStatus.NEW, payload={"Title": "t"}
    ).to_json()
    poison_record = json.dumps({"externalId": "HaloPSA-8", "seq": 1, "reason": "SIGNL4 down"})

    code, body = post(functions, fixture_json("guide_new.json"))
    raised: list[ConfigurationError] = []
    with pytest.raises(ConfigurationError) as on_queue:
        functions["signl4_outbox"](message_of(queued), poison=OutValue())
    raised.append(on_queue.value)
    with pytest.raises(ConfigurationError) as on_poison:
        functions["signl4_outbox_poison"](message_of(poison_record))
    raised.append(on_poison.value)

    assert (code, body["error"]) == (500, "configuration_error")
    for error in raised:
        assert error.code == "configuration_error"
        assert error.message == body["message"]  # the same loader, the same words
    assert "SIGNL4_MAX_ATTEMPTS" in body["message"] and "lots" not in body["message"]
    assert signl4.events == []
    assert TEAM_SECRET not in caplog.text
    # The alertable line is written even so: the event never reached SIGNL4 either way.
    [poison_line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("poison")]
    assert poison_line.startswith("poison externalId=HaloPSA-8 reason=delivery attempts exhausted")
    assert "mailbox kept" in poison_line and "lots" not in poison_line


def message_of(text: str) -> func.QueueMessage:
    return func.QueueMessage(id="m-1", body=text.encode("utf-8"), pop_receipt="r-1")
