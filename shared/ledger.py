"""The delivery ledger: per external id, what the relay last decided to send and what SIGNL4 got.

One Azure Table entity per ticket (PartitionKey = external id). It is what makes the relay send
transitions only: a Halo redelivery, a runbook "retry from start" or a queue redelivery finds the
status already claimed and is answered `duplicate`.

Fields, and why each exists:
- Status / Seq: the last status claimed for sending and its per-ticket sequence number. A claim
  is a conditional write (ETag), so two workers cannot both claim the same transition.
- DeliveredSeq / EventId: the last claim SIGNL4 accepted, and its event id.
- SendingSeq: set by the queue function just before it sends. Found again on redelivery, it
  means the worker died between sending and recording: the event is presumed delivered (the
  issue's choice: a crash at that boundary must not page twice).
- FailedReason: why the last event went to the poison queue (it may then be sent again).

azure-data-tables (and azure-identity in Azure) are imported on first use, not at cold start.
If the table cannot be reached the relay delivers anyway and logs a warning: a duplicate page is
better than a lost one.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.halo import AlertStatus
from shared.settings import RelaySettings

TABLE_NAME = "relayledger"
ROW_KEY = "alert"

logger = logging.getLogger(__name__)


class LedgerUnavailable(Exception):
    """The table could not be read or written (network, auth, Azurite not running)."""


class LedgerConflict(Exception):
    """Another delivery changed this ticket's entry between our read and our write."""


class LedgerEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    external_id: str
    status: AlertStatus
    seq: int
    delivered_seq: int = 0
    sending_seq: int = 0
    event_id: str | None = None
    failed_reason: str | None = None
    etag: str | None = None

    def already_has(self, status: AlertStatus) -> bool:
        """Sending `status` again would be a repeat: claimed (delivered or on its way), not failed."""
        return self.status is status and not self.failed_reason


