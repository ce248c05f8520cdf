"""The storage port on Azure Table Storage through azure-data-tables: the relay's only table adapter.

One TableClient per storage configuration, one credential and one HTTP transport per process;
the SDKs load on first use, not at cold start. A single-row write is a plain call, two or three
rows one entity-group transaction. SDK errors become store.Conflict (404, 409, 412: someone else
wrote first) or store.Unavailable, described by kind and status only: an SDK message can carry
request URLs and account details.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from shared.adapters.store import Conflict, Op, Row, Unavailable
from shared.settings import RelaySettings


class RowGone(Exception):
    """A single delete answered 404: the row is not there (a Conflict for the port)."""

    def __init__(self, response: Any = None, **_: Any) -> None:
        super().__init__("the row is gone")


class TableStore:
    """A PartitionStore on one Azure table. Thread-safe: azure-data-tables clients may be shared."""

    def __init__(self, table_client: Any, create_table: bool = False) -> None:
        self._table = table_client
        # Locally (Azurite) nobody deployed the table; in Azure the Bicep template did.
        self._table_missing = create_table

    def read(self, partition: str, row: str | None = None) -> dict[str, Row]:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        self._ensure_table()
        try:
            if row is not None:
                try:
                    entities = [self._table.get_entity(partition_key=partition, row_key=row)]
                except ResourceNotFoundError:
                    return {}
            else:
                entities = list(
                    self._table.query_entities("PartitionKey eq @pk", parameters={"pk": partition})
                )
        except AzureError as error:
            raise Unavailable(describe(error)) from None
        rows = {}
        for entity in sorted(entities, key=lambda e: e["RowKey"]):
            metadata = getattr(entity, "metadata", None) or {}
            rows[entity["RowKey"]] = Row(entity["RowKey"], dict(entity), metadata.get("etag") or "")
        return rows

    def read_rows(self, partition: str, rows: Sequence[str]) -> dict[str, Row]:
        """One point read per named row: a filter of ORed row keys would scan the partition."""
        found: dict[str, Row] = {}
        for row in sorted(set(rows)):
            found.update(self.read(partition, row))
        return found

    def commit(self, partition: str, ops: Sequence[Op]) -> dict[str, str]:
        from azure.core.exceptions import AzureError, HttpResponseError

        self._ensure_table()
        operations = [_operation(partition, op) for op in ops]
        try:
            if len(operations) == 1:
                results = [self._single(*operations[0])]
            else:
                results = self._table.submit_transaction(operations)
        except RowGone:
            raise Conflict(partition) from None
        except HttpResponseError as error:
            # 409 exists, 412 ETag mismatch, 404 gone: someone else wrote first.
            if error.status_code in (404, 409, 412):
                raise Conflict(partition) from None
            raise Unavailable(describe(error)) from None
        except AzureError as error:
            raise Unavailable(describe(error)) from None
        etags: dict[str, str] = {}
        for op, result in zip(ops, results, strict=False):
            if op.kind != "delete" and isinstance(result, dict) and result.get("etag"):
                etags[op.key] = result["etag"]
        return etags

    def _single(self, kind: str, entity: dict[str, Any], options: Any = None) -> Any:
        options = options or {}
        if kind == "create":
            return self._table.create_entity(entity=entity)
        if kind == "update":
            return self._table.update_entity(entity=entity, **options)
        if kind == "delete":
            # The SDK's delete_entity swallows a 404; the port's delete is only-if-it-exists, so
            # azure-core's error_map turns the 404 into an error the SDK does not catch.
            self._table.delete_entity(
                partition_key=entity["PartitionKey"],
                row_key=entity["RowKey"],
                error_map={404: RowGone},
                **options,
            )
            return {}
        raise ValueError(f"unknown table operation {kind!r}")

    def _ensure_table(self) -> None:
        if not self._table_missing:
            return
        from azure.core.exceptions import AzureError

        try:
            self._table.create_table()
        except AzureError as error:
            if getattr(error, "status_code", None) != 409:  # 409: it exists already
                raise Unavailable(describe(error)) from None
        self._table_missing = False


def _operation(partition: str, op: Op) -> tuple[Any, ...]:
    from azure.core import MatchConditions
    from azure.data.tables import UpdateMode

    keys = {"PartitionKey": partition, "RowKey": op.key}
    if op.kind == "create":
        return ("create", {**(op.entity or {}), **keys})
    # No ETag: only if it exists, If-Match: * (the SDK refuses IfPresent with an ETag).
    condition = {"etag": op.etag or "*", "match_condition": MatchConditions.IfNotModified}
    if op.kind == "replace":
        return ("update", {**(op.entity or {}), **keys}, {"mode": UpdateMode.REPLACE, **condition})
    return ("delete", keys, condition)


def describe(error: BaseException) -> str:
    # Azure SDK messages can carry request URLs and account details: keep the kind and status.
    status = getattr(error, "status_code", None)
    return f"{type(error).__name__}" + (f" (HTTP {status})" if status else "")


def quiet_azure_sdk() -> None:
    """The SDK logs every storage request at INFO: three per event would flood the log (and
    Application Insights ingestion). Warnings and errors still come through."""
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
    logging.getLogger("azure.identity").setLevel(logging.WARNING)


# -- opening the table: once per process, lazily --

# Short timeouts and one retry: the ledger must never hold up a page for long.
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 5
RETRY_TOTAL = 1

_stores: dict[tuple[str | None, str | None, str], TableStore] = {}
_transport: Any = None
_credential: Any = None
_stores_lock = threading.Lock()


def open_table_store(settings: RelaySettings, table_name: str) -> TableStore | None:
    """The table for these settings (the composition root names it), or None when no storage
    is configured at all."""
    connection = (
        settings.storage_connection.get_secret_value() if settings.storage_connection else None
    )
    if (connection, settings.storage_account_name) == (None, None):
        return None
    key = (connection, settings.storage_account_name, table_name)
    with _stores_lock:
        if key not in _stores:
            _stores[key] = _open(settings, table_name)
        return _stores[key]


def storage_transport() -> Any:
    """The process's one azure-core transport (a requests Session and its connection pool),
    shared by every table client: the SDK's advice, and no pool or TLS handshake per client."""
    global _transport
    if _transport is None:
        from azure.core.pipeline.transport import RequestsTransport

        transport = RequestsTransport(
            connection_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            # No proxy or .netrc from the environment (as the relay's other HTTP, http.py): it
            # also spares requests a scan of every environment variable on each call.
            use_env_settings=False,
        )
        transport.open()  # its session now, not raced for by the first two calls
        _transport = transport
    return _transport


def _managed_identity() -> Any:
    """One DefaultAzureCredential per process: it caches its tokens, so every client shares them."""
    global _credential
    if _credential is None:
        from azure.identity import DefaultAzureCredential

        _credential = DefaultAzureCredential()
    return _credential


def _open(settings: RelaySettings, table_name: str) -> TableStore:
    """A client for the connection string, else for the account with the managed identity.
    Called under _stores_lock, so the transport and credential are made once."""
    from azure.data.tables import TableClient

    quiet_azure_sdk()
    options: dict[str, Any] = {"transport": storage_transport(), "retry_total": RETRY_TOTAL}
    if settings.storage_connection is not None:
        client = TableClient.from_connection_string(
            settings.storage_connection.get_secret_value(), table_name=table_name, **options
        )
        return TableStore(client, create_table=True)
    client = TableClient(
        endpoint=f"https://{settings.storage_account_name}.table.core.windows.net",
        table_name=table_name,
        credential=_managed_identity(),
        **options,
    )
    return TableStore(client)
