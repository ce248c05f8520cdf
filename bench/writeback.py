"""bench: the two-way write-back path (SIGNL4 -> relay -> Halo), measured like the other direction.

    python bench/writeback.py [--requests N] [--delay-ms MS] [--rows-samples N]

1. CPU per notification: parse_json_body + parse_notification + plan, in-process.
2. End to end, in-process: handle_signl4_request (settings, dedupe claim in the ledger
   held in memory, the learned SIGNL4-side status, the Halo client) against a loopback fake
   Halo that answers after --delay-ms, next to the same POST /api/Actions sent straight to the
   fake with the same session. Sequential, a new ticket per notification. Prints medians and
   p99; it only reports (no target, no test reads it).
3. One ticket's annotation at the 1st and at the 1,500th (`seen-` rows of earlier ones in its
   partition), through handle_signl4_request against the fake Halo answering at once:
   the median, with point reads (now) and with the whole-partition read the path made before
   (a store whose read_rows reads the partition, as the old code did), and the store calls.

Only a verified notification acts, so each ticket first gets the state row the relay keeps
for the alert it raised (its anchor, "bench-evt"), written straight into the in-memory ledger:
the bench times the notification, not the page.

The fake Halo is the tests' own (testkit/halo_fake.py): it checks every body against Halo's
contracts (testkit/contracts/) and answers 400 to one that breaks them; the run then fails
with the violations instead of printing figures for a body Halo would refuse.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_fake(delay_s: float) -> Any:
    """The tests' loopback Halo (testkit/halo_fake.py), answering each note after `delay_s`."""
    from testkit import halo_fake

    fake = halo_fake.start()
    if delay_s:
        fake.on_action = lambda _action: time.sleep(delay_s)
    return fake


def refused(fake: Any) -> int:
    """Stop the fake; 1 (after naming them) when it refused bodies that break Halo's contract."""
    from testkit import halo_fake

    halo_fake.stop(fake)
    if not fake.watch.violations:
        return 0
    print("the fake Halo refused bodies that break its contract:", file=sys.stderr)
    print("\n".join(fake.watch.violations), file=sys.stderr)
    return 1


ANCHOR = "bench-evt"


def raised(ticket: int) -> None:
    """The ledger row of an alert the relay raised for the ticket (in memory), as the relay
    writes it when SIGNL4 accepted the `new`."""
    from datetime import datetime, timezone

    from shared.adapters.store import Op
    from shared.entry import storage

    entity = {"Status": "new", "Seq": 1, "DeliveredSeq": 1, "EventId": ANCHOR}
    entity.update(RaisedEventId=ANCHOR, UpdatedUtc=datetime.now(timezone.utc))
    storage._memory_store.commit(f"HaloPSA-{ticket}", [Op("create", "alert", entity)])


def notification(ticket: int, *, annotation: str | None = None) -> bytes:
    body: dict[str, Any] = {
        "eventType": 201,
        "eventRaisedUtc": "2026-09-25T06:41:08Z",
        "id": f"bench-{ticket}-{time.monotonic_ns()}",
        "user": {"username": "Ann", "mailaddress": "ann@contoso.example"},
        "alert": {
            "statusCode": 2,
            "externalEventId": f"HaloPSA-{ticket}",
            "id": "a",
            "eventId": ANCHOR,
        },
    }
    if annotation is not None:
        body.update(eventType=203, annotation={"message": annotation})
    return json.dumps(body).encode()


def stats(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):8.3f} ms   p99 {p99:8.3f} ms"


