"""Does the relay add anything a pager would notice? (issue #5)

    /work/venv/bin/python bench/run.py [--quick] [--ledger] [--env KEY=VALUE ...]

Run from the repo root with the project venv. Prints a table of measures beside their targets
(PASS/MISS) and writes JSON to bench/results/latest.json, or latest-ledger.json with --ledger
(plus a timestamped copy). Timing never fails the run: the exit code is 0 unless events went
missing (2) or a process would not start (1). See bench/README.md for what each measure means.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import math
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
FIXTURES = REPO_ROOT / "tests" / "fixtures"
PYTHON = sys.executable
TEAM_SECRET = "bench-TEAM-secret-7d3e"
AZURITE = REPO_ROOT / "node_modules" / ".bin" / "azurite"
# Azurite's published development account key (the same for every Azurite; not a secret).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# Settings the relay reads, or that switch on optional features (the delivery ledger reads
# AzureWebJobsStorage). Stripped from the inherited environment so the relay runs as it does
# with no storage configured; pass them back explicitly with --env.
STRIPPED_PREFIXES = ("SIGNL4_", "HALO_", "RELAY_", "AZUREWEBJOBS")

# Modules the relay must not pay for at cold start: the SIGNL4 client (requests) loads on the
# first send; storage/identity SDKs belong to optional features.
HEAVY_MODULES = (
    "urllib3",
    "requests",
    "azure.core",
    "azure.identity",
    "azure.data.tables",
    "azure.storage.queue",
)

SHAPES = {
    "webhook small": "webhook_new_small.json",
    "webhook full ticket": "webhook_new_full.json",
    "guide body": "guide_new.json",
}


@dataclass(frozen=True)
class Counts:
    cold_runs: int
    cpu_iterations: int
    e2e_requests: int
    burst_events: int
    burst_clients: int
    warmup: int


FULL = Counts(
    cold_runs=15,
    cpu_iterations=5000,
    e2e_requests=600,
    burst_events=2000,
    burst_clients=4,
    warmup=30,
)
QUICK = Counts(
    cold_runs=3, cpu_iterations=400, e2e_requests=40, burst_events=200, burst_clients=4, warmup=5
)


# --- statistics ------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": statistics.median(values),
        "p99": percentile(values, 99),
        "min": min(values),
        "max": max(values),
    }


# --- 1. cold start ---------------------------------------------------------------------------

_IMPORT_PROBE = """
import json, sys, time
t = time.perf_counter()
import {module}
elapsed = time.perf_counter() - t
heavy = {heavy!r}
print(json.dumps({{"seconds": elapsed, "loaded": [m for m in heavy if m in sys.modules]}}))
"""


def clean_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(STRIPPED_PREFIXES)}
    env.update(extra or {})
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # Azure serves from compiled bytecode too
    return env


def probe_import(module: str, cwd: Path, env: Mapping[str, str]) -> dict[str, Any]:
    code = _IMPORT_PROBE.format(module=module, heavy=HEAVY_MODULES)
    done = subprocess.run(
        [PYTHON, "-c", code], cwd=cwd, env=dict(env), capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def import_times(module: str, cwd: Path, env: Mapping[str, str]) -> dict[str, tuple[int, int]]:
    """`-X importtime`: module -> (self us, cumulative us)."""
    done = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", f"import {module}"],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        check=True,
    )
    times: dict[str, tuple[int, int]] = {}
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            times[match.group(4)] = (int(match.group(1)), int(match.group(2)))
    return times


def bench_cold_start(counts: Counts, env: Mapping[str, str]) -> dict[str, Any]:
    relay: list[float] = []
    minimal: list[float] = []
    loaded: set[str] = set()
    # Interleaved, so a burst of noise on the shared machine hits both sides alike.
    # One unmeasured run of each first: it writes __pycache__ (a deployed app ships it warm).
    probe_import("function_app", REPO_ROOT, env)
    probe_import("minimal_app", BENCH_DIR, env)
    for _ in range(counts.cold_runs):
        result = probe_import("function_app", REPO_ROOT, env)
        relay.append(result["seconds"] * 1000)
        loaded.update(result["loaded"])
        minimal.append(probe_import("minimal_app", BENCH_DIR, env)["seconds"] * 1000)
    relay_modules = import_times("function_app", REPO_ROOT, env)
    minimal_modules = import_times("minimal_app", BENCH_DIR, env)
    added = {m: t for m, t in relay_modules.items() if m not in minimal_modules}
    top = sorted(added.items(), key=lambda item: item[1][0], reverse=True)[:8]
    added_packages: dict[str, int] = {}
    for module, (self_us, _) in added.items():
        root = module.split(".")[0]
        added_packages[root] = added_packages.get(root, 0) + self_us
    return {
        "relay_ms": summary(relay),
        "minimal_ms": summary(minimal),
        "added_ms_p50": statistics.median(relay) - statistics.median(minimal),
        "heavy_loaded": sorted(loaded),
        "heavy_not_loaded": [m for m in HEAVY_MODULES if m not in loaded],
        "added_modules": len(added),
        "added_by_package_ms": {
            k: round(v / 1000, 2)
            for k, v in sorted(added_packages.items(), key=lambda kv: -kv[1])[:6]
        },
        "added_top_self_ms": {module: round(t[0] / 1000, 2) for module, t in top},
    }


# --- 2. CPU per event ------------------------------------------------------------------------


def bench_cpu(counts: Counts) -> dict[str, Any]:
    from shared import relay
    from shared.halo import parse_event, parse_json_body
    from shared.policy import decide
    from shared.settings import RelaySettings
    from shared.signl4 import build_payload

    settings = RelaySettings.from_env(
        {
            "SIGNL4_TEAM_SECRET": TEAM_SECRET,
            "SIGNL4_WEBHOOK_URL": "http://127.0.0.1:9/webhook/",
            "HALO_BASE_URL": "https://contoso.halopsa.com/",
        }
    )
    dry_env = {"RELAY_DRY_RUN": "true", "HALO_BASE_URL": "https://contoso.halopsa.com/"}
    headers = {"content-type": "application/json"}

    def core(body: bytes) -> None:
        event = parse_event(parse_json_body(body))
        decision = decide(event, settings)
        if decision.status is not None:
            build_payload(event, decision, settings)

    def handler(body: bytes) -> None:
        relay.handle_halo_request(body, headers, dry_env)

    results: dict[str, Any] = {}
    for label, fixture in SHAPES.items():
        body = (FIXTURES / fixture).read_bytes()
        for kind, work in (("core", core), ("handler dry-run", handler)):
            for _ in range(max(200, counts.cpu_iterations // 10)):
                work(body)
            samples: list[float] = []
            clock = time.perf_counter_ns
            for _ in range(counts.cpu_iterations):
                started = clock()
                work(body)
                samples.append((clock() - started) / 1000)
            results[f"{label} | {kind}"] = {"bytes": len(body), **summary(samples)}
    return results


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_fake(delay_ms: float) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [PYTHON, str(BENCH_DIR / "signl4_fake.py"), "--delay-ms", str(delay_ms)],
        stdout=subprocess.PIPE,
        stderr=None,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"SIGNL4 fake did not start (said {line!r})")
    return proc, int(line.split()[1])


def start_relay(
    env: Mapping[str, str], log_path: Path, patches: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], int]:
    """`python -m devhost serve` from a scratch directory holding only a copy of host.json.

    Not from the repo root: serve reads local.settings.json from its working directory, and a
    developer's copy (the sample sets AzureWebJobsStorage) would leak settings into the run.
    """
    workdir = RESULTS_DIR / "relay-cwd"
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "host.json", workdir / "host.json")
    port = free_port()
    log = log_path.open("wb")
    # With --relay-patch, the same serve behind bench/patched_serve.py's monkeypatches.
    launcher = ["-m", "devhost"]
    if patches:
        launcher = [str(BENCH_DIR / "patched_serve.py")]
        for patch in patches:
            launcher += ["--patch", patch]
    proc = subprocess.Popen(
        [PYTHON, *launcher, "serve", "--port", str(port)],
        cwd=workdir,
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"relay exited {proc.returncode}; see {log_path}")
        try:
            status, body = Client("127.0.0.1", port).call("GET", "/api/health")
        except OSError:
            time.sleep(0.05)
            continue
        if status != 200 or json.loads(body).get("signl4") != "configured":
            proc.kill()
            raise SystemExit(f"relay is not live: /api/health answered {status} {body!r}")
        return proc, port
    proc.kill()
    raise SystemExit(f"relay did not answer within 30 s; see {log_path}")


def proc_status_mb(pid: int, field: str) -> float | None:
    """A memory field of a live process from /proc (VmHWM: peak resident set; VmRSS: now), MB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


