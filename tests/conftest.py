"""Shared test parts, every tier: a real loopback SIGNL4, payload fixtures, a clean environment,
the function app's index, and the host-less harness over in-memory storage.

Tiers: tests/unit (no Node, no Azurite, no subprocess), tests/integration (Azurite and
`python -m devhost serve`; its conftest.py holds those parts), tests/infra (Bicep). The
delivery and ledger cases live once in tests/suites/ and run in both tiers: over the in-memory
adapter in unit, over Azure Table on Azurite in integration."""

from __future__ import annotations

import itertools
import json
import logging
import random
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from pytest_httpserver import HTTPServer

import testkit.signl4_fake
from devhost.queues import MemoryQueues, QueueRunner, Queues, StorageQueues
from shared.settings import RelaySettings
from testkit.contract import Watch

FIXTURES = Path(__file__).parent / "fixtures"
TEAM_SECRET = "s3cr3t-TEAM-4f9a1c"
WEBHOOK_PATH = f"/webhook/{TEAM_SECRET}"
# SIGNL4_TIMEOUT_SECONDS for tests that expect answers: the loopback fake never takes this long.
GENEROUS_TIMEOUT = "30"


# Property tests judge behaviour, never speed: Hypothesis's default 200 ms deadline per example
# and its too_slow health check would fail them on a loaded machine. Every @given test runs
# under this profile (the tests' own settings derive from it; pytest_itemcollected checks).
SPEED_PROOF = "speed-proof"
hypothesis_settings.register_profile(
    SPEED_PROOF, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile(SPEED_PROOF)


def pytest_itemcollected(item: pytest.Item) -> None:
    """Refuse a property test whose settings put a clock on its verdict: a deadline per example,
    or the too_slow health check (tests/conftest.py's speed-proof profile has neither)."""
    used = getattr(getattr(item, "obj", None), "_hypothesis_internal_use_settings", None)
    if used is not None and (
        used.deadline is not None or HealthCheck.too_slow not in used.suppress_health_check
    ):
        raise pytest.UsageError(
            f"{item.nodeid}: Hypothesis settings with a deadline or the too_slow health check; "
            f"derive them from settings.get_profile({SPEED_PROOF!r})"
        )


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


class Signl4Fake(testkit.signl4_fake.Signl4Fake):
    """SIGNL4's inbound webhook on loopback (testkit/signl4_fake.py, the benchmark's fake too),
    served by pytest-httpserver at /webhook/<TEAM_SECRET>. Records what it receives; answers
    from a script.

    Steps: an int status (201 answers with an eventId), a (status, headers) tuple,
    "hang" (holds the answer until the test ends, so the relay's timeout fires however slow
    the machine; then answers 201), or a callable(Request)->Response.
    When the script runs out every request gets 201. A body that breaks SIGNL4's contract
    (testkit/contracts/signl4_inbound_event.json) gets 400 and fails the test at teardown
    unless the test called `expect_violations()`.
    """

    def __init__(self, server: HTTPServer) -> None:
        super().__init__()
        self.server = server
        server.expect_request(WEBHOOK_PATH, method="POST").respond_with_handler(self.handle)

    @property
    def base_url(self) -> str:
        return self.server.url_for("/webhook/")


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


@pytest.fixture(autouse=True)
def background_writes_done() -> Iterator[None]:
    """Every test ends with the ledger writes its requests left for after the answer done, so
    none runs on into the next test."""
    yield
    from shared.delivery.ledger import settle_after_answer

    settle_after_answer()


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
    """The loopback SIGNL4; the test fails at teardown if a body broke SIGNL4's contract (even
    when the relay turned the fake's 400 into a poison record the test expected)."""
    fake = Signl4Fake(httpserver)
    yield fake
    fake.released.set()
    httpserver.clear()
    fail_on_violations(fake.watch, "the loopback SIGNL4")


def fail_on_violations(watch: Watch, fake: str) -> None:
    """Teardown of a fake's fixture: every test that writes is a contract test."""
    verdict = watch.verdict(fake)
    if verdict is not None:
        pytest.fail(verdict, pytrace=False)


@pytest.fixture
def live_env(signl4: Signl4Fake, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Settings for a relay that really sends, to the loopback SIGNL4, with fast retries.

    The timeout and the retry budget are generous on purpose: the fake answers at once, and on
    a loaded machine a short timeout would turn a slow 201 into a retry (one SIGNL4 request
    more than the test counts). A test that needs the timeout to fire sets a small one and
    scripts "hang"."""
    env = {
        "SIGNL4_TEAM_SECRET": TEAM_SECRET,
        "SIGNL4_WEBHOOK_URL": signl4.base_url,
        "SIGNL4_TIMEOUT_SECONDS": GENEROUS_TIMEOUT,
        "SIGNL4_MAX_ATTEMPTS": "3",
        "SIGNL4_RETRY_BUDGET_SECONDS": "10",
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


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_STORY_TICKETS = itertools.count(700_000_001)


def story_ticket_id() -> int:
    """A fresh ticket per property-test story, counted across every module of the session:
    the in-memory store outlives the examples, and two modules' counters must never meet."""
    return next(_STORY_TICKETS)


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


# --- the Functions host, played host-less (over Azurite: tests/integration/conftest.py) ---

OUTBOX, POISON = "signl4-outbox", "signl4-outbox-poison"


class Harness:
    """Plays the Functions host: HTTP calls, output bindings onto Azurite, queue triggers.
    With storage "memory", the ledger is the in-memory store and the queues in-process ones."""

    def __init__(
        self, functions: dict[str, Callable[..., Any]], indexed: list[Any], storage: str
    ) -> None:
        self.functions = functions
        self.queues: Queues = MemoryQueues() if storage == "memory" else StorageQueues(storage)
        self.runner = QueueRunner(indexed, self.queues, visibility_timeout=1, max_dequeue_count=3)

    def clear(self, queue: str) -> None:
        """Drop every message of `queue` (as if its writer died before the output binding)."""
        if isinstance(self.queues, MemoryQueues):
            with self.queues._lock:
                self.queues._items[queue] = []
        else:
            self.queues._client(queue).clear_messages()

    def post(self, body: Any) -> tuple[int, dict]:
        response, queued = call_halopsa(self.functions, http_post(body))
        for message in queued:  # what the host does with the output binding
            self.queues.put(OUTBOX, message)
        return answer(response)

    def depth(self, queue: str) -> int:
        if isinstance(self.queues, MemoryQueues):
            return len(self.queues._items.get(queue, []))
        client = self.queues._client(queue)
        return int(client.get_queue_properties().approximate_message_count or 0)

    def drain(self, hang_guard_seconds: float = 300) -> None:
        """Run the queue functions until both queues are empty (invisible messages included).

        It waits on progress, not on the clock: each message is handled at most
        max_dequeue_count times and then moved to the poison queue, whose function only logs,
        so the queues empty on any machine. The clock is only a guard against a hang."""
        deadline = time.monotonic() + hang_guard_seconds
        handled = 0
        while self.depth(OUTBOX) or self.depth(POISON):
            assert time.monotonic() < deadline, (
                f"the outbox did not drain in {hang_guard_seconds:g}s: {handled} message(s) "
                f"handled, {self.depth(OUTBOX)} queued, {self.depth(POISON)} poison"
            )
            done = self.runner.run_once()
            handled += done
            if not done:
                time.sleep(0.1)  # messages wait out their visibility timeout


@pytest.fixture
def memory_harness(
    functions: dict, indexed_functions: list, live_env: dict, monkeypatch: pytest.MonkeyPatch
) -> Harness:
    """The host-less harness over the in-memory adapters: MemoryStore
    (AzureWebJobsStorage=memory) and in-process queues. No Azurite."""
    monkeypatch.setenv("AzureWebJobsStorage", "memory")
    return Harness(functions, indexed_functions, "memory")
