"""Whether and how to page: a pure decision over a normalised Halo event and the settings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.domain.alert import AlertStatus
from shared.domain.halo import HaloEvent
from shared.domain.signl4_params import NO_PARAMS, SignalParams
from shared.settings import RelaySettings

NEW_TICKET_EVENT = "new ticket logged"
CLOSED_EVENT = "closed"


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Literal["send", "skip"]
    status: AlertStatus | None = None
    reason: str
    # SIGNL4 X-S4-AlertingScenario; "emergency" pages the whole team regardless of duty.
    scenario: Literal["emergency"] | None = None
    # A skip by RELAY_PAGE_PRIORITIES/RELAY_PAGE_TEAMS: the ticket is remembered (escalation).
    filtered: bool = False


def _send(
    status: AlertStatus, reason: str, scenario: Literal["emergency"] | None = None
) -> Decision:
    return Decision(action="send", status=status, reason=reason, scenario=scenario)


def _skip(reason: str, *, filtered: bool = False) -> Decision:
    return Decision(action="skip", reason=reason, filtered=filtered)


def decide(
    event: HaloEvent,
    settings: RelaySettings,
    last_sent: AlertStatus | None = None,
    params: SignalParams = NO_PARAMS,
    *,
    closed_in_signl4: bool = False,
) -> Decision:
    """Map a Halo event to a SIGNL4 status, or to a skip with the reason.

    `last_sent` is what the relay last sent for this ticket, when known: it lets a ticket
    that was closed and is now open again raise a fresh alert; not when `closed_in_signl4`
    (SIGNL4 closed the alert and Halo has not closed the ticket since: only a close counts).
    Precedence: X-S4-Status in the body, closed, a new-ticket event, an acknowledge status
    (of an alert not resolved: else a reopen), reopen, a body without event information.
    `params` (SIGNL4's query parameters) add status values to the settings' lists; with
    NewStatus given, a known status that is none of New/Resolved/AckStatus is skipped.
    """
    ticket = event.ticket
    statuses = ticket.status_keys()
    ack_statuses = settings.relay_ack_statuses | params.ack_statuses
    early = (
        _asked_or_closed(event, settings, params)
        or _kept_closed(event, settings, last_sent, closed_in_signl4=closed_in_signl4)
        or _paged_on_event(event, settings, last_sent)
    )
    if early is not None:
        return early
    if params.new_statuses and statuses:
        if statuses & params.new_statuses:
            return _page_new(
                event,
                settings,
                f"status {_describe(ticket.status_id, ticket.status_name)} is the NewStatus",
            )
        if not statuses & ack_statuses:
            return _skip(
                f"status {_describe(ticket.status_id, ticket.status_name)} is neither "
                "NewStatus, ResolvedStatus nor AckStatus (SIGNL4 discards such events)"
            )

    if event.event == NEW_TICKET_EVENT:
        return _page_new(event, settings, "Halo event 'new ticket logged'")
    if statuses & ack_statuses and last_sent is not AlertStatus.RESOLVED:
        return _send(
            AlertStatus.ACKNOWLEDGED,
            f"status {_describe(ticket.status_id, ticket.status_name)} is an acknowledge status",
        )
    if last_sent is AlertStatus.RESOLVED:
        return _reopened(event, settings, closed_in_signl4=closed_in_signl4)
    if event.event is None:
        return _page_new(
            event, settings, f"an open ticket in a {event.shape} body without event information"
        )

    return _skip(
        f"Halo event '{event.event}' with status {_describe(ticket.status_id, ticket.status_name)} "
        "changes nothing SIGNL4 tracks"
    )


def _kept_closed(
    event: HaloEvent,
    settings: RelaySettings,
    last_sent: AlertStatus | None,
    *,
    closed_in_signl4: bool,
) -> Decision | None:
    """SIGNL4 closed the alert of a ticket Halo keeps open: only a close (decided before) counts,
    not an acknowledge status, a NewStatus or an SLA event. None: not that state."""
    if last_sent is AlertStatus.RESOLVED and closed_in_signl4:
        return _reopened(event, settings, closed_in_signl4=True)
    return None


def _paged_on_event(
    event: HaloEvent,
    settings: RelaySettings,
    last_sent: AlertStatus | None,
) -> Decision | None:
    """A RELAY_PAGE_ON_EVENTS event (an SLA warning): pages an open ticket without an open alert,
    past the paging filters (their point); with an alert open it adds nothing. None: not one."""
    if event.event is None or event.event not in settings.relay_page_on_events:
        return None
    if last_sent in (AlertStatus.NEW, AlertStatus.ACKNOWLEDGED):
        return _skip(f"Halo event '{event.event}': the ticket's alert is open already")
    reason = f"Halo event '{event.event}' is in RELAY_PAGE_ON_EVENTS"
    if event.ticket.priority_keys() & settings.relay_emergency_priorities:
        return _send(AlertStatus.NEW, reason + "; emergency priority", scenario="emergency")
    return _send(AlertStatus.NEW, reason)


def _reopened(event: HaloEvent, settings: RelaySettings, *, closed_in_signl4: bool) -> Decision:
    """An open ticket whose alert was resolved: open again, unless SIGNL4 closed the alert and
    Halo never closed the ticket (then it never reopened)."""
    if closed_in_signl4:
        return _skip(
            "its alert was closed in SIGNL4 and the Halo ticket stays open: "
            "nothing pages until Halo closes it"
        )
    return _page_new(event, settings, "the ticket is open again after its alert was resolved")


def _asked_or_closed(
    event: HaloEvent, settings: RelaySettings, params: SignalParams
) -> Decision | None:
    """The first rules, which win over everything else: an explicit X-S4-Status in the body,
    then a closed ticket, Halo's 'closed' event, or a resolved status. None: none applies."""
    ticket = event.ticket
    if event.requested_status is AlertStatus.NEW:
        return _page_new(event, settings, "the body asks for X-S4-Status new")
    if event.requested_status is not None:
        return _send(
            event.requested_status, f"the body asks for X-S4-Status {event.requested_status.value}"
        )
    if ticket.closed:
        return _send(AlertStatus.RESOLVED, "the ticket has been closed")
    if event.event == CLOSED_EVENT:
        return _send(AlertStatus.RESOLVED, "Halo event 'closed'")
    if ticket.status_keys() & (settings.relay_resolved_statuses | params.resolved_statuses):
        return _send(
            AlertStatus.RESOLVED,
            f"status {_describe(ticket.status_id, ticket.status_name)} is a resolved status",
        )
    return None


def page_filters(event: HaloEvent, settings: RelaySettings, reason: str) -> Decision:
    """A `new` for `event` through the paging filters (an escalation is judged by them too)."""
    return _page_new(event, settings, reason)


def _page_new(event: HaloEvent, settings: RelaySettings, reason: str) -> Decision:
    """Apply the paging filters. Unknown priority/team pages anyway: an extra page beats a lost one."""
    ticket = event.ticket
    priorities = ticket.priority_keys()
    if (
        settings.relay_page_priorities
        and priorities
        and not priorities & settings.relay_page_priorities
    ):
        return _skip(
            f"priority {_describe(ticket.priority_id, ticket.priority)} is not in RELAY_PAGE_PRIORITIES",
            filtered=True,
        )
    teams = ticket.team_keys()
    if settings.relay_page_teams and teams and not teams & settings.relay_page_teams:
        return _skip(
            f"team {_describe(ticket.team_id, ticket.team)} is not in RELAY_PAGE_TEAMS",
            filtered=True,
        )
    if priorities & settings.relay_emergency_priorities:
        return _send(AlertStatus.NEW, reason + "; emergency priority", scenario="emergency")
    return _send(AlertStatus.NEW, reason)


def _describe(number: int | None, name: str | None) -> str:
    if number is not None and name:
        return f"{number} ({name})"
    if name:
        return repr(name)
    return str(number) if number is not None else "unknown"