class Client:
    """One keep-alive HTTP/1.1 connection (http.client sends head and body in one write)."""

    def __init__(self, host: str, port: int) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=30)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


def fake_control(port: int, **command: Any) -> None:
    client = Client("127.0.0.1", port)
    client.call("POST", "/control", json.dumps(command).encode())
    client.close()


def fake_stats(port: int) -> dict[str, Any]:
    client = Client("127.0.0.1", port)
    _, body = client.call("GET", "/stats")
    client.close()
    stats: dict[str, Any] = json.loads(body)
    return stats


# --- events ----------------------------------------------------------------------------------

# Distinct ticket ids across runs too (a persistent ledger would call a repeat a duplicate).
_ticket_ids = itertools.count((int(time.time()) % 10**6) * 10**4)
_GUIDE = json.loads((FIXTURES / "guide_new.json").read_bytes())
_WEBHOOK = json.loads((FIXTURES / "webhook_new_small.json").read_bytes())


def guide_event() -> tuple[str, bytes]:
    ticket = next(_ticket_ids)
    body = dict(_GUIDE, **{"X-S4-ExternalID": f"HaloPSA-{ticket}"})
    body["Link"] = f"https://contoso.halopsa.com/ticket?id={ticket}"
    return f"HaloPSA-{ticket}", json.dumps(body).encode()


