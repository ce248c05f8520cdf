"""The delivery ledger (service): conversations read from a PartitionStore, changed by a pure
transition (shared/delivery/conversation.py) and written back conditionally; and every other
row of the table (held pages, write-back rows), so no other module touches rows. The schema
(table, partitions, rows, limits) is shared/delivery/schema.py. Every write is conditional
(create-if-absent, replace-if-ETag, one entity-group transaction), so two workers cannot both
claim one transition. `KnownStates` remembers per process the last state of each conversation,
so the HTTP path can claim without reading first (a stale guess only conflicts).
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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from shared import TIMING
from shared.adapters.store import MemoryStore, Op, PartitionStore, Row
from shared.delivery import conversation as core
from shared.delivery import schema
from shared.delivery.conversation import Conversation, Pending, Step
from shared.delivery.schema import (
    HELD_LABEL_MAX_CHARS,
    HELD_PARTITION,
    NOTIFICATION_MAX_CHARS,
    PENDING_PREFIX,
    SEEN_PREFIX,
    STATE_ROW,
    TRANSACTION_MAX_ROWS,
    pending_key,
    short_reason,
)
from shared.domain.alert import AlertStatus, fit_payload
from shared.domain.page import TRIAGE_FIELD_MAX_CHARS, Triage
from shared.errors import Conflict, Unavailable
from shared.redaction import log_safe

logger = logging.getLogger(__name__)
# The write-back rows' warnings were logged by the delivery service as shared.relay: kept.
relay_logger = logging.getLogger("shared.relay")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _value(status: Hashable) -> str:
    return str(getattr(status, "value", status))


# --- the row schema <-> the core's state ---


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
        learned=entity.get("Learned") is True,
        opened_at=_utc(entity.get("OpenedUtc")),
        basis=str(entity.get("Basis") or ""),
        downgraded=entity.get("Downgraded") is True,
        exists=True,
        version=row.etag,
        mailbox=mailbox,
    )


def _utc(value: Any) -> datetime | None:
    """A stored time, aware (a store may give it back naive: it was written in UTC)."""
    if not isinstance(value, datetime):
        return None  # absent (rows written before) or unreadable: not recorded
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


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


# Row `alert` (the state): `Status`/`Seq` the last status claimed for sending and its per-ticket
# sequence number; `DeliveredSeq`/`EventId` the last one the other side accepted; `PendingCount`
# how many events wait in the mailbox; `InflightSeq`/`InflightUtc` an inline send in progress;
# `SendingSeq`/`SendingUtc` set by the queue function just before it sends (found again after a
# crash: "presumably delivered"); `FailedReason` why the last event was given up; `Target` the
# routing target (absent: the default team, and rows written before routing); `RaisedEventId`
# the event id SIGNL4 answered to the accepted `new` that raised the current alert (the anchor
# notifications are verified against; absent in rows written before it existed: `_anchor`);
# `Learned` (absent: false) the status is the other side's own, not seen from this side since;
# `OpenedUtc`/`Basis` when the current (or last) alert's opening was claimed and the fields its
# page rested on (absent in rows from before: not recorded); `Downgraded` (absent: false) the
# last alert was resolved because the ticket no longer qualified.
# Rows `pending-<seq>`: `Seq`, `Status`, `Payload` (fitted to signl4.PAYLOAD_MAX_BYTES, below a
# string property's limit), `Reason` (cut at REASON_MAX_CHARS), `QueuedUtc`.
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
    if state.learned:
        entity["Learned"] = True
    if state.opened_at is not None:
        entity["OpenedUtc"] = state.opened_at
    if state.basis:
        entity["Basis"] = state.basis
    if state.downgraded:
        entity["Downgraded"] = True
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
    """Conversations in a PartitionStore. `clock` gives "now" (the tests' is fake; without
    one, `_now` as the module has it when the ledger is built: the HTTP route's tests fix it)."""

    def __init__(
        self,
        store: PartitionStore,
        *,
        clock: Callable[[], datetime] | None = None,
        status_type: Callable[[str], Hashable] = AlertStatus,
    ) -> None:
        self.store = store
        self.clock = clock or _now
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
            etags = self._commit(old.key, ops)
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

    def abandon(self, external_id: str, reason: str) -> list[Pending]:
        """Give up the ticket's whole mailbox (its nudge went to the poison queue): the events
        leave it, so a re-send from Halo is sent once, not behind stale copies."""
        abandoned: list[Pending] = []
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

    def _commit(self, partition: str, ops: Sequence[Op]) -> dict[str, str]:
        """Every write of the ledger: at most TRANSACTION_MAX_ROWS rows, as the schema is sized."""
        if len(ops) > TRANSACTION_MAX_ROWS:
            raise ValueError(
                f"{len(ops)} rows in one transaction; sized for {TRANSACTION_MAX_ROWS}"
            )
        return self.store.commit(partition, ops)

    # -- the write-back direction's other rows: `seen-<id>` and `signl4-alert` --

    def read_notification(self, key: str, notification_id: str) -> tuple[Conversation, Row | None]:
        """The write-back conversation and the notification's `seen-` row (None: not taken
        yet), in point reads (never a scan, however many notifications the ticket had)."""
        row = schema.seen_key(notification_id)
        rows = self.store.read_rows(key, [STATE_ROW, row])
        return load(key, rows, self._status_type), rows.get(row)

    def seen_op(self, notification_id: str) -> Op:
        """The `seen-` row of a notification, written with its claim (`apply`'s `extra`)."""
        entity = {"Notification": notification_id[:NOTIFICATION_MAX_CHARS], "SeenUtc": self.clock()}
        return Op("create", schema.seen_key(notification_id), entity)

    def forget_seen(self, key: str, notification_id: str) -> None:
        """Halo refused the write for good: SIGNL4's redelivery (after the permission is fixed,
        say) must be tried again, not answered 'duplicate'. Best effort."""
        row = schema.seen_key(notification_id)
        try:
            self._commit(key, [Op("delete", row)])
        except (Conflict, Unavailable) as error:
            relay_logger.warning(
                "ledger: could not forget %s in %s: %s", row, log_safe(key), log_safe(error)
            )

    def prune_seen(self, key: str, keep: timedelta) -> int:
        """Delete the partition's `seen-` rows older than `keep` (best effort: a failure leaves
        them for the next prune). Returns how many went. The one scan of the partition."""
        cutoff = self.clock() - keep
        try:
            rows = self.store.read(key)
        except Unavailable as error:
            relay_logger.warning("ledger: could not prune %s: %s", log_safe(key), log_safe(error))
            return 0
        old = [r for name, r in rows.items() if name.startswith(SEEN_PREFIX) and _older(r, cutoff)]
        pruned = 0
        for start in range(0, len(old), TRANSACTION_MAX_ROWS):
            chunk = old[start : start + TRANSACTION_MAX_ROWS]
            try:
                self._commit(key, [Op("delete", r.key, etag=r.etag) for r in chunk])
            except (Conflict, Unavailable) as error:
                relay_logger.warning(
                    "ledger: could not prune %s: %s", log_safe(key), log_safe(error)
                )
                break
            pruned += len(chunk)
        return pruned

    def record_alert_id(self, key: str, alert_id: str, *, anchor: str) -> bool:
        """Keep SIGNL4's alert id of the verified alert (row `signl4-alert`, with the anchor it
        belongs to): never overwritten with another id for the same alert, replaced when a new
        alert (a new anchor) was raised since. False: another id is recorded for this alert.
        Best effort: a store that fails is logged, and counts as recorded."""
        entity = {"AlertId": alert_id, "EventId": anchor}
        try:
            found = self.store.read_rows(key, [schema.ALERT_ROW]).get(schema.ALERT_ROW)
            if found is None:
                self._commit(key, [Op("create", schema.ALERT_ROW, entity)])
            elif found.entity.get("EventId") != anchor:
                self._commit(key, [Op("replace", schema.ALERT_ROW, entity, found.etag)])
            elif found.entity.get("AlertId") != alert_id:
                return False
        except (Conflict, Unavailable) as error:
            relay_logger.warning(
                "ledger: could not record the alert id of %s: %s", log_safe(key), log_safe(error)
            )
        return True

    # -- a ticket not paged: row `triage` of its conversation's partition --

    def read_triage(self, key: str) -> tuple[Triage | None, str | None]:
        """The remembered triage of a ticket and its ETag ((None, None): none). One point read;
        raises Unavailable."""
        row = self.store.read(key, schema.TRIAGE_ROW).get(schema.TRIAGE_ROW)
        if row is None:
            return None, None
        e = row.entity
        fields = {name: str(e.get(name.title()) or "") for name in ("priority", "team", "client")}
        triage = Triage(
            **fields, route=str(e.get("Route") or ""), qualified=e.get("Qualified") is True
        )
        return triage, row.etag

    def remember_triage(self, key: str, triage: Triage, *, etag: str | None) -> None:
        """Keep `triage` (create, or replace the row read with `etag`). Best effort: a failure
        is logged, and the ticket is judged as one without memory or with the older one."""
        cut = TRIAGE_FIELD_MAX_CHARS
        entity = {
            "Priority": triage.priority[:cut],
            "Team": triage.team[:cut],
            "Client": triage.client[:cut],
            "Route": triage.route[:cut],
            "Qualified": triage.qualified,
            "UpdatedUtc": self.clock(),
        }
        op = (
            Op("create", schema.TRIAGE_ROW, entity)
            if etag is None
            else Op("replace", schema.TRIAGE_ROW, entity, etag)
        )
        try:
            self._commit(key, [op])
        except (Conflict, Unavailable) as error:
            self._warn(key, "remember the triage of", error)

    def forget_triage(self, key: str, *, etag: str) -> None:
        """Delete the triage row read with `etag` (the ticket closed: nothing left to escalate,
        and a reopen is judged from its alert row). Best effort: a failure leaves the row."""
        try:
            self._commit(key, [Op("delete", schema.TRIAGE_ROW, etag=etag)])
        except (Conflict, Unavailable) as error:
            self._warn(key, "forget the triage of", error)

    # -- pages held back by a window: partition `suppressed`, row = external id --

    def hold(
        self,
        external_id: str,
        *,
        rule: str,
        window: str,
        target: str,
        payload: dict[str, Any],
        basis: str = "",
    ) -> None:
        """Keep the ticket's page. Raises Conflict when it is held already (the first stays)."""
        entity = {
            "Basis": basis,
            "Rule": rule[:HELD_LABEL_MAX_CHARS],
            "Window": window[:HELD_LABEL_MAX_CHARS],
            "Target": target,
            "Payload": json.dumps(fit_payload(payload), ensure_ascii=False),
            "HeldUtc": self.clock(),
        }
        self._commit(HELD_PARTITION, [Op("create", external_id, entity)])

    def release_held(self, external_id: str, etag: str | None = None) -> None:
        """Drop the ticket's held page (only as read, with `etag`). Raises Conflict when none."""
        self._commit(HELD_PARTITION, [Op("delete", external_id, etag=etag)])

    def held_pages(self) -> list[HeldPage]:
        """Every held page: one read of one partition."""
        return [
            HeldPage(
                external_id=key,
                rule=str(row.entity.get("Rule") or ""),
                window=str(row.entity.get("Window") or ""),
                target=str(row.entity.get("Target") or ""),
                payload=json.loads(row.entity.get("Payload") or "{}"),
                etag=row.etag,
                basis=str(row.entity.get("Basis") or ""),
            )
            for key, row in sorted(self.store.read(HELD_PARTITION).items())
        ]

    def probe(self) -> None:
        """One point read of a partition nobody writes (the health check). Raises Unavailable."""
        self.store.read(schema.PROBE_PARTITION, STATE_ROW)


@dataclass(frozen=True)
class HeldPage:
    """One ticket whose page waits for its window to end."""

    external_id: str
    rule: str
    window: str
    target: str
    payload: dict[str, Any]
    etag: str | None = None
    basis: str = ""  # what the page rests on (absent in rows from before: not recorded)


def _older(row: Row, cutoff: datetime) -> bool:
    seen = row.entity.get("SeenUtc")
    if not isinstance(seen, datetime):
        return False  # unreadable: kept (a row too many beats a notification written twice)
    return (seen if seen.tzinfo else seen.replace(tzinfo=timezone.utc)) < cutoff


__all__ = [
    "HeldPage",
    "KnownStates",
    "Ledger",
    "known_states",
    "load",
    "operations",
    "settle_after_answer",
]
