"""Per-phase timings of an event, for the benchmark: only imported when RELAY_TIMING=1.

A phase site holds a mark (`time.perf_counter_ns()`, taken only when `shared.TIMING` is on) and
calls `phase(name, mark)` once the phase is done: a `PHASE <name> <ms>` line goes to stderr
(the local host's log; bench/phases.py summarises them) and the next mark comes back. Names:
parse, decide, ledger.read, ledger.apply, signl4.send, answer, and event (the whole event).
"""

from __future__ import annotations

import sys
import time


def phase(name: str, mark_ns: int) -> int:
    """Write how long since `mark_ns` the phase `name` took; the mark for the next phase."""
    now = time.perf_counter_ns()
    sys.stderr.write(f"PHASE {name} {(now - mark_ns) / 1e6:.3f}\n")
    return now
