"""Property test of RELAY_RESOLVE_ON_DOWNGRADE (issue 22 item 4) through the HTTP route, over
MemoryStore and the loopback SIGNL4: the stories of test_escalation_properties.py (a ticket
logged, its priority and team changed, closed and reopened; RELAY_PAGE_PRIORITIES=1 and
RELAY_PAGE_TEAMS=Network) with the setting on and the ledger's clock moved 20 minutes per event
(past the flap limit: tests/suites/escalation.py holds it). After each story:

- no opening is paged twice: never two `new` in a row for the ticket;
- a ticket open at its last event has an open alert exactly when it passes the filters then.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Harness, Signl4Fake, story_ticket_id
from tests.suites.delivery import sent
from tests.suites.escalation import Clock
from tests.unit.delivery.test_escalation_properties import FIELDS, body, qualifies

STEP = st.tuples(st.sampled_from(["update", "close", "reopen"]), FIELDS)


@pytest.fixture
def downgrading(memory_harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setenv("RELAY_PAGE_PRIORITIES", "1")
    monkeypatch.setenv("RELAY_PAGE_TEAMS", "Network")
    monkeypatch.setenv("RELAY_RESOLVE_ON_DOWNGRADE", "true")
    return memory_harness


@pytest.fixture
def ledger_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fixed = Clock()
    monkeypatch.setattr("shared.delivery.ledger._now", fixed)
    return fixed


@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=FIELDS, story=st.lists(STEP, max_size=8))
def test_an_open_ticket_has_an_open_alert_exactly_while_it_qualifies(
    downgrading: Harness,
    signl4: Signl4Fake,
    ledger_clock: Clock,
    first: tuple[int, str],
    story: list[Any],
) -> None:
    tid = story_ticket_id()  # a fresh ticket per example: the fixtures outlive the examples
    answers = [downgrading.post(body(tid, "logged", first))]
    is_open, fields = True, first
    for kind, step_fields in story:
        if (kind == "reopen") == is_open:
            continue  # Halo reopens only a closed ticket, and updates an open one
        ledger_clock.now += timedelta(minutes=20)
        answers.append(downgrading.post(body(tid, kind, step_fields)))
        is_open, fields = kind != "close", step_fields
    assert all(code < 500 for code, _ in answers), answers
    statuses = sent(signl4, f"HaloPSA-{tid}")
    assert not [a for a, b in itertools.pairwise(statuses) if a == b == "new"], statuses
    if is_open:
        alert_open = bool(statuses) and statuses[-1] == "new"
        assert alert_open == qualifies(fields), (first, story, statuses)
