"""Event-only and small-object payloads read in full: when a decision needs a field the payload
lacks (shared/domain/full_ticket.py), the ticket is read through the ticket-reader port, briefly
cached so one save's burst of webhooks costs one read.

A read that fails, or no credentials to read with, never drops the event: it is decided on what
the payload says, and the answer says why (`incomplete`). A cached read never opens an alert: a
plan to page `new` on cached fields reads the ticket again (the ticket may have closed since).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.adapters.ticket_source import TicketReader
from shared.domain.full_ticket import completed, missing_fields
from shared.domain.halo import HaloEvent
from shared.domain.policy import CLOSED_EVENT
from shared.errors import RelayError
from shared.redaction import log_safe
from shared.settings import RelaySettings

TICKET_CACHE_SECONDS = 30.0  # one save's burst of webhooks; never long enough to page on
TICKET_CACHE_MAX = 1000  # tickets; the oldest goes first
NOTE_MAX_CHARS = 300

logger = logging.getLogger("shared.relay")


@dataclass(frozen=True)
class ReadEvent:
    """An event as it is judged: completed from Halo's ticket when needed. `note` says why it
    is judged on the payload alone though a field was missing (empty: nothing missing, or read).
    `cached`: fields came from the cache, so a `new` must read again before it pages."""

    event: HaloEvent
    note: str = ""
    cached: bool = False


class TicketCache:
    """Halo's ticket records by (Halo instance, ticket id), each kept `seconds`. Per process."""

    def __init__(
        self,
        seconds: float = TICKET_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        limit: int = TICKET_CACHE_MAX,
    ) -> None:
        self.seconds, self.clock, self.limit = seconds, clock, limit
        self._records: OrderedDict[tuple[str, int], tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> dict[str, Any] | None:
        with self._lock:
            held = self._records.get(key)
            if held is None or self.clock() - held[0] >= self.seconds:
                self._records.pop(key, None)
                return None
            return held[1]

    def put(self, key: tuple[str, int], record: dict[str, Any]) -> None:
        with self._lock:
            self._records.pop(key, None)
            self._records[key] = (self.clock(), record)
            while len(self._records) > self.limit:
                self._records.popitem(last=False)

    def forget(self, key: tuple[str, int]) -> None:
        with self._lock:
            self._records.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


CACHE = TicketCache()


def read_in_full(
    event: HaloEvent,
    settings: RelaySettings,
    reader: TicketReader | None,
    *,
    fresh: bool = False,
    cache: TicketCache = CACHE,
) -> ReadEvent:
    """`event` with what its decision needs. `fresh`: past the cache (before a page goes out on
    cached fields). Never raises for Halo: a failed read is a note, and the payload decides."""
    missing = missing_fields(event, settings)
    key = (settings.halo_base_url or "", event.ticket.id)
    if not missing:
        if event.ticket.closed or event.event == CLOSED_EVENT:
            cache.forget(key)  # a cached "open" must not outlive the close
        return ReadEvent(event)
    lacks = ", ".join(name for name in missing if name != "summary")
    if reader is None:  # without a decision field missing, a bare alert text is no reason
        return ReadEvent(event, note=_no_credentials(lacks) if lacks else "")
    record = None if fresh else cache.get(key)
    cached = record is not None
    try:
        if record is None:
            record = reader(event.ticket.id, settings)
        full = completed(event, record)
    except RelayError as error:
        cache.forget(key)
        note = (
            f"the payload has no {lacks or 'summary'} and Halo's ticket could not be read "
            f"({error.message})"
        )
        logger.warning(
            "relay: %s judged on its payload: %s", event.ticket.external_id, log_safe(note)
        )
        return ReadEvent(event, note=note[:NOTE_MAX_CHARS])
    if not cached:
        cache.put(key, record)
    if full.ticket.closed:
        cache.forget(key)
    return ReadEvent(full, cached=cached)


def _no_credentials(lacks: str) -> str:
    """Why an event cannot be judged in full without the Halo API credentials."""
    return (
        f"the payload has no {lacks}: choose the full ticket in Halo's webhook payload, or set "
        "HALO_CLIENT_ID and HALO_CLIENT_SECRET so the relay reads the ticket"
    )