class Ledger:
    """The table behind the ledger. Thread-safe: azure-data-tables clients may be shared."""

    def __init__(self, table_client: Any, create_table: bool = False) -> None:
        self._table = table_client
        # Locally (Azurite) nobody deployed the table; in Azure the Bicep template did.
        self._table_missing = create_table

    # -- reads --

    def get(self, external_id: str) -> LedgerEntry | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        self._ensure_table()
        try:
            entity = self._table.get_entity(partition_key=external_id, row_key=ROW_KEY)
        except ResourceNotFoundError:
            return None
        except AzureError as error:
            raise LedgerUnavailable(_describe(error)) from None
        return _entry(entity)

    def _ensure_table(self) -> None:
        if not self._table_missing:
            return
        from azure.core.exceptions import AzureError

        try:
            self._table.create_table()
        except AzureError as error:
            if getattr(error, "status_code", None) != 409:  # 409: it exists already
                raise LedgerUnavailable(_describe(error)) from None
        self._table_missing = False

    # -- writes --

    def claim(
        self, external_id: str, status: AlertStatus, previous: LedgerEntry | None
    ) -> LedgerEntry:
        """Record that `status` is about to be sent; conditional on `previous` being current."""
        from azure.core import MatchConditions
        from azure.core.exceptions import (
            AzureError,
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
        )
        from azure.data.tables import UpdateMode

        seq = (previous.seq if previous else 0) + 1
        entity = {
            "PartitionKey": external_id,
            "RowKey": ROW_KEY,
            "Status": status.value,
            "Seq": seq,
            "DeliveredSeq": previous.delivered_seq if previous else 0,
            "SendingSeq": 0,
            "EventId": previous.event_id if previous and previous.event_id else "",
            "FailedReason": "",
            "UpdatedUtc": _now(),
        }
        try:
            if previous is None:
                metadata = self._table.create_entity(entity=entity)
            else:
                metadata = self._table.update_entity(
                    entity=entity,
                    mode=UpdateMode.REPLACE,
                    etag=previous.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            raise LedgerConflict(external_id) from None
        except AzureError as error:
            raise LedgerUnavailable(_describe(error)) from None
        return _entry({**entity, "etag": (metadata or {}).get("etag")})

    def release(self, claimed: LedgerEntry, previous: LedgerEntry | None) -> None:
        """Undo a claim SIGNL4 refused for good, so a corrected retry is not a 'duplicate'."""
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError

        try:
            if previous is None:
                self._table.delete_entity(
                    partition_key=claimed.external_id,
                    row_key=ROW_KEY,
                    etag=claimed.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            else:
                # The sequence only grows, so events queued before the claim stay superseded.
                self._merge(
                    claimed.external_id,
                    Status=previous.status.value,
                    Seq=claimed.seq,
                    DeliveredSeq=claimed.seq,
                )
        except AzureError as error:
            logger.warning(
                "ledger: could not release %s: %s", claimed.external_id, _describe(error)
            )

    def mark_sending(self, external_id: str, seq: int) -> None:
        self._merge_or_warn(external_id, SendingSeq=seq)

    def clear_sending(self, external_id: str) -> None:
        self._merge_or_warn(external_id, SendingSeq=0)

    def confirm(self, external_id: str, seq: int, event_id: str | None) -> None:
        """SIGNL4 accepted claim `seq`. Best effort: a failure here only risks a duplicate."""
        self._merge_or_warn(
            external_id, DeliveredSeq=seq, SendingSeq=0, EventId=event_id or "", FailedReason=""
        )

    def mark_failed(self, external_id: str, reason: str) -> None:
        """The event went to the poison queue: a later delivery of it is not a duplicate."""
        self._merge_or_warn(external_id, SendingSeq=0, FailedReason=reason[:500])

    def _merge_or_warn(self, external_id: str, **fields: Any) -> None:
        from azure.core.exceptions import AzureError

        try:
            self._merge(external_id, **fields)
        except AzureError as error:
            logger.warning("ledger: could not update %s: %s", external_id, _describe(error))

    def _merge(self, external_id: str, **fields: Any) -> None:
        from azure.data.tables import UpdateMode

        self._table.upsert_entity(
            entity={
                "PartitionKey": external_id,
                "RowKey": ROW_KEY,
                "UpdatedUtc": _now(),
                **fields,
            },
            mode=UpdateMode.MERGE,
        )


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _entry(entity: Any) -> LedgerEntry:
    metadata = getattr(entity, "metadata", None) or {}
    return LedgerEntry(
        external_id=entity["PartitionKey"],
        status=AlertStatus(entity["Status"]),
        seq=int(entity.get("Seq") or 0),
        delivered_seq=int(entity.get("DeliveredSeq") or 0),
        sending_seq=int(entity.get("SendingSeq") or 0),
        event_id=entity.get("EventId") or None,
        failed_reason=entity.get("FailedReason") or None,
        etag=entity.get("etag") or metadata.get("etag"),
    )


def _describe(error: BaseException) -> str:
    # Azure SDK messages can carry request URLs with SAS tokens: keep the kind and the status.
    status = getattr(error, "status_code", None)
    return f"{type(error).__name__}" + (f" (HTTP {status})" if status else "")


# -- opening the table: once per worker, lazily --

_ledgers: dict[tuple[str | None, str | None], Ledger | None] = {}
_ledgers_lock = threading.Lock()


def open_ledger(settings: RelaySettings) -> Ledger | None:
    """The ledger for these settings, or None when no storage is configured at all."""
    key = (
        settings.storage_connection.get_secret_value() if settings.storage_connection else None,
        settings.storage_account_name,
    )
    if key == (None, None):
        return None
    with _ledgers_lock:
        if key not in _ledgers:
            _ledgers[key] = _open(settings)
        return _ledgers[key]


def _open(settings: RelaySettings) -> Ledger | None:
    from azure.data.tables import TableClient

    # Short timeouts and one retry: the ledger must never hold up a page for long.
    transport = {"connection_timeout": 2, "read_timeout": 5, "retry_total": 1}
    if settings.storage_connection is not None:
        client = TableClient.from_connection_string(
            settings.storage_connection.get_secret_value(), table_name=TABLE_NAME, **transport
        )
        return Ledger(client, create_table=True)
    from azure.identity import DefaultAzureCredential

    endpoint = f"https://{settings.storage_account_name}.table.core.windows.net"
    client = TableClient(
        endpoint=endpoint,
        table_name=TABLE_NAME,
        credential=DefaultAzureCredential(),
        **transport,
    )
    return Ledger(client)