def webhook_event() -> tuple[str, bytes]:
    ticket = next(_ticket_ids)
    body = dict(_WEBHOOK, object_id=ticket, ticket=dict(_WEBHOOK["ticket"], id=ticket))
    return f"HaloPSA-{ticket}", json.dumps(body).encode()


def check_sent(status: int, body: bytes, external_id: str) -> None:
    answer = json.loads(body)
    if status != 200 or answer.get("result") != "sent" or answer.get("externalId") != external_id:
        raise SystemExit(f"relay did not send {external_id}: {status} {body[:300]!r}")


# --- 3. end to end ---------------------------------------------------------------------------


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


# --- 4. burst --------------------------------------------------------------------------------


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


# --- Azurite and the ledger's table calls ---------------------------------------------------


def azurite_connection(ports: Mapping[str, int]) -> str:
    """A connection string for Azurite's well-known development account on these ports."""
    base = "http://127.0.0.1:{}/devstoreaccount1"
    return (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={base.format(ports['blob'])};QueueEndpoint={base.format(ports['queue'])};"
        f"TableEndpoint={base.format(ports['table'])};"
    )


@contextlib.contextmanager
def private_azurite() -> Iterator[dict[str, int]]:
    """A private, in-memory Azurite on free ports for this run; stopped afterwards.

    Not the shared one on 10000-10002: the relay's queue runner would take other people's
    signl4-outbox messages from it (and deliver them to our fake), and their load would land
    in our timings.
    """
    if not AZURITE.is_file():
        raise SystemExit(
            f"--ledger needs Azurite: {AZURITE} is missing; run `npm ci` in the repo root"
        )
    scratch = RESULTS_DIR / "azurite"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    ports = {"blob": free_port(), "queue": free_port(), "table": free_port()}
    command = [str(AZURITE), "--inMemoryPersistence", "--disableTelemetry"]
    command += ["--skipApiVersionCheck", "--silent"]  # cwd is the scratch folder
    for service, port in ports.items():
        command += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port)]
    log = (scratch / "azurite.log").open("wb")
    proc = subprocess.Popen(command, cwd=scratch, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    with running(proc):
        deadline = time.monotonic() + 30
        while not all(listening(port) for port in ports.values()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"Azurite did not start; see {scratch / 'azurite.log'}")
            time.sleep(0.1)
        yield ports


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def bench_ledger_calls(counts: Counts, connection: str, table_port: int) -> dict[str, Any]:
    """The ledger's table calls as the relay makes them, in-process: the delivery service's own
    HTTP path (shared.delivery.deliver_halo_event) over the relay's own Ledger (as open_ledger
    builds it, same timeouts), with SIGNL4 answering at once, and every call its store makes
    timed. Two events per round on a new ticket: the first (`new ticket logged`, claimed by
    create-if-absent without a read) and a status change (`closed`: read, then claim).

    Wall time and this thread's CPU time per store call: the CPU is the client's share
    (azure-core pipeline, signing, JSON); the rest is waiting on Azurite. The calls are named by
    what the service sent (read; write: create/replace of the state row), so the labels follow
    the code. An unauthenticated keep-alive GET (answered 403) is Azurite's bare round trip.
    """
    from shared.delivery import Delivery, EventTrace, deliver_halo_event
    from shared.halo import parse_event
    from shared.ledger import Ledger, open_ledger
    from shared.settings import RelaySettings
    from shared.signl4_client import SendResult
    from shared.store import Op, PartitionStore, Row

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
        ticket = next(_ticket_ids)
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
        "new_ticket_path_ms_p50": path_sum("first event", "wall"),
        "new_ticket_path_client_cpu_ms_p50": path_sum("first event", "cpu"),
        "status_change_path_ms_p50": path_sum("status change", "wall"),
        "status_change_path_client_cpu_ms_p50": path_sum("status change", "cpu"),
    }


