"""`python -m shared preview`: what the relay would do with a Halo body, without doing it (pure).

The same steps as POST /api/halopsa (shared/entry/halo_webhook.py) up to the send: read the JSON (with the
empty-placeholder repair), check the batch size, then per event normalise (halo) and plan the
page with the relay's own pipeline (shared/domain/page.py), which sends nothing. No ledger: the
ticket's prior state is an input (never paged, or derived from --previous, the ticket's previous
body), and the ledger's part (a repeat answered `duplicate`) is named in the report, not guessed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict

from shared.domain.alert import AlertStatus
from shared.domain.full_ticket import missing_fields
from shared.domain.halo import HaloEvent, parse_event, parse_json_body
from shared.domain.page import NEVER_PAGED, PagePlan, Prior, Triage, plan_page, prior_after
from shared.domain.routing import DEFAULT_TARGET
from shared.domain.signl4_params import SignalParams, parse_signal_params
from shared.entry.responses import MAX_BODY_BYTES
from shared.errors import BatchTooLarge, PayloadTooLarge, RelayError, UnsupportedPayload
from shared.redaction import strip_userinfo
from shared.settings import RelaySettings

LEDGER_NOTE = (
    "the ledger is not read: a repeat of an event already sent is answered `duplicate`, an "
    "open ticket whose alert was resolved pages again as `new`, and a ticket the filters held "
    "back before escalates (give its previous body with --previous to see that)"
)
LEDGER_NOTE_PREVIOUS = (
    "the ledger is not read: the ticket's state is derived from --previous alone, as a live "
    "relay would hold it after that one body for a ticket never paged (windows judged now; a "
    "relay in dry-run remembers nothing); a repeat of an event already sent is answered "
    "`duplicate`, and events of other tickets are judged as never seen"
)
# --alert: the alert part of the previous state, and the status the relay last sent for it.
ALERT_STATES: dict[str, AlertStatus] = {
    "open": AlertStatus.NEW,
    "acknowledged": AlertStatus.ACKNOWLEDGED,
    "resolved": AlertStatus.RESOLVED,
    "closed-in-signl4": AlertStatus.RESOLVED,  # SIGNL4 closed it; the Halo ticket stays open
}
AlertState = Literal["open", "acknowledged", "resolved", "closed-in-signl4"]


class EventPreview(BaseModel):
    """One event of the body: the decision, why, and what SIGNL4 would get."""

    model_config = ConfigDict(frozen=True)

    index: int | None = None  # position in a batch; None for a single event
    decision: Literal["new", "acknowledged", "resolved", "skip", "error"]
    reason: str
    external_id: str | None = None
    halo_event: str | None = None
    shape: str | None = None
    scenario: str | None = None
    route: str | None = None  # the RELAY_ROUTES rule that matched ("default": none did)
    target: str | None = None  # its routing target (the team's secret never shown)
    window: str | None = None  # `new` held back now by this quiet-hours schedule or window
    escalation: str | None = None  # why a ticket that did not page now does
    previous: str | None = None  # the state assumed before this event (with --previous only)
    # The fields the decision needs that the payload lacks: the relay reads the ticket for them
    # (with the Halo API credentials); preview never calls Halo, so it decides without.
    incomplete: str | None = None
    payload: dict[str, Any] | None = None
    error: str | None = None  # the relay's error code, as Halo would be answered


class PreviousTriage(BaseModel):
    """The triage remembered of a ticket the paging filters held back (row `triage`)."""

    model_config = ConfigDict(frozen=True)

    priority: str = ""
    team: str = ""
    client: str = ""
    route: str = ""
    qualified: bool = False


class Previous(BaseModel):
    """The ticket's state before the body, as a live relay would hold it after --previous's body
    (shared/domain/page.py prior_after), the alert part replaced by --alert when given."""

    model_config = ConfigDict(frozen=True)

    external_id: str
    halo_event: str | None = None
    decision: Literal["new", "acknowledged", "resolved", "skip"]  # the previous body's
    reason: str
    window: str | None = None  # its `new` was held back by this window: nothing remembered
    alert: AlertState | None = None  # None: no alert row
    alert_given: bool = False  # the alert is --alert's, not derived
    target: str | None = None  # where its alert went (None: none recorded, the rules choose)
    triage: PreviousTriage | None = None
    # What the alert's page rested on (a paged previous body): a downgrade compares with it.
    basis: PreviousTriage | None = None
    summary: str

    def prior(self) -> Prior:
        """The Prior plan_page takes: the alert (with its target), else the triage."""
        if self.alert is not None:
            closed = self.alert == "closed-in-signl4"
            basis = None if self.basis is None else Triage(**self.basis.model_dump())
            state = ALERT_STATES[self.alert]
            return Prior(state, self.target, closed_in_signl4=closed, basis=basis)
        if self.triage is None:
            return NEVER_PAGED
        return Prior(triage=Triage(**self.triage.model_dump()))


class Preview(BaseModel):
    model_config = ConfigDict(frozen=True)

    target: str  # where the payload would go (the team secret never shown)
    events: tuple[EventPreview, ...] = ()
    error: str | None = None  # a body-level error: nothing would be sent at all
    message: str | None = None
    ignored_query: tuple[str, ...] = ()
    previous: Previous | None = None  # --previous: the state assumed for its ticket
    note: str = LEDGER_NOTE  # what the preview does not know (the ledger is not read)


def parse_query(text: str | None) -> dict[str, str]:
    """`'ExtIDParam=X-S4-ExternalID&ResolvedStatus=Closed'` (a leading `?` is fine)."""
    if not text:
        return {}
    return dict(parse_qsl(text.lstrip("?"), keep_blank_values=True))


def describe_target(settings: RelaySettings) -> str:
    if settings.dry_run:
        why = "RELAY_DRY_RUN is set" if settings.relay_dry_run else "no SIGNL4_TEAM_SECRET"
        return f"nothing would be sent: the relay is in dry-run ({why})"
    url = strip_userinfo(settings.signl4_webhook_url).rstrip("/")
    return f"SIGNL4 webhook {url}/*** (team secret hidden)"


def preview_body(
    body: bytes,
    settings: RelaySettings,
    query: Mapping[str, str] | None = None,
    *,
    prior: Prior = NEVER_PAGED,
    previous: Previous | None = None,
) -> Preview:
    """What POST /api/halopsa would decide and send for `body` with these settings, for a
    ticket with this prior state (what the relay last sent for it, where its alert went); with
    `previous`, its ticket's events start from that state instead."""
    params = parse_signal_params(query)
    target = describe_target(settings)
    note = LEDGER_NOTE if previous is None else LEDGER_NOTE_PREVIOUS
    try:
        parsed = read_body(body, settings)
    except RelayError as error:
        return Preview(
            target=target,
            error=error.code,
            message=error.message,
            ignored_query=params.unknown,
            previous=previous,
            note=note,
        )
    items = list(enumerate(parsed)) if isinstance(parsed, list) else [(None, parsed)]
    events = tuple(
        preview_event(item, settings, params, index, prior=prior, previous=previous)
        for index, item in items
    )
    return Preview(
        target=target, events=events, ignored_query=params.unknown, previous=previous, note=note
    )


