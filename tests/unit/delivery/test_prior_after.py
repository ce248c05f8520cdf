"""prior_after (shared/domain/page.py), which preview --previous derives a ticket's state with,
agrees with what the relay (shared/delivery/pages.py) really holds: on a table of cases, the
relay takes the previous bodies through the HTTP route (MemoryStore, loopback SIGNL4), then
its ledger rows, and its answer to the next body, match the prior and preview's decision.

Windows are dated 2000 to 2100, so whether one holds is never a question of the clock."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest

from shared.delivery.pages import _basis_of
from shared.domain.halo import parse_event
from shared.domain.page import NEVER_PAGED, Prior, plan_page, prior_after
from shared.domain.routing import DEFAULT_TARGET
from shared.entry.storage import open_ledger
from shared.ops.preview import preview_body, previous_state
from shared.settings import RelaySettings
from tests.conftest import Harness, Signl4Fake, new_ticket_id
from tests.suites.delivery import webhook
from tests.suites.routing import ALWAYS, network_rules, network_team  # noqa: F401 (a fixture)

P1_ONLY = {"RELAY_PAGE_PRIORITIES": "1"}
FREEZE = json.dumps([{"name": "all", "when": {}, "target": "default", "windows": [ALWAYS]}])
UPDATED_AT_1: tuple[str, dict[str, Any]] = ("ticket updated", {"priority_id": 1})


@dataclass(frozen=True)
class Case:
    """Bodies the relay gets first (event, ticket fields), and the one it is then judged on."""

    env: dict[str, str]
    before: list[tuple[str, dict[str, Any]]]
    then: tuple[str, dict[str, Any]] = UPDATED_AT_1
    expect: str = ""  # what the ticket's state is after `before`, for the reader


CASES = {
    "filtered by priority": Case(
        P1_ONLY, [("new ticket logged", {"priority_id": 4})], expect="triage"
    ),
    "paged": Case(P1_ONLY, [("new ticket logged", {"priority_id": 1})], expect="alert open"),
    "paged, then lowered with downgrades on": Case(
        {**P1_ONLY, "RELAY_RESOLVE_ON_DOWNGRADE": "true"},
        [("new ticket logged", {"priority_id": 1})],
        then=("ticket updated", {"priority_id": 4}),
        expect="alert open, resting on priority 1: the update resolves it",
    ),
    "an update, never held back": Case({}, [("ticket updated", {})], expect="nothing"),
    "closed": Case({}, [("closed", {"hasbeenclosed": True, "status_id": 9})], expect="resolved"),
    "acknowledged": Case(
        {"RELAY_ACK_STATUSES": "In Progress"},
        [("ticket status changed", {"status_name": "In Progress"})],
        then=("closed", {"hasbeenclosed": True, "status_id": 9}),
        expect="acknowledged",
    ),
    "routed to a team": Case(
        {"RELAY_ROUTES": json.dumps(network_rules())},
        [("new ticket logged", {"team": "Network"})],
        then=("ticket updated", {"team": "Network", "hasbeenclosed": True}),
        expect="alert open at network",
    ),
    "held by a window": Case(
        {"RELAY_ROUTES": FREEZE}, [("new ticket logged", {})], expect="nothing"
    ),
    "filtered by team": Case(
        {"RELAY_PAGE_TEAMS": "Network", "RELAY_ROUTES": json.dumps(network_rules())},
        [("new ticket logged", {"team": "Servers"})],
        then=("ticket updated", {"team": "Network"}),
        expect="triage",
    ),
    "an SLA event past the filters": Case(
        {**P1_ONLY, "RELAY_PAGE_ON_EVENTS": "1st sla warning"},
        [("1st sla warning", {"priority_id": 4})],
        expect="alert open",
    ),
    "remembered, updated still filtered": Case(
        P1_ONLY,
        [("new ticket logged", {"priority_id": 4}), ("ticket updated", {"priority_id": 3})],
        expect="triage at 3 (a skip not by a filter, remembered before)",
    ),
    "remembered, escalated in a window": Case(
        {**P1_ONLY, "RELAY_ROUTES": FREEZE},
        [("new ticket logged", {"priority_id": 4}), ("ticket updated", {"priority_id": 1})],
        then=("ticket updated", {"priority_id": 1, "summary": "later"}),
        expect="triage qualified: the escalation taken",
    ),
}


def relay_prior(external_id: str) -> Prior:
    """The Prior the relay plans the ticket's next event from, read from its ledger rows as
    shared/delivery/pages.py reads them: the alert row, else the triage row."""
    ledger = open_ledger(RelaySettings.from_env(os.environ))
    assert ledger is not None
    state = ledger.read(external_id)
    if state.exists:
        learned = state.learned and state.status is not None and state.status.value == "resolved"
        target = state.target or DEFAULT_TARGET
        basis = _basis_of(state.basis)  # as pages._plan reads it
        return Prior(state.status, target, closed_in_signl4=learned, basis=basis)
    return Prior(triage=ledger.read_triage(external_id)[0])


def folded(bodies: list[dict[str, Any]], settings: RelaySettings) -> Prior:
    """prior_after over the bodies in turn (a ticket without an alert until the last)."""
    prior = NEVER_PAGED
    now = datetime.now(timezone.utc)
    for body in bodies:
        assert prior.status is None
        plan = plan_page(parse_event(body), settings, prior, now=now)
        prior = prior_after(plan, prior.triage)
    return prior


def answered_as(answer: dict[str, Any]) -> tuple[str, str | None]:
    """The relay's answer as preview words it: (decision, escalation)."""
    if answer["result"] == "skipped":
        return "skip", None
    assert answer["result"] in ("sent", "queued", "suppressed"), answer
    return answer["status"], answer.get("escalation")


@pytest.mark.parametrize("name", list(CASES))
def test_prior_after_agrees_with_the_relays_ledger_and_its_next_decision(
    name: str,
    memory_harness: Harness,
    network_team: Signl4Fake,  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = CASES[name]
    for setting, value in case.env.items():
        monkeypatch.setenv(setting, value)
    settings = RelaySettings.from_env(os.environ)
    tid = new_ticket_id()
    bodies = [webhook(tid, event, **fields) for event, fields in case.before]
    for body in bodies:
        assert memory_harness.post(body)[0] == 200
    prior = folded(bodies, settings)
    assert relay_prior(f"HaloPSA-{tid}") == prior, case.expect
    if len(bodies) == 1:  # preview --previous takes one body: the same state
        previous = previous_state(json.dumps(bodies[0]).encode(), settings)
        assert previous.prior() == prior
    then = webhook(tid, case.then[0], **case.then[1])
    [previewed] = preview_body(json.dumps(then).encode(), settings, prior=prior).events
    relay = answered_as(memory_harness.post(then)[1])
    assert relay == (previewed.decision, previewed.escalation), case.expect