# --- report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measured: str
    passed: bool | None  # None: not measured in this run


def targets(results: Mapping[str, Any]) -> list[Target]:
    found: list[Target] = []
    cold = results.get("cold_start")
    if cold:
        added = cold["added_ms_p50"]
        found.append(Target("cold start added (p50)", "<= 100 ms", f"{added:.1f} ms", added <= 100))
    cpu = results.get("cpu_per_event_us")
    if cpu:
        core = {k: v for k, v in cpu.items() if k.endswith("| core")}
        worst_p50 = max(v["p50"] for v in core.values())
        worst_p99 = max(v["p99"] for v in core.values())
        found.append(
            Target(
                "CPU/event median (worst shape)", "< 300 us", f"{worst_p50:.0f} us", worst_p50 < 300
            )
        )
        found.append(
            Target(
                "CPU/event p99 (worst shape)", "< 1000 us", f"{worst_p99:.0f} us", worst_p99 < 1000
            )
        )
    e2e = results.get("e2e")
    if e2e:
        ratio = e2e["ratio_p50"]
        found.append(
            Target("end-to-end relay/direct p50", "<= 1.10", f"{ratio:.3f}", ratio <= 1.10)
        )
    burst = results.get("burst")
    if burst:
        rate = burst["events_per_s"]
        found.append(Target("burst, one worker", ">= 500 ev/s", f"{rate:.0f} ev/s", rate >= 500))
        found.append(
            Target(
                "burst: every event arrived",
                "all",
                f"{burst['fake_distinct']}/{burst['events']}",
                bool(burst["all_arrived"]),
            )
        )
    memory = results.get("memory_mb")
    if memory and memory.get("peak_after_burst") is not None:
        peak = memory["peak_after_burst"]
        found.append(Target("relay peak RSS (VmHWM)", "< 120 MB", f"{peak:.1f} MB", peak < 120))
    return found


