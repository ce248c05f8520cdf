"""Property test of escalation with two-way sync (issue 22) through the HTTP routes, over
MemoryStore, the loopback SIGNL4 and the loopback Halo: hypothesis generates one ticket's life -
Halo logs it at some priority and team, updates it (priority and team changes), sets its
status (22 is the ack status), closes and reopens it; SIGNL4's responders acknowledge and close its alert, and SIGNL4 posts each
notification to /api/signl4 as it would (alert.eventId: the id it answered to the relay's
`new`), or redelivers it; the relay writes back to Halo (ack status 22; the close as status 9,
or as a note only) and Halo sends its echo: the ticket's webhook with the status written, at
once while the write is in flight, or later (before any other event of the ticket, as Halo
keeps order). SIGNL4 may fail a few calls (the page is queued) and the queue may run mid-story.
With RELAY_PAGE_PRIORITIES=1 and RELAY_PAGE_TEAMS=Network, after draining both queues:

- no opening pages twice: never two `new` for the ticket without a resolved (sent by the relay
  or a close in SIGNL4) between;
- a ticket open and qualifying at its last Halo event, never closed in SIGNL4 since its last
  opening (logged or reopened in Halo), has exactly one open alert in SIGNL4;
- after a SIGNL4-side close with the Halo ticket still open, no `new` reaches SIGNL4 until Halo
  closes the ticket (and reopens it), nor anything else (the updates are skipped);
- an echo never reaches SIGNL4 as a new page (nor at all: each echo here carries a state
  SIGNL4 reached first).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug import Request, Response

from devhost.queues import QueueRunner
from shared.adapters import halo as halo_api
from testkit.halo_fake import CLIENT_ID, CLIENT_SECRET, HaloFake, halo_fixture  # noqa: F401
from tests.conftest import SPEED_PROOF, Harness, Signl4Fake, story_ticket_id
from tests.suites.delivery import webhook
from tests.suites.two_way import drain as drain_halo
from tests.suites.two_way import notification, post_signl4

EXAMPLES = 1000  # per configuration
ACK_STATUS, CLOSED_STATUS, OPEN_STATUS = 22, 9, 2
ANY_FIELDS = st.tuples(st.sampled_from([1, 4]), st.sampled_from(["Network", "Servers"]))
# Changes land on the fields that page half the time, so stories reach them (escalations).
FIELDS = st.one_of(st.just((1, "Network")), ANY_FIELDS)
STEP = st.one_of(
    *[st.tuples(st.just("update"), FIELDS)] * 3,
    *[st.tuples(st.just("close"), FIELDS)] * 2,
    *[st.tuples(st.just("reopen"), FIELDS)] * 2,
    st.tuples(st.just("status"), st.sampled_from([OPEN_STATUS, ACK_STATUS])),  # an agent's
    *[st.tuples(st.just("signl4 ack"), st.booleans())] * 2,  # True: Halo echoes while writing
    *[st.tuples(st.just("signl4 close"), st.booleans())] * 3,
    st.tuples(st.just("signl4 redelivers"), st.none()),
    st.tuples(st.just("echo"), st.none()),
    st.tuples(st.just("signl4 fails"), st.integers(1, 3)),  # 3: every inline attempt, queued
    st.tuples(st.just("queue runs"), st.none()),
)
CASES = {
    "stories": 0,
    "seconds": 0.0,
    "escalations": 0,
    "signl4 closes": 0,
    "updates after": 0,  # Halo updates of a ticket open in Halo and closed in SIGNL4
    "reopens after": 0,  # Halo reopens after a close in SIGNL4
    "echoes": 0,
    "queued": 0,
}


def qualifies(fields: tuple[int, str]) -> bool:
    return fields == (1, "Network")


@dataclass
class Alert:
    event_id: str
    status: str = "new"


@dataclass
class World:
    """One ticket on both sides: Halo's ticket and SIGNL4's alerts, and their merged timeline
    (what SIGNL4 received and did, what Halo did), read by the invariants."""

    harness: Harness
    signl4: Signl4Fake
    halo: HaloFake
    tid: int
    fields: tuple[int, str]
    is_open: bool = True
    status: int = 1
    echoes: list[int] = field(default_factory=list)  # statuses written, not yet echoed
    alerts: list[Alert] = field(default_factory=list)
    timeline: list[tuple[str, str]] = field(default_factory=list)
    refused: set[int] = field(default_factory=set)  # indexes of the SIGNL4 calls it failed
    seen: int = 0  # SIGNL4 calls read into the timeline
    notified: list[dict[str, Any]] = field(default_factory=list)
    closed_in_signl4: bool = False  # since the ticket's last opening in Halo
    answers: list[tuple[int, dict]] = field(default_factory=list)
    echo_pages: int = 0
    echo_calls: int = 0

    @property
    def key(self) -> str:
        return f"HaloPSA-{self.tid}"

    def open_alerts(self) -> list[Alert]:
        return [a for a in self.alerts if a.status in ("new", "acknowledged")]

    def sync(self) -> None:
        """SIGNL4 takes the calls it received since: `new` raises an alert (its eventId is the
        one the fake answered), `acknowledged` and `resolved` act on the open one."""
        requests = self.signl4.events
        for index in range(self.seen, len(requests)):
            body = requests[index]
            if body.get("X-S4-ExternalID") != self.key:
                continue
            status = body["X-S4-Status"]
            self.timeline.append(("tried", status))
            if index in self.refused:
                continue
            self.timeline.append(("sent", status))
            if status == "new":
                self.alerts.append(Alert(f"evt-{index + 1}"))
            for alert in self.open_alerts() if status != "new" else []:
                alert.status = status
        self.seen = len(requests)

    # --- Halo ---

    def post(self, body: dict[str, Any]) -> None:
        self.sync()
        self.answers.append(self.harness.post(body))
        self.sync()

    def halo_event(self, kind: str, fields: tuple[int, str]) -> None:
        """Halo's own change (echoes of earlier writes first: Halo keeps a ticket's order)."""
        if (kind == "reopen") == self.is_open:
            return  # Halo reopens only a closed ticket, and updates or closes an open one
        self.echo()
        self.fields = fields
        priority, team = fields
        if kind == "close":
            self.is_open, self.status = False, CLOSED_STATUS
            body = webhook(self.tid, "closed", priority_id=priority, team=team, hasbeenclosed=True)
        elif kind == "reopen":
            self.is_open, self.status, self.closed_in_signl4 = True, OPEN_STATUS, False
            body = webhook(self.tid, "ticket status changed", priority_id=priority, team=team)
        else:
            body = webhook(self.tid, "ticket updated", priority_id=priority, team=team)
        body["ticket"]["status_id"] = self.status
        self.timeline.append(("halo", kind))
        self.post(body)

    def written(self, action: dict[str, Any]) -> None:
        """Halo took a write-back: a status written changes the ticket (9 closes it)."""
        status = action.get("new_status")
        if status is None:
            return
        self.status = status
        if status == CLOSED_STATUS and self.is_open:
            self.is_open = False
            self.timeline.append(("halo", "close"))
        self.echoes.append(status)

    def echo(self) -> None:
        """Halo's webhook for each status the relay wrote: the ticket with that status."""
        while self.echoes:
            status = self.echoes.pop(0)
            priority, team = self.fields
            body = webhook(self.tid, "ticket status changed", priority_id=priority, team=team)
            body["ticket"].update(status_id=status, hasbeenclosed=status == CLOSED_STATUS)
            CASES["echoes"] += 1
            pages, calls = self.pages(), self.calls()
            self.post(body)
            self.echo_pages += self.pages() - pages
            self.echo_calls += self.calls() - calls

    def calls(self) -> int:
        return sum(1 for kind, _ in self.timeline if kind == "tried")

    def pages(self) -> int:
        return sum(1 for kind, status in self.timeline if (kind, status) == ("tried", "new"))

    # --- SIGNL4 ---

    def signl4_acts(self, kind: str, live_echo: bool) -> None:
        """A responder acts on the open alert (only while Halo's ticket is open too: else the
        two sides race); SIGNL4 notifies the relay about that alert."""
        self.sync()
        alerts = self.open_alerts()
        if not alerts or not self.is_open or (kind == "ack" and alerts[-1].status != "new"):
            return
        for alert in alerts:
            alert.status = "acknowledged" if kind == "ack" else "resolved"
        self.timeline.append(("signl4", kind))
        if kind == "close":
            self.closed_in_signl4 = True
            CASES["signl4 closes"] += 1
        body = notification(self.tid, 201, 2 if kind == "ack" else 4, event_id=alerts[-1].event_id)
        self.notified.append(body)
        self.notify(body, live_echo)

    def notify(self, body: dict[str, Any], live_echo: bool, *, again: bool = False) -> None:
        def on_action(action: dict[str, Any]) -> None:
            self.written(action)
            if live_echo:
                self.echo()  # from the fake's thread, while the relay waits for Halo's answer

        self.halo.on_action = on_action
        code, answer = post_signl4(self.harness, body)
        self.halo.on_action = None
        # A redelivery about an alert since replaced (closed, reopened) is not verified.
        results = ("written", "duplicate", "ignored") if again else ("written",)
        assert code == 200 and answer["result"] in results, answer
        self.sync()

    def signl4_fails(self, calls: int) -> None:
        def refuse(_: Request) -> Response:
            self.refused.add(len(self.signl4.events) - 1)
            return Response('{"code": 3004}', status=503, mimetype="application/json")

        self.signl4.script(*[refuse] * calls)

    def halo_status(self, status: int) -> None:
        """An agent sets the open ticket's status in Halo (the ack status acknowledges)."""
        if not self.is_open:
            return
        self.echo()
        self.status = status
        priority, team = self.fields
        body = webhook(self.tid, "ticket status changed", priority_id=priority, team=team)
        body["ticket"]["status_id"] = status
        self.timeline.append(("halo", "status"))
        self.post(body)

    def play(self, kind: str, arg: Any) -> None:
        if kind in ("update", "close", "reopen"):
            self.halo_event(kind, arg)
        elif kind == "status":
            self.halo_status(arg)
        elif kind.startswith("signl4 ") and kind != "signl4 fails":
            if kind == "signl4 redelivers":
                if self.notified:
                    self.notify(self.notified[-1], live_echo=False, again=True)
            else:
                self.signl4_acts(kind.removeprefix("signl4 "), arg)
        elif kind == "echo":
            self.echo()
        elif kind == "signl4 fails":
            self.signl4_fails(arg)
        else:
            self.harness.runner.run_once()
            self.sync()

    def drain(self) -> None:
        """Everything recovers: SIGNL4 answers again, Halo sends what it has left, the queues
        run until empty."""
        self.signl4.script()
        self.echo()
        self.harness.drain()
        drain_halo(self.harness)
        self.sync()


