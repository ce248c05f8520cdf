"""The relay's own phase timings: `PHASE <name> <ms>` lines that the relay writes to its log when
RELAY_TIMING=1 (shared/timing.py), summarised per phase."""

from __future__ import annotations

from pathlib import Path

from bench.stats import summary


def read_phases(log_path: Path) -> dict[str, dict[str, float]]:
    """`PHASE <name> <ms>` lines written by patched_serve.py's `phases` patch, summarised."""
    samples: dict[str, list[float]] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("PHASE "):
            _, name, ms = line.split()
            samples.setdefault(name, []).append(float(ms))
    return {name: summary(values) for name, values in samples.items()}
