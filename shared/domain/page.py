"""One page, planned: decide -> route -> build -> clean -> window, for a parsed Halo event.

Pure: the settings, the routes, "now" and the ticket's prior state (what the relay last sent and
where its alert went) are inputs, so the relay (shared/delivery/pages.py) and `preview`
(shared/ops/preview.py) plan every page the same way, and preview can show any decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.domain.alert import AlertStatus, build_payload, fit_payload
from shared.domain.halo import HaloEvent
from shared.domain.policy import NEW_TICKET_EVENT, Decision, decide, page_filters
from shared.domain.routing import DEFAULT_TARGET, Rule, with_route
from shared.domain.signl4_params import NO_PARAMS, SignalParams
from shared.settings import RelaySettings

TRIAGE_FIELD_MAX_CHARS = 200  # each remembered field (a stored row's bound, compared as cut)
# A ticket pages at most once per this long through downgrade/escalation cycles: an escalation
# sooner after the opening of the alert a downgrade resolved is skipped (docs/when-it-pages.md).
FLAP_LIMIT = timedelta(minutes=15)
_OPEN = (AlertStatus.NEW, AlertStatus.ACKNOWLEDGED)
UNKNOWABLE = ("priority", "team", "client")  # remembered fields a payload may leave out


@dataclass(frozen=True)
class Triage:
    """The fields a decision not to page rested on, remembered apart from the alert (row
    `triage`): a later event that qualifies where these did not is an escalation, not a guess."""

    priority: str = ""
    team: str = ""
    client: str = ""
    route: str = ""
    qualified: bool = False  # whether the paging filters let these fields page


@dataclass(frozen=True)
class Prior:
    """What the relay did for the ticket before: the status it last sent (None: never paged),
    the routing target its alert went to (None: none recorded, the rules choose;
    DEFAULT_TARGET: SIGNL4_TEAM_SECRET's team) and the triage remembered (None: none)."""

    status: AlertStatus | None = None
    target: str | None = None
    triage: Triage | None = None
    closed_in_signl4: bool = False  # SIGNL4 closed the alert; Halo has not closed the ticket
    # When the (last) alert was opened, and the fields its page rested on (None: not recorded,
    # rows from before: no flap limit, and no downgrade, since nothing is known to have changed).
    opened: datetime | None = None
    basis: Triage | None = None
    # The relay resolved the alert by a downgrade: the ticket is judged as one held back by the
    # filters (its `triage`), so raising it again is an escalation, never "open again".
    downgraded: bool = False


NEVER_PAGED = Prior()


@dataclass(frozen=True)
class PagePlan:
    """What to do with one event. A skip has no rule, target or payload."""

    decision: Decision
    rule: Rule | None = None
    target: str = DEFAULT_TARGET  # the routing target's name (DEFAULT_TARGET: the team secret)
    payload: dict[str, Any] | None = None
    window: str | None = None  # a `new` held back now by this quiet-hours schedule or window
    triage: Triage | None = None  # the ticket's fields now, to remember (None: nothing to)
    escalation: str | None = None  # why a ticket that did not page now does
    downgrade: bool = False  # a resolve because the filters skip the ticket now
    basis: Triage | None = None  # a `new`: the fields it rests on, recorded with the alert

    @property
    def status(self) -> AlertStatus | None:
        return self.decision.status

    @property
    def send_target(self) -> str:
        """The target as RelaySettings.for_target takes it ("": the team secret)."""
        return "" if self.target == DEFAULT_TARGET else self.target


def plan_page(
    event: HaloEvent,
    settings: RelaySettings,
    prior: Prior = NEVER_PAGED,
    *,
    now: datetime,
    params: SignalParams = NO_PARAMS,
) -> PagePlan:
    """Plan the page for `event`. The payload's text is cleaned after routing, so a route's own
    fields (X-S4-Service, ...) reach SIGNL4 as clean as the stored copy (fit_payload)."""
    decision, triage, escalation = _decision(event, settings, prior, params)
    downgrade = _downgrade(event, settings, decision, prior)
    if downgrade is not None:
        decision, triage = downgrade, triage_of(event, settings)
    held_back = _flap_limited(decision, prior, now)
    if held_back is not None:
        return PagePlan(held_back)  # nothing remembered: the next event escalates again
    status = decision.status
    if decision.action == "skip" or status is None:
        return PagePlan(decision, triage=triage)
    rule = settings.relay_routes.route(event.ticket)
    # A new alert goes where the rules say now; its acknowledge and resolve follow it to the
    # team recorded with it, even if the rules changed since.
    target = rule.target if status is AlertStatus.NEW or prior.target is None else prior.target
    built = build_payload(event, decision, settings)  # clean and fitted already
    routed = with_route(built, rule)
    payload = built if routed is built else fit_payload(routed)  # the rule's own text too
    if escalation is not None:
        payload = _escalated(payload, escalation)
    elif downgrade is not None:
        payload = _said(payload, downgrade.reason)
    opens = status is AlertStatus.NEW
    window = rule.window_at(now) if opens else None
    basis = triage_of(event, settings) if opens else None
    return PagePlan(
        decision,
        rule,
        target,
        payload,
        window,
        triage,
        escalation,
        downgrade=downgrade is not None,
        basis=basis,
    )


def _decision(
    event: HaloEvent, settings: RelaySettings, prior: Prior, params: SignalParams
) -> tuple[Decision, Triage | None, str | None]:
    """The decision, the triage to remember and the escalation. A ticket whose alert a downgrade
    resolved is judged as one the filters held back: from its remembered triage."""
    last = None if prior.downgraded else prior.status
    decision = decide(
        event,
        settings,
        last_sent=last,
        params=params,
        closed_in_signl4=prior.closed_in_signl4,
    )
    if prior.triage is not None and decision.status is AlertStatus.ACKNOWLEDGED:
        # Held back by the filters (or resolved by a downgrade), so no alert to acknowledge:
        # judged as any update (it may escalate), and never an alert row saying `acknowledged`
        # that would block the escalation.
        decision = Decision(action="skip", reason=f"{decision.reason}, but it has no alert")
    triage = triage_of(event, settings) if last is None else None
    escalation = _escalation(event, decision, prior.triage, triage)
    if escalation is not None:
        decision = page_filters(event, settings, escalation)
    elif decision.status is AlertStatus.NEW and event.event in settings.relay_page_on_events:
        escalation = f"Halo event '{event.event}'"  # an SLA warning: the page says which
    return decision, triage, escalation


def _downgrade(
    event: HaloEvent, settings: RelaySettings, decision: Decision, prior: Prior
) -> Decision | None:
    """RELAY_RESOLVE_ON_DOWNGRADE: an open alert whose ticket changed priority or team so the
    filters skip it now, on a known value, resolves (None: it does not). Only an alert opened
    through the filters (not an SLA page past them), and only a change of the ticket: new
    settings alone resolve nothing. A close, or an explicit X-S4-Status, wins."""
    basis = prior.basis
    if not settings.relay_resolve_on_downgrade or prior.downgraded or prior.status not in _OPEN:
        return None
    if basis is None or not basis.qualified or prior.closed_in_signl4:
        return None
    if decision.status is AlertStatus.RESOLVED or event.requested_status is not None:
        return None
    filters = page_filters(event, settings, "")
    now = triage_of(event, settings)
    # A field the payload leaves out is unknown, not changed (as for an escalation).
    fields = (now.priority != basis.priority and now.priority, now.team != basis.team and now.team)
    if not filters.filtered or not any(fields):
        return None
    reason = f"Downgraded: {filters.reason}"
    return Decision(action="send", status=AlertStatus.RESOLVED, reason=reason, filtered=True)


def _flap_limited(decision: Decision, prior: Prior, now: datetime) -> Decision | None:
    """A `new` sooner than FLAP_LIMIT after the opening of the alert a downgrade resolved: a
    skip saying when it may page (None: it may page now). Rows without the time: no limit."""
    if decision.status is not AlertStatus.NEW or not prior.downgraded or prior.opened is None:
        return None
    may_page = prior.opened + FLAP_LIMIT
    if now >= may_page:
        return None
    minutes = int(FLAP_LIMIT.total_seconds() // 60)
    return Decision(
        action="skip",
        reason=(
            f"{decision.reason}; not paged: a ticket pages at most once per {minutes} minutes "
            f"through downgrades and escalations, and its last alert opened at "
            f"{_utc(prior.opened)}; it may page from {_utc(may_page)}, at its next event"
        ),
    )


def prior_after(plan: PagePlan, remembered: Triage | None = None) -> Prior:
    """The prior the relay holds after delivering `plan` live, for a ticket without an alert
    (`remembered`: its triage before): a page sent -> its alert at its target; else the triage
    when a filter held it back or one was remembered (pages.py's _remember); else nothing. The
    plan for its next event starts from it: preview --previous and its tests share this."""
    if plan.status is not None and plan.window is None:
        return Prior(plan.status, plan.target, basis=recorded_basis(plan.basis))
    if plan.triage is not None and (remembered is not None or plan.decision.filtered):
        return Prior(triage=plan.triage)
    return NEVER_PAGED


def recorded_basis(basis: Triage | None) -> Triage | None:
    """What the alert row keeps of an opening's basis: the fields a downgrade compares."""
    if basis is None:
        return None
    return Triage(priority=basis.priority, team=basis.team, qualified=basis.qualified)


def triage_of(event: HaloEvent, settings: RelaySettings) -> Triage:
    """The ticket's fields a decision not to page rests on, and whether they page now."""
    ticket = event.ticket
    qualified = page_filters(event, settings, "").action == "send"
    cut = TRIAGE_FIELD_MAX_CHARS
    return Triage(
        priority=(ticket.priority or _text(ticket.priority_id))[:cut],
        team=(ticket.team or _text(ticket.team_id))[:cut],
        client=(ticket.client or _text(ticket.client_id))[:cut],
        route=settings.relay_routes.route(ticket).name[:cut],
        qualified=qualified,
    )


def _escalation(
    event: HaloEvent, decision: Decision, before: Triage | None, now: Triage | None
) -> str | None:
    """Why an open ticket without an alert pages now (None: it does not escalate). Only a
    remembered ticket that did not qualify and qualifies now: a ticket with no memory is judged
    as before, and a filtered `new ticket logged` stays filtered."""
    if before is None or now is None or before.qualified or not now.qualified:
        return None
    if decision.action != "skip" or event.ticket.closed or event.event == NEW_TICKET_EVENT:
        return None
    if any(getattr(before, name) and not getattr(now, name) for name in UNKNOWABLE):
        return None  # a field the payload no longer says is unknown, not changed: no guess
    changes = []
    if now.priority != before.priority:
        changes.append(f"Escalated: priority {before.priority or '?'} → {now.priority or '?'}")
    if now.team != before.team:
        changes.append(f"Moved to team {now.team or '?'}")
    if now.client != before.client:
        changes.append(f"Moved to client {now.client or '?'}")
    if now.route != before.route:
        changes.append(f"Moved to route {now.route}")
    # No field changed (the settings did): not a transition of the ticket, so not a page.
    return "; ".join(changes) or None


def _escalated(payload: dict[str, Any], escalation: str) -> dict[str, Any]:
    """The payload saying why: the message opens with it, and a plain `Escalation` parameter."""
    return _said({**payload, "Escalation": escalation}, escalation)


def _said(payload: dict[str, Any], why: str) -> dict[str, Any]:
    """The payload's message opening with why it is sent (a downgrade's resolve)."""
    message = str(payload.get("Message") or "")
    return fit_payload({**payload, "Message": f"{why}. {message}"})


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _text(number: int | None) -> str:
    return "" if number is None else str(number)
