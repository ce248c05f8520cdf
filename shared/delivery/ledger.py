"""The delivery ledger (service): conversations stored in a PartitionStore, read, changed by a
pure transition (shared/delivery/conversation.py) and written back conditionally.

One partition per external id, in the row schema the relay has always used (table
`relayledger`), so existing rows still read:
- row `alert`: the state. `Status`/`Seq` is the last status claimed for sending and its
  per-ticket sequence number; `DeliveredSeq`/`EventId` the last one SIGNL4 accepted;
  `PendingCount` how many events wait in the ticket's mailbox; `InflightSeq`/`InflightUtc` an
  inline send in progress; `SendingSeq`/`SendingUtc` set by the queue function just before it
  sends (found again after a crash, it means "presumably delivered"); `FailedReason` why the
  last event was given up; `Target` the routing target the alert went to (RELAY_ROUTES; absent
  in rows written before routing, and for the default team); `RaisedEventId` the event id
  SIGNL4 answered to the accepted `new` that raised the current alert (the anchor SIGNL4's
  notifications are verified against; absent in rows written before it existed: see `load`).
- rows `pending-<seq:010d>`: the ticket's mailbox, events SIGNL4 could not take yet, with their
  exact payloads (`Seq`, `Status`, `Payload`, `Reason`, `QueuedUtc`).

Every write is conditional (create-if-absent, replace-if-ETag, an entity-group transaction for
the state row and one mailbox row), so two workers cannot both claim one transition or both send
one event. Sizes stay inside Azure Table's limits by construction: a mailbox row keeps one
payload fitted to signl4.PAYLOAD_MAX_BYTES (below a string property's 32,768 UTF-16 units),
reasons are cut at REASON_MAX_CHARS, and a transaction writes at most TRANSACTION_MAX_ROWS rows
(state, one mailbox row, and a write-back's `seen-<notification id>` row).

If the table cannot be reached the relay delivers anyway and logs a warning: a duplicate page is
better than a lost one.

Each Ledger also remembers, per process, the last state it read or wrote of each conversation
(`KnownStates`), so the HTTP path can claim without reading first. Safe because every write is
conditional: a remembered state that someone else changed since only makes the claim conflict,
which forgets it and reads.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from typing import Any

from shared import TIMING
from shared.adapters.store import Conflict, MemoryStore, Op, PartitionStore, Row, Unavailable
from shared.adapters.table_sdk import (  # noqa: F401  (re-exported: the limits the schema is sized for)
    TABLE_ENTITY_MAX_BYTES,
    TABLE_NAME,
    TABLE_STRING_MAX_UTF16_UNITS,
    TABLE_TRANSACTION_MAX_BYTES,
    TABLE_TRANSACTION_MAX_ENTITIES,
    TRANSACTION_MAX_ROWS,
    TableStore,
    open_table_store,
    quiet_azure_sdk,
)
from shared.delivery import conversation as core
from shared.delivery.conversation import Arrival, Conversation, Pending, Step
from shared.domain.alert import AlertStatus, fit_payload
from shared.redaction import log_safe
from shared.settings import RelaySettings

STATE_ROW = "alert"
PENDING_PREFIX = "pending-"
REASON_MAX_CHARS = 500

logger = logging.getLogger(__name__)

# The ledger's errors are the store's.
LedgerUnavailable = Unavailable
LedgerConflict = Conflict
PendingEvent = Pending


@dataclass(frozen=True)
class LedgerEntry(Conversation):
    """A conversation as the ledger hands it out, with wall-clock helpers for callers."""

    @property
    def external_id(self) -> str:
        return self.key

    @property
    def etag(self) -> str | None:
        return self.version

    def inflight(self, limit_seconds: float) -> bool:
        return self.inflight_at(_now(), limit_seconds)

    def sending(self, limit_seconds: float) -> bool:
        return self.sending_at(_now(), limit_seconds)


def short_reason(text: str) -> str:
    """A reason as the ledger and queue messages keep it: at most REASON_MAX_CHARS, as said
    (log lines escape it), but never a lone surrogate, which cannot be encoded at all."""
    return text[:REASON_MAX_CHARS].encode("utf-8", "replace").decode("utf-8")


def utf16_units(text: str) -> int:
    """The length Azure Table measures a string property in."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _value(status: Hashable) -> str:
    return str(getattr(status, "value", status))


