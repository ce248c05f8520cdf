"""Reading a ticket a payload carries too little of (shared/delivery/ticket_reads.py), over the
in-memory ticket reader (MemoryTickets) and a cache on a test clock: every rule, counted."""

from __future__ import annotations

import logging

import pytest

from shared.adapters.ticket_source import MemoryTickets
from shared.delivery.ticket_reads import (
    TICKET_CACHE_SECONDS,
    ReadEvent,
    TicketCache,
    read_in_full,
)
from shared.domain.halo import HaloEvent, parse_event
from shared.settings import RelaySettings

SETTINGS = RelaySettings.from_env(
    {"RELAY_PAGE_PRIORITIES": "1", "HALO_BASE_URL": "https://halo.example"}
)
BARE = RelaySettings.from_env({})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def event_only(event: str = "ticket status changed") -> HaloEvent:
    return parse_event({"event": event, "object_id": 42, "message": "m"})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> TicketCache:
    return TicketCache(clock=clock)


def test_a_complete_payload_is_not_read(cache: TicketCache) -> None:
    tickets = MemoryTickets({42: {"id": 42}})
    full = parse_event({"event": "closed", "object_id": 42})
    assert read_in_full(full, SETTINGS, tickets, cache=cache).event is full
    assert tickets.reads == 0


def test_without_a_reader_the_note_names_what_is_missing_and_why(cache: TicketCache) -> None:
    read = read_in_full(event_only(), SETTINGS, None, cache=cache)
    assert read.note == (
        "the payload has no status, priority: choose the full ticket in Halo's webhook payload, "
        "or set HALO_CLIENT_ID and HALO_CLIENT_SECRET so the relay reads the ticket"
    )
    assert not read.cached


def test_only_a_summary_missing_is_no_reason_to_note_but_a_reason_to_read(
    cache: TicketCache, caplog: pytest.LogCaptureFixture
) -> None:
    bare = parse_event({"event": "new ticket logged", "object_id": 42})
    assert read_in_full(bare, BARE, None, cache=cache) == ReadEvent(bare)
    tickets = MemoryTickets({42: {"id": 42, "summary": "Disk full"}})
    assert read_in_full(bare, BARE, tickets, cache=cache).event.ticket.summary == "Disk full"
    tickets.down = True
    with caplog.at_level(logging.WARNING, "shared.relay"):
        failed = read_in_full(bare, BARE, tickets, fresh=True, cache=cache)
    assert failed.note.startswith("the payload has no summary and Halo's ticket could not be read")
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("relay: HaloPSA-42 judged on its payload: the payload has no summary")


def test_the_cache_is_per_halo_instance(cache: TicketCache) -> None:
    tickets = MemoryTickets({42: {"id": 42, "status_id": 2}})
    other = SETTINGS.model_copy(update={"halo_base_url": "https://other.example"})
    read_in_full(event_only(), SETTINGS, tickets, cache=cache)
    assert not read_in_full(event_only(), other, tickets, cache=cache).cached
    assert read_in_full(event_only(), SETTINGS, tickets, cache=cache).cached


def test_reads_are_cached_until_they_expire(cache: TicketCache, clock: Clock) -> None:
    tickets = MemoryTickets({42: {"id": 42, "status_id": 2, "priority_id": 4}})
    first = read_in_full(event_only(), SETTINGS, tickets, cache=cache)
    clock.now += TICKET_CACHE_SECONDS - 1
    second = read_in_full(event_only(), SETTINGS, tickets, cache=cache)
    assert (first.cached, second.cached, tickets.reads) == (False, True, 1)
    assert second.event.ticket.priority_id == 4
    clock.now += 1
    assert not read_in_full(event_only(), SETTINGS, tickets, cache=cache).cached
    assert tickets.reads == 2


def test_fresh_reads_past_the_cache_and_a_close_forgets_it(cache: TicketCache) -> None:
    tickets = MemoryTickets({42: {"id": 42, "status_id": 2}})
    read_in_full(event_only(), SETTINGS, tickets, cache=cache)
    assert not read_in_full(event_only(), SETTINGS, tickets, fresh=True, cache=cache).cached
    assert tickets.reads == 2
    read_in_full(parse_event({"event": "closed", "object_id": 42}), SETTINGS, tickets, cache=cache)
    assert not read_in_full(event_only(), SETTINGS, tickets, cache=cache).cached
    assert tickets.reads == 3


def test_a_closed_ticket_read_is_not_kept(cache: TicketCache) -> None:
    tickets = MemoryTickets({42: {"id": 42, "status_id": 9, "hasbeenclosed": True}})
    for _ in range(2):
        assert read_in_full(event_only(), SETTINGS, tickets, cache=cache).event.ticket.closed
    assert tickets.reads == 2


@pytest.mark.parametrize("failure", ["down", "unknown", "another ticket"])
def test_a_failed_read_keeps_the_payload_and_says_why(
    cache: TicketCache, failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    tickets = MemoryTickets({42: {"id": 43}} if failure == "another ticket" else {})
    tickets.down = failure == "down"
    payload = event_only()
    with caplog.at_level(logging.WARNING, "shared.relay"):
        read = read_in_full(payload, SETTINGS, tickets, cache=cache)
    assert read.event is payload and "could not be read" in read.note
    assert "judged on its payload" in caplog.text
    assert read_in_full(payload, SETTINGS, tickets, cache=cache).note  # nothing cached
    assert tickets.reads == 2


def test_the_cache_keeps_at_most_its_limit_oldest_out_first(clock: Clock) -> None:
    cache = TicketCache(clock=clock, limit=2)
    for ticket in (1, 2):
        cache.put(("h", ticket), {"id": ticket})
    assert len(cache) == 2
    cache.put(("h", 1), {"id": 1})  # put again: the newest now, so 2 goes first
    cache.put(("h", 3), {"id": 3})
    assert [cache.get(("h", t)) for t in (1, 2, 3)] == [{"id": 1}, None, {"id": 3}]


def test_an_expired_read_is_dropped_not_kept(cache: TicketCache, clock: Clock) -> None:
    cache.put(("h", 1), {"id": 1})
    clock.now += TICKET_CACHE_SECONDS
    assert (cache.get(("h", 1)), len(cache)) == (None, 0)
