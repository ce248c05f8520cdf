"""`python -m devhost serve` loses nothing, and a real crash between send and record does not
page twice: the relay process is killed (SIGKILL) the moment SIGNL4 receives its event."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import requests
from werkzeug import Request, Response

from shared.entry.storage import open_ledger
from shared.settings import RelaySettings
from tests.conftest import GENEROUS_TIMEOUT, TEAM_SECRET, Signl4Fake, new_ticket_id
from tests.integration.conftest import AZURITE_PORTS, Served, start_serve, stop_serve

FAST_QUEUE = (
    "--queue-visibility-timeout",
    "1",
    "--queue-poll-seconds",
    "0.1",
    "--max-dequeue-count",
    "20",
)


def relay_env(signl4: Signl4Fake, storage: str | None) -> dict[str, str]:
    env = {
        "SIGNL4_TEAM_SECRET": TEAM_SECRET,
        "SIGNL4_WEBHOOK_URL": signl4.base_url,
        "SIGNL4_BACKOFF_SECONDS": "0.01",
        # Generous: the fake answers at once, and a timed-out 201 would be retried (one SIGNL4
        # request more than the tests count) on a loaded machine.
        "SIGNL4_TIMEOUT_SECONDS": GENEROUS_TIMEOUT,
        "SIGNL4_RETRY_BUDGET_SECONDS": "10",
        # How long a sending mark means a live sender (150 s in Azure); a crash test waits it out.
        "RELAY_INFLIGHT_SECONDS": "4",
    }
    if storage:
        env["AzureWebJobsStorage"] = storage
    return env


def post_new(served: Served, ticket_id: int) -> requests.Response:
    body = {
        "event": "new ticket logged",
        "object_id": ticket_id,
        "ticket": {"id": ticket_id, "summary": "x"},
    }
    # Up to 3 attempts within the retry budget, plus storage calls: the cap is a hang guard.
    return requests.post(served.base_url + "/api/halopsa", json=body, timeout=60)


def kill_on_receive(holder: dict[str, Served]):
    def step(request: Request) -> Response:
        os.kill(holder["served"].proc.pid, signal.SIGKILL)
        return Response('{"eventId": "never-seen"}', status=201, mimetype="application/json")

    return step


def wait_for(condition, hang_guard_seconds: float = 120) -> None:
    """Waits until the condition holds; the clock only guards against a hang."""
    deadline = time.monotonic() + hang_guard_seconds
    while not condition():
        assert time.monotonic() < deadline, f"not reached in {hang_guard_seconds:g}s (hang guard)"
        time.sleep(0.1)


def ledger_entry(storage: str, external_id: str):
    ledger = open_ledger(RelaySettings.from_env({"AzureWebJobsStorage": storage}))
    assert ledger is not None
    state = ledger.read(external_id)
    return state if state.exists else None


def test_serve_without_storage_retries_queued_events_in_process(
    signl4: Signl4Fake, tmp_path: Path
) -> None:
    signl4.script(503, 503, 503, 503)
    served = start_serve(tmp_path, relay_env(signl4, None), *FAST_QUEUE)
    try:
        tid = new_ticket_id()
        response = post_new(served, tid)
        assert (response.status_code, response.json()["result"]) == (202, "queued")
        wait_for(lambda: len(signl4.events) >= 5)  # 3 inline; from the queue: 503, then 201
    finally:
        output = stop_serve(served)  # the runner finishes (and logs) the message in hand
    # Counted once the relay has stopped, so nothing sent late can be missed or race.
    assert len(signl4.events) == 5
    assert f"outbox externalId=HaloPSA-{tid} result=sent sent=1" in output
    assert "signl4_outbox: queue signl4-outbox on in-process queues" in output
    assert "AzureWebJobsStorage is not set" in output


def post_closed(served: Served, ticket_id: int) -> requests.Response:
    body = {"event": "closed", "object_id": ticket_id, "ticket": {"id": ticket_id, "summary": "x"}}
    return requests.post(served.base_url + "/api/halopsa", json=body, timeout=15)


@pytest.mark.parametrize("storage", [None, "memory"])
def test_serve_without_storage_keeps_its_ledger_in_memory(
    signl4: Signl4Fake, tmp_path: Path, storage: str | None
) -> None:
    """No AzureWebJobsStorage (or `memory`): the ledger is the in-memory one, so a redelivery
    is still answered `duplicate`, and the queues are in-process (never Azure's)."""
    served = start_serve(tmp_path, relay_env(signl4, storage), *FAST_QUEUE)
    try:
        tid = new_ticket_id()
        first = post_new(served, tid)
        again = post_new(served, tid)  # Halo redelivers the webhook
    finally:
        output = stop_serve(served)
    assert (first.status_code, first.json()["result"]) == (200, "sent")
    assert (again.status_code, again.json()["result"]) == (200, "duplicate")
    assert again.json()["eventId"] == first.json()["eventId"]
    assert len(signl4.events) == 1
    assert "ledger: in memory; lost when serve stops" in output
    assert "may be paged twice" not in output and "unrecorded" not in output
    assert "signl4_outbox: queue signl4-outbox on in-process queues" in output
    assert "storage queues" not in output and "unreachable" not in output
    reason = "AzureWebJobsStorage is not set" if storage is None else "AzureWebJobsStorage=memory"
    assert reason in output


def test_serve_without_storage_shares_one_ledger_between_http_and_queue(
    signl4: Signl4Fake, tmp_path: Path
) -> None:
    """The queue runner reads the mailbox the HTTP path wrote: a queued opening and the close
    behind it reach SIGNL4 once each and in order, and a late redelivery is a duplicate."""
    signl4.script(503, 503, 503)  # the opening's inline attempts; the queue then gets 201s
    served = start_serve(tmp_path, relay_env(signl4, None), *FAST_QUEUE)
    try:
        tid = new_ticket_id()
        opened = post_new(served, tid)
        closed = post_closed(served, tid)  # queued behind it, or sent once it was delivered
        wait_for(lambda: len(signl4.events) >= 5)
        redelivered = post_new(served, tid)
    finally:
        output = stop_serve(served)
    assert (opened.status_code, opened.json()["result"]) == (202, "queued")
    assert closed.json()["result"] in {"queued", "sent"}
    assert redelivered.json()["result"] == "duplicate"
    assert [event["X-S4-Status"] for event in signl4.events] == ["new"] * 4 + ["resolved"]
    assert "may be paged twice" not in output and "unrecorded" not in output


def test_serve_with_azurite_says_so(signl4: Signl4Fake, tmp_path: Path, storage_env: str) -> None:
    served = start_serve(tmp_path, relay_env(signl4, storage_env), *FAST_QUEUE)
    output = stop_serve(served)
    queue_port = AZURITE_PORTS[1]
    assert (
        f"signl4_outbox: queue signl4-outbox on storage queues at http://127.0.0.1:{queue_port}"
        in output
    )


def test_crash_after_send_before_record_http_path(
    signl4: Signl4Fake, tmp_path: Path, storage_env: str
) -> None:
    holder: dict[str, Served] = {}
    signl4.script(kill_on_receive(holder))
    env = relay_env(signl4, storage_env)
    holder["served"] = start_serve(tmp_path, env, *FAST_QUEUE)
    tid = new_ticket_id()
    with pytest.raises(requests.ConnectionError):
        post_new(holder["served"], tid)  # the relay dies while SIGNL4 takes the event
    stop_serve(holder["served"])
    assert len(signl4.events) == 1

    restarted = start_serve(tmp_path, env, *FAST_QUEUE)
    try:
        again = post_new(restarted, tid)  # Halo (or an engineer) redelivers the webhook
        assert (again.status_code, again.json()["result"]) == (200, "duplicate")
    finally:
        stop_serve(restarted)
    assert len(signl4.events) == 1
    entry = ledger_entry(storage_env, f"HaloPSA-{tid}")
    assert entry is not None and entry.status.value == "new" and entry.seq == 1


def test_crash_after_send_before_record_queue_path(
    signl4: Signl4Fake, tmp_path: Path, storage_env: str
) -> None:
    holder: dict[str, Served] = {}
    signl4.script(503, 503, 503, kill_on_receive(holder))
    env = relay_env(signl4, storage_env)
    holder["served"] = start_serve(tmp_path, env, *FAST_QUEUE)
    tid = new_ticket_id()
    assert post_new(holder["served"], tid).status_code == 202
    wait_for(lambda: holder["served"].proc.poll() is not None)  # the queue runner sent; killed
    stop_serve(holder["served"])
    assert len(signl4.events) == 4

    restarted = start_serve(tmp_path, env, *FAST_QUEUE)
    try:
        # The message reappears after its visibility timeout; the ledger's sending mark says
        # it was (presumably) delivered, so it is settled without a second page.
        wait_for(
            lambda: (
                (e := ledger_entry(storage_env, f"HaloPSA-{tid}")) is not None
                and e.delivered_seq == 1
            )
        )
    except AssertionError:
        pytest.fail("the queued event was not settled; relay output:\n" + stop_serve(restarted))
    output = stop_serve(restarted)  # the runner finishes (and logs) the message in hand
    assert len(signl4.events) == 4
    assert "presumed delivered before a crash" in output
