"""4. Burst: many webhook events from a few keep-alive clients; did every one arrive?"""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any

from bench.config import Counts
from bench.events import webhook_event
from bench.processes import Client, fake_control, fake_stats


def bench_burst(counts: Counts, relay_port: int, fake_port: int, delay_ms: float) -> dict[str, Any]:
    fake_control(fake_port, delay_ms=delay_ms, reset=True)
    events = [webhook_event() for _ in range(counts.burst_events)]
    queue = iter(events)
    queue_lock = threading.Lock()
    failures: list[str] = []
    start = threading.Barrier(counts.burst_clients + 1)

    def client_loop() -> None:
        client = Client("127.0.0.1", relay_port)
        start.wait()
        while True:
            with queue_lock:
                item = next(queue, None)
            if item is None:
                break
            external_id, body = item
            try:
                status, answer = client.call("POST", "/api/halopsa", body)
                if status != 200 or json.loads(answer).get("result") != "sent":
                    failures.append(f"{external_id}: {status} {answer[:200]!r}")
            except (OSError, http.client.HTTPException) as error:
                failures.append(f"{external_id}: {type(error).__name__} {error}")
                client.close()
                client = Client("127.0.0.1", relay_port)
        client.close()

    threads = [threading.Thread(target=client_loop) for _ in range(counts.burst_clients)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    received = fake_stats(fake_port)
    expected = {external_id for external_id, _ in events}
    got = set(received["ids"])
    return {
        "events": counts.burst_events,
        "clients": counts.burst_clients,
        "fake_delay_ms": delay_ms,
        "seconds": elapsed,
        "events_per_s": counts.burst_events / elapsed,
        "relay_errors": len(failures),
        "first_errors": failures[:5],
        "fake_received": received["count"],
        "fake_distinct": received["distinct"],
        "missing": len(expected - got),
        "unexpected": len(got - expected),
        "all_arrived": received["count"] == counts.burst_events and got == expected,
    }
