"""The ticket-reader port: what the relay needs to read one Halo ticket in full (for event-only
and small-object payloads): a call with the ticket id and the settings, answered by Halo's ticket
as a JSON object, or HaloUnavailable / HaloRejected. The entry layer wires Halo's client
(shared/adapters/halo.py `read_ticket`); MemoryTickets is the in-memory one, same semantics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.errors import HaloRejected, HaloUnavailable
from shared.settings import RelaySettings

TicketReader = Callable[[int, RelaySettings], dict[str, Any]]


class MemoryTickets:
    """Tickets held in memory: `records` by id (an unknown id is Halo's 404), `down` makes every
    read fail as an unreachable Halo does, and `reads` counts the calls (what a cache saves)."""

    def __init__(self, records: dict[int, dict[str, Any]] | None = None) -> None:
        self.records: dict[int, dict[str, Any]] = dict(records or {})
        self.down = False
        self.reads = 0

    def __call__(self, ticket_id: int, settings: RelaySettings) -> dict[str, Any]:
        self.reads += 1
        if self.down:
            raise HaloUnavailable(f"could not reach Halo for GET /api/Tickets/{ticket_id}")
        record = self.records.get(ticket_id)
        if record is None:
            raise HaloRejected(
                f"Halo refused GET /api/Tickets/{ticket_id} with HTTP 404: "
                "That Ticket does not exist",
                404,
            )
        return dict(record)
