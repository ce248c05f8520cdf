"""Event-only and small-object payloads (pure): which fields a decision needs that the payload
lacks, and the event completed with the ticket Halo answered to GET /api/Tickets/{id}.

Halo's webhook can send the full ticket, a small ticket object (no priority) or the event only
(no ticket at all). A status change without a status, or a priority filter without a priority,
cannot be judged: the relay reads the ticket (shared/delivery/ticket_reads.py) and merges it here.
The payload wins where it speaks (it is the event's own view); the read fills what it lacks.
"""

from __future__ import annotations

from typing import Any

from shared.domain.halo import HaloEvent, Ticket, ticket_from_record
from shared.domain.policy import CLOSED_EVENT, NEW_TICKET_EVENT
from shared.settings import RelaySettings

# Fields that travel together: the payload's pair is kept whole, or the read's pair is taken
# whole (an id from one and a name from the other could name two different statuses).
FIELD_GROUPS: dict[str, tuple[str, ...]] = {
    "status": ("status_id", "status_name"),
    "priority": ("priority_id", "priority"),
    "team": ("team_id", "team"),
    "client": ("client_id", "client"),
    "site": ("site_id", "site"),
    "type": ("ticket_type_id", "ticket_type"),
    "agent": ("agent_id", "agent"),
}


def missing_fields(event: HaloEvent, settings: RelaySettings) -> tuple[str, ...]:
    """The fields the decision on `event` rests on that its payload lacks (empty: none).

    Only webhook envelopes are read for: the guide's body says its status itself, and a bare
    ticket is the full object. A closed ticket, Halo's `closed` event or an explicit X-S4-Status
    need nothing more; a status change does, and so does every field a filter or route uses."""
    ticket = event.ticket
    if event.shape != "webhook" or event.requested_status is not None:
        return ()
    if ticket.closed or event.event == CLOSED_EVENT:
        return ()
    missing = []
    if event.event != NEW_TICKET_EVENT and not ticket.status_keys():
        missing.append("status")
    routed = settings.relay_routes.fields_matched()
    priority_used = settings.relay_page_priorities or settings.relay_emergency_priorities
    if not ticket.priority_keys() and (priority_used or "priority" in routed):
        missing.append("priority")
    if not ticket.team_keys() and (settings.relay_page_teams or "team" in routed):
        missing.append("team")
    for name in ("client", "site", "type"):
        if name in routed and not _present(ticket, name):
            missing.append(name)
    if ticket.summary is None and event.message is None:
        missing.append("summary")  # nothing to say in the alert but the ticket number
    return tuple(missing)


def completed(event: HaloEvent, record: dict[str, Any]) -> HaloEvent:
    """`event` with the fields its payload lacks taken from Halo's ticket `record`. The payload
    wins group by group; a ticket closed in either is closed. UnsupportedPayload when `record`
    is another ticket's."""
    read = ticket_from_record(record, event.ticket.id)
    ours = event.ticket
    update: dict[str, Any] = {}
    for names in FIELD_GROUPS.values():
        if all(getattr(ours, name) is None for name in names):
            update.update({name: getattr(read, name) for name in names})
    for name in ("summary", "details", "user", "reference", "date_occurred", "date_closed"):
        if getattr(ours, name) is None:
            update[name] = getattr(read, name)
    update["closed"] = ours.closed or read.closed
    return event.model_copy(update={"ticket": ours.model_copy(update=update)})


def _present(ticket: Ticket, group: str) -> bool:
    return any(getattr(ticket, name) is not None for name in FIELD_GROUPS[group])
