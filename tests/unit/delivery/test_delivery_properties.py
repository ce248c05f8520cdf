"""Property tests of the delivery service over in-memory adapters (MemoryStore, a fake SIGNL4,
a fake queue, a fake clock): hypothesis generates stories per ticket - Halo events (new, close,
reopen), Halo redeliveries and batches, SIGNL4 answers (201, 429, 5xx, timeouts that reached
SIGNL4, 4xx), queue redeliveries, and worker crashes at every store write and after a send -
then drains everything and checks the guarantees:

- each ticket's last SIGNL4 status equals its last Halo state;
- no opening is paged twice, except after a read timeout (documented: the timed-out call may
  have reached SIGNL4);
- nothing accepted is lost, except in the documented crash window (a worker dies between
  writing its sending mark, or the inline claim, and sending);
- no message is left in a queue.

Two-way steps join the stories: SIGNL4's genuine notifications about the alert the relay raised
(acknowledged, closed, annotated: with the eventId SIGNL4 answered to its `new`), their
redeliveries, Halo's echo of each status the relay writes back (sent while the write is in
flight), and forged notifications (any notification id, including a genuine one's; an event id
guessed, another ticket's, an older alert's of the ticket, or none; any team). Then also:

- every Halo opening still pages and every Halo close still resolves our open alert: SIGNL4
  and Halo end in the same state (Halo's last change, its own or a write-back);
- Halo's echo of a write-back never reaches SIGNL4 (unless the ticket had an event waiting or
  in flight when SIGNL4's state was learned: those keep their claim, documented);
- no forged notification writes to Halo;
- the anchor the relay keeps is the eventId of SIGNL4's current alert of the ticket, or none.

A failure shrinks to a story: the list of steps, each with a readable repr.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters.sender import SendResult
from shared.adapters.store import Conflict, MemoryStore, Row
from shared.delivery.conversation import Conversation
from shared.delivery.ledger import Ledger, load
from shared.delivery.mailbox import deliver_queued, give_up
from shared.delivery.outbox import describe_poison
from shared.delivery.pages import Delivery, EventTrace, deliver_halo_event
from shared.delivery.writebacks import deliver_signl4_notification
from shared.domain import writeback
from shared.domain.alert import AlertStatus
from shared.domain.halo import parse_event
from shared.domain.notification import parse_notification
from shared.errors import Signl4Rejected, Signl4Unavailable
from shared.settings import RelaySettings
from tests.conftest import SPEED_PROOF

EXAMPLES = 2000
TICKETS = (101, 202)
VISIBILITY = 30.0  # host.json visibilityTimeout
MAX_DEQUEUE = 8  # host.json maxDequeueCount
SETTINGS = RelaySettings.from_env(
    {
        "SIGNL4_TEAM_SECRET": "property-secret",
        # Two-way sync on, writing statuses back (so Halo echoes them) and assigning on ack.
        "HALO_BASE_URL": "https://halo.example",
        "HALO_CLIENT_ID": "property-client",
        "HALO_CLIENT_SECRET": "property-client-secret",
        "HALO_ACK_STATUS_ID": "22",
        "HALO_CLOSE_STATUS_ID": "9",
        "HALO_ASSIGN_ON_ACK": "true",
        "RELAY_ACK_STATUSES": "22",
    }
)
OPEN = ("new", "acknowledged")
ALIVE = SETTINGS.relay_inflight_seconds


class Crash(BaseException):
    """A worker dies here (BaseException: no `except Exception` in the service catches it)."""


# --- the story's steps ---


@dataclass(frozen=True)
class HaloSends:
    """Halo sends the ticket's next event (or re-sends the one that failed)."""

    ticket: int

    def __repr__(self) -> str:
        return f"halo sends next of #{self.ticket}"


@dataclass(frozen=True)
class HaloRedelivers:
    ticket: int

    def __repr__(self) -> str:
        return f"halo redelivers last of #{self.ticket}"


@dataclass(frozen=True)
class HaloBatch:
    def __repr__(self) -> str:
        return "halo sends next of every ticket in one batch"


@dataclass(frozen=True)
class QueueRuns:
    def __repr__(self) -> str:
        return "queue worker runs"


@dataclass(frozen=True)
class Tick:
    seconds: float

    def __repr__(self) -> str:
        return f"clock +{self.seconds:g}s"


