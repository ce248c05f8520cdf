"""Integration-tier parts: Azurite (from node_modules, by testkit/azurite.py), the relay's
storage on it, the host-less harness over it, and `python -m devhost serve` in a subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from testkit.azurite import DEFAULT_PORTS, AzuriteError, Ports
from testkit.azurite import azurite as azurite_running
from tests.conftest import Harness

REPO_ROOT = Path(__file__).resolve().parents[2]


def _azurite_ports() -> Ports:
    """Default ports, or RELAY_TEST_AZURITE_PORT (blob; queue and table follow) so that two
    suites can each have their own Azurite: two runners on one Azurite steal queue messages."""
    base = int(os.environ.get("RELAY_TEST_AZURITE_PORT") or DEFAULT_PORTS[0])
    return base, base + 1, base + 2


AZURITE_PORTS = _azurite_ports()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Azurite on AZURITE_PORTS (by default what UseDevelopmentStorage=true means); started
    from node_modules when nothing listens there yet, and stopped at the end of the session."""
    try:
        with azurite_running(AZURITE_PORTS, tmp_path_factory.mktemp("azurite")) as connection:
            yield connection
    except AzuriteError as error:
        pytest.fail(str(error))


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
def harness(functions: dict, indexed_functions: list, storage_env: str, live_env: dict) -> Harness:
    """The host-less harness over Azurite: TableStore ledger, storage queues."""
    return Harness(functions, indexed_functions, storage_env)


# --- `python -m devhost serve` in a subprocess ---


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    def __init__(self, proc: subprocess.Popen[str], base_url: str) -> None:
        self.proc = proc
        self.base_url = base_url
        self.output = ""


START_GUARD_SECONDS = 60


def start_serve(cwd: Path, env_overrides: dict[str, str], *args: str) -> Served:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNL4_", "HALO_", "RELAY_"))}
    env.update(env_overrides)
    env["PYTHONPATH"] = str(REPO_ROOT)
    # A run started in the background (nohup, `cmd &` in a script, some CI runners) ignores
    # SIGINT and a child inherits that, so stop_serve's Ctrl+C would wait out its guard and
    # kill. A caught SIGINT is reset to the default in the child, where Python turns it into
    # KeyboardInterrupt again.
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devhost", "serve", "--port", str(port), *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    served = Served(proc, f"http://127.0.0.1:{port}")
    # Waits until it answers; the clock only guards against a hang (a loaded machine may
    # take seconds to import the app, or to answer the first request once it listens).
    deadline = time.monotonic() + START_GUARD_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"serve exited {proc.returncode}: {proc.communicate()[0]}")
        try:
            requests.get(served.base_url + "/api/health", timeout=5)
            return served
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"serve did not answer within {START_GUARD_SECONDS} s")


def stop_serve(served: Served) -> str:
    """Ctrl+C, as a user stops it: the queue runner finishes the message in hand (and logs
    it) before the process ends, so the output is complete however slow the machine."""
    if served.proc.poll() is None:
        served.proc.send_signal(signal.SIGINT)
    try:
        served.output = served.proc.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        served.proc.kill()
        served.output = served.proc.communicate()[0]
    return served.output
