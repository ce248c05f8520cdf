"""Shared test parts: a real loopback SIGNL4, payload fixtures, and the function app's index."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from devhost.queues import QueueRunner, StorageQueues
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
        # Answers every request once the script has run out (default: 201 with an eventId).
        self.default: Callable[[Request], Response] | None = None
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
            step = self._steps.pop(0) if self._steps else (self.default or 201)
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tiers: a test that needs Azurite (the `azurite` fixture, directly or through
    `storage_env`/`harness`) is marked `azurite`, so `-m "not azurite"` runs the unit tier
    (bench/mutation.py runs each mutant against it)."""
    for item in items:
        if "azurite" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.azurite)


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
def indexed_functions() -> list[Any]:
    """The app's functions, indexed once (get_functions() may run once per app)."""
    import function_app
    from devhost.functions import index_functions

    return index_functions(function_app.app)


@pytest.fixture(scope="session")
def functions(indexed_functions: list[Any]) -> dict[str, Callable[..., Any]]:
    return {f.get_function_name(): f.get_user_function() for f in indexed_functions}


# --- Azurite: Azure Storage over real connections ---

AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
DEV_STORAGE = "UseDevelopmentStorage=true"
REPO_ROOT = Path(__file__).resolve().parent.parent


def _azurite_ports() -> tuple[int, int, int]:
    """Default ports, or RELAY_TEST_AZURITE_PORT (blob; queue and table follow) so that two
    suites can each have their own Azurite: two runners on one Azurite steal queue messages."""
    base = int(os.environ.get("RELAY_TEST_AZURITE_PORT") or 10000)
    return base, base + 1, base + 2


AZURITE_PORTS = _azurite_ports()


def _connection_string(ports: tuple[int, int, int]) -> str:
    if ports == (10000, 10001, 10002):
        return DEV_STORAGE
    blob, queue, table = (f"http://127.0.0.1:{port}/devstoreaccount1" for port in ports)
    return (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={blob};QueueEndpoint={queue};TableEndpoint={table};"
    )


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Azurite on AZURITE_PORTS (by default what UseDevelopmentStorage=true means); started
    from node_modules when nothing listens there yet, and stopped at the end of the session."""
    connection = _connection_string(AZURITE_PORTS)
    if all(_listening(port) for port in AZURITE_PORTS):
        yield connection
        return
    binary = REPO_ROOT / "node_modules" / ".bin" / "azurite"
    if not binary.exists():
        pytest.fail("Azurite is not installed: run `npm ci` in the repository root")
    scratch = tmp_path_factory.mktemp("azurite")  # --inMemoryPersistence refuses --location
    command = [str(binary), "--inMemoryPersistence", "--disableTelemetry"]
    command += ["--skipApiVersionCheck", "--silent"]
    for service, port in zip(("blob", "queue", "table"), AZURITE_PORTS, strict=True):
        command += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port)]
    proc = subprocess.Popen(command, cwd=scratch, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not all(_listening(port) for port in AZURITE_PORTS):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"Azurite did not start: {proc.communicate()[1].decode()[-500:]}")
        time.sleep(0.2)
    try:
        yield connection
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def storage_env(azurite: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The relay with its ledger and outbox on Azurite; queues start empty."""
    from azure.storage.queue import QueueServiceClient

    monkeypatch.setenv("AzureWebJobsStorage", azurite)
    service = QueueServiceClient.from_connection_string(azurite)
    for name in ("signl4-outbox", "signl4-outbox-poison"):
        queue = service.get_queue_client(name)
        with contextlib.suppress(Exception):
            queue.create_queue()
        queue.clear_messages()
    return azurite


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_ticket_id() -> int:
    """Tests share one Azurite: each uses its own tickets."""
    return random.randint(10_000_000, 2_000_000_000)


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
    from devhost.functions import OutValue

    queued = OutValue()
    response = functions["halopsa"](request, queued=queued)
    return response, list(queued.get() or [])


def answer(response: func.HttpResponse) -> tuple[int, Any]:
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_body())


# --- the Functions host, played host-less over Azurite ---

OUTBOX, POISON = "signl4-outbox", "signl4-outbox-poison"


class Harness:
    """Plays the Functions host: HTTP calls, output bindings onto Azurite, queue triggers."""

    def __init__(
        self, functions: dict[str, Callable[..., Any]], indexed: list[Any], storage: str
    ) -> None:
        self.functions = functions
        self.queues = StorageQueues(storage)
        self.runner = QueueRunner(indexed, self.queues, visibility_timeout=1, max_dequeue_count=3)

    def post(self, body: Any) -> tuple[int, dict]:
        response, queued = call_halopsa(self.functions, http_post(body))
        for message in queued:  # what the host does with the output binding
            self.queues.put(OUTBOX, message)
        return answer(response)

    def depth(self, queue: str) -> int:
        client = self.queues._client(queue)
        return int(client.get_queue_properties().approximate_message_count or 0)

    def drain(self, timeout: float = 20) -> None:
        """Run the queue functions until both queues are empty (invisible messages included)."""
        deadline = time.monotonic() + timeout
        while self.depth(OUTBOX) or self.depth(POISON):
            assert time.monotonic() < deadline, "the outbox did not drain"
            if not self.runner.run_once():
                time.sleep(0.1)


@pytest.fixture
def harness(functions: dict, indexed_functions: list, storage_env: str, live_env: dict) -> Harness:
    return Harness(functions, indexed_functions, storage_env)
