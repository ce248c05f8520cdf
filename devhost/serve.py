"""`python -m devhost serve`: load settings, import the app, and serve it with its queues.

Without `AzureWebJobsStorage` it sets `AzureWebJobsStorage=memory` for the app, the storage the
tests use: the relay's ledger is then the in-memory store (one per process, so the HTTP
functions and the queue runner share it) and the queues are in-process ones.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import azure.functions as func

from devhost.config import load_local_settings, read_queue_options, read_route_prefix
from devhost.errors import LocalHostError
from devhost.functions import index_functions
from devhost.http_host import LocalHost, url_host
from devhost.queues import MemoryQueues, QueueRunner, open_queues
from shared.entry.storage import MEMORY_STORAGE


def serve(
    app_module: str,
    host: str,
    port: int,
    cwd: Path | None = None,
    *,
    visibility_timeout: float | None = None,
    max_dequeue_count: int | None = None,
    poll_seconds: float = 1.0,
) -> int:
    """Load settings, import the app, print the routes, serve until interrupted."""
    root = Path.cwd() if cwd is None else cwd
    applied = load_local_settings(root / "local.settings.json")
    if applied:
        print(f"Loaded {len(applied)} setting(s) from local.settings.json", flush=True)
    route_prefix = read_route_prefix(root / "host.json")
    storage = os.environ.get("AzureWebJobsStorage")  # noqa: SIM112
    if not (storage or "").strip():
        # Before the app is imported: every read of the settings sees it.
        os.environ["AzureWebJobsStorage"] = MEMORY_STORAGE  # noqa: SIM112
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(app_module)
    except ModuleNotFoundError as exc:
        if exc.name and app_module.startswith(exc.name):
            raise LocalHostError(f"cannot import app module {app_module!r} from {root}") from None
        raise
    app = getattr(module, "app", None)
    if not isinstance(app, func.FunctionApp):
        raise LocalHostError(f"{app_module}.app is not an azure.functions.FunctionApp")
    functions = index_functions(app)
    host_visibility, host_max_dequeue = read_queue_options(root / "host.json")
    queue_names = [
        getattr(f.get_trigger(), "queue_name", "")
        for f in functions
        if f.get_trigger() is not None and f.get_trigger().get_binding_name() == "queueTrigger"
    ]
    queues = open_queues(storage, queue_names, lambda line: print(line, flush=True))
    if storage and storage.strip() != MEMORY_STORAGE and isinstance(queues, MemoryQueues):
        # The ledger would fail on every event ("may be paged twice") against the same dead
        # storage: keep it in this process's memory too, like the queues.
        os.environ["AzureWebJobsStorage"] = MEMORY_STORAGE  # noqa: SIM112
        print("The ledger and the queues run in this process's memory until restarted.", flush=True)
    runner = QueueRunner(
        functions,
        queues,
        visibility_timeout=host_visibility if visibility_timeout is None else visibility_timeout,
        max_dequeue_count=host_max_dequeue if max_dequeue_count is None else max_dequeue_count,
        poll_seconds=poll_seconds,
    )
    secrets_hook = getattr(module, "local_host_secrets", None)
    local_host = LocalHost(
        app,
        route_prefix=route_prefix,
        output_sink=runner.deliver_output,
        functions=functions,
        secrets=secrets_hook() if callable(secrets_hook) else (),
    )
    try:
        server = local_host.make_server(host, port)
    except OSError as exc:
        raise LocalHostError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound_port = server.server_address[1]
    run_by_queue_runner = {f.get_function_name() for f in runner.triggers.values()}
    for line in local_host.describe(f"http://{url_host(host)}:{bound_port}"):
        if line.split(":", 1)[0] not in run_by_queue_runner:
            print(line, flush=True)
    print("Function keys are not checked locally (like func start).", flush=True)
    for queue, function in runner.triggers.items():
        print(f"{function.get_function_name()}: queue {queue} on {queues.description}", flush=True)
    banner = getattr(module, "local_host_banner", None)
    if callable(banner):
        print(banner(), flush=True)
    runner.start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        runner.stop()
    return 0
