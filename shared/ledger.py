"""The delivery ledger: per ticket, what the relay claimed, what SIGNL4 got, and what waits.

One Azure Table partition per external id:
- row `alert`: the state. `Status`/`Seq` is the last status claimed for sending and its
  per-ticket sequence number; `DeliveredSeq`/`EventId` the last one SIGNL4 accepted;
  `PendingCount` how many events wait in the ticket's mailbox; `SendingSeq` is set by the queue
  function just before it sends (found again after a crash, it means "presumably delivered");
  `FailedReason` why the last event was given up.
- rows `pending-<seq>`: the ticket's mailbox, events SIGNL4 could not take yet, with their
  exact payloads. They are sent strictly in sequence order by the outbox function, and while
  any wait, newer events for the ticket join the mailbox instead of overtaking it. Without
  that, a queued "resolved" sent after a newer "new" would close the reopened ticket's alert.

Every write that decides something is conditional (ETag, or an entity-group transaction within
the partition), so two workers cannot both claim one transition or both send one event.

Sizes stay inside Azure Table's limits by construction: a mailbox row keeps one payload, fitted
to signl4.PAYLOAD_MAX_BYTES (below a string property's 32,768 UTF-16 units), and reasons are cut
at REASON_MAX_CHARS, so no entity comes near 1 MiB; and every transaction writes at most
TRANSACTION_MAX_ROWS rows (the state row and one mailbox row), far inside an entity-group
transaction's 100 entities and 4 MiB. Several waiting payloads are several rows, never one.

azure-data-tables (and azure-identity in Azure) are imported on first use, not at cold start.
If the table cannot be reached the relay delivers anyway and logs a warning: a duplicate page is
better than a lost one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.halo import AlertStatus
from shared.redaction import log_safe
from shared.settings import RelaySettings
from shared.signl4 import fit_payload

TABLE_NAME = "relayledger"
STATE_ROW = "alert"
PENDING_PREFIX = "pending-"
# Azure Table limits (Table service data model): a string property holds at most 64 KiB of
# UTF-16, i.e. 32,768 code units; an entity at most 1 MiB; an entity-group transaction at most
# 100 entities and 4 MiB.
TABLE_STRING_MAX_UTF16_UNITS = 32 * 1024
TABLE_ENTITY_MAX_BYTES = 1024 * 1024
TABLE_TRANSACTION_MAX_ENTITIES = 100
TABLE_TRANSACTION_MAX_BYTES = 4 * 1024 * 1024
# What this module ever writes in one transaction: the state row and one mailbox row.
TRANSACTION_MAX_ROWS = 2
REASON_MAX_CHARS = 500

logger = logging.getLogger(__name__)


class LedgerUnavailable(Exception):
    """The table could not be read or written (network, auth, Azurite not running)."""


class LedgerConflict(Exception):
    """Another delivery changed this ticket between our read and our write."""


class LedgerEntry(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)  # built on first use

    external_id: str
    status: AlertStatus
    seq: int
    delivered_seq: int = 0
    sending_seq: int = 0
    sending_since: datetime | None = None
    # An HTTP claim being sent inline right now: later events must not overtake it.
    inflight_seq: int = 0
    inflight_since: datetime | None = None
    pending_count: int = 0
    event_id: str | None = None
    failed_reason: str | None = None
    etag: str | None = None

    def inflight(self, limit_seconds: float) -> bool:
        return _recent(self.inflight_seq, self.inflight_since, limit_seconds)

    def sending(self, limit_seconds: float) -> bool:
        return _recent(self.sending_seq, self.sending_since, limit_seconds)

    def already_has(self, status: AlertStatus) -> bool:
        """Sending `status` again would be a repeat: claimed (delivered or waiting), not failed."""
        return self.status is status and not self.failed_reason


def short_reason(text: str) -> str:
    """A reason as the ledger and queue messages keep it: at most REASON_MAX_CHARS, as said
    (log lines escape it), but never a lone surrogate, which cannot be encoded at all."""
    return text[:REASON_MAX_CHARS].encode("utf-8", "replace").decode("utf-8")


def utf16_units(text: str) -> int:
    """The length Azure Table measures a string property in."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _recent(seq: int, since: datetime | None, limit_seconds: float) -> bool:
    if not seq or since is None:
        return False
    return (datetime.now(timezone.utc) - since).total_seconds() < limit_seconds