# --- the row schema <-> the core's state ---


def pending_key(seq: int) -> str:
    return f"{PENDING_PREFIX}{seq:010d}"


def load(key: str, rows: dict[str, Row], status_type: Callable[[str], Hashable]) -> Conversation:
    """The conversation stored in `rows` (a partition, or just its state row)."""
    row = rows.get(STATE_ROW)
    if row is None:
        return core.absent(key)
    entity = row.entity
    mailbox = tuple(
        Pending(
            seq=int(r.entity["Seq"]),
            status=status_type(r.entity["Status"]),
            payload=json.loads(r.entity["Payload"]),
            reason=r.entity.get("Reason") or "",
            version=r.etag,
        )
        for name, r in sorted(rows.items())
        if name.startswith(PENDING_PREFIX)
    )
    status = status_type(entity["Status"])
    return Conversation(
        key=key,
        status=status,
        seq=int(entity.get("Seq") or 0),
        delivered_seq=int(entity.get("DeliveredSeq") or 0),
        sending_seq=int(entity.get("SendingSeq") or 0),
        sending_since=entity.get("SendingUtc") if entity.get("SendingSeq") else None,
        inflight_seq=int(entity.get("InflightSeq") or 0),
        inflight_since=entity.get("InflightUtc") if entity.get("InflightSeq") else None,
        pending_count=int(entity.get("PendingCount") or 0),
        event_id=entity.get("EventId") or None,
        failed_reason=entity.get("FailedReason") or None,
        target=entity.get("Target") or "",  # rows written before routing: the default team
        raised_event_id=_anchor(entity, status),
        exists=True,
        version=row.etag,
        mailbox=mailbox,
    )


def _anchor(entity: dict[str, Any], status: Hashable) -> str | None:
    """The stored anchor. A row written before anchors existed has none; its `EventId` is the
    anchor only while the last accepted send was the `new` itself (status new, nothing claimed
    since): any later send overwrote it with an id that is not the alert's."""
    if "RaisedEventId" in entity:
        return entity["RaisedEventId"] or None
    settled = int(entity.get("DeliveredSeq") or 0) == int(entity.get("Seq") or 0)
    if _value(status) == AlertStatus.NEW.value and settled and not entity.get("PendingCount"):
        return entity.get("EventId") or None
    return None


def _state_entity(state: Conversation, now: datetime) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "Status": _value(state.status),
        "Seq": state.seq,
        "DeliveredSeq": state.delivered_seq,
        "SendingSeq": state.sending_seq,
        "PendingCount": state.pending_count,
        "EventId": state.event_id or "",
        "RaisedEventId": state.raised_event_id or "",
        "InflightSeq": state.inflight_seq,
        "FailedReason": short_reason(state.failed_reason or ""),
        "UpdatedUtc": now,
    }
    if state.target:
        entity["Target"] = state.target
    if state.sending_seq and state.sending_since:
        entity["SendingUtc"] = state.sending_since
    if state.inflight_seq and state.inflight_since:
        entity["InflightUtc"] = state.inflight_since
    return entity


def _pending_entity(pending: Pending, now: datetime) -> dict[str, Any]:
    # Fitted again here, whatever built it: this one property is what could outgrow the table.
    return {
        "Seq": pending.seq,
        "Status": _value(pending.status),
        "Payload": json.dumps(fit_payload(pending.payload), ensure_ascii=False),
        "Reason": short_reason(pending.reason),
        "QueuedUtc": now,
    }


