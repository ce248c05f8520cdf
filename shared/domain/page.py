"""One page, planned: decide -> route -> build -> clean -> window, for a parsed Halo event.

Pure: the settings, the routes, "now" and the ticket's prior state (what the relay last sent and
where its alert went) are inputs, so the relay (shared/delivery/pages.py) and `preview`
(shared/ops/preview.py) plan every page the same way, and preview can show any decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.domain.alert import AlertStatus, build_payload, fit_payload
from shared.domain.halo import HaloEvent
from shared.domain.policy import Decision, decide
from shared.domain.routing import DEFAULT_TARGET, Rule, with_route
from shared.domain.signl4_params import NO_PARAMS, SignalParams
from shared.settings import RelaySettings


@dataclass(frozen=True)
class Prior:
    """What the relay did for the ticket before: the status it last sent (None: never paged)
    and the routing target its alert went to (None: none recorded, the rules choose;
    DEFAULT_TARGET: SIGNL4_TEAM_SECRET's team)."""

    status: AlertStatus | None = None
    target: str | None = None


NEVER_PAGED = Prior()


@dataclass(frozen=True)
class PagePlan:
    """What to do with one event. A skip has no rule, target or payload."""

    decision: Decision
    rule: Rule | None = None
    target: str = DEFAULT_TARGET  # the routing target's name (DEFAULT_TARGET: the team secret)
    payload: dict[str, Any] | None = None
    window: str | None = None  # a `new` held back now by this quiet-hours schedule or window

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
    decision = decide(event, settings, last_sent=prior.status, params=params)
    status = decision.status
    if decision.action == "skip" or status is None:
        return PagePlan(decision)
    rule = settings.relay_routes.route(event.ticket)
    # A new alert goes where the rules say now; its acknowledge and resolve follow it to the
    # team recorded with it, even if the rules changed since.
    target = rule.target if status is AlertStatus.NEW or prior.target is None else prior.target
    built = build_payload(event, decision, settings)  # clean and fitted already
    routed = with_route(built, rule)
    payload = built if routed is built else fit_payload(routed)  # the rule's own text too
    window = rule.window_at(now) if status is AlertStatus.NEW else None
    return PagePlan(decision, rule, target, payload, window)
