"""1. Cold start: `import function_app` in a fresh interpreter, next to a one-route app."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.config import BENCH_DIR, PYTHON, REPO_ROOT, Counts
from bench.stats import summary

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


_IMPORT_PROBE = """
import json, sys, time
t = time.perf_counter()
import {module}
elapsed = time.perf_counter() - t
heavy = {heavy!r}
print(json.dumps({{"seconds": elapsed, "loaded": [m for m in heavy if m in sys.modules]}}))
"""


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
