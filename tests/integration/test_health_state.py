"""GET /api/health reports storage, the outbox and poison backlog, the last delivery and Halo's
last call, with no secret, probing storage at most once per cache window (counted, not timed)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import azure.functions as func
import pytest

from devhost.functions import OutValue
from shared.adapters import remote_state
from shared.entry import health
from shared.entry.health import HealthCache, StorageState
from shared.settings import RelaySettings
from testkit.azurite import ACCOUNT_KEY as AZURITE_KEY
from tests.conftest import TEAM_SECRET, Signl4Fake, answer, fixture_json, http_post


@pytest.fixture(autouse=True)
def fresh_health(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own probe cache and no delivery recorded yet."""
    monkeypatch.setattr(health, "_cache", HealthCache())
    monkeypatch.setattr(remote_state, "_last_delivery", None)


def get_health(functions: dict) -> tuple[int, dict]:
    request = func.HttpRequest(
        method="GET", url="http://localhost/api/health", body=b"", headers={}
    )
    return answer(functions["health"](request))


def test_without_storage_it_says_off_and_nothing_delivered(functions: dict) -> None:
    code, body = get_health(functions)
    assert code == 200
    assert body["status"] == "ok"
    assert (body["storage"], body["outbox"], body["poison"], body["lastDelivery"]) == (
        "off",
        None,
        None,
        None,
    )


def test_memory_storage_is_named(functions: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", "memory")
    assert get_health(functions)[1]["storage"] == "memory"


def test_on_azurite_it_counts_the_backlog(functions: dict, storage_env: str) -> None:
    from azure.storage.queue import QueueServiceClient

    service = QueueServiceClient.from_connection_string(storage_env)
    for text in ("a", "b"):
        service.get_queue_client("signl4-outbox").send_message(text)
    service.get_queue_client("signl4-outbox-poison").send_message("c")
    code, body = get_health(functions)
    assert code == 200 and body["status"] == "ok"
    assert (body["storage"], body["outbox"], body["poison"]) == ("ok", 2, 1)
    text = json.dumps(body)
    assert AZURITE_KEY not in text and "devstoreaccount1" not in text


def test_unreachable_storage_is_degraded_but_200(
    functions: dict, monkeypatch: pytest.MonkeyPatch, unused_port: int
) -> None:
    monkeypatch.setenv(
        "AzureWebJobsStorage",
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"TableEndpoint=http://127.0.0.1:{unused_port}/devstoreaccount1;"
        f"QueueEndpoint=http://127.0.0.1:{unused_port}/devstoreaccount1;",
    )
    code, body = get_health(functions)
    assert (code, body["status"], body["storage"]) == (200, "degraded", "unreachable")
    assert body["outbox"] is None and str(unused_port) not in json.dumps(body)


def test_the_last_delivery_is_the_time_signl4_last_accepted(
    functions: dict, live_env: dict, signl4: Signl4Fake
) -> None:
    before = datetime.now(timezone.utc)
    signl4.script(500, 500, 500)  # not accepted: no delivery recorded
    functions["halopsa"](http_post(fixture_json("guide_new.json")), queued=OutValue())
    assert get_health(functions)[1]["lastDelivery"] is None
    response = functions["halopsa"](http_post(fixture_json("guide_new.json")), queued=OutValue())
    assert answer(response)[1]["result"] == "sent"
    code, body = get_health(functions)
    assert code == 200
    delivered = datetime.fromisoformat(body["lastDelivery"].replace("Z", "+00:00"))
    assert delivered >= before and body["lastDelivery"].endswith("Z")
    assert TEAM_SECRET not in json.dumps(body)


def test_the_probe_runs_once_per_window_per_storage() -> None:
    now = [100.0]
    probed: list[str | None] = []

    def prober(settings: RelaySettings) -> StorageState:
        probed.append(settings.storage_account_name)
        return StorageState("ok", len(probed), 0)

    cache = HealthCache(prober, ttl=5.0, clock=lambda: now[0])
    one = RelaySettings.from_env({"AzureWebJobsStorage__accountName": "one"})
    two = RelaySettings.from_env({"AzureWebJobsStorage__accountName": "two"})
    for _ in range(50):
        assert cache.state(one).outbox == 1
    assert cache.probes == 1
    now[0] += 4.999
    cache.state(one)
    assert cache.probes == 1
    cache.state(two)  # another storage: its own probe
    assert cache.probes == 2 and probed == ["one", "two"]
    now[0] += 0.001
    assert cache.state(one).outbox == 3  # the window has passed: probed again
    assert cache.probes == 3


def test_health_polled_repeatedly_probes_storage_once(
    functions: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = HealthCache(lambda settings: StorageState("ok", 0, 0), clock=lambda: 0.0)
    monkeypatch.setattr(health, "_cache", counting)
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "somewhere")
    for _ in range(20):
        assert get_health(functions)[1]["storage"] == "ok"
    assert counting.probes == 1


def test_the_last_halo_event_is_when_halo_last_called(
    functions: dict, live_env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote_state, "_last_halo_event", None)
    monkeypatch.setenv("HALO_WEBHOOK_USERNAME", "halo")
    monkeypatch.setenv("HALO_WEBHOOK_PASSWORD", "pa55-w0rd-halo")
    assert get_health(functions)[1]["lastHaloEvent"] is None
    stranger = http_post(fixture_json("guide_new.json"))  # no credentials: not Halo
    assert answer(functions["halopsa"](stranger, queued=OutValue()))[0] == 401
    assert get_health(functions)[1]["lastHaloEvent"] is None
    before = datetime.now(timezone.utc)
    token = base64.b64encode(b"halo:pa55-w0rd-halo").decode()
    halo = http_post(b"{not json", headers={"Authorization": f"Basic {token}"})
    assert answer(functions["halopsa"](halo, queued=OutValue()))[0] == 400  # still Halo calling
    called = get_health(functions)[1]["lastHaloEvent"]
    assert called.endswith("Z")
    assert datetime.fromisoformat(called.replace("Z", "+00:00")) >= before
