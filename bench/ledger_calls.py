"""6. The ledger's table calls, in-process against the run's private Azurite (`--ledger`)."""

from __future__ import annotations

import contextlib
import http.client
import statistics
import time
from collections.abc import Iterator
from typing import Any

from bench.config import TEAM_SECRET, Counts
from bench.events import next_ticket_id
from bench.stats import summary


def bench_ledger_calls(counts: Counts, connection: str, table_port: int) -> dict[str, Any]:
    """The relay's per-event table calls, in-process, through the relay's own Ledger.

    One new ticket per round: get (a miss), claim (create the state row), confirm (merge), then
    get (a hit, what a status change reads). Wall time and this thread's CPU time per call: the
    CPU is the client's share (azure-core pipeline, signing, JSON); the rest is waiting on
    Azurite. An unauthenticated keep-alive GET (answered 403) is Azurite's bare round trip.
    """
    from shared.halo import AlertStatus
    from shared.ledger import Ledger, open_ledger
    from shared.settings import RelaySettings

    settings = RelaySettings.from_env(
        {"SIGNL4_TEAM_SECRET": TEAM_SECRET, "AzureWebJobsStorage": connection}
    )
    ledger = open_ledger(settings)
    if not isinstance(ledger, Ledger):
        raise SystemExit("the relay opened no ledger for AzureWebJobsStorage")
    walls: dict[str, list[float]] = {k: [] for k in ("get miss", "claim", "confirm", "get hit")}
    cpus: dict[str, list[float]] = {k: [] for k in walls}

    @contextlib.contextmanager
    def timed(name: str, keep: bool) -> Iterator[None]:
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        yield
        if keep:
            walls[name].append((time.perf_counter_ns() - wall) / 1e6)
            cpus[name].append((time.thread_time_ns() - cpu) / 1e6)

    rounds = max(20, counts.e2e_requests // 3)
    for n in range(counts.warmup + rounds):
        external_id = f"HaloPSA-bench-{next_ticket_id()}"
        keep = n >= counts.warmup
        with timed("get miss", keep):
            entry = ledger.get(external_id)
        with timed("claim", keep):
            claimed = ledger.claim(external_id, AlertStatus.NEW, entry)
        with timed("confirm", keep):
            ledger.confirm(claimed, "evt-bench")
        with timed("get hit", keep):
            ledger.get(external_id)

    bare: list[float] = []
    connection_ = http.client.HTTPConnection("127.0.0.1", table_port, timeout=5)
    for n in range(counts.warmup + rounds):
        started = time.perf_counter_ns()
        connection_.request("GET", "/devstoreaccount1/Tables")
        connection_.getresponse().read()
        if n >= counts.warmup:
            bare.append((time.perf_counter_ns() - started) / 1e6)
    connection_.close()

    calls = {
        name: {
            "wall_ms": summary(walls[name]),
            "client_cpu_ms_p50": statistics.median(cpus[name]),
        }
        for name in walls
    }
    path = ("get miss", "claim", "confirm")
    return {
        "rounds": rounds,
        "calls": calls,
        "azurite_bare_round_trip_ms": summary(bare),
        "new_ticket_path_ms_p50": sum(calls[k]["wall_ms"]["p50"] for k in path),
        "new_ticket_path_client_cpu_ms_p50": sum(calls[k]["client_cpu_ms_p50"] for k in path),
    }
