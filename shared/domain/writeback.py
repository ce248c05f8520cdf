"""Two-way sync, the pure part: what a SIGNL4 notification writes into the Halo ticket.

`plan(notification, settings)` decides: ignore (with the reason), record SIGNL4's alert id
(alert created), or write a private note, optionally with a status and an assignment. The write
is an opaque payload for the delivery core (shared/delivery/conversation.py): it waits in the ticket's
mailbox like a SIGNL4 event does, and shared/adapters/halo.py turns it into Halo API calls with the
builders below. No I/O, no clock.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from shared.domain.alert import AlertStatus, clean_text
from shared.domain.halo import EXTERNAL_ID_PREFIX
from shared.domain.notification import (
    ALERT_ANNOTATED,
    ALERT_CREATED,
    ALERT_ESCALATED,
    ALERT_STATUS_CHANGED,
    DUTY_EVENTS,
    STATUS_ACKNOWLEDGED,
    STATUS_CLOSED,
    TEST_EVENT,
    Signl4Notification,
)
from shared.settings import RelaySettings

# The write-back conversation of ticket <id> is kept apart from the SIGNL4 one (HaloPSA-<id>).
KEY_PREFIX = "halo:"
NOTE_MAX_CHARS = 5000  # the stored note, and the note_html Halo gets (after escaping)
_BR = "<br>"


@dataclass(frozen=True)
class Ignore:
    reason: str


@dataclass(frozen=True)
class RecordAlert:
    """Alert created: keep SIGNL4's alert id for the ticket; nothing is written to Halo."""

    ticket_id: int
    alert_id: str | None


@dataclass(frozen=True)
class Write:
    """A note (and optionally a status and an assignment) for the ticket."""

    ticket_id: int
    kind: str  # acknowledged / closed / escalated / annotated
    payload: dict[str, Any]
    # What SIGNL4 now knows about the alert (acknowledged / resolved), recorded in the SIGNL4
    # direction's conversation so the echo from Halo is not sent back: no loop.
    signl4_status: AlertStatus | None = None


Plan = Ignore | RecordAlert | Write


def conversation_key(ticket_id: int) -> str:
    return f"{KEY_PREFIX}{EXTERNAL_ID_PREFIX}{ticket_id}"


def signl4_key(ticket_id: int) -> str:
    return f"{EXTERNAL_ID_PREFIX}{ticket_id}"


def plan(notification: Signl4Notification, settings: RelaySettings) -> Plan:
    """What a SIGNL4 notification asks of Halo: a note (and status) written, the alert id
    recorded, or nothing, with the reason."""
    event = notification.event_type
    if event == TEST_EVENT:
        return Ignore("a SIGNL4 test notification")
    if event in DUTY_EVENTS:
        return Ignore(f"a SIGNL4 duty notification (eventType {event})")
    if event not in (ALERT_CREATED, ALERT_STATUS_CHANGED, ALERT_ESCALATED, ALERT_ANNOTATED):
        return Ignore(f"eventType {event} is not one the relay writes back")
    ticket_id = notification.ticket_id
    if ticket_id is None:
        return Ignore(
            "not an alert raised by the relay (its externalEventId is not HaloPSA-<ticket id>)"
        )
    if event == ALERT_CREATED:
        return RecordAlert(ticket_id, notification.alert_id)
    who, when = _who(notification), _when(notification.raised)
    if event == ALERT_STATUS_CHANGED:
        return _status_changed(ticket_id, notification, settings, who + when)
    if event == ALERT_ESCALATED:
        # SIGNL4's 202 names no escalation (level, rule or person): the note says when only.
        return Write(
            ticket_id,
            "escalated",
            halo_payload(ticket_id, f"Escalated in SIGNL4{when}.", notification),
        )
    if not notification.annotation:
        return Ignore("an annotation without text")
    return Write(
        ticket_id,
        "annotated",
        halo_payload(
            ticket_id, f"Annotation in SIGNL4{who}{when}:\n{notification.annotation}", notification
        ),
    )


def _status_changed(
    ticket_id: int, notification: Signl4Notification, settings: RelaySettings, who_when: str
) -> Plan:
    """An alert's status changed in SIGNL4: acknowledged or closed is written back."""
    if notification.status_code == STATUS_ACKNOWLEDGED:
        assign = notification.user_email if settings.halo_assign_on_ack else None
        return Write(
            ticket_id,
            "acknowledged",
            halo_payload(
                ticket_id,
                f"Acknowledged in SIGNL4{who_when}.",
                notification,
                status_id=settings.halo_ack_status_id,
                assign_email=assign,
            ),
            AlertStatus.ACKNOWLEDGED,
        )
    if notification.status_code == STATUS_CLOSED:
        return Write(
            ticket_id,
            "closed",
            halo_payload(
                ticket_id,
                f"Closed in SIGNL4{who_when}.",
                notification,
                status_id=settings.halo_close_status_id,
            ),
            AlertStatus.RESOLVED,
        )
    return Ignore(
        f"alert status {notification.status_code} is neither acknowledged (2) nor closed (4)"
    )


