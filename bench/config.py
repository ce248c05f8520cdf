"""What every measure shares: paths, the counts of a full and a quick run, and the environment the
relay runs in."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
FIXTURES = REPO_ROOT / "tests" / "fixtures"
PYTHON = sys.executable
TEAM_SECRET = "bench-TEAM-secret-7d3e"

# AzureWebJobsStorage). Stripped from the inherited environment so the relay runs as it does
# with no storage configured; pass them back explicitly with --env.
STRIPPED_PREFIXES = ("SIGNL4_", "HALO_", "RELAY_", "AZUREWEBJOBS")


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


def clean_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(STRIPPED_PREFIXES)}
    env.update(extra or {})
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # Azure serves from compiled bytecode too
    return env
