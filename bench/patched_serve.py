"""`python -m devhost serve` with named monkeypatches, to measure a change without editing the app.

    python bench/patched_serve.py --patch quiet [--patch ...] serve --port P

Patches (each one the smallest change the named idea would make):
- quiet: the relay process logs at WARNING instead of INFO (no per-request log lines), to show
  what per-request logging costs.
- phases: times the ledger's store calls (Ledger.read/apply) and the SIGNL4 send inside
  the relay and prints `PHASE <name> <ms>` per call to its log (bench/results/relay.log), which
  run.py summarises. A diagnostic: it adds a few microseconds per call.

(A `nodelay` patch used to set TCP_NODELAY on the local host's handler to measure the fix for
the 40 ms stall; that fix is now in devhost/http_host.py, so the patch is gone. See README.)
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable
from typing import Any


def patch_quiet() -> None:
    original = logging.basicConfig

    def basic_config(**kwargs: Any) -> None:
        kwargs["level"] = logging.WARNING
        original(**kwargs)

    logging.basicConfig = basic_config  # type: ignore[assignment]


def _timed(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter_ns()
        try:
            return call(*args, **kwargs)
        finally:
            elapsed = (time.perf_counter_ns() - started) / 1e6
            sys.stderr.write(f"PHASE {name} {elapsed:.3f}\n")

    return wrapper


def patch_phases() -> None:
    from shared import delivery, relay
    from shared.ledger import Ledger

    for method in ("read", "apply"):
        setattr(Ledger, method, _timed(f"ledger.{method}", getattr(Ledger, method)))
    delivery.send_event = _timed("signl4.send", delivery.send_event)  # type: ignore[assignment]
    relay.relay_event = _timed("relay_event", relay.relay_event)  # type: ignore[assignment]


PATCHES: dict[str, Callable[[], None]] = {"quiet": patch_quiet, "phases": patch_phases}


def main(argv: list[str]) -> int:
    rest = list(argv)
    while len(rest) >= 2 and rest[0] == "--patch":
        name = rest[1]
        if name not in PATCHES:
            print(f"unknown patch {name!r}; known: {', '.join(PATCHES)}", file=sys.stderr)
            return 1
        PATCHES[name]()
        rest = rest[2:]
    from devhost.__main__ import main as devhost_main

    return devhost_main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
