"""The composition root's storage part: which store the ledger keeps its rows in, per settings.

AzureWebJobsStorage=memory keeps them in this process's memory (tests, local runs); a
connection string or an account name, in the Azure table (shared/delivery/schema.py names it)
through a Table adapter; nothing set, no ledger at all (a redelivered event is sent again).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from shared.adapters.store import MemoryStore, PartitionStore
from shared.delivery.ledger import Ledger
from shared.delivery.schema import TABLE_NAME
from shared.domain.alert import AlertStatus
from shared.settings import RelaySettings

# The same conditional semantics as the table, gone when the process stops.
MEMORY_STORAGE = "memory"
_memory_store = MemoryStore()


def _in_memory(settings: RelaySettings) -> bool:
    connection = settings.storage_connection
    return connection is not None and connection.get_secret_value().strip() == MEMORY_STORAGE


def open_ledger(
    settings: RelaySettings, *, status_type: Callable[[str], Hashable] = AlertStatus
) -> Ledger | None:
    """The ledger for these settings, or None when no storage is configured at all.
    `status_type` reads a stored status (SIGNL4's AlertStatus; `str` for write-backs)."""
    if _in_memory(settings):
        return Ledger(_memory_store, status_type=status_type)
    store = open_store(settings)
    return Ledger(store, status_type=status_type) if store is not None else None


def open_store(settings: RelaySettings) -> PartitionStore | None:
    """The Azure table for these settings (None: no storage configured), through
    azure-data-tables. Imported here: the SDK loads on the first storage call, not at cold start."""
    from shared.adapters.table_sdk import open_table_store

    return open_table_store(settings, TABLE_NAME)


def describe_ledger(settings: RelaySettings) -> str:
    """Where open_ledger keeps the ledger, for `python -m devhost serve`'s start-up lines.
    Names no connection string (it holds the account key)."""
    if _in_memory(settings):
        return "ledger: in memory; lost when serve stops"
    if settings.storage_connection is not None or settings.storage_account_name:
        return f"ledger: Azure Table {TABLE_NAME} (AzureWebJobsStorage)"
    return "ledger: none (AzureWebJobsStorage is not set): a redelivered event is sent again"
