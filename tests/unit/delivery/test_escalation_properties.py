"""Property test of escalation (issue 22) through the HTTP route, over MemoryStore and the
loopback SIGNL4: hypothesis generates a ticket's life in Halo - logged at some priority and
team, updated (priority raised or lowered, moved between teams), closed and reopened - with
RELAY_PAGE_PRIORITIES=1 and RELAY_PAGE_TEAMS=Network. After each story:

- no opening is paged twice: never two `new` in a row for the ticket;
- a ticket open and passing the filters at its last event has exactly one open alert (its
  last SIGNL4 status is `new`), whichever path got it there;
- a ticket that never passed the filters was never paged.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Harness, Signl4Fake, story_ticket_id
from tests.suites.delivery import sent, webhook

FIELDS = st.tuples(st.sampled_from([1, 2, 4]), st.sampled_from(["Network", "Servers"]))
STEP = st.one_of(
    st.tuples(st.just("update"), FIELDS),
    st.tuples(st.just("close"), FIELDS),
    st.tuples(st.just("reopen"), FIELDS),
)


def qualifies(fields: tuple[int, str]) -> bool:
    return fields == (1, "Network")


def body(tid: int, kind: str, fields: tuple[int, str]) -> dict[str, Any]:
    priority, team = fields
    if kind == "logged":
        return webhook(tid, "new ticket logged", priority_id=priority, team=team)
    if kind == "close":
        return webhook(
            tid, "closed", priority_id=priority, team=team, status_id=9, hasbeenclosed=True
        )
    if kind == "reopen":
        return webhook(tid, "ticket status changed", priority_id=priority, team=team, status_id=2)
    return webhook(tid, "ticket updated", priority_id=priority, team=team, status_id=2)


# Seeded and count-based: a verdict never depends on the machine's speed.
STORIES = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Told:
    """What became of a story: SIGNL4's statuses for the ticket, and the ticket at its end."""

    statuses: list[str]
    is_open: bool
    fields: tuple[int, str]
    applied: list[tuple[int, str]]  # the fields of every event Halo sent


def tell(
    harness: Harness,
    signl4: Signl4Fake,
    first: tuple[int, str],
    story: list[Any],
    before_each: Callable[[], None] = lambda: None,
) -> Told:
    """Play a story on a fresh ticket (Halo reopens only a closed ticket and updates an open
    one), `before_each` before every later event; no answer a 500, no opening paged twice."""
    tid = story_ticket_id()  # a fresh ticket per example: the fixtures outlive the examples
    answers = [harness.post(body(tid, "logged", first))]
    is_open, fields, applied = True, first, [first]
    for kind, step_fields in story:
        if (kind == "reopen") == is_open:
            continue
        before_each()
        answers.append(harness.post(body(tid, kind, step_fields)))
        is_open, fields = kind != "close", step_fields
        applied.append(fields)
    assert all(code < 500 for code, _ in answers), answers
    statuses = sent(signl4, f"HaloPSA-{tid}")
    assert not [a for a, b in itertools.pairwise(statuses) if a == b == "new"], statuses
    return Told(statuses, is_open, fields, applied)


@pytest.fixture
def filtered(memory_harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setenv("RELAY_PAGE_PRIORITIES", "1")
    monkeypatch.setenv("RELAY_PAGE_TEAMS", "Network")
    return memory_harness


@STORIES
@given(first=FIELDS, story=st.lists(STEP, max_size=8))
def test_escalation_pages_once_per_opening_and_leaves_one_alert(
    filtered: Harness, signl4: Signl4Fake, first: tuple[int, str], story: list[Any]
) -> None:
    told = tell(filtered, signl4, first, story)
    if told.is_open and qualifies(told.fields):
        assert told.statuses and told.statuses[-1] == "new", (first, story, told.statuses)
    if not any(qualifies(f) for f in told.applied):
        assert "new" not in told.statuses, (first, story, told.statuses)
