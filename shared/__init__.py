"""The HaloPSA -> SIGNL4 relay: the package behind function_app.py."""

import os

__version__ = "0.1.0"

# RELAY_TIMING=1: time each phase of every event (parse, decide, ledger read/apply, send,
# answer) and write it to stderr (shared/timing.py; the benchmark reads it, bench/README.md).
# Read once at import. Off, the default, a phase site costs one test of this boolean, and
# shared/timing.py is never imported.
TIMING = os.environ.get("RELAY_TIMING", "").strip() == "1"
