"""GET /api/health (`handle_health_request`) and what it reports beyond the settings:
`storage` (ok, unreachable, memory, off), the outbox and poison queues' approximate counts
(may run high for a moment, never low; null when unreadable), `lastDelivery` (SIGNL4's last
2xx in this worker, in memory), `lastHaloEvent` (Halo's last call, likewise) and
`haloWarnings` (what the write-back last learnt limits it).

The probe (a table read, two queue reads) is cached CACHE_SECONDS per storage configuration.
Imported on every cold start (shared/adapters/signl4.py records deliveries here): SDKs load on probe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared import __version__

# What the remote clients recorded: kept in the adapters layer, so they never import this one.
from shared.adapters.remote_state import halo_warnings, last_delivery, last_halo_event
from shared.delivery.outbox import OUTBOX_QUEUE, POISON_QUEUE
from shared.entry.responses import RelayResponse
from shared.errors import ConfigurationError
from shared.settings import RelaySettings, SettingsError

CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class StorageState:
    storage: str  # ok | unreachable | memory | off
    outbox: int | None = None
    poison: int | None = None


Prober = Callable[[RelaySettings], StorageState]


class HealthCache:
    """The storage probe's result per storage configuration, kept `ttl` seconds of `clock`.
    `probes` counts the probes actually run (the tests count them instead of waiting)."""

    def __init__(
        self,
        prober: Prober | None = None,
        *,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._prober = prober
        self.ttl = ttl
        self.clock = clock
        self.probes = 0
        self._entries: dict[tuple[str | None, str | None], tuple[float, StorageState]] = {}
        self._lock = threading.Lock()

    def state(self, settings: RelaySettings) -> StorageState:
        key = _storage_key(settings)
        now = self.clock()
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None and now - cached[0] < self.ttl:
                return cached[1]
        state = (self._prober or probe_storage)(settings)
        with self._lock:
            self.probes += 1
            self._entries[key] = (now, state)
        return state


def _storage_key(settings: RelaySettings) -> tuple[str | None, str | None]:
    connection = settings.storage_connection
    return (
        connection.get_secret_value().strip() if connection else None,
        settings.storage_account_name,
    )


def probe_storage(settings: RelaySettings) -> StorageState:
    """Read the ledger's probe row and the two queues' approximate counts. Never raises."""
    from shared.entry.storage import MEMORY_STORAGE, open_ledger

    connection, account = _storage_key(settings)
    if connection is None and account is None:
        return StorageState("off")
    if connection == MEMORY_STORAGE:
        return StorageState("memory")
    try:
        ledger = open_ledger(settings)
        if ledger is None:
            return StorageState("off")
        ledger.probe()  # schema.PROBE_PARTITION
    except Exception:  # Unavailable, or the SDK/identity failing: the probe answers regardless
        return StorageState("unreachable")
    return StorageState(
        "ok", queue_count(settings, OUTBOX_QUEUE), queue_count(settings, POISON_QUEUE)
    )


_queue_clients: dict[tuple[str | None, str | None, str], Any] = {}
_queue_lock = threading.Lock()


def queue_count(settings: RelaySettings, queue: str) -> int | None:
    """Azure Queue's approximate message count, or None when it cannot be read (no right to
    the queue's metadata, queue missing, storage down). azure-storage-queue loads here."""
    try:
        client = _queue_client(settings, queue)
        count = client.get_queue_properties().approximate_message_count
    except Exception:
        return None
    return int(count or 0)


def _queue_client(settings: RelaySettings, queue: str) -> Any:
    connection, account = _storage_key(settings)
    key = (connection, account, queue)
    with _queue_lock:
        if key in _queue_clients:
            return _queue_clients[key]
        from azure.storage.queue import QueueClient

        from shared.adapters.table_sdk import quiet_azure_sdk

        quiet_azure_sdk()
        # Short timeouts, no retry: a health probe must answer, not wait out a dead account.
        transport = {"connection_timeout": 2, "read_timeout": 5, "retry_total": 0}
        if connection is not None:
            client = QueueClient.from_connection_string(connection, queue, **transport)
        else:
            from azure.identity import DefaultAzureCredential

            client = QueueClient(
                f"https://{account}.queue.core.windows.net",
                queue,
                credential=DefaultAzureCredential(),
                **transport,
            )
        _queue_clients[key] = client
        return client


_cache = HealthCache()


def storage_state(settings: RelaySettings) -> StorageState:
    """The cached probe GET /api/health reports."""
    return _cache.state(settings)


def report(state: StorageState) -> dict[str, Any]:
    """The health fields for `state` (pure): no secret, no account name, no URL.

    - `storage`: the ledger's table answered a read (`ok`), did not (`unreachable`), lives in
      this process (`memory`: AzureWebJobsStorage=memory) or no storage is configured (`off`).
    - `outbox` / `poison`: Azure Queue's approximate message counts of `signl4-outbox` and
      `signl4-outbox-poison` (null when they cannot be read): for a moment higher, never lower.
    - `lastDelivery`: when SIGNL4 last accepted an event sent by this worker process (UTC); null
      when it has sent nothing since it started. Kept in memory: no storage write per event.
    - `lastHaloEvent`: when Halo last called this worker (a POST that passed the webhook's
      authentication; UTC), null since start. In memory too: a long null or old time on every
      instance while tickets change means Halo stopped calling (a webhook it turned off).
    - `haloWarnings`: what the Halo write-back last learnt that limits it in this worker (a scope
      Halo refused, a HALO_NOTE_OUTCOME it does not offer); never asks Halo itself.
    """
    delivered, called = last_delivery(), last_halo_event()
    return {
        "storage": state.storage,
        "outbox": state.outbox,
        "poison": state.poison,
        "lastDelivery": delivered.isoformat().replace("+00:00", "Z") if delivered else None,
        "lastHaloEvent": called.isoformat().replace("+00:00", "Z") if called else None,
        "haloWarnings": halo_warnings(),
    }


def handle_health_request(environ: Mapping[str, str]) -> RelayResponse:
    """GET /api/health: is the relay usable, and will it really page? Reveals no secret."""
    try:
        settings = RelaySettings.from_env(environ)
    except SettingsError as error:
        body = ConfigurationError(str(error)).to_body()
        return RelayResponse(503, {"status": "misconfigured", **body, "version": __version__})
    state = storage_state(settings)
    return RelayResponse(
        200,
        {
            # degraded: storage unreachable; the relay still delivers (a duplicate beats a loss)
            "status": "degraded" if state.storage == "unreachable" else "ok",
            "signl4": "dry-run" if settings.dry_run else "configured",
            "webhookRoute": "off" if settings.relay_inbound_token is None else "on",
            "halo": "configured" if settings.two_way else "off",
            **report(state),
            "version": __version__,
        },
    )