def operations(old: Conversation, step: Step, now: datetime) -> list[Op]:
    """The conditional writes that turn `old` (as read) into `step.state`."""
    new = step.state
    ops: list[Op] = []
    if new.exists and not old.exists:
        ops.append(Op("create", STATE_ROW, _state_entity(new, now)))
    elif new.exists:
        ops.append(Op("replace", STATE_ROW, _state_entity(new, now), old.version))
    elif old.exists:
        ops.append(Op("delete", STATE_ROW, etag=old.version))
    if step.add is not None:
        ops.append(Op("create", pending_key(step.add.seq), _pending_entity(step.add, now)))
    if step.remove:
        version = next((p.version for p in old.mailbox if p.seq == step.remove), None)
        ops.append(Op("delete", pending_key(step.remove), etag=version))
    return ops


# --- what this process knows already ---

KNOWN_STATES_MAX = 4096  # conversations remembered per store; the least recently used go first


class KnownStates:
    """The last state (with its ETag) this process read or wrote of each conversation.

    Only a guess to claim against: the claim is a write conditional on that ETag, so if another
    worker changed the conversation since, it conflicts (and the entry is forgotten). A decision
    that writes nothing must not be made on it. Thread-safe, bounded."""

    def __init__(self, size: int = KNOWN_STATES_MAX) -> None:
        self._size = size
        self._states: OrderedDict[str, Conversation] = OrderedDict()
        self._later: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Conversation | None:
        with self._lock:
            state = self._states.get(key)
            if state is not None:
                self._states.move_to_end(key)
            return state

    def remember(self, state: Conversation) -> None:
        """Keep `state` as read or written; an absent state (or one without an ETag) is no
        guess worth keeping: forget the key."""
        if not state.exists or state.version is None:
            self.forget(state.key)
            return
        with self._lock:
            self._states[state.key] = replace(state, mailbox=())
            self._states.move_to_end(state.key)
            while len(self._states) > self._size:
                self._states.popitem(last=False)

    def forget(self, key: str) -> None:
        with self._lock:
            self._states.pop(key, None)

    # -- writes after the answer --

    def later(self, key: str, work: Callable[[], None]) -> None:
        """Run `work` (a write of `key`) on a background thread, after the caller answered.
        Until it is done, `settle(key)` waits: this process reads its own writes."""
        with self._lock:
            before = self._later.get(key)
            done = _after_answer().submit(_after, before, work)
            self._later[key] = done
        done.add_done_callback(lambda _: self._drop_later(key, done))

    def settle(self, key: str) -> None:
        """Wait until this process's background writes of `key` are done."""
        with self._lock:
            pending = self._later.get(key)
        if pending is not None:
            wait([pending], timeout=AFTER_ANSWER_WAIT_SECONDS)

    def pending(self) -> list[Future[None]]:
        with self._lock:
            return list(self._later.values())

    def _drop_later(self, key: str, done: Future[None]) -> None:
        with self._lock:
            if self._later.get(key) is done:
                del self._later[key]

    def clear(self) -> None:
        """Forget every state (what a restarted process knows)."""
        with self._lock:
            self._states.clear()

    def __len__(self) -> int:
        return len(self._states)


# A background write waits at most this long for the one before it (a store call's timeouts
# and retries end well before); a reader waits as long for it, then reads what is stored.
AFTER_ANSWER_WAIT_SECONDS = 60.0
_after_answer_pool: ThreadPoolExecutor | None = None


def _after_answer() -> ThreadPoolExecutor:
    """The threads that write after the answer (created on first use: nothing at cold start).
    The interpreter waits for their work at exit."""
    global _after_answer_pool
    with _known_lock:
        if _after_answer_pool is None:
            _after_answer_pool = ThreadPoolExecutor(2, thread_name_prefix="ledger-after-answer")
        return _after_answer_pool


