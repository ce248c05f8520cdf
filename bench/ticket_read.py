"""bench: what reading the ticket costs an event-only payload (issue 22 item 3).

    python bench/ticket_read.py [--events N] [--delay-ms MS]

POST /api/halopsa in-process (handle_halo_request, dry-run: no SIGNL4 secret, so the figure is
the decision and not SIGNL4's answer) with the Halo API credentials set, against the tests'
loopback Halo (testkit/halo_fake.py) answering GET /api/Tickets/{id} after --delay-ms:

- full: the full ticket in the payload (nothing read);
- event-only, cold: a new ticket per event, so each event reads it;
- event-only, cached: one ticket's burst, read once, then served by the 30 s cache.

Prints the median and p95 per kind and the reads Halo saw; it only reports (no target, and
no test reads it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def timed(body: dict[str, Any], environ: dict[str, str]) -> float:
    """Milliseconds for one POST /api/halopsa, which must be answered 200."""
    from shared.entry.halo_webhook import handle_halo_request

    started = time.perf_counter()
    answer = handle_halo_request(json.dumps(body).encode(), {}, environ, outbox=[], query={})
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200 or "incomplete" in answer.body:
        raise SystemExit(f"unexpected answer: {answer.status_code} {answer.body}")
    return elapsed


def event(tid: int, *, full: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"event": "ticket status changed", "object_id": tid}
    if full:
        body["ticket"] = {"id": tid, "summary": "Disk full", "status_id": 2, "priority_id": 1}
    return body


def report(name: str, samples: list[float]) -> None:
    cut = statistics.quantiles(samples, n=20)[-1] if len(samples) > 1 else samples[0]
    print(f"{name:<22} median {statistics.median(samples):7.2f} ms   p95 {cut:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    from testkit import halo_fake

    fake = halo_fake.start()
    delay = args.delay_ms / 1000
    environ = {
        "HALO_BASE_URL": fake.base_url,
        "HALO_CLIENT_ID": halo_fake.CLIENT_ID,
        "HALO_CLIENT_SECRET": halo_fake.CLIENT_SECRET,
        "RELAY_PAGE_PRIORITIES": "1",
    }
    try:
        first = 9_000_001
        ids = range(first, first + args.events)
        for tid in [*ids, first - 1]:
            fake.ticket_records[tid] = event(tid, full=True)["ticket"]
        if delay:  # Halo's own latency on every read (the fake answers at once)
            answer = fake._read
            fake._read = lambda request: (time.sleep(delay), answer(request))[1]
        timed(event(first - 1, full=False), environ)  # the token and the session, once
        report("full payload", [timed(event(tid, full=True), environ) for tid in ids])
        reads = len(fake.requests)
        report("event-only, cold", [timed(event(tid, full=False), environ) for tid in ids])
        cold_reads, burst = len(fake.requests) - reads, first - 1
        report("event-only, cached", [timed(event(burst, full=False), environ) for _ in ids])
        cached_reads = len(fake.requests) - reads - cold_reads
        print(
            f"Halo reads: {cold_reads} for {args.events} cold events, {cached_reads} for the burst"
        )
    finally:
        halo_fake.stop(fake)


if __name__ == "__main__":
    main()
