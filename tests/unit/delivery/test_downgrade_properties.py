"""Property test of RELAY_RESOLVE_ON_DOWNGRADE (issue 22 item 4) through the HTTP route, over
MemoryStore and the loopback SIGNL4: the stories of test_escalation_properties.py (a ticket
logged, its priority and team changed, closed and reopened; RELAY_PAGE_PRIORITIES=1 and
RELAY_PAGE_TEAMS=Network) with the setting on and the ledger's clock moved 20 minutes per event
(past the flap limit: tests/suites/escalation.py holds it). After each story:

- no opening is paged twice: never two `new` in a row for the ticket;
- a ticket open at its last event has an open alert exactly when it passes the filters then.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import Harness, Signl4Fake
from tests.suites.escalation import Clock
from tests.unit.delivery.test_escalation_properties import FIELDS, STEP, STORIES, qualifies, tell


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


@STORIES
@given(first=FIELDS, story=st.lists(STEP, max_size=8))
def test_an_open_ticket_has_an_open_alert_exactly_while_it_qualifies(
    downgrading: Harness,
    signl4: Signl4Fake,
    ledger_clock: Clock,
    first: tuple[int, str],
    story: list[Any],
) -> None:
    def twenty_minutes_on() -> None:  # past the flap limit (the suite holds that one)
        ledger_clock.now += timedelta(minutes=20)

    told = tell(downgrading, signl4, first, story, twenty_minutes_on)
    if told.is_open:
        alert_open = bool(told.statuses) and told.statuses[-1] == "new"
        assert alert_open == qualifies(told.fields), (first, story, told.statuses)