def settle_after_answer() -> None:
    """Wait until every write after the answer submitted so far is done (the tests: no
    write runs on into the next test)."""
    with _known_lock:
        views = [known for per_type in _known.values() for known in per_type.values()]
    # A key's latest write waits for the one before it: the latest of each key are enough.
    wait([f for known in views for f in known.pending()], timeout=AFTER_ANSWER_WAIT_SECONDS)


def _after(before: Future[None] | None, work: Callable[[], None]) -> None:
    if before is not None:
        wait([before], timeout=AFTER_ANSWER_WAIT_SECONDS)
    try:
        work()
    except Exception as error:  # a background write must not die silently
        # The kind only: an unexpected error's text may carry a storage URL with its SAS.
        logger.warning("ledger: a write after the answer failed: %s", type(error).__name__)


# One per store and status type (a Ledger is built per request; the store lives on), so every
# request of this process shares what the others learned.
_known: weakref.WeakKeyDictionary[PartitionStore, dict[object, KnownStates]] = (
    weakref.WeakKeyDictionary()
)
_known_lock = threading.Lock()


def known_states(store: PartitionStore, status_type: object) -> KnownStates:
    with _known_lock:
        per_type = _known.setdefault(store, {})
        return per_type.setdefault(status_type, KnownStates())


# --- the ledger: read, transition, conditional write ---


