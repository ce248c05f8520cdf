"""The relay through `python -m devhost serve`, over real HTTP, as a user runs it locally."""

from __future__ import annotations

import json
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

from tests.conftest import TEAM_SECRET, Signl4Fake, fixture_bytes

REPO_ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    def __init__(self, proc: subprocess.Popen[str], base_url: str) -> None:
        self.proc = proc
        self.base_url = base_url
        self.output = ""


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


START_GUARD_SECONDS = 60


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


@pytest.fixture
def live_served(signl4: Signl4Fake, tmp_path: Path) -> Iterator[Served]:
    """The relay served from a folder whose local.settings.json points at the loopback SIGNL4."""
    settings = {
        "IsEncrypted": False,
        "Values": {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "SIGNL4_TEAM_SECRET": TEAM_SECRET,
            "SIGNL4_WEBHOOK_URL": signl4.base_url,
            "SIGNL4_BACKOFF_SECONDS": "0.01",
            "HALO_BASE_URL": "https://contoso.halopsa.com",
        },
    }
    (tmp_path / "local.settings.json").write_text(json.dumps(settings))
    served = start_serve(tmp_path, {})
    yield served
    stop_serve(served)


def test_serve_relays_a_halo_webhook_to_signl4(live_served: Served, signl4: Signl4Fake) -> None:
    response = requests.post(
        live_served.base_url + "/api/halopsa",
        data=fixture_bytes("webhook_new_full.json"),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["result"] == "sent"
    [event] = signl4.events
    assert event["X-S4-ExternalID"] == "HaloPSA-4243"
    assert event["Link"] == "https://contoso.halopsa.com/ticket?id=4243"

    health = requests.get(live_served.base_url + "/api/health", timeout=5).json()
    assert health["signl4"] == "configured"

    output = stop_serve(live_served)
    assert "LIVE" in output and "/api/halopsa" in output
    assert "relay externalId=HaloPSA-4243" in output  # the per-event log line reaches the console
    assert TEAM_SECRET not in output


def test_serve_answers_errors_as_json(live_served: Served, signl4: Signl4Fake) -> None:
    bad = requests.post(live_served.base_url + "/api/halopsa", data=b"{oops", timeout=10)
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_json")
    wrong_method = requests.get(live_served.base_url + "/api/halopsa", timeout=10)
    assert wrong_method.status_code == 405
    assert signl4.events == []


def test_serve_without_settings_is_a_dry_run(tmp_path: Path) -> None:
    served = start_serve(tmp_path, {})
    try:
        response = requests.post(
            served.base_url + "/api/halopsa", data=fixture_bytes("guide_new.json"), timeout=10
        )
        assert response.json()["result"] == "dry-run"
        assert (
            requests.get(served.base_url + "/api/health", timeout=5).json()["signl4"] == "dry-run"
        )
    finally:
        output = stop_serve(served)
    assert "DRY-RUN" in output and "SIGNL4_TEAM_SECRET is not set" in output
