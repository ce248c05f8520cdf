"""3. End to end: relayed and direct requests, alternating, over keep-alive connections."""

from __future__ import annotations

import time
from typing import Any

from bench.config import TEAM_SECRET, Counts
from bench.events import check_sent, guide_event
from bench.processes import Client, fake_control, fake_stats
from bench.stats import summary


def bench_e2e(counts: Counts, relay_port: int, fake_port: int, delay_ms: float) -> dict[str, Any]:
    """Sequential, keep-alive. Direct and relayed requests alternate (and swap order each
    round) so the shared machine's noise lands on both series alike."""
    fake_control(fake_port, delay_ms=delay_ms, reset=True)
    relay = Client("127.0.0.1", relay_port)
    direct = Client("127.0.0.1", fake_port)
    webhook_path = f"/webhook/{TEAM_SECRET}"

    def via_relay() -> float:
        external_id, body = guide_event()
        started = time.perf_counter_ns()
        status, answer = relay.call("POST", "/api/halopsa", body)
        elapsed = (time.perf_counter_ns() - started) / 1e6
        check_sent(status, answer, external_id)
        return elapsed

    def straight() -> float:
        _, body = guide_event()
        started = time.perf_counter_ns()
        status, answer = direct.call("POST", webhook_path, body)
        elapsed = (time.perf_counter_ns() - started) / 1e6
        if status != 201:
            raise SystemExit(f"SIGNL4 fake answered {status} {answer!r}")
        return elapsed

    first_relay_ms = via_relay()  # the relay's first send imports requests and opens the pool
    for _ in range(counts.warmup):
        straight()
        via_relay()
    relay_ms: list[float] = []
    direct_ms: list[float] = []
    for round_no in range(counts.e2e_requests):
        if round_no % 2:
            relay_ms.append(via_relay())
            direct_ms.append(straight())
        else:
            direct_ms.append(straight())
            relay_ms.append(via_relay())
    relay.close()
    direct.close()
    sent = 2 * (1 + counts.warmup + counts.e2e_requests) - 1
    received = fake_stats(fake_port)
    relay_summary, direct_summary = summary(relay_ms), summary(direct_ms)
    return {
        "fake_delay_ms": delay_ms,
        "body": "guide_new.json, a distinct X-S4-ExternalID per request",
        "first_relayed_ms": first_relay_ms,
        "relay_ms": relay_summary,
        "direct_ms": direct_summary,
        "ratio_p50": relay_summary["p50"] / direct_summary["p50"],
        "ratio_p99": relay_summary["p99"] / direct_summary["p99"],
        "added_ms_p50": relay_summary["p50"] - direct_summary["p50"],
        # A relayed request 30+ ms slower than a typical direct one is a stall, not noise
        # (loopback Nagle + delayed ACK stalls are ~40 ms).
        "relay_stalled_share": sum(1 for ms in relay_ms if ms > direct_summary["p50"] + 30)
        / len(relay_ms),
        "relay_samples_ms": [round(ms, 3) for ms in relay_ms],
        "direct_samples_ms": [round(ms, 3) for ms in direct_ms],
        "fake_received": received["count"],
        "fake_expected": sent,
    }