class Ledger:
    """Conversations in a PartitionStore. `clock` gives "now" (the tests' is fake)."""

    def __init__(
        self,
        store: PartitionStore,
        *,
        clock: Callable[[], datetime] = _now,
        status_type: Callable[[str], Hashable] = AlertStatus,
    ) -> None:
        self.store = store
        self.clock = clock
        self._status_type = status_type
        self.known = known_states(store, status_type)

    def read(self, key: str, *, mailbox: bool = False) -> Conversation:
        self.known.settle(key)
        mark = time.perf_counter_ns() if TIMING else 0
        try:
            rows = self.store.read(key, None if mailbox else STATE_ROW)
        except Unavailable:
            self.known.forget(key)
            raise
        if TIMING:
            from shared.timing import phase

            phase("ledger.read", mark)
        state = load(key, rows, self._status_type)
        self.known.remember(state)
        return state

    def guess(self, key: str) -> Conversation:
        """The conversation as this process last saw it, without a read (absent when it saw
        none): only to claim against, conditionally."""
        self.known.settle(key)
        return self.known.get(key) or core.absent(key)

    def apply(self, old: Conversation, step: Step, extra: Sequence[Op] = ()) -> Conversation:
        """Write `step` conditionally on `old` still being current; the new state (new ETag).
        `extra`: rows of the same partition written in the same transaction (a notification
        id seen, for the write-back direction). Raises Conflict when someone else wrote first,
        Unavailable when the store is down."""
        if not step.changed:
            return old
        mark = time.perf_counter_ns() if TIMING else 0
        ops = operations(old, step, self.clock()) + list(extra)
        try:
            etags = self.store.commit(old.key, ops)
        except (Conflict, Unavailable):
            # Someone else wrote first, or the write may or may not have happened.
            self.known.forget(old.key)
            raise
        if TIMING:
            from shared.timing import phase

            phase("ledger.apply", mark)
        new = replace(step.state, version=etags.get(STATE_ROW))
        self.known.remember(new)
        return new

    def retry(
        self, key: str, transition: Callable[[Conversation], Step], *, mailbox: bool = False
    ) -> tuple[Conversation, Step]:
        """Read, transition and write until the write wins (a conflict means someone changed
        the conversation meanwhile: read again and decide again)."""
        for _ in range(100):
            state = self.read(key, mailbox=mailbox)
            step = transition(state)
            try:
                return self.apply(state, step), step
            except Conflict:
                continue
        raise Conflict(f"{key} changed 100 times in a row")

    # -- the row-level API: the service uses confirm, release, clear_sending, abandon and
    # mark_failed; get, pending, claim, add_to_mailbox, begin_send and settle are kept for the
    # tests only (the bench times the service now) --

    def get(self, external_id: str) -> LedgerEntry | None:
        state = self.read(external_id)
        return _entry(state) if state.exists else None

    def pending(self, external_id: str) -> list[PendingEvent]:
        """The ticket's mailbox, oldest first (row keys sort by zero-padded sequence)."""
        return list(self.read(external_id, mailbox=True).mailbox)

    def claim(
        self,
        external_id: str,
        status: AlertStatus,
        previous: Conversation | None,
        *,
        mailbox: dict[str, Any] | None = None,
        reason: str = "",
    ) -> LedgerEntry:
        """Record that `status` is about to be sent; conditional on `previous` being current
        (None: the ticket has no state yet). With `mailbox` (the payload), the event joins the
        ticket's mailbox in the same transaction instead of being sent inline."""
        state = previous or core.absent(external_id)
        arrival = Arrival(status, mailbox or {}, can_queue=mailbox is not None)
        step = core.claim(
            state, arrival, (reason or "queued") if mailbox is not None else "", self.clock()
        )
        return _entry(self.apply(state, step))

    def add_to_mailbox(
        self,
        entry: Conversation,
        seq: int,
        status: AlertStatus,
        payload: dict[str, Any],
        reason: str,
    ) -> LedgerEntry:
        """Park claim `seq` in the mailbox; `entry` is the current state."""
        step = core.park(entry, Pending(seq, status, payload, reason), self.clock(), 0.0)
        if not step.changed:  # superseded: the caller decides; park it anyway for this API
            step = Step(
                replace(entry, pending_count=entry.pending_count + 1),
                add=Pending(seq, status, payload, reason),
            )
        return _entry(self.apply(entry, step))

    def confirm(self, claimed: Conversation, event_id: str | None, *, opened: bool = False) -> None:
        """SIGNL4 accepted the claim inline (`opened`: it raised the alert). Best effort: a
        failure here only risks a duplicate (and, for an opening, an unverifiable alert)."""
        self._best_effort(
            claimed,
            lambda s: core.accepted(s, claimed.seq, event_id, opened=opened),
            "update",
        )

    def confirm_later(
        self, claimed: Conversation, event_id: str | None, *, opened: bool = False
    ) -> None:
        """confirm, on a background thread: the caller answers first. If this process dies
        before it runs, the claim stays as after a crash between send and confirm: the event
        counts as sent (a repeat is a duplicate) and the in-flight mark ages out. In memory
        the write costs less than the hand-off to a thread: done at once."""
        if isinstance(self.store, MemoryStore):
            self.confirm(claimed, event_id, opened=opened)
            return
        self.known.later(claimed.key, lambda: self.confirm(claimed, event_id, opened=opened))

    def release(self, claimed: Conversation, previous: Conversation | None) -> None:
        """Undo a claim SIGNL4 refused for good, so a corrected retry is not a 'duplicate'."""
        before = previous or core.absent(claimed.key)
        self._best_effort(claimed, lambda s: core.refused(s, claimed.seq, before), "release")

    def begin_send(self, entry: Conversation, event: Pending) -> LedgerEntry:
        """Mark `event` as being sent. Conditional: only one worker may send it."""
        step = Step(replace(entry, sending_seq=event.seq, sending_since=self.clock()))
        return _entry(self.apply(entry, step))

    def settle(
        self,
        entry: Conversation,
        event: Pending,
        *,
        event_id: str | None = None,
        failed_reason: str | None = None,
    ) -> LedgerEntry:
        """Take `event` out of the mailbox: delivered (event id) or given up (reason)."""
        state = entry if entry.mailbox else replace(entry, mailbox=(event,))
        step = core.settle(state, event.seq, event_id=event_id, failed_reason=failed_reason)
        return _entry(self.apply(state, step))

    def clear_sending(self, external_id: str, seq: int) -> None:
        """The send of `seq` did not happen (or failed): remove its mark. Only our own mark:
        another worker's must stay. Tried harder than other writes."""
        last: Exception | None = None
        for attempt in range(4):
            try:
                self.retry(external_id, lambda s: core.clear_sending(s, seq))
                return
            except Unavailable as error:
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
            _, step = self.retry(
                external_id,
                lambda s: (
                    core.settle(s, s.mailbox[0].seq, failed_reason=reason)
                    if s.exists and s.mailbox
                    else Step(s, changed=False)
                ),
                mailbox=True,
            )
            if not isinstance(step.effect, core.Settled):
                break
            abandoned.append(step.effect.pending)
        return abandoned

    def mark_failed(self, external_id: str, reason: str) -> None:
        """Recorded by the poison function: a later delivery of the same status is not a duplicate."""
        try:
            self.retry(external_id, lambda s: core.mark_failed(s, short_reason(reason)))
        except (Unavailable, Conflict) as error:
            logger.warning(
                "ledger: could not update %s: %s", log_safe(external_id), log_safe(error)
            )

    def _best_effort(
        self, known: Conversation, transition: Callable[[Conversation], Step], what: str
    ) -> None:
        state = known
        for _ in range(8):
            try:
                self.apply(state, transition(state))
                return
            except Conflict:
                try:
                    state = self.read(known.key)
                except Unavailable as error:
                    self._warn(known.key, what, error)
                    return
            except Unavailable as error:
                self._warn(known.key, what, error)
                return
        self._warn(known.key, what, Conflict("changed concurrently"))

    @staticmethod
    def _warn(key: str, what: str, error: Exception) -> None:
        logger.warning("ledger: could not %s %s: %s", what, log_safe(key), log_safe(error))


