"""The heartbeat timer, called host-less (no waiting for a schedule), against a loopback fake of
SIGNL4's heartbeat URL: it beats only while settings are valid, storage answers and Halo's webhook
to the relay (read from the loopback Halo) is not confirmed off."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from azure.functions.timer import TimerRequest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from shared.entry import health
from shared.entry.health import HealthCache
from testkit.halo_fake import CLIENT_ID, CLIENT_SECRET, HaloFake, halo_fixture  # noqa: F401

HEARTBEAT_ID = "hb-5d1f2a9c"


class HeartbeatFake:
    def __init__(self, server: HTTPServer) -> None:
        self.calls: list[Request] = []
        self.status = 200
        server.expect_request(f"/apps/{HEARTBEAT_ID}").respond_with_handler(self._handle)
        self.url = server.url_for(f"/apps/{HEARTBEAT_ID}") + "?param=relay"

    def _handle(self, request: Request) -> Response:
        self.calls.append(request)
        return Response("", status=self.status)


@pytest.fixture
def beats(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[HeartbeatFake]:
    monkeypatch.setattr(health, "_cache", HealthCache())
    fake = HeartbeatFake(httpserver)
    yield fake
    httpserver.clear()


def tick(functions: dict) -> None:
    timer = TimerRequest(past_due=False)
    functions["heartbeat"](timer)


def test_a_healthy_relay_beats_once_per_tick(
    functions: dict, beats: HeartbeatFake, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.setenv("SIGNL4_HEARTBEAT_URL", beats.url)
    monkeypatch.setenv("AzureWebJobsStorage", "memory")
    caplog.set_level(logging.INFO)
    tick(functions)
    tick(functions)
    assert len(beats.calls) == 2
    assert beats.calls[0].method == "POST" and beats.calls[0].args["param"] == "relay"
    assert "heartbeat sent=true" in caplog.text and HEARTBEAT_ID not in caplog.text


def test_on_azurite_it_beats(
    functions: dict, beats: HeartbeatFake, monkeypatch, storage_env
) -> None:
    monkeypatch.setenv("SIGNL4_HEARTBEAT_URL", beats.url)
    tick(functions)
    assert len(beats.calls) == 1


def test_no_url_no_beat(functions: dict, beats: HeartbeatFake) -> None:
    tick(functions)
    assert beats.calls == []


def test_unreachable_storage_stays_silent_so_signl4_pages(
    functions: dict, beats: HeartbeatFake, monkeypatch: pytest.MonkeyPatch, unused_port: int, caplog
) -> None:
    monkeypatch.setenv("SIGNL4_HEARTBEAT_URL", beats.url)
    monkeypatch.setenv(
        "AzureWebJobsStorage",
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"TableEndpoint=http://127.0.0.1:{unused_port}/devstoreaccount1;",
    )
    tick(functions)
    assert beats.calls == []
    assert "reason=storage unreachable" in caplog.text


def test_invalid_settings_stay_silent(functions: dict, beats: HeartbeatFake, monkeypatch) -> None:
    monkeypatch.setenv("SIGNL4_HEARTBEAT_URL", beats.url)
    monkeypatch.setenv("RELAY_MAX_BATCH", "0")
    tick(functions)
    assert beats.calls == []


def test_a_refused_beat_is_logged_not_raised(
    functions: dict, beats: HeartbeatFake, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.setenv("SIGNL4_HEARTBEAT_URL", beats.url)
    beats.status = 404
    tick(functions)
    assert len(beats.calls) == 1
    assert "heartbeat sent=false" in caplog.text and HEARTBEAT_ID not in caplog.text


def test_python_m_shared_heartbeat_beats_once(beats: HeartbeatFake) -> None:
    import io

    from shared.__main__ import main

    out = io.StringIO()
    assert main(["heartbeat"], environ={"SIGNL4_HEARTBEAT_URL": beats.url}, stdout=out) == 0
    assert len(beats.calls) == 1 and "sent" in out.getvalue()


# --- Halo's side: a webhook Halo turned off is a silent outage, so the heartbeat stops ---

RELAY_URL = "https://relay.example.net"


def _halo_env(monkeypatch: pytest.MonkeyPatch, beats: HeartbeatFake, halo: HaloFake) -> None:
    for name, value in {
        "SIGNL4_HEARTBEAT_URL": beats.url,
        "AzureWebJobsStorage": "memory",
        "HALO_BASE_URL": halo.base_url,
        "HALO_CLIENT_ID": CLIENT_ID,
        "HALO_CLIENT_SECRET": CLIENT_SECRET,
        "HALO_BACKOFF_SECONDS": "0",
        "RELAY_PUBLIC_URL": RELAY_URL,
    }.items():
        monkeypatch.setenv(name, value)


def _webhook(**fields: object) -> dict[str, object]:
    return {
        "id": "0b6f2b8e-3c1d-4a57-9e0f-2d7c5a1b9e44",
        "name": "SIGNL4 relay",
        "url": f"{RELAY_URL}/api/halopsa",
        "active": True,
        "disabled": False,
        "events": [{"id": 1, "name": "New Ticket"}],
        "last_status": 200,
        **fields,
    }


def test_a_disabled_halo_webhook_stops_the_beat_with_one_error_line(
    functions: dict, beats: HeartbeatFake, halo: HaloFake, monkeypatch, caplog
) -> None:
    _halo_env(monkeypatch, beats, halo)
    halo.webhooks = [_webhook(disabled=True, last_status=503)]
    caplog.set_level(logging.INFO)
    tick(functions)
    assert beats.calls == []
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    line = errors[0].getMessage()
    assert line.startswith("heartbeat sent=false reason=Halo's webhook to this relay is off")
    assert "'SIGNL4 relay'" in line and "disabled" in line and "last status 503" in line
    assert HEARTBEAT_ID not in caplog.text and CLIENT_SECRET not in caplog.text


def test_an_active_halo_webhook_beats_and_halo_is_asked_once_per_recheck(
    functions: dict, beats: HeartbeatFake, halo: HaloFake, monkeypatch, caplog
) -> None:
    _halo_env(monkeypatch, beats, halo)
    halo.webhooks = [_webhook()]
    caplog.set_level(logging.INFO)
    tick(functions)
    tick(functions)
    assert len(beats.calls) == 2 and "heartbeat sent=true" in caplog.text
    assert len(halo.calls("/api/Webhook")) == 1  # cached: the heartbeat stays cheap


def test_halo_not_answering_does_not_stop_the_beat(
    functions: dict, beats: HeartbeatFake, halo: HaloFake, monkeypatch
) -> None:
    _halo_env(monkeypatch, beats, halo)
    monkeypatch.setenv("HALO_MAX_ATTEMPTS", "1")
    halo.webhooks = [_webhook(disabled=True)]
    halo.script("/api/Webhook", 503)
    tick(functions)
    assert len(beats.calls) == 1


def test_a_refused_webhook_read_does_not_stop_the_beat(
    functions: dict, beats: HeartbeatFake, halo: HaloFake, monkeypatch
) -> None:
    _halo_env(monkeypatch, beats, halo)
    halo.webhooks = [_webhook(disabled=True)]
    halo.script("/api/Webhook", 403)
    tick(functions)
    assert len(beats.calls) == 1


def test_without_halo_api_credentials_it_beats_as_before(
    functions: dict, beats: HeartbeatFake, halo: HaloFake, monkeypatch
) -> None:
    _halo_env(monkeypatch, beats, halo)
    monkeypatch.delenv("HALO_CLIENT_SECRET")
    monkeypatch.delenv("HALO_CLIENT_ID")
    halo.webhooks = [_webhook(disabled=True)]
    tick(functions)
    assert len(beats.calls) == 1 and halo.requests == []