@dataclass(frozen=True)
class CrashNext:
    """The next worker dies right after its n-th store write (n=0: before its first write
    lands), or right after SIGNL4 took its send."""

    where: str
    n: int = 0

    def __repr__(self) -> str:
        return f"crash {self.where}" + (f" #{self.n}" if self.where != "after send" else "")


@dataclass(frozen=True)
class Signl4Answers:
    answers: tuple[str, ...]

    def __repr__(self) -> str:
        return f"SIGNL4 will answer {', '.join(self.answers)}"


@dataclass(frozen=True)
class Signl4Acts:
    """A responder acts on the ticket's alert in SIGNL4 (if it has one it can act on), and
    SIGNL4 notifies the relay: genuine, with the alert's eventId."""

    ticket: int
    kind: str  # ack / close / annotate

    def __repr__(self) -> str:
        return f"SIGNL4 {self.kind} on #{self.ticket}'s alert"


@dataclass(frozen=True)
class Signl4Redelivers:
    ticket: int

    def __repr__(self) -> str:
        return f"SIGNL4 redelivers its last notification about #{self.ticket}"


@dataclass(frozen=True)
class Forged:
    """Anyone posts a notification about the ticket: `event` says which alert.eventId."""

    ticket: int
    kind: str
    event: str  # guess / other ticket's / older alert's / none
    reuse_id: bool  # a genuine notification's id, not a fresh one
    team: str

    def __repr__(self) -> str:
        named = "a genuine id" if self.reuse_id else "a fresh id"
        return f"forged {self.kind} on #{self.ticket} ({self.event} eventId, {named})"


KINDS = st.sampled_from(["ack", "close", "annotate"])
STEPS = st.one_of(
    st.builds(HaloSends, st.sampled_from(TICKETS)),
    st.builds(HaloSends, st.sampled_from(TICKETS)),
    st.builds(HaloRedelivers, st.sampled_from(TICKETS)),
    st.just(HaloBatch()),
    st.just(QueueRuns()),
    st.just(QueueRuns()),
    st.builds(Tick, st.sampled_from([1.0, VISIBILITY, ALIVE + 1])),
    st.builds(CrashNext, st.just("after write"), st.integers(1, 3)),
    st.builds(CrashNext, st.just("before write"), st.integers(1, 3)),
    st.builds(CrashNext, st.just("after send")),
    st.builds(
        Signl4Answers,
        st.lists(
            st.sampled_from(["201", "429", "503", "timeout", "400"]), min_size=1, max_size=4
        ).map(tuple),
    ),
    st.builds(Signl4Acts, st.sampled_from(TICKETS), KINDS),
    st.builds(Signl4Acts, st.sampled_from(TICKETS), KINDS),
    st.builds(Signl4Redelivers, st.sampled_from(TICKETS)),
    st.builds(
        Forged,
        st.sampled_from(TICKETS),
        KINDS,
        st.sampled_from(["guessed", "other ticket's", "older alert's", "no"]),
        st.booleans(),
        st.sampled_from(["team-1", "team-evil", ""]),
    ),
)

# Halo's story per ticket: created, then closed and reopened a few times.
SCRIPTS = st.integers(0, 4).map(
    lambda n: ["new ticket logged"] + ["closed" if i % 2 == 0 else "reopened" for i in range(n)]
)


def envelope(ticket: int, kind: str) -> dict[str, Any]:
    if kind == "closed":
        return {
            "event": "closed",
            "object_id": ticket,
            "ticket": {"id": ticket, "hasbeenclosed": True},
        }
    if kind == "reopened":
        return {
            "event": "ticket status changed",
            "object_id": ticket,
            "ticket": {"id": ticket, "status_id": 2},
        }
    return {"event": kind, "object_id": ticket, "ticket": {"id": ticket, "status_id": 1}}


def halo_status(kind: str) -> str:
    return "resolved" if kind == "closed" else "new"


# --- the world: in-memory ports with crash injection ---


class CrashingStore(MemoryStore):
    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world

    def commit(self, partition: str, ops: Any) -> dict[str, str]:
        crash = self.world.crash
        if crash and crash.where == "before write":
            self.world.writes += 1
            if self.world.writes >= crash.n:
                self.world.crash = None
                raise Crash("before write")
        try:
            etags = super().commit(partition, ops)
        except Conflict:
            CASES["stale"] += 1  # a claim on what an instance remembered, or a lost race
            raise
        if crash and crash.where == "after write":
            self.world.writes += 1
            if self.world.writes >= crash.n:
                self.world.crash = None
                raise Crash("after write")
        return etags

    def read(self, partition: str, row: str | None = None) -> dict[str, Row]:
        return super().read(partition, row)


