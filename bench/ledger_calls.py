"""6. The ledger's table calls as the delivery service makes them, in-process against the run's
private Azurite (`--ledger`)."""

from __future__ import annotations

import contextlib
import http.client
import statistics
import time
from collections.abc import Iterator, Sequence
from typing import Any

from bench.config import TEAM_SECRET, Counts
from bench.events import next_ticket_id
from bench.stats import summary

# The gap a relayed event leaves between two of the relay's table calls: the SIGNL4 call, and in
# the end-to-end part the direct request in between.
IDLE_SECONDS = 0.02


def _after_idle(store: Any, rounds: int, idle_seconds: float) -> dict[str, Any]:
    """The same create-if-absent call back to back, then each after `idle_seconds` of sleep:
    what the relay meets inside `serve`, where its calls are tens of ms apart. On a shared VM
    the idle one costs more wall and more CPU (cold caches, a slower-clocked core): the reason
    the phases inside `serve` show more per call than part 6's back-to-back rows."""
    from shared.adapters.store import Op

    out: dict[str, Any] = {"idle_ms": idle_seconds * 1000}
    for label, pause in (("back_to_back", 0.0), ("after_idle", idle_seconds)):
        walls: list[float] = []
        cpus: list[float] = []
        for n in range(rounds + 10):
            if pause:
                time.sleep(pause)
            wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
            store.commit(f"bench-idle-{next_ticket_id()}", [Op("create", "alert", {"Seq": 1})])
            if n >= 10:
                walls.append((time.perf_counter_ns() - wall) / 1e6)
                cpus.append((time.thread_time_ns() - cpu) / 1e6)
        out[label] = {"wall_ms": summary(walls), "client_cpu_ms_p50": statistics.median(cpus)}
    return out


def bench_ledger_calls(counts: Counts, connection: str, table_port: int) -> dict[str, Any]:
    """The ledger's table calls as the relay makes them, in-process: the delivery service's own
    HTTP path (shared.delivery.pages.deliver_halo_event) over the relay's own Ledger (as open_ledger
    builds it, same timeouts), with SIGNL4 answering at once, and every call its store makes
    timed. Two events per round on a new ticket: the first (`new ticket logged`, claimed by
    create-if-absent without a read) and a status change (`closed`: read, then claim).

    Wall time and this thread's CPU time per store call: the CPU is the client's share
    (building the request, signing, JSON, parsing the answer); the rest is waiting on Azurite. The calls are named by
    what the service sent (read; write: create/replace of the state row), so the labels follow
    the code. An unauthenticated keep-alive GET (answered 403) is Azurite's bare round trip.
    """
    from shared.adapters.sender import SendResult
    from shared.adapters.store import Op, PartitionStore, Row
    from shared.delivery.ledger import Ledger
    from shared.delivery.pages import Delivery, EventTrace, deliver_halo_event
    from shared.domain.halo import parse_event
    from shared.entry.storage import open_ledger
    from shared.settings import RelaySettings

    settings = RelaySettings.from_env(
        {"SIGNL4_TEAM_SECRET": TEAM_SECRET, "AzureWebJobsStorage": connection}
    )
    opened = open_ledger(settings)
    if not isinstance(opened, Ledger):
        raise SystemExit("the relay opened no ledger for AzureWebJobsStorage")
    made: list[tuple[str, float, float]] = []  # (call, wall ms, client CPU ms)

    class TimedStore:
        """The table store, each call timed and named by what it does."""

        def __init__(self, inner: PartitionStore) -> None:
            self.inner = inner

        def read(self, partition: str, row: str | None = None) -> dict[str, Row]:
            with timed("read"):
                return self.inner.read(partition, row)

        def commit(self, partition: str, ops: Sequence[Op]) -> dict[str, str]:
            with timed("write (" + ", ".join(f"{op.kind} {op.key}" for op in ops) + ")"):
                return self.inner.commit(partition, ops)

    @contextlib.contextmanager
    def timed(name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        try:
            yield
        finally:
            made.append(
                (name, (time.perf_counter_ns() - wall) / 1e6, (time.thread_time_ns() - cpu) / 1e6)
            )

    def signl4_at_once(payload: dict[str, Any], _: RelaySettings) -> SendResult:
        return SendResult(status_code=201, event_id="evt-bench")

    ledger = Ledger(TimedStore(opened.store), clock=opened.clock)
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    paths: dict[str, list[str]] = {}
    rounds = max(20, counts.e2e_requests // 3)
    for n in range(counts.warmup + rounds):
        ticket = next_ticket_id()
        for path, event in (("first event", "new ticket logged"), ("status change", "closed")):
            body = {"event": event, "object_id": ticket, "ticket": {"id": ticket, "summary": "b"}}
            made.clear()
            delivery = Delivery(settings, ledger, [], sender=signl4_at_once)
            outcome = deliver_halo_event(parse_event(body), delivery, EventTrace())
            if outcome.result != "sent":
                raise SystemExit(f"bench ledger: the {path} was answered {outcome.result!r}")
            paths[path] = [name for name, _, _ in made]
            if n < counts.warmup:
                continue
            for index, (name, wall_ms, cpu_ms) in enumerate(made, 1):
                label = f"{path} {index}: {name}"
                walls.setdefault(label, []).append(wall_ms)
                cpus.setdefault(label, []).append(cpu_ms)

    bare: list[float] = []
    connection_ = http.client.HTTPConnection("127.0.0.1", table_port, timeout=5)
    for n in range(counts.warmup + rounds):
        started = time.perf_counter_ns()
        connection_.request("GET", "/devstoreaccount1/Tables")
        connection_.getresponse().read()
        if n >= counts.warmup:
            bare.append((time.perf_counter_ns() - started) / 1e6)
    connection_.close()

    idle = _after_idle(opened.store, rounds, IDLE_SECONDS)

    calls = {
        label: {
            "wall_ms": summary(walls[label]),
            "client_cpu_ms_p50": statistics.median(cpus[label]),
        }
        for label in walls
    }

    def path_sum(path: str, key: str) -> float:
        return sum(
            (row["wall_ms"]["p50"] if key == "wall" else row["client_cpu_ms_p50"])
            for label, row in calls.items()
            if label.startswith(path + " ")
        )

    return {
        "rounds": rounds,
        "calls": calls,
        "calls_per_path": paths,
        "azurite_bare_round_trip_ms": summary(bare),
        "create_back_to_back_vs_after_idle": idle,
        "new_ticket_path_ms_p50": path_sum("first event", "wall"),
        "new_ticket_path_client_cpu_ms_p50": path_sum("first event", "cpu"),
        "status_change_path_ms_p50": path_sum("status change", "wall"),
        "status_change_path_client_cpu_ms_p50": path_sum("status change", "cpu"),
    }