def _who(notification: Signl4Notification) -> str:
    name, email = notification.user_name, notification.user_email
    if name and email and name.casefold() != email.casefold():
        return f" by {name} ({email})"
    if name or email:
        return f" by {name or email}"
    return ""


def _when(raised: datetime | None) -> str:
    if raised is None:
        return ""
    utc = raised if raised.tzinfo is None else raised.astimezone(timezone.utc)
    return f" at {utc:%Y-%m-%d %H:%M:%S} UTC"


def halo_payload(
    ticket_id: int,
    note: str,
    notification: Signl4Notification,
    *,
    status_id: int | None = None,
    assign_email: str | None = None,
) -> dict[str, Any]:
    """The write-back as the mailbox keeps it (no secret, no token: only what Halo gets)."""
    payload: dict[str, Any] = {
        "ticketId": ticket_id,
        "note": note[:NOTE_MAX_CHARS],
        "notificationId": notification.id,
    }
    if status_id is not None:
        payload["statusId"] = status_id
    if assign_email:
        payload["assignEmail"] = assign_email
    return payload


# --- Halo API bodies (used by shared/adapters/halo.py) ---


def assignment_note(note: str, email: str, agent: dict[str, Any] | None) -> str:
    """The note, saying what became of the assignment by e-mail."""
    if agent is None:
        return f"{note}\nNot assigned: no Halo agent has the e-mail address {email}."
    name = agent.get("name") or f"agent {agent.get('id')}"
    return f"{note}\nAssigned to {name} (matched by e-mail)."


def match_agent(agents: Any, email: str) -> dict[str, Any] | None:
    """The agent whose e-mail is `email` (case-insensitive) in Halo's /api/Agent answer."""
    if isinstance(agents, dict):
        agents = agents.get("agents") or agents.get("records") or []
    if not isinstance(agents, list):
        return None
    wanted = email.strip().casefold()
    for agent in agents:
        if not isinstance(agent, dict) or not isinstance(agent.get("id"), int):
            continue
        if str(agent.get("email") or "").strip().casefold() == wanted:
            return agent
    return None


def note_html(note: str, limit: int = NOTE_MAX_CHARS) -> str:
    """The note as Halo shows it (`note_html`): clean (shared/domain/alert.clean_text), every character
    HTML-escaped, quotes too, so no name or text from outside becomes markup in the ticket; line
    breaks as <br>. At most `limit` characters, cut between characters, never inside an entity
    (&amp;) or a <br>. Escaped here, when the body is built, never in the stored payload: a
    write-back queued before this existed goes out right, and nothing is escaped twice."""
    escaped = html.escape(clean_text(note), quote=True).replace("\n", _BR)
    if len(escaped) <= limit:
        return escaped
    # In `escaped` a "&" only starts an entity and a "<" only starts a <br>, each at most six
    # characters long: only the last one begun before the cut can straddle it.
    start = max(escaped.rfind("&", 0, limit), escaped.rfind("<", 0, limit))
    if start >= 0:
        end = escaped.find(";", start) + 1 if escaped[start] == "&" else start + len(_BR)
        if end > limit:
            return escaped[:start]
    return escaped[:limit]


def action_body(
    payload: dict[str, Any],
    note: str,
    settings: RelaySettings,
    *,
    outcome_id: int | None = None,
    agent_id: int | None = None,
) -> list[dict[str, Any]]:
    """POST /api/Actions: the whole write-back in one call: a private note with the outcome
    (`outcome_id`, Halo's id of HALO_NOTE_OUTCOME, else the setting's id or name), the new status
    and the new agent. The note goes as `note_html` only (escaped by `note_html`): Halo shows
    note_html, and a plain `note` beside it would carry outside text unescaped."""
    action: dict[str, Any] = {
        "ticket_id": payload["ticketId"],
        "note_html": note_html(note),
        "hiddenfromuser": True,
    }
    outcome_id = settings.halo_note_outcome_id if outcome_id is None else outcome_id
    if outcome_id is not None:
        action["outcome_id"] = outcome_id
    else:
        action["outcome"] = settings.halo_note_outcome
    if payload.get("statusId") is not None:
        action["new_status"] = payload["statusId"]
    if agent_id is not None:
        action["new_agent"] = agent_id
    return [action]
