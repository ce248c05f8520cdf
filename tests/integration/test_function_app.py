"""What every cold start pays, in a fresh interpreter (a subprocess): the app's import loads no
HTTP client or storage SDK and builds no queue model (tests/unit/entry/test_function_app.py: the index)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# What every cold start pays: `import function_app` in a fresh interpreter, then a first event.
# Counted, never timed: which modules are loaded and which models are built.
_COLD_START_PROBE = """
import json, sys
import function_app
from shared.delivery import outbox
from shared.adapters import signl4 as signl4_client

def loaded():
    heavy = ("requests", "urllib3", "azure.data", "azure.identity", "azure.core")
    return sorted(m for m in sys.modules if m.startswith(heavy))

deferred = (outbox.OutboxMessage, outbox.PoisonRecord, outbox.QueueOutcome, signl4_client.SendResult)
at_import = {"loaded": loaded(), "built": [m.__name__ for m in deferred if getattr(m, "__pydantic_complete__", False)]}
body = open("tests/fixtures/webhook_new_full.json", "rb").read()
answer = function_app.halo_webhook.handle_halo_request(body, {}, {}, outbox=[], query={})
first_event = {"result": answer.body.get("result"), "loaded": loaded()}
print(json.dumps({"at_import": at_import, "first_event": first_event}))
"""


def test_cold_start_loads_no_http_client_or_storage_sdk_and_builds_no_queue_model() -> None:
    """The SIGNL4 client (requests, urllib3) loads on the first send, the storage SDKs on the
    first ledger call, and the queue, ledger and send-result models are built on first use."""
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(("SIGNL4_", "HALO_", "RELAY_", "AZUREWEBJOBS"))
    }
    done = subprocess.run(
        [sys.executable, "-c", _COLD_START_PROBE],
        cwd=Path(__file__).resolve().parents[2],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    probe = json.loads(done.stdout)
    assert probe["at_import"] == {"loaded": [], "built": []}
    # A first event in dry-run (no secret, no storage) still needs neither.
    assert probe["first_event"] == {"result": "dry-run", "loaded": []}


def test_the_timing_hook_costs_no_import_when_off_and_writes_phases_when_on() -> None:
    """RELAY_TIMING: off (unset), shared/timing.py is never imported, even by an event; on, an
    event writes its PHASE lines to stderr."""
    probe = (
        "import sys, function_app\n"
        "body = open('tests/fixtures/webhook_new_full.json', 'rb').read()\n"
        "function_app.halo_webhook.handle_halo_request(body, {}, {}, outbox=[], query={})\n"
        "print('shared.timing' in sys.modules)\n"
    )
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(("SIGNL4_", "HALO_", "RELAY_", "AZUREWEBJOBS"))
    }
    runs = {}
    for timing in ("", "1"):
        runs[timing] = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=Path(__file__).resolve().parents[2],
            env={**environ, "RELAY_TIMING": timing},
            capture_output=True,
            text=True,
            check=True,
        )
    assert runs[""].stdout.strip() == "False" and "PHASE " not in runs[""].stderr
    assert runs["1"].stdout.strip() == "True"
    assert {"PHASE parse", "PHASE decide", "PHASE answer", "PHASE event"} <= {
        " ".join(line.split()[:2]) for line in runs["1"].stderr.splitlines()
    }