@pytest.fixture(params=["close writes status 9", "close writes a note only"])
def world_env(
    request: pytest.FixtureRequest,
    memory_harness: Harness,
    indexed_functions: list[Any],
    halo: HaloFake,
    monkeypatch: pytest.MonkeyPatch,
) -> Harness:
    """Two-way on (the loopback Halo), ack status written back and read as an ack, the paging
    filters on; the close written back as status 9, or as a note only (Halo's ticket stays open)."""
    monkeypatch.setenv("HALO_BASE_URL", halo.base_url)
    monkeypatch.setenv("HALO_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("HALO_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SIGNL4_BACKOFF_SECONDS", "0")
    monkeypatch.setenv("RELAY_PAGE_PRIORITIES", "1")
    monkeypatch.setenv("RELAY_PAGE_TEAMS", "Network")
    monkeypatch.setenv("HALO_ACK_STATUS_ID", str(ACK_STATUS))
    monkeypatch.setenv("RELAY_ACK_STATUSES", str(ACK_STATUS))
    if request.param == "close writes status 9":
        monkeypatch.setenv("HALO_CLOSE_STATUS_ID", str(CLOSED_STATUS))
    # A message that failed is visible again at once: the drain never waits on the clock.
    memory_harness.runner = QueueRunner(
        indexed_functions, memory_harness.queues, visibility_timeout=0, max_dequeue_count=3
    )
    return memory_harness


def check(world: World) -> None:
    """The invariants of the module docstring, over the merged timeline."""
    assert all(code < 500 for code, _ in world.answers), world.answers
    # No opening paged twice: a `new` SIGNL4 took only when the ticket had no open alert.
    open_count = 0
    for kind, status in world.timeline:
        if (kind, status) == ("sent", "new"):
            assert open_count == 0, world.timeline
            open_count = 1
        elif (kind, status) in (("sent", "resolved"), ("signl4", "close")):
            open_count = 0
    # After a close in SIGNL4 with Halo's ticket open, no `new` until Halo closes the ticket.
    # (`halo close` comes from Halo's own close or the relay's write-back of status 9.)
    held_closed, halo_open = False, True
    for kind, status in world.timeline:
        if kind == "halo":
            halo_open = status != "close"
            held_closed = held_closed and halo_open
        elif (kind, status) == ("signl4", "close"):
            held_closed = halo_open
        elif kind == "tried":
            assert not (held_closed and status == "new"), world.timeline
            # Nor anything else: SIGNL4 closed the alert, the ticket's updates are skipped.
            assert not held_closed, world.timeline
        CASES["updates after"] += held_closed and (kind, status) == ("halo", "update")
    closes = [i for i, entry in enumerate(world.timeline) if entry == ("signl4", "close")]
    reopens = [i for i, entry in enumerate(world.timeline) if entry == ("halo", "reopen")]
    CASES["reopens after"] += bool(closes and reopens and reopens[-1] > closes[0])
    # An echo never reaches SIGNL4 as a new page.
    assert world.echo_pages == 0, world.timeline
    # Nor as anything else: every echo here is of a state SIGNL4 has already (it acted first).
    assert world.echo_calls == 0, world.timeline
    # Open and qualifying at its last event, not closed in SIGNL4 since: one open alert.
    if world.is_open and qualifies(world.fields) and not world.closed_in_signl4:
        assert len(world.open_alerts()) == 1, (world.fields, world.timeline)


@settings(
    settings.get_profile(SPEED_PROOF),  # no deadline, no too_slow: a verdict never on time
    max_examples=EXAMPLES,
    derandomize=False,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=ANY_FIELDS, story=st.lists(STEP, min_size=6, max_size=16))
def test_two_way_escalation_pages_once_and_never_after_a_signl4_close(
    world_env: Harness,
    signl4: Signl4Fake,
    halo: HaloFake,
    first: tuple[int, str],
    story: list[tuple[str, Any]],
) -> None:
    CASES["stories"] += 1
    CASES["seconds"] = CASES["seconds"] or time.perf_counter()
    halo_api.reset_call_budget()  # each story a worker's fresh 5 minutes (shrinking reruns many)
    world = World(world_env, signl4, halo, story_ticket_id(), first, seen=len(signl4.events))
    priority, team = first
    world.timeline.append(("halo", "logged"))
    world.post(webhook(world.tid, "new ticket logged", priority_id=priority, team=team))
    for kind, arg in story:
        world.play(kind, arg)
    world.drain()
    CASES["escalations"] += sum(1 for _, body in world.answers if body.get("escalation"))
    CASES["queued"] += sum(1 for _, body in world.answers if body["result"] == "queued")
    check(world)


def test_zz_two_way_property_case_count(capsys: pytest.CaptureFixture[str]) -> None:
    """Says how many generated stories ran and what they held (CI's log shows it)."""
    seconds = time.perf_counter() - CASES.pop("seconds")
    with capsys.disabled():
        print(f"\ntwo-way escalation property suite, {seconds:.1f}s: {CASES}")