def _entry(state: Conversation) -> LedgerEntry:
    return LedgerEntry(**{f.name: getattr(state, f.name) for f in fields(Conversation)})


# AzureWebJobsStorage=memory: the ledger in this process's memory (tests, local runs): the same
# conditional semantics as the table, gone when the process stops.
MEMORY_STORAGE = "memory"
_memory_store = MemoryStore()


def open_ledger(
    settings: RelaySettings, *, status_type: Callable[[str], Hashable] = AlertStatus
) -> Ledger | None:
    """The ledger for these settings, or None when no storage is configured at all.
    `status_type` reads a stored status (SIGNL4's AlertStatus; `str` for write-backs)."""
    connection = settings.storage_connection
    if connection is not None and connection.get_secret_value().strip() == MEMORY_STORAGE:
        return Ledger(_memory_store, status_type=status_type)
    store: PartitionStore | None = open_table_store(settings)
    return Ledger(store, status_type=status_type) if store is not None else None


def describe_ledger(settings: RelaySettings) -> str:
    """Where open_ledger keeps the ledger, for `python -m devhost serve`'s start-up lines.
    Names no connection string (it holds the account key)."""
    connection = settings.storage_connection
    if connection is not None and connection.get_secret_value().strip() == MEMORY_STORAGE:
        return "ledger: in memory; lost when serve stops"
    if connection is not None or settings.storage_account_name:
        return f"ledger: Azure Table {TABLE_NAME} (AzureWebJobsStorage)"
    return "ledger: none (AzureWebJobsStorage is not set): a redelivered event is sent again"


__all__ = [
    "REASON_MAX_CHARS",
    "TABLE_ENTITY_MAX_BYTES",
    "TABLE_NAME",
    "TABLE_STRING_MAX_UTF16_UNITS",
    "KnownStates",
    "Ledger",
    "LedgerConflict",
    "LedgerEntry",
    "LedgerUnavailable",
    "PendingEvent",
    "TableStore",
    "describe_ledger",
    "open_ledger",
    "quiet_azure_sdk",
    "short_reason",
    "utf16_units",
]