def render(results: Mapping[str, Any]) -> str:
    lines: list[str] = []
    cold = results.get("cold_start")
    if cold:
        lines += [
            "1. Cold start: import time in a fresh interpreter (ms, "
            f"n={cold['relay_ms']['n']} each, interleaved)",
            f"   function_app   p50 {cold['relay_ms']['p50']:7.1f}   p99 {cold['relay_ms']['p99']:7.1f}",
            f"   minimal_app    p50 {cold['minimal_ms']['p50']:7.1f}   p99 {cold['minimal_ms']['p99']:7.1f}",
            f"   added by the relay: {cold['added_ms_p50']:.1f} ms (p50 difference)",
            f"   by package (self time, one -X importtime run): {cold['added_by_package_ms']}",
            f"   not imported at cold start: {', '.join(cold['heavy_not_loaded']) or '-'}",
            f"   imported at cold start (should be none): {', '.join(cold['heavy_loaded']) or 'none'}",
            "",
        ]
    cpu = results.get("cpu_per_event_us")
    if cpu:
        lines.append(
            "2. CPU per event, in-process (us): core = parse_json_body+parse_event+decide+build_payload;"
        )
        lines.append(
            "   handler dry-run = relay.handle_halo_request with RELAY_DRY_RUN (info only)"
        )
        for name, row in cpu.items():
            lines.append(
                f"   {name:<36} {row['bytes']:5d} B  p50 {row['p50']:7.1f}  p99 {row['p99']:7.1f}"
            )
        lines.append("")
    e2e = results.get("e2e")
    if e2e:
        r, d = e2e["relay_ms"], e2e["direct_ms"]
        lines += [
            f"3. End to end, sequential keep-alive, SIGNL4 fake delay {e2e['fake_delay_ms']:g} ms "
            f"(ms, n={r['n']} each, alternating)",
            f"   direct to SIGNL4 fake   p50 {d['p50']:7.2f}   p99 {d['p99']:7.2f}",
            f"   through the relay       p50 {r['p50']:7.2f}   p99 {r['p99']:7.2f}",
            f"   relay/direct            p50 {e2e['ratio_p50']:7.3f}   p99 {e2e['ratio_p99']:7.3f}"
            f"   (added {e2e['added_ms_p50']:.2f} ms at p50)",
            f"   relayed requests stalled 30+ ms past direct p50: {e2e['relay_stalled_share']:.0%}",
            f"   first relayed event after start: {e2e['first_relayed_ms']:.1f} ms "
            "(imports requests, opens the pool)",
            f"   SIGNL4 fake received {e2e['fake_received']} of {e2e['fake_expected']} sent",
            "",
        ]
    burst = results.get("burst")
    if burst:
        lines += [
            f"4. Burst: {burst['events']} webhook events, {burst['clients']} keep-alive clients, "
            f"SIGNL4 fake delay {burst['fake_delay_ms']:g} ms",
            f"   {burst['events_per_s']:.0f} events/s ({burst['seconds']:.2f} s); relay errors "
            f"{burst['relay_errors']}; fake received {burst['fake_received']} "
            f"({burst['fake_distinct']} distinct), missing {burst['missing']}, "
            f"unexpected {burst['unexpected']}",
            "",
        ]
    phases = results.get("relay_phases_ms")
    if phases:
        lines.append("   inside the relay (--relay-patch phases; ms, e2e and burst together):")
        for name, row in phases.items():
            lines.append(
                f"   {name:<16} n={row['n']:<5} p50 {row['p50']:6.2f}   p99 {row['p99']:6.2f}"
            )
        lines.append("")
    ledger = results.get("ledger_calls")
    if ledger:
        lines.append(
            f"6. Ledger table calls of the delivery service, in-process against Azurite "
            f"({ledger['rounds']} new tickets, two events each; ms; client CPU = this thread's "
            "CPU time)"
        )
        for name, row in ledger["calls"].items():
            wall = row["wall_ms"]
            lines.append(
                f"   {name:<52} p50 {wall['p50']:6.2f}   p99 {wall['p99']:6.2f}   "
                f"client CPU p50 {row['client_cpu_ms_p50']:5.2f}"
            )
        bare = ledger["azurite_bare_round_trip_ms"]
        per_path = ledger["calls_per_path"]
        lines += [
            f"   Azurite bare round trip (unauthenticated GET, 403) p50 {bare['p50']:.2f}",
            f"   a ticket's first event ({len(per_path['first event'])} calls) p50 "
            f"{ledger['new_ticket_path_ms_p50']:.2f} ms, of which client CPU "
            f"{ledger['new_ticket_path_client_cpu_ms_p50']:.2f} ms",
            f"   a status change ({len(per_path['status change'])} calls) p50 "
            f"{ledger['status_change_path_ms_p50']:.2f} ms, of which client CPU "
            f"{ledger['status_change_path_client_cpu_ms_p50']:.2f} ms",
            "",
        ]
    memory = results.get("memory_mb")
    if memory:

        def mb(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f}"

        lines += [
            "5. Relay process memory (MB): "
            f"RSS at start {mb(memory.get('rss_at_start'))}, "
            f"peak after end-to-end {mb(memory.get('peak_after_e2e'))}, "
            f"peak after burst {mb(memory.get('peak_after_burst'))}",
            "",
        ]
    found = targets(results)
    width = max((len(t.name) for t in found), default=10)
    lines.append("Targets")
    for target in found:
        verdict = "PASS" if target.passed else "MISS"
        lines.append(
            f"   {target.name:<{width}}  {target.goal:>12}  {target.measured:>12}  {verdict}"
        )
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--env wants KEY=VALUE, got {pair!r}")
        env[key.strip()] = value
    return env


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Benchmark the HaloPSA -> SIGNL4 relay.")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--cold-runs", type=int, help=f"default {FULL.cold_runs}")
    parser.add_argument("--cpu-iterations", type=int, help=f"default {FULL.cpu_iterations}")
    parser.add_argument("--e2e-requests", type=int, help=f"per side; default {FULL.e2e_requests}")
    parser.add_argument("--burst-events", type=int, help=f"default {FULL.burst_events}")
    parser.add_argument("--burst-clients", type=int, help=f"default {FULL.burst_clients}")
    parser.add_argument(
        "--delay-ms", type=float, default=20.0, help="SIGNL4 fake delay, end to end (%(default)s)"
    )
    parser.add_argument(
        "--burst-delay-ms", type=float, default=0.0, help="SIGNL4 fake delay, burst (%(default)s)"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra relay setting (repeatable), e.g. --env AzureWebJobsStorage=UseDevelopmentStorage=true",
    )
    parser.add_argument(
        "--ledger",
        action="store_true",
        help="run the relay with the delivery ledger (and storage queues) on a private, "
        "in-memory Azurite started from node_modules for the run, and time the ledger's "
        "table calls in-process",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=["cold", "cpu", "e2e", "burst", "ledger"],
        help="run only these parts (repeatable); memory comes with e2e/burst; "
        "ledger (the table-call timings) needs --ledger",
    )
    parser.add_argument(
        "--relay-patch",
        action="append",
        default=[],
        choices=["quiet", "phases"],
        help="serve the relay through bench/patched_serve.py with this monkeypatch (repeatable), "
        "to measure a change without editing the app",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="JSON path (default bench/results/latest.json, latest-ledger.json with --ledger)",
    )
    return parser


