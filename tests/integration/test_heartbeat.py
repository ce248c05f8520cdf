"""The heartbeat timer, called host-less (no waiting for a schedule), against a loopback fake of
SIGNL4's heartbeat URL: it beats only while settings are valid and storage answers."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from azure.functions.timer import TimerRequest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from shared.entry import health
from shared.entry.health import HealthCache

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