class PendingEvent(BaseModel):
    """An event in a ticket's mailbox."""

    model_config = ConfigDict(frozen=True, defer_build=True)  # built on first use

    seq: int
    status: AlertStatus
    payload: dict[str, Any]
    reason: str = ""
    etag: str | None = None


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
            entity = self._table.get_entity(partition_key=external_id, row_key=STATE_ROW)
        except ResourceNotFoundError:
            return None
        except AzureError as error:
            raise LedgerUnavailable(_describe(error)) from None
        return _entry(entity)

    def pending(self, external_id: str) -> list[PendingEvent]:
        """The ticket's mailbox, oldest first (row keys sort by zero-padded sequence)."""
        from azure.core.exceptions import AzureError

        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        params = {"pk": external_id, "lo": PENDING_PREFIX, "hi": PENDING_PREFIX[:-1] + "."}
        try:
            rows = list(self._table.query_entities(query, parameters=params))
        except AzureError as error:
            raise LedgerUnavailable(_describe(error)) from None
        return [
            PendingEvent(
                seq=int(row["Seq"]),
                status=AlertStatus(row["Status"]),
                payload=json.loads(row["Payload"]),
                reason=row.get("Reason") or "",
                etag=(getattr(row, "metadata", None) or {}).get("etag"),
            )
            for row in sorted(rows, key=lambda row: row["RowKey"])
        ]

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

    # -- the HTTP path --

    def claim(
        self,
        external_id: str,
        status: AlertStatus,
        previous: LedgerEntry | None,
        *,
        mailbox: dict[str, Any] | None = None,
        reason: str = "",
    ) -> LedgerEntry:
        """Record that `status` is about to be sent; conditional on `previous` being current.

        With `mailbox` (the payload), the event joins the ticket's mailbox in the same
        transaction instead of being sent inline.
        """
        seq = (previous.seq if previous else 0) + 1
        state = {
            "PartitionKey": external_id,
            "RowKey": STATE_ROW,
            "Status": status.value,
            "Seq": seq,
            "DeliveredSeq": previous.delivered_seq if previous else 0,
            "SendingSeq": previous.sending_seq if previous else 0,
            "PendingCount": (previous.pending_count if previous else 0) + (1 if mailbox else 0),
            "EventId": previous.event_id if previous and previous.event_id else "",
            "FailedReason": "",
            "UpdatedUtc": _now(),
        }
        if mailbox is None:
            state.update(InflightSeq=seq, InflightUtc=_now())
        elif previous is not None and previous.inflight_seq:
            state.update(InflightSeq=previous.inflight_seq, InflightUtc=previous.inflight_since)
        if previous is not None and previous.sending_seq and previous.sending_since:
            state["SendingUtc"] = previous.sending_since
        operations: list[tuple[Any, ...]] = [_write_state(state, previous)]
        if mailbox is not None:
            operations.append(("create", _pending_row(external_id, seq, status, mailbox, reason)))
        etag = self._transact(external_id, operations)
        return _entry({**state, "etag": etag})

    def add_to_mailbox(
        self,
        entry: LedgerEntry,
        seq: int,
        status: AlertStatus,
        payload: dict[str, Any],
        reason: str,
    ) -> LedgerEntry:
        """SIGNL4 could not take claim `seq` inline: park it in the mailbox. `entry` is the
        current state (the claim itself, or a fresher read after a conflict); the mailbox is
        ordered by `seq`, so an older claim parked late still goes first."""
        changes: dict[str, Any] = {"PendingCount": entry.pending_count + 1}
        if entry.inflight_seq == seq:
            changes["InflightSeq"] = 0
        state = _state_of(entry, **changes)
        row = _pending_row(entry.external_id, seq, status, payload, reason)
        etag = self._transact(entry.external_id, [_write_state(state, entry), ("create", row)])
        return _entry({**state, "etag": etag})

    def confirm(self, claimed: LedgerEntry, event_id: str | None) -> None:
        """SIGNL4 accepted the claim inline. Best effort: a failure here only risks a duplicate."""
        self._merge_or_warn(
            claimed.external_id,
            DeliveredSeq=claimed.seq,
            EventId=event_id or "",
            FailedReason="",
            InflightSeq=0,
        )

    def release(self, claimed: LedgerEntry, previous: LedgerEntry | None) -> None:
        """Undo a claim SIGNL4 refused for good, so a corrected retry is not a 'duplicate'."""
        from azure.core.exceptions import AzureError

        try:
            if previous is None:
                self._transact(
                    claimed.external_id,
                    [("delete", _key(claimed.external_id), _if_match(claimed.etag))],
                )
            else:
                self._merge(
                    claimed.external_id,
                    Status=previous.status.value,
                    FailedReason="",
                    InflightSeq=0,
                )
        except (AzureError, LedgerConflict, LedgerUnavailable) as error:
            logger.warning(
                "ledger: could not release %s: %s",
                log_safe(claimed.external_id),
                # An SDK error's text can carry request URLs: its kind and status only.
                _describe(error) if isinstance(error, AzureError) else log_safe(error),
            )

    # -- the outbox function --

    def begin_send(self, entry: LedgerEntry, event: PendingEvent) -> LedgerEntry:
        """Mark `event` as being sent. Conditional: only one worker may send it."""
        state = _state_of(entry, SendingSeq=event.seq, SendingUtc=_now())
        etag = self._transact(entry.external_id, [_write_state(state, entry)])
        return _entry({**state, "etag": etag})

    def settle(
        self,
        entry: LedgerEntry,
        event: PendingEvent,
        *,
        event_id: str | None = None,
        failed_reason: str | None = None,
    ) -> LedgerEntry:
        """Take `event` out of the mailbox: delivered (event id) or given up (reason)."""
        fields: dict[str, Any] = {
            "SendingSeq": 0,
            "PendingCount": max(0, entry.pending_count - 1),
        }
        if failed_reason is None:
            fields.update(DeliveredSeq=event.seq, EventId=event_id or "")
        else:
            fields.update(FailedReason=short_reason(failed_reason))
        state = _state_of(entry, **fields)
        etag = self._transact(
            entry.external_id,
            [_write_state(state, entry), ("delete", _pending_key(entry.external_id, event.seq))],
        )
        return _entry({**state, "etag": etag})

    def clear_sending(self, external_id: str, seq: int) -> None:
        """The send of `seq` did not happen (or failed): remove its mark, or a retry would take
        it for a crash after sending and settle the event unsent. Only our own mark: another
        worker's must stay. Tried harder than other writes."""
        last: Exception | None = None
        for attempt in range(4):
            try:
                entry = self.get(external_id)
                if entry is None or entry.sending_seq != seq:
                    return
                self._transact(external_id, [_write_state(_state_of(entry, SendingSeq=0), entry)])
                return
            except LedgerConflict:
                continue  # changed meanwhile: read again
            except LedgerUnavailable as error:
                last = error
                time.sleep(0.2 * (attempt + 1))
        logger.warning(
            "ledger: could not clear the sending mark of %s: %s",
            log_safe(external_id),
            log_safe(last),
        )

    def abandon(self, external_id: str, reason: str) -> list[PendingEvent]:
        """Give up the ticket's whole mailbox (its nudge went to the poison queue): the events
        leave it, so a re-send from Halo is sent once, not behind stale copies."""
        abandoned: list[PendingEvent] = []
        for _ in range(100):
            entry = self.get(external_id)
            events = self.pending(external_id) if entry else []
            if entry is None or not events:
                break
            try:
                self.settle(entry, events[0], failed_reason=reason)
                abandoned.append(events[0])
            except LedgerConflict:
                continue
        return abandoned

    def mark_failed(self, external_id: str, reason: str) -> None:
        """Recorded by the poison function: a later delivery of the same status is not a duplicate."""
        self._merge_or_warn(external_id, FailedReason=short_reason(reason))

    # -- plumbing --

    def _transact(self, external_id: str, operations: list[tuple[Any, ...]]) -> str | None:
        """Run the operations atomically; returns the state row's new ETag."""
        from azure.core.exceptions import AzureError, HttpResponseError

        if len(operations) > TRANSACTION_MAX_ROWS:
            raise ValueError(
                f"{len(operations)} rows in one transaction; sized for {TRANSACTION_MAX_ROWS}"
            )
        self._ensure_table()
        try:
            if len(operations) == 1:
                # One row is atomic on its own, and a plain call costs a fraction of a batch
                # (bench: ~1.8 ms against ~8 ms per claim on Azurite).
                results = [self._single(*operations[0])]
            else:
                results = self._table.submit_transaction(operations)
        except HttpResponseError as error:
            # 409 exists, 412 ETag mismatch, 404 gone: someone else wrote first.
            if error.status_code in (404, 409, 412):
                raise LedgerConflict(external_id) from None
            raise LedgerUnavailable(_describe(error)) from None
        except AzureError as error:
            raise LedgerUnavailable(_describe(error)) from None
        first = results[0] if results else {}
        return first.get("etag") if isinstance(first, dict) else None

    def _single(self, kind: str, entity: dict[str, Any], options: Any = None) -> Any:
        options = options or {}
        if kind == "create":
            return self._table.create_entity(entity=entity)
        if kind == "update":
            return self._table.update_entity(entity=entity, **options)
        if kind == "delete":
            self._table.delete_entity(
                partition_key=entity["PartitionKey"], row_key=entity["RowKey"], **options
            )
            return {}
        raise ValueError(f"unknown table operation {kind!r}")

    def _merge_or_warn(self, external_id: str, **fields: Any) -> None:
        from azure.core.exceptions import AzureError

        try:
            self._merge(external_id, **fields)
        except AzureError as error:
            logger.warning(
                "ledger: could not update %s: %s", log_safe(external_id), _describe(error)
            )

    def _merge(self, external_id: str, **fields: Any) -> None:
        from azure.data.tables import UpdateMode

        self._ensure_table()
        self._table.upsert_entity(
            entity={**_key(external_id), "UpdatedUtc": _now(), **fields}, mode=UpdateMode.MERGE
        )


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _key(external_id: str) -> dict[str, str]:
    return {"PartitionKey": external_id, "RowKey": STATE_ROW}