def git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def run_servers(
    args: argparse.Namespace,
    counts: Counts,
    parts: set[str],
    extra_env: Mapping[str, str],
    results: dict[str, Any],
) -> bool:
    """Parts 3-5 against a live SIGNL4 fake and relay. False if the burst lost an event."""
    verified = True
    if not parts & {"e2e", "burst"}:
        return verified
    print("... starting SIGNL4 fake and relay", file=sys.stderr, flush=True)
    fake, fake_port = start_fake(args.delay_ms)
    with running(fake):
        relay_env = clean_environ(
            {
                "SIGNL4_TEAM_SECRET": TEAM_SECRET,
                "SIGNL4_WEBHOOK_URL": f"http://127.0.0.1:{fake_port}/webhook/",
                **extra_env,
            }
        )
        relay, relay_port = start_relay(relay_env, RESULTS_DIR / "relay.log", args.relay_patch)
        with running(relay):
            memory: dict[str, float | None] = {"rss_at_start": proc_status_mb(relay.pid, "VmRSS")}
            results["memory_mb"] = memory
            if "e2e" in parts:
                print("... end to end", file=sys.stderr, flush=True)
                results["e2e"] = bench_e2e(counts, relay_port, fake_port, args.delay_ms)
                memory["peak_after_e2e"] = proc_status_mb(relay.pid, "VmHWM")
            if "burst" in parts:
                print("... burst", file=sys.stderr, flush=True)
                results["burst"] = bench_burst(counts, relay_port, fake_port, args.burst_delay_ms)
                verified = bool(results["burst"]["all_arrived"])
            memory["peak_after_burst"] = proc_status_mb(relay.pid, "VmHWM")
    if "phases" in args.relay_patch:
        results["relay_phases_ms"] = read_phases(RESULTS_DIR / "relay.log")
    return verified


