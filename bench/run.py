"""Does the relay add anything a pager would notice? (issue #5)

    /work/venv/bin/python bench/run.py [--quick] [--ledger] [--env KEY=VALUE ...]

Run from the repo root with the project venv. Prints a table of measures beside their targets
(PASS/MISS) and writes JSON to bench/results/latest.json, or latest-ledger.json with --ledger
(plus a timestamped copy). Timing never fails the run: the exit code is 0 unless events went
missing (2) or a process would not start (1). See bench/README.md for what each measure means.

This file is the entry: the command line, the order of the parts and the results file. Each
measure has its module beside it (cold_start, cpu, e2e, burst, ledger_calls; the memory figures
come with e2e/burst), and the SIGNL4 fake and the Azurite launcher are testkit/'s, shared with
the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if (
    str(REPO_ROOT) not in sys.path
):  # run as `python bench/run.py`: bench/ is on the path, not the repo
    sys.path.insert(0, str(REPO_ROOT))

from bench.burst import bench_burst  # noqa: E402
from bench.cold_start import bench_cold_start  # noqa: E402
from bench.config import FULL, QUICK, RESULTS_DIR, TEAM_SECRET, Counts, clean_environ  # noqa: E402
from bench.cpu import bench_cpu  # noqa: E402
from bench.e2e import bench_e2e  # noqa: E402
from bench.ledger_calls import bench_ledger_calls  # noqa: E402
from bench.phases import read_phases  # noqa: E402
from bench.processes import free_port, proc_status_mb, running, start_fake, start_relay  # noqa: E402
from bench.report import render, targets  # noqa: E402
from testkit.azurite import SERVICES, AzuriteError, azurite  # noqa: E402


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
        help="serve the relay with this switch (repeatable), to measure without editing the app: "
        "quiet = `serve --log-level WARNING` (no per-request log lines), phases = RELAY_TIMING=1 "
        "(the relay's per-phase timings, shared/timing.py)",
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
        serve_args: list[str] = []
        if "phases" in args.relay_patch:
            relay_env["RELAY_TIMING"] = "1"
        if "quiet" in args.relay_patch:
            serve_args += ["--log-level", "WARNING"]
        relay, relay_port = start_relay(relay_env, RESULTS_DIR / "relay.log", serve_args)
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


@contextlib.contextmanager
def private_azurite(ports: tuple[int, int, int]) -> Iterator[str]:
    """A private, in-memory Azurite on free ports for this run (testkit/azurite.py); stopped
    afterwards. Its connection string.

    Not the shared one on 10000-10002: the relay's queue runner would take other people's
    signl4-outbox messages from it (and deliver them to our fake), and their load would land
    in our timings.
    """
    scratch = RESULTS_DIR / "azurite"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        with azurite(
            ports, scratch, reuse=False, log_path=scratch / "azurite.log", hang_guard_seconds=30
        ) as connection:
            yield connection
    except AzuriteError as error:
        raise SystemExit(f"--ledger needs Azurite: {error}") from None


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
            ports = (free_port(), free_port(), free_port())
            extra_env["AzureWebJobsStorage"] = stack.enter_context(private_azurite(ports))
            results["meta"]["azurite_ports"] = dict(zip(SERVICES, ports, strict=True))
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