def _pending_key(external_id: str, seq: int) -> dict[str, str]:
    return {"PartitionKey": external_id, "RowKey": f"{PENDING_PREFIX}{seq:010d}"}


def _pending_row(
    external_id: str, seq: int, status: AlertStatus, payload: dict[str, Any], reason: str
) -> dict[str, Any]:
    # Fitted again here, whatever built it: this one property is what could outgrow the table.
    return {
        **_pending_key(external_id, seq),
        "Seq": seq,
        "Status": status.value,
        "Payload": json.dumps(fit_payload(payload), ensure_ascii=False),
        "Reason": short_reason(reason),
        "QueuedUtc": _now(),
    }


def _if_match(etag: str | None) -> dict[str, Any]:
    from azure.core import MatchConditions

    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


def _write_state(state: dict[str, Any], previous: LedgerEntry | None) -> tuple[Any, ...]:
    """Create the state row, or replace it only if nobody changed it since we read it."""
    from azure.data.tables import UpdateMode

    if previous is None:
        return ("create", state)
    return ("update", state, {"mode": UpdateMode.REPLACE, **_if_match(previous.etag)})


def _state_of(entry: LedgerEntry, **changes: Any) -> dict[str, Any]:
    state = {
        **_key(entry.external_id),
        "Status": entry.status.value,
        "Seq": entry.seq,
        "DeliveredSeq": entry.delivered_seq,
        "SendingSeq": entry.sending_seq,
        "PendingCount": entry.pending_count,
        "EventId": entry.event_id or "",
        "InflightSeq": entry.inflight_seq,
        **({"SendingUtc": entry.sending_since} if entry.sending_since else {}),
        **({"InflightUtc": entry.inflight_since} if entry.inflight_since else {}),
        "FailedReason": entry.failed_reason or "",
        "UpdatedUtc": _now(),
    }
    state.update(changes)
    return state