def read_phases(log_path: Path) -> dict[str, dict[str, float]]:
    """`PHASE <name> <ms>` lines written by patched_serve.py's `phases` patch, summarised."""
    samples: dict[str, list[float]] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("PHASE "):
            _, name, ms = line.split()
            samples.setdefault(name, []).append(float(ms))
    return {name: summary(values) for name, values in samples.items()}


def run_parts(
    args: argparse.Namespace,
    counts: Counts,
    parts: set[str],
    extra_env: Mapping[str, str],
    results: dict[str, Any],
) -> bool:
    """Every selected part, in order. False if the burst lost an event."""
    probe_env = clean_environ(extra_env)  # a setting may change what loads at cold start
    if "cold" in parts:
        print("... cold start", file=sys.stderr, flush=True)
        results["cold_start"] = bench_cold_start(counts, probe_env)
    if "cpu" in parts:
        print("... CPU per event", file=sys.stderr, flush=True)
        results["cpu_per_event_us"] = bench_cpu(counts)
    verified = run_servers(args, counts, parts, extra_env, results)
    if "ledger" in parts:
        print("... ledger table calls", file=sys.stderr, flush=True)
        connection = extra_env["AzureWebJobsStorage"]
        table_port = int(results["meta"]["azurite_ports"]["table"])
        results["ledger_calls"] = bench_ledger_calls(counts, connection, table_port)
    return verified


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    base = QUICK if args.quick else FULL
    counts = Counts(
        cold_runs=args.cold_runs or base.cold_runs,
        cpu_iterations=args.cpu_iterations or base.cpu_iterations,
        e2e_requests=args.e2e_requests or base.e2e_requests,
        burst_events=args.burst_events or base.burst_events,
        burst_clients=args.burst_clients or base.burst_clients,
        warmup=base.warmup,
    )
    parts = set(args.only or ["cold", "cpu", "e2e", "burst", "ledger"])
    extra_env = parse_env(args.env)
    if not args.ledger:
        parts.discard("ledger")
    elif "AzureWebJobsStorage" in extra_env:
        raise SystemExit("--ledger starts its own Azurite: drop --env AzureWebJobsStorage")
    suffix = "-ledger" if args.ledger else ""
    output: Path = args.output or RESULTS_DIR / f"latest{suffix}.json"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results: dict[str, Any] = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "commit": git_commit(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_before": os.getloadavg(),
            "counts": counts.__dict__,
            "quick": args.quick,
            "extra_relay_settings": sorted(extra_env),  # names only: values may be secrets
            "relay_patches": args.relay_patch,
            "ledger": args.ledger,
        }
    }
    with contextlib.ExitStack() as stack:
        if args.ledger:
            # Started first: the cold-start probe sees the same settings as the relay.
            ports = stack.enter_context(private_azurite())
            extra_env["AzureWebJobsStorage"] = azurite_connection(ports)
            results["meta"]["azurite_ports"] = ports
        verified = run_parts(args, counts, parts, extra_env, results)
    results["meta"]["seconds"] = time.time() - started
    results["meta"]["loadavg_after"] = os.getloadavg()
    results["targets"] = [t.__dict__ for t in targets(results)]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    stamped = RESULTS_DIR / time.strftime(
        f"run-%Y%m%d-%H%M%S{suffix}.json", time.localtime(started)
    )
    stamped.write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))
    print(f"\nJSON: {output} (copy: {stamped}); run took {results['meta']['seconds']:.0f} s")
    return 0 if verified else 2


if __name__ == "__main__":
    sys.exit(main())