class InstanceView:
    """The same table seen from another relay process (its own Ledger memory)."""

    def __init__(self, store: CrashingStore) -> None:
        self.store = store

    def read(self, partition: str, row: str | None = None) -> dict[str, Row]:
        return self.store.read(partition, row)

    def commit(self, partition: str, ops: Any) -> dict[str, str]:
        return self.store.commit(partition, ops)


@dataclass
class Message:
    text: str
    visible_at: float = 0.0
    dequeues: int = 0


@dataclass
class World:
    scripts: dict[int, list[str]]
    now: float = 0.0
    answers: list[str] = field(default_factory=list)
    crash: CrashNext | None = None
    writes: int = 0
    cursor: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    last_sent: dict[int, int] = field(default_factory=dict)
    accepted: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    timeouts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    resends: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    in_window: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    outbox: list[Message] = field(default_factory=list)
    poison: list[Message] = field(default_factory=list)
    given_up: set[int] = field(default_factory=set)
    # Two-way: each side's state changes in order (SIGNL4: accepted sends and its own acts;
    # Halo: its events as they happen and the relay's write-backs), the eventId of each alert
    # SIGNL4 raised per ticket (the last one is the current alert), SIGNL4's notifications.
    signl4_states: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    halo_states: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    happened: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    raised: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    genuine: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    halo_writes: list[dict[str, Any]] = field(default_factory=list)
    sends: int = 0  # calls to SIGNL4, accepted or not
    echo_leaks: int = 0
    echo_excused: int = 0
    echoed: dict[int, int] = field(default_factory=dict)  # Halo's last webhook was an echo
    ids: Any = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.store = CrashingStore(self)
        # Two relay instances over the one table: each remembers what it saw (Ledger.guess),
        # so requests alternating between them claim on stale guesses too.
        self.instances = [
            Ledger(self.store, clock=self.clock),
            Ledger(InstanceView(self.store), clock=self.clock),
        ]
        self.invocations = 0

    @property
    def ledger(self) -> Ledger:
        """The instance that runs the next invocation (they alternate)."""
        return self.instances[self.invocations % 2]

    def crashed(self) -> None:
        """The instance died: what it remembered is gone with it."""
        self.ledger.known.clear()
        self.note_window()

    def clock(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=self.now)

    def note_window(self) -> None:
        """A worker died while a ticket's inline claim or sending mark stood: the documented
        window in which that event may be lost (the mark says 'presumably delivered')."""
        for ticket in self.scripts:
            rows = MemoryStore.read(self.store, f"HaloPSA-{ticket}", "alert")
            entity = rows["alert"].entity if rows else {}
            if entity.get("SendingSeq") or entity.get("InflightSeq"):
                self.in_window[f"HaloPSA-{ticket}"] += 1

    # -- the fake SIGNL4 --

    def send(self, payload: dict[str, Any], _: RelaySettings) -> SendResult:
        answer = self.answers.pop(0) if self.answers else "201"
        key = payload["X-S4-ExternalID"]
        self.sends += 1
        event_id = f"evt-{next(self.ids)}"  # never guessable from another
        if answer in ("201", "timeout"):
            self.accepted[key].append(payload["X-S4-Status"])
            self.signl4_states[key].append(payload["X-S4-Status"])
            if payload["X-S4-Status"] == "new":
                self.raised[key].append(event_id)  # a new alert
        if answer == "timeout":
            self.timeouts[key] += 1
            raise Signl4Unavailable("SIGNL4 did not answer in time")
        if answer in ("429", "503"):
            raise Signl4Unavailable(f"SIGNL4 answered HTTP {answer}", int(answer))
        if answer == "400":
            raise Signl4Rejected("SIGNL4 rejected the event with HTTP 400", 400)
        if self.crash and self.crash.where == "after send":
            self.crash = None
            raise Crash("after send")
        return SendResult(status_code=201, event_id=event_id)

    # -- Halo --

    def post(self, tickets: list[int], redeliver: bool = False) -> None:
        """One HTTP request (a batch when several); a crash loses its answer and its output
        binding, so Halo sends the events again later."""
        picked = []
        for ticket in tickets:
            index = self.last_sent.get(ticket) if redeliver else self.cursor[ticket]
            if index is not None and index < len(self.scripts[ticket]):
                picked.append((ticket, index))
                if index >= self.happened[ticket]:  # the change happens in Halo once
                    self.happened[ticket] = index + 1
                    self.halo_states[ticket].append(halo_status(self.scripts[ticket][index]))
        if not picked:
            return
        self.writes = 0
        self.invocations += 1
        outbox: list[str] = []
        delivery = Delivery(SETTINGS, self.ledger, outbox, sender=self.send)
        try:
            for ticket, index in picked:
                event = parse_event(envelope(ticket, self.scripts[ticket][index]))
                try:
                    deliver_halo_event(event, delivery, EventTrace())
                except Signl4Rejected:
                    self.given_up.add(ticket)  # answered 502: Halo logs it; an operator re-sends
        except Crash:
            self.crashed()
            return
        finally:
            self.crash = None
        # Answered: Halo moves on (a crash above loses the whole answer and output binding).
        for ticket, index in picked:
            self.last_sent[ticket] = index
            if not redeliver:
                self.echoed.pop(ticket, None)  # Halo's last webhook is this event now
                self.cursor[ticket] = index + 1
        self.outbox.extend(Message(text, self.now) for text in outbox)

    # -- the queue extension --

    def run_queue(self) -> bool:
        for queue, handler in ((self.outbox, self._outbox), (self.poison, self._poison)):
            message = next((m for m in queue if m.visible_at <= self.now), None)
            if message is None:
                continue
            message.dequeues += 1
            message.visible_at = self.now + VISIBILITY
            self.writes = 0
            self.invocations += 1
            try:
                records = handler(message.text)
            except (Crash, Exception) as error:
                if isinstance(error, Crash):
                    self.crashed()
                if message.dequeues >= MAX_DEQUEUE:
                    queue.remove(message)
                    if queue is self.outbox:
                        self.poison.append(Message(message.text, self.now))
                return True
            finally:
                self.crash = None
            queue.remove(message)
            self.poison.extend(Message(text, self.now) for text in records)
            return True
        return False

    def _outbox(self, raw: str) -> list[str]:
        outcome = deliver_queued(raw, SETTINGS, self.ledger, self.send)
        return outcome.poison

    def _poison(self, raw: str) -> list[str]:
        external_id, reason, seq = describe_poison(raw)
        give_up(external_id, reason, seq, self.ledger)
        if external_id.startswith("HaloPSA-"):
            self.given_up.add(int(external_id.removeprefix("HaloPSA-")))
        return []

    # -- the story and the drain --

    def play(self, step: Any) -> None:
        if isinstance(step, HaloSends):
            self.post([step.ticket])
        elif isinstance(step, HaloRedelivers):
            if step.ticket in self.echoed:  # Halo's last webhook was an echo
                self.echo(step.ticket, self.echoed[step.ticket])
            else:
                self.post([step.ticket], redeliver=True)
        elif isinstance(step, HaloBatch):
            self.post(list(self.scripts))
        elif isinstance(step, QueueRuns):
            self.run_queue()
        elif isinstance(step, Tick):
            self.now += step.seconds
        elif isinstance(step, CrashNext):
            self.crash = step
        elif isinstance(step, Signl4Answers):
            self.answers = list(step.answers)
        elif isinstance(step, Signl4Acts):
            self.signl4_acts(step)
        elif isinstance(step, Signl4Redelivers):
            if self.genuine[step.ticket]:
                self.notify(self.genuine[step.ticket][-1])
        elif isinstance(step, Forged):
            self.notify(self.forge(step))

    # -- SIGNL4's outbound webhook (two-way) --

    def signl4_acts(self, step: Signl4Acts) -> None:
        """Only on an alert SIGNL4 has and a responder can act on; an ack or close only while
        Halo's ticket is open too (else the two sides race, which is no verification matter)."""
        key = f"HaloPSA-{step.ticket}"
        if not self.raised[key]:
            return
        signl4_now = self.signl4_states[key][-1]
        halo_now = self.halo_states[step.ticket][-1] if self.halo_states[step.ticket] else ""
        if step.kind == "ack" and not (signl4_now == "new" and halo_now in OPEN):
            return
        if step.kind == "close" and not (signl4_now in OPEN and halo_now in OPEN):
            return
        if step.kind != "annotate":
            self.signl4_states[key].append("acknowledged" if step.kind == "ack" else "resolved")
        body = self.notification(step.ticket, step.kind, self.raised[key][-1], "Ann")
        self.genuine[step.ticket].append(body)
        self.notify(body)

    def forge(self, step: Forged) -> dict[str, Any]:
        key = f"HaloPSA-{step.ticket}"
        other = next(t for t in TICKETS if t != step.ticket)
        choices = {
            "guessed": "evt-guessed",
            "other ticket's": (self.raised[f"HaloPSA-{other}"] or ["evt-x"])[-1],
            "older alert's": (self.raised[key][:-1] or ["evt-y"])[-1],
            "no": "",
        }
        body = self.notification(step.ticket, step.kind, choices[step.event], "Mallory")
        genuine = [b["id"] for bodies in self.genuine.values() for b in bodies]
        if step.reuse_id and genuine:
            body["id"] = genuine[len(genuine) // 2]
        body["team"] = {"id": step.team}
        return body

    def notification(self, ticket: int, kind: str, event_id: str, who: str) -> dict[str, Any]:
        event_type, status = {"ack": (201, 2), "close": (201, 4), "annotate": (203, None)}[kind]
        body: dict[str, Any] = {
            "eventType": event_type,
            "id": f"n-{next(self.ids)}",
            "user": {"username": who, "mailaddress": f"{who.lower()}@example.com"},
            "alert": {"eventId": event_id, "externalEventId": f"HaloPSA-{ticket}", "id": "a"},
            "annotation": {"message": f"a note by {who}"},
        }
        if status is not None:
            body["alert"]["statusCode"] = status
        return body

    def notify(self, body: dict[str, Any]) -> None:
        """POST /api/signl4, as signl4_webhook.handle_signl4_request runs it. No crash is injected here
        (the write-back direction's recovery has its own tests): an armed crash waits."""
        armed, self.crash = self.crash, None
        notification = parse_notification(body)
        planned = writeback.plan(notification, SETTINGS)
        assert not isinstance(planned, writeback.Ignore)
        key = f"HaloPSA-{planned.ticket_id}"
        busy = self.busy(key)
        self.invocations += 1
        ledger = Ledger(self.store, clock=self.clock, status_type=str)
        outbox: list[str] = []
        delivery = Delivery(SETTINGS, ledger, outbox, sender=self.halo_write)
        before = self.echo_leaks
        forged = "Mallory" in body["user"]["username"]
        CASES["forged" if forged else "genuine"] += 1
        deliver_signl4_notification(notification, planned, delivery, EventTrace())
        if busy and self.echo_leaks > before:
            self.echo_excused += self.echo_leaks - before
        assert not outbox  # Halo took every write inline
        self.crash = armed

    def busy(self, key: str) -> bool:
        """An event of the ticket waits or is in flight: SIGNL4's state is not learned then."""
        state = load(key, MemoryStore.read(self.store, key, "alert"), AlertStatus)
        return bool(state.pending_count) or state.inflight_at(self.clock(), ALIVE)

    def halo_write(self, payload: dict[str, Any], _: RelaySettings) -> SendResult:
        """Halo takes the write-back; a status it sets comes back as Halo's webhook (the echo)
        while the write is still in flight."""
        self.halo_writes.append(payload)
        CASES["written"] += 1
        ticket, status = payload["ticketId"], payload.get("statusId")
        if status is not None:
            self.halo_states[ticket].append("resolved" if status == 9 else "acknowledged")
            self.echo(ticket, status, live=True)
        return SendResult(status_code=201, event_id=str(len(self.halo_writes)))

    def echo(self, ticket: int, status: int, *, live: bool = False) -> None:
        """Halo's webhook for a status the relay wrote. `live`: sent while the write is in
        flight (the loop the anchor-verified learning guards against); else a redelivery of
        it, stale like any Halo redelivery."""
        self.echoed[ticket] = status
        CASES["echoes"] += live
        if status == 9:
            body = {"event": "closed", "object_id": ticket, "ticket": {"id": ticket}}
            body["ticket"]["hasbeenclosed"] = True
        else:
            body = {
                "event": "ticket status changed",
                "object_id": ticket,
                "ticket": {"id": ticket, "status_id": status},
            }
        sends, outbox = self.sends, []
        armed, self.crash = self.crash, None  # no crash injected (as in notify)
        delivery = Delivery(SETTINGS, self.ledger, outbox, sender=self.send)
        outcome = deliver_halo_event(parse_event(body), delivery, EventTrace())
        self.crash = armed
        if live and (self.sends > sends or outcome.result == "queued"):
            self.echo_leaks += 1
        self.outbox.extend(Message(text, self.now) for text in outbox)

    def drain(self) -> None:
        """Everything recovers: no more faults; Halo sends what it has left; the queues run
        (time passing so marks expire and messages come back); an operator re-sends the last
        events of a ticket whose events were given up."""
        self.answers, self.crash = [], None
        for _ in range(50):
            for ticket, script in self.scripts.items():
                while self.cursor[ticket] < len(script):
                    self.post([ticket])
            self.now += ALIVE + VISIBILITY
            while self.run_queue():
                pass
            if self.outbox or self.poison:
                continue
            if not self.given_up:
                return
            for ticket in sorted(self.given_up):
                # From Halo's webhook log, the ticket's events again, in order.
                self.resends[f"HaloPSA-{ticket}"] += 1
                for index in range(len(self.scripts[ticket])):
                    self.last_sent[ticket] = index
                    self.post([ticket], redeliver=True)
                if ticket in self.echoed:
                    self.echo(ticket, self.echoed[ticket])
            self.given_up.clear()
        pytest.fail("the queues did not drain")


def state_of(world: World, ticket: int) -> Conversation:
    return world.ledger.read(f"HaloPSA-{ticket}", mailbox=True)


CASES = {
    "count": 0,
    "seconds": 0.0,
    "stale": 0,
    "genuine": 0,
    "forged": 0,
    "written": 0,
    "echoes": 0,
}


@settings(
    settings.get_profile(SPEED_PROOF),  # no deadline, no too_slow: a verdict never on time
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
)
@given(scripts=st.tuples(*[SCRIPTS for _ in TICKETS]), story=st.lists(STEPS, max_size=25))
def test_every_story_ends_delivered_once_in_order(
    scripts: tuple[list[str], ...], story: list[Any]
) -> None:
    CASES["count"] += 1
    CASES["seconds"] = CASES["seconds"] or time.perf_counter()
    world = World(dict(zip(TICKETS, scripts, strict=True)))
    for step in story:
        world.play(step)
    world.drain()
    assert not world.outbox and not world.poison  # no message left in a queue
    # No forged notification wrote to Halo; the echo of a write-back never reached SIGNL4.
    assert not [w for w in world.halo_writes if "Mallory" in w["note"]], world.halo_writes
    assert world.echo_leaks <= world.echo_excused, (world.echo_leaks, world.echo_excused)
    for ticket, script in world.scripts.items():
        key = f"HaloPSA-{ticket}"
        accepted = world.accepted[key]
        if key not in world.in_window:
            # Nothing accepted lost, every opening paged and every close resolved: SIGNL4 ends
            # where Halo ended (its own last change, or the relay's write-back).
            halo, signl4 = world.halo_states[ticket], world.signl4_states[key]
            assert accepted and signl4[-1] == halo[-1], (key, signl4, halo, script)
        # The anchor is SIGNL4's current alert of the ticket, or none.
        anchor = state_of(world, ticket).raised_event_id
        assert anchor is None or anchor == world.raised[key][-1], (key, anchor, world.raised)
        # No opening paged twice: never a second "new" while the alert is open. Documented
        # exceptions: a read timeout (the call may have reached SIGNL4), an operator's re-send
        # of a given-up event, and a close lost in the crash window.
        excused = world.timeouts[key] + world.resends[key] + world.in_window[key]
        # (SIGNL4's own acts count: an alert closed in SIGNL4 is paged again when reopened.)
        changes = world.signl4_states[key]
        twice = sum(1 for a, b in itertools.pairwise(changes) if a == b == "new")
        assert twice <= excused, (key, accepted, script)
        state = state_of(world, ticket)
        assert state.pending_count == 0 and not state.mailbox


def test_zz_property_case_count(capsys: pytest.CaptureFixture[str]) -> None:
    """Says how many generated stories ran (CI's log shows it, with or without -s)."""
    if not CASES["count"]:
        test_every_story_ends_delivered_once_in_order()
    with capsys.disabled():
        print(
            f"\nproperty suite: {CASES['count']} generated delivery stories in "
            f"{time.perf_counter() - CASES['seconds']:.1f}s ({CASES['stale']:.0f} writes lost to "
            "a stale guess or a race, and decided again); two-way: "
            f"{CASES['genuine']:.0f} genuine notifications, {CASES['written']:.0f} Halo writes, "
            f"{CASES['echoes']:.0f} echoes while writing, {CASES['forged']:.0f} forged (none written)"
        )
    assert CASES["count"] >= EXAMPLES