def read_body(body: bytes, settings: RelaySettings) -> Any:
    """The body's JSON, refused as the relay refuses it: too large, not JSON, a batch too large
    or empty (RelayError)."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(
            f"the body is {len(body)} bytes; the relay takes at most {MAX_BODY_BYTES} (1 MiB)"
        )
    parsed = parse_json_body(body)
    if isinstance(parsed, list) and len(parsed) > settings.relay_max_batch:
        raise BatchTooLarge(
            f"the batch holds {len(parsed)} events; the relay takes at most "
            f"{settings.relay_max_batch} per request (RELAY_MAX_BATCH): nothing would be sent"
        )
    if isinstance(parsed, list) and not parsed:
        raise UnsupportedPayload("the body is an empty JSON array")
    return parsed


def preview_event(
    obj: Any,
    settings: RelaySettings,
    params: SignalParams,
    index: int | None,
    *,
    now: datetime | None = None,
    prior: Prior = NEVER_PAGED,
    previous: Previous | None = None,
) -> EventPreview:
    """One event of the body, planned as the relay plans it; its error as Halo would read it.
    With `previous`, an event of its ticket starts from its state, another from `prior`."""
    try:
        event = parse_event(obj, params)
        mine = previous is not None and previous.external_id == event.ticket.external_id
        if previous is not None and mine:  # (the first test narrows the type)
            prior = previous.prior()
        page = plan_page(
            event, settings, prior, now=now or datetime.now(timezone.utc), params=params
        )
    except RelayError as error:
        return EventPreview(index=index, decision="error", reason=error.message, error=error.code)
    common = {
        "index": index,
        "reason": page.decision.reason,
        "external_id": event.ticket.external_id,
        "halo_event": event.event,
        "shape": event.shape,
        "escalation": page.escalation,
        "incomplete": _incomplete(event, settings),
    }
    if previous is not None:
        common["previous"] = previous.summary if mine else _not_previous(previous)
    if page.status is None or page.rule is None:
        return EventPreview(decision="skip", **common)
    return EventPreview(
        decision=page.status.value,
        scenario=page.decision.scenario,
        route=page.rule.name,
        target=page.target,
        window=page.window,
        payload=page.payload,
        **common,
    )


def _incomplete(event: HaloEvent, settings: RelaySettings) -> str | None:
    """What the payload lacks for its decision, and what the relay does about it."""
    lacks = [name for name in missing_fields(event, settings) if name != "summary"]
    if not lacks:
        return None
    how = (
        "the relay reads them from Halo (GET /api/Tickets/{id}); preview does not"
        if settings.two_way
        else "without HALO_CLIENT_ID and HALO_CLIENT_SECRET the relay judges it as shown"
    )
    return f"the payload has no {', '.join(lacks)}: {how}"


def _not_previous(previous: Previous) -> str:
    return f"none: judged as never seen (--previous is for {previous.external_id})"


def previous_state(
    body: bytes,
    settings: RelaySettings,
    query: Mapping[str, str] | None = None,
    *,
    alert: AlertState | None = None,
    now: datetime | None = None,
) -> Previous:
    """The state a live relay holds for a ticket after `body` (its one previous event), planned
    as for a ticket never paged; `alert` replaces the alert part. RelayError when the relay
    would refuse that body; ValueError when it holds more than one event."""
    params = parse_signal_params(query)
    parsed = read_body(body, settings)
    if isinstance(parsed, list):
        if len(parsed) != 1:
            raise ValueError(f"it holds {len(parsed)} events: give the ticket's one previous event")
        parsed = parsed[0]
    event = parse_event(parsed, params)
    plan = plan_page(
        event, settings, NEVER_PAGED, now=now or datetime.now(timezone.utc), params=params
    )
    prior = prior_after(plan)
    if alert is not None:  # with an alert, the relay never reads the triage
        prior = Prior(
            ALERT_STATES[alert],
            prior.target,
            closed_in_signl4=alert == "closed-in-signl4",
            basis=prior.basis,
        )
    return _previous(event, plan, prior, alert_given=alert is not None)


def _previous(event: HaloEvent, plan: PagePlan, prior: Prior, *, alert_given: bool) -> Previous:
    """The report of the previous state, its summary the line a person reads."""
    alert: AlertState | None = None
    if prior.status is not None:
        alert = "closed-in-signl4" if prior.closed_in_signl4 else _ALERT_OF[prior.status]
    triage = None if prior.triage is None else PreviousTriage(**vars(prior.triage))
    basis = None if prior.basis is None else PreviousTriage(**vars(prior.basis))
    fields = {
        "external_id": event.ticket.external_id,
        "halo_event": event.event,
        "decision": "skip" if plan.status is None else plan.status.value,
        "reason": plan.decision.reason,
        "window": plan.window,
        "alert": alert,
        "alert_given": alert_given,
        "target": prior.target,
        "triage": triage,
        "basis": basis,
    }
    return Previous(summary=_summary(alert, prior, plan.window, alert_given=alert_given), **fields)


_ALERT_OF: dict[AlertStatus, AlertState] = {
    AlertStatus.NEW: "open",
    AlertStatus.ACKNOWLEDGED: "acknowledged",
    AlertStatus.RESOLVED: "resolved",
}
_ALERT_WORDS: dict[str, str] = {
    "open": "open (new)",
    "acknowledged": "acknowledged",
    "resolved": "resolved",
    "closed-in-signl4": "closed in SIGNL4 (the Halo ticket still open)",
}


def _summary(
    alert: AlertState | None, prior: Prior, window: str | None, *, alert_given: bool
) -> str:
    """`alert open (new) at team network`, `priority 4, team Servers, not paged (filtered)`."""
    if alert is not None:
        where = "the team the rules choose" if prior.target is None else f"team {prior.target}"
        given = " (--alert)" if alert_given else ""
        return f"alert {_ALERT_WORDS[alert]} at {where}{given}"
    if prior.triage is not None:
        triage = prior.triage
        named = [("priority", triage.priority), ("team", triage.team), ("client", triage.client)]
        parts = [f"{name} {value}" for name, value in named if value]
        if triage.route and triage.route != DEFAULT_TARGET:
            parts.append(f"route {triage.route}")
        return ", ".join([*parts, "not paged (filtered)"])
    if window is not None:
        return f"nothing remembered (its page was held by window {window!r}): judged as never seen"
    return "nothing remembered (not held back by the filters): judged as never seen"


def render_text(preview: Preview) -> str:
    """The report a person reads: one block per event, the payload as indented JSON."""
    lines = [f"Target: {preview.target}"]
    if preview.ignored_query:
        lines.append("Ignored query parameters: " + ", ".join(preview.ignored_query))
    if preview.previous is not None:
        lines.append(_previous_line(preview.previous))
    if preview.error:
        lines.append(f"Refused whole: {preview.error}: {preview.message}")
        return "\n".join(lines) + "\n"
    for event in preview.events:
        lines.append("")
        lines += _event_lines(event)
    lines += ["", "Note: " + preview.note]
    return "\n".join(lines) + "\n"


def _previous_line(previous: Previous) -> str:
    what = previous.decision if previous.window is None else f"{previous.decision} (held)"
    event = previous.halo_event or "-"
    return f"Previous body: {previous.external_id}, event {event}: {what}: {previous.reason}"


def _event_lines(event: EventPreview) -> list[str]:
    """One event's block of the text report."""
    heading = "Event" if event.index is None else f"Event #{event.index}"
    lines = [f"{heading}: {event.external_id or '(no ticket id)'}"]
    if event.halo_event or event.shape:
        lines.append(f"  Halo: {event.shape or '-'} body, event {event.halo_event or '-'}")
    if event.decision == "error":
        return [*lines, f"  Answer: {event.error}: {event.reason}"]
    if event.previous is not None:
        lines.append(f"  Previous: {event.previous}")
    lines.append(f"  Decision: {event.decision}")
    lines.append(f"  Reason: {event.reason}")
    if event.escalation:
        lines.append(f"  Escalation: {event.escalation}")
    if event.incomplete:
        lines.append(f"  Incomplete: {event.incomplete}")
    if event.scenario:
        lines.append(f"  Scenario: {event.scenario} (X-S4-AlertingScenario)")
    if event.route:
        lines.append(f"  Route: {event.route} (team: {event.target})")
    if event.window:
        lines.append(f"  Held back now: window {event.window!r} (answered `suppressed`)")
    if event.payload is not None:
        lines.append("  SIGNL4 payload:")
        text = json.dumps(event.payload, ensure_ascii=False, indent=2)
        lines += ["    " + line for line in text.splitlines()]
    return lines


def render_json(preview: Preview) -> str:
    return json.dumps(preview.model_dump(mode="json", exclude_none=True), ensure_ascii=False)
