"""The function app's wiring, checked the way the Python worker checks it at start-up."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

from azure.functions import meta

# What the host must find: route, auth level, methods, queues.
EXPECTED = {
    "halopsa": ("httpTrigger", {"route": "halopsa", "authLevel": "FUNCTION", "methods": ["POST"]}),
    "health": ("httpTrigger", {"route": "health", "authLevel": "ANONYMOUS", "methods": ["GET"]}),
    # SIGNL4's URL shape: anonymous for the host, the token in the path is the credential.
    "webhook": (
        "httpTrigger",
        {"route": "webhook/{token?}", "authLevel": "ANONYMOUS", "methods": ["POST"]},
    ),
    "signl4_outbox": (
        "queueTrigger",
        {"queueName": "signl4-outbox", "connection": "AzureWebJobsStorage"},
    ),
    "signl4_outbox_poison": (
        "queueTrigger",
        {"queueName": "signl4-outbox-poison", "connection": "AzureWebJobsStorage"},
    ),
}


def _dicts(function: Any) -> list[dict[str, Any]]:
    return [binding.get_dict_repr() for binding in function.get_bindings()]


def test_functions_and_triggers(indexed_functions: list[Any]) -> None:
    found = {f.get_function_name(): f for f in indexed_functions}
    assert set(found) == set(EXPECTED)
    for name, (trigger_type, expected) in EXPECTED.items():
        [trigger] = [b for b in _dicts(found[name]) if b["type"] == trigger_type]
        for key, value in expected.items():
            actual = trigger[key]
            if key == "authLevel":
                actual = str(actual).split(".")[-1].upper()
            if key == "methods":
                actual = [str(m).split(".")[-1].upper() for m in actual]
            assert actual == value, (name, key, actual)


def test_output_bindings_go_to_the_outbox_and_poison_queues(indexed_functions: list[Any]) -> None:
    outputs = {
        (f.get_function_name(), b["name"]): b["queueName"]
        for f in indexed_functions
        for b in _dicts(f)
        if b["type"] == "queue"
    }
    assert outputs == {
        ("halopsa", "queued"): "signl4-outbox",
        ("webhook", "queued"): "signl4-outbox",
        ("signl4_outbox", "poison"): "signl4-outbox-poison",
    }


def test_every_annotation_passes_the_workers_type_check(indexed_functions: list[Any]) -> None:
    """The worker refuses to load a function whose parameter annotation its converter does not
    accept (e.g. func.Out[list[str]] for a queue: only typing.List[str] passes)."""
    registry = meta.get_binding_registry()
    for function in indexed_functions:
        params = inspect.signature(function.get_user_function()).parameters
        for binding in _dicts(function):
            name = binding["name"]
            if name == "$return" or name not in params:
                continue
            converter = registry.get(binding["type"])
            assert converter is not None, binding["type"]
            annotation = params[name].annotation
            # The worker reads annotations as objects: no `from __future__ import annotations`.
            assert not isinstance(annotation, str), (function.get_function_name(), name)
            if (
                typing.get_origin(annotation) is not None
                and getattr(typing.get_origin(annotation), "__name__", "") == "Out"
            ):
                (inner,) = typing.get_args(annotation)
                assert converter.check_output_type_annotation(inner), (
                    function.get_function_name(),
                    name,
                    inner,
                )
            else:
                assert converter.check_input_type_annotation(annotation), (
                    function.get_function_name(),
                    name,
                    annotation,
                )


# What every cold start pays: `import function_app` in a fresh interpreter, then a first event.
# Counted, never timed: which modules are loaded and which models are built.
_COLD_START_PROBE = """
import json, sys
import function_app
from shared import ledger, outbox, signl4

def loaded():
    heavy = ("requests", "urllib3", "azure.data", "azure.identity", "azure.core")
    return sorted(m for m in sys.modules if m.startswith(heavy))

deferred = (outbox.OutboxMessage, outbox.PoisonRecord, outbox.QueueOutcome, ledger.LedgerEntry,
            ledger.PendingEvent, signl4.SendResult)
at_import = {"loaded": loaded(), "built": [m.__name__ for m in deferred if getattr(m, "__pydantic_complete__", False)]}
body = open("tests/fixtures/webhook_new_full.json", "rb").read()
answer = function_app.relay.handle_halo_request(body, {}, {}, [], {})
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
        cwd=Path(__file__).resolve().parent.parent,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    probe = json.loads(done.stdout)
    assert probe["at_import"] == {"loaded": [], "built": []}
    # A first event in dry-run (no secret, no storage) still needs neither.
    assert probe["first_event"] == {"result": "dry-run", "loaded": []}
