"""The relay through `python -m devhost serve`, over real HTTP, as a user runs it locally."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import TEAM_SECRET, Signl4Fake, fixture_bytes
from tests.integration.conftest import Served, start_serve, stop_serve


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
