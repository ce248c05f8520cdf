"""Shared test parts: a real loopback SIGNL4, payload fixtures, and the function app's index."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from shared.settings import RelaySettings

FIXTURES = Path(__file__).parent / "fixtures"
TEAM_SECRET = "s3cr3t-TEAM-4f9a1c"
WEBHOOK_PATH = f"/webhook/{TEAM_SECRET}"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


class Signl4Fake:
    """SIGNL4's inbound webhook on loopback. Records what it receives; answers from a script.

    Steps: an int status (201 answers with an eventId), a (status, headers) tuple,
    "hang" (sleeps past the relay's timeout, then answers 201), or a callable(Request)->Response.
    When the script runs out every request gets 201.
    """

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._steps: list[Any] = []
        self._lock = threading.Lock()
        self.hang_seconds = 1.0
        server.expect_request("/webhook/" + TEAM_SECRET, method="POST").respond_with_handler(
            self._handle
        )

    @property
    def base_url(self) -> str:
        return self.server.url_for("/webhook/")

    def script(self, *steps: Any) -> None:
        with self._lock:
            self._steps = list(steps)

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(self.requests)

    def _handle(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(json.loads(request.get_data()))
            self.paths.append(request.path)
            step = self._steps.pop(0) if self._steps else 201
        if callable(step):
            return step(request)
        if step == "hang":
            time.sleep(self.hang_seconds)
            step = 201
        headers: dict[str, str] = {}
        if isinstance(step, tuple):
            step, headers = step
        if 200 <= step < 300:
            body = {"eventId": f"evt-{len(self.requests)}"}
        else:
            body = {"code": 3004, "message": "Error raising event.", "details": "scripted"}
        return Response(json.dumps(body), status=step, headers=headers, mimetype="application/json")


@pytest.fixture(autouse=True)
def clean_relay_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from no relay settings at all, whatever the machine's environment holds."""
    for name in RelaySettings.setting_names():
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def make_httpserver() -> Iterator[HTTPServer]:
    """pytest-httpserver's server, but threaded like the real SIGNL4: a hung call must not
    hold up the retry behind it."""
    # werkzeug logs each request path, and the fake's path holds the team secret.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def signl4(httpserver: HTTPServer) -> Iterator[Signl4Fake]:
    yield Signl4Fake(httpserver)
    httpserver.clear()


@pytest.fixture
def live_env(signl4: Signl4Fake, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Settings for a relay that really sends, to the loopback SIGNL4, with fast retries."""
    env = {
        "SIGNL4_TEAM_SECRET": TEAM_SECRET,
        "SIGNL4_WEBHOOK_URL": signl4.base_url,
        "SIGNL4_TIMEOUT_SECONDS": "0.3",
        "SIGNL4_MAX_ATTEMPTS": "3",
        "SIGNL4_RETRY_BUDGET_SECONDS": "3",
        "SIGNL4_BACKOFF_SECONDS": "0.01",
        "HALO_BASE_URL": "https://contoso.halopsa.com/",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(scope="session")
def functions() -> dict[str, Callable[..., func.HttpResponse]]:
    """The app's functions by name, indexed once (get_functions() may run once per app)."""
    import function_app

    return {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}


def http_post(
    body: bytes | str | Any, url: str = "/api/halopsa", headers: dict[str, str] | None = None
) -> func.HttpRequest:
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return func.HttpRequest(
        method="POST",
        url=f"http://localhost:7071{url}",
        headers={"Content-Type": "application/json", **(headers or {})},
        params={},
        body=body,
    )


def call_halopsa(
    functions: dict[str, Callable[..., Any]], request: func.HttpRequest
) -> tuple[func.HttpResponse, list[str]]:
    """Invoke the HTTP function as the host would, with its queue output binding."""
    from shared.local_host import OutValue

    queued = OutValue()
    response = functions["halopsa"](request, queued=queued)
    return response, list(queued.get() or [])


def answer(response: func.HttpResponse) -> tuple[int, Any]:
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_body())