def timed(action: Callable[[], Any], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--rows-samples", type=int, default=200)
    args = parser.parse_args()

    from shared.domain import notification as signl4_outbound
    from shared.domain import writeback
    from shared.domain.halo import parse_json_body
    from shared.entry.signl4_webhook import handle_signl4_request
    from shared.settings import RelaySettings
    from testkit.halo_fake import CLIENT_ID, CLIENT_SECRET

    fake = make_fake(args.delay_ms / 1000)
    base = fake.base_url
    environ = {
        "HALO_BASE_URL": base,
        "HALO_AUTH_URL": f"{base}/auth",
        "HALO_CLIENT_ID": CLIENT_ID,
        "HALO_CLIENT_SECRET": CLIENT_SECRET,
        "HALO_TENANT": "bench",  # with HALO_AUTH_URL: no authinfo call
        "HALO_NOTE_OUTCOME_ID": "7",  # no GET /api/Outcome: only the notes are timed
        "SIGNL4_TIMEOUT_SECONDS": "30",
        "AzureWebJobsStorage": "memory",
    }
    settings = RelaySettings.from_env(environ)

    # 1. CPU per notification
    body = notification(4242)
    for _ in range(200):
        writeback.plan(signl4_outbound.parse_notification(parse_json_body(body)), settings)
    cpu = timed(
        lambda: writeback.plan(signl4_outbound.parse_notification(parse_json_body(body)), settings),
        5000,
    )

    # 2. End to end, interleaved with the direct call
    tickets = iter(range(10_000_000, 20_000_000))
    os.environ.update(environ)
    from shared.adapters import halo as halo_api

    halo_api.reset_call_budget(limit=10**9)  # Halo's rate limit is not what is measured here
    warm = next(tickets)
    raised(warm)
    handle_signl4_request(notification(warm), environ, outbox=[])  # warm: token, session
    token = fake.issued[-1]  # the straight call uses the relay's token
    from shared.adapters.http import retrying

    # What the relay sends by default: Halo refuses an action without an outcome.
    action = json.dumps(
        [{"ticket_id": 1, "note_html": "x", "hiddenfromuser": True, "outcome": "Private Note"}]
    ).encode()

    def direct() -> None:
        with (
            retrying(settings) as session,
            session.post(
                f"{base}/api/Actions",
                data=action,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            ) as response,
        ):
            assert response.status_code == 201

    def via_relay() -> None:
        ticket = next(tickets)
        raised(ticket)
        answer = handle_signl4_request(notification(ticket), environ, outbox=[])
        assert answer.body["result"] == "written", answer.body

    relayed: list[float] = []
    straight: list[float] = []
    for _ in range(args.requests):
        relayed += timed(via_relay, 1)
        straight += timed(direct, 1)
    if refused(fake):
        return 1
    rows = seen_rows_part(environ, tickets, args.rows_samples)

    print(f"CPU per notification (parse + plan):   {stats(cpu)}")
    print(f"write-back via the relay (Halo {args.delay_ms:g} ms):  {stats(relayed)}")
    print(f"same POST /api/Actions straight:       {stats(straight)}")
    added = statistics.median(relayed) - statistics.median(straight)
    print(
        f"relay adds at p50: {added:.2f} ms (ratio {statistics.median(relayed) / statistics.median(straight):.3f})"
    )
    print(f"\none ticket's annotation, median of {args.rows_samples} (Halo answering at once):")
    for line in rows:
        print(line)
    return 0


def seen_rows_part(environ: dict[str, str], tickets: Any, samples: int) -> list[str]:
    """Part 3: the 1st and the 1,500th annotation of a ticket, point reads vs a partition
    read (the old path), each on a fresh in-memory ledger."""
    from shared.adapters.store import MemoryStore
    from shared.entry import storage
    from shared.entry.signl4_webhook import handle_signl4_request

    class PartitionReads(MemoryStore):
        """The read the notification path made before: the whole partition, then pick."""

        def read_rows(self, partition: str, rows: Any) -> dict[str, Any]:
            found = self.read(partition)
            return {k: v for k, v in found.items() if k in set(rows)}

    fake = make_fake(0.0)
    base = fake.base_url
    environ = {**environ, "HALO_BASE_URL": base, "HALO_AUTH_URL": f"{base}/auth"}
    lines = []
    for name, store_type in (
        ("point reads (now)", MemoryStore),
        ("partition read (before)", PartitionReads),
    ):
        for earlier in (0, 1499):
            storage._memory_store = store = store_type()
            ticket = next(tickets)
            raised(ticket)
            for n in range(earlier):  # earlier annotations: written through the relay
                handle_signl4_request(notification(ticket, annotation=f"{n}"), environ, outbox=[])
            before = (store.reads, store.scans)
            times = timed(
                lambda t=ticket: handle_signl4_request(
                    notification(t, annotation="timed"), environ, outbox=[]
                ),
                samples,
            )
            reads = (store.reads - before[0]) / samples
            scans = (store.scans - before[1]) / samples
            lines.append(
                f"  {name:24} annotation #{earlier + 1:<5} p50 {statistics.median(times):7.3f} ms"
                f"   store reads/notification {reads:.2f} (scans {scans:.2f})"
            )
    if refused(fake):
        raise SystemExit(1)
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