def _entry(entity: Any) -> LedgerEntry:
    metadata = getattr(entity, "metadata", None) or {}
    return LedgerEntry(
        external_id=entity["PartitionKey"],
        status=AlertStatus(entity["Status"]),
        seq=int(entity.get("Seq") or 0),
        delivered_seq=int(entity.get("DeliveredSeq") or 0),
        sending_seq=int(entity.get("SendingSeq") or 0),
        sending_since=entity.get("SendingUtc") if entity.get("SendingSeq") else None,
        inflight_seq=int(entity.get("InflightSeq") or 0),
        inflight_since=entity.get("InflightUtc") if entity.get("InflightSeq") else None,
        pending_count=int(entity.get("PendingCount") or 0),
        event_id=entity.get("EventId") or None,
        failed_reason=entity.get("FailedReason") or None,
        etag=entity.get("etag") or metadata.get("etag"),
    )


def quiet_azure_sdk() -> None:
    """The SDK logs every storage request at INFO: three per event would flood the log (and
    Application Insights ingestion). Warnings and errors still come through."""
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
    logging.getLogger("azure.identity").setLevel(logging.WARNING)


def _describe(error: BaseException) -> str:
    # Azure SDK messages can carry request URLs and account details: keep the kind and status.
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

    quiet_azure_sdk()
    # Short timeouts and one retry: the ledger must never hold up a page for long.
    transport = {"connection_timeout": 2, "read_timeout": 5, "retry_total": 1}
    if settings.storage_connection is not None:
        client = TableClient.from_connection_string(
            settings.storage_connection.get_secret_value(), table_name=TABLE_NAME, **transport
        )
        return Ledger(client, create_table=True)
    from azure.identity import DefaultAzureCredential

    client = TableClient(
        endpoint=f"https://{settings.storage_account_name}.table.core.windows.net",
        table_name=TABLE_NAME,
        credential=DefaultAzureCredential(),
        **transport,
    )
    return Ledger(client)
