"""The two-way suite (tests/suites/two_way.py) over the in-memory adapters: MemoryStore
(AzureWebJobsStorage=memory) and in-process queues; and what the in-memory store can count."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.adapters.store import Op
from shared.delivery.writebacks import PRUNE_EVERY, SEEN_KEEP
from shared.entry import storage as storage_module
from testkit.halo_fake import HaloFake
from tests.conftest import Harness
from tests.suites.two_way import *  # noqa: F403 (the suite's cases, collected here in memory)
from tests.suites.two_way import ack, annotate, post_signl4, raise_alert


@pytest.fixture
def harness(memory_harness: Harness) -> Harness:
    return memory_harness


# --- bounded rows and reads on the notification path (issue 18 item 5): the in-memory store
# counts its calls (reads, whole-partition scans, commits) ---


def _store_calls(harness: Harness, body: dict) -> tuple[int, int, int]:
    """(reads, scans, commits) the store saw while the notification was written."""
    store = storage_module._memory_store
    before = (store.reads, store.scans, store.commits)
    assert post_signl4(harness, body)[1]["result"] == "written"
    return (store.reads - before[0], store.scans - before[1], store.commits - before[2])


def _seen_rows(key: str, count: int, seen: datetime, prefix: str) -> None:
    for start in range(0, count, 3):
        ops = [
            Op("create", f"seen-{prefix}-{n}", {"Notification": f"{prefix}-{n}", "SeenUtc": seen})
            for n in range(start, min(start + 3, count))
        ]
        storage_module._memory_store.commit(key, ops)


def test_the_1500th_annotation_costs_the_store_calls_the_first_did(
    harness: Harness, two_way: dict, halo: HaloFake
) -> None:
    tid = raise_alert(harness)
    first = _store_calls(harness, annotate(tid, "first"))
    _seen_rows(f"halo:HaloPSA-{tid}", 1500, datetime.now(timezone.utc), "earlier")
    later = _store_calls(harness, annotate(tid, "after 1,500 others"))
    assert later == first
    assert later[1] == 0  # point reads only: no partition scan
    assert len(halo.notes(tid)) == 2


def test_seen_rows_older_than_the_keep_window_are_pruned_and_fresh_ones_kept(
    harness: Harness, two_way: dict, halo: HaloFake
) -> None:
    tid = raise_alert(harness)
    key = f"halo:HaloPSA-{tid}"
    now = datetime.now(timezone.utc)
    _seen_rows(key, 7, now - SEEN_KEEP - timedelta(hours=1), "old")
    _seen_rows(key, 5, now - SEEN_KEEP + timedelta(hours=1), "fresh")
    scans = []
    for n in range(1, PRUNE_EVERY + 1):
        scans.append(_store_calls(harness, annotate(tid, f"note {n}"))[1])
        if n == PRUNE_EVERY - 1:  # not yet: old rows go with the 100th write-back only
            assert storage_module._memory_store.read_rows(key, ["seen-old-0"])
    assert scans == [0] * (PRUNE_EVERY - 1) + [1]  # one partition read per 100 write-backs
    rows = storage_module._memory_store.read(key)
    assert not [k for k in rows if k.startswith("seen-old-")]
    assert len([k for k in rows if k.startswith("seen-fresh-")]) == 5
    assert len([k for k in rows if k.startswith("seen-n-")]) == PRUNE_EVERY  # today's, kept


def test_the_ledger_unreadable_answers_503_and_writes_nothing_unverified(
    harness: Harness, two_way: dict, halo: HaloFake
) -> None:
    tid = raise_alert(harness)
    storage_module._memory_store.fail = True
    try:
        code, body = post_signl4(harness, ack(tid))
    finally:
        storage_module._memory_store.fail = False
    assert (code, body["error"]) == (503, "storage_unavailable")
    assert not halo.requests


def test_without_storage_no_notification_can_be_verified_so_none_acts(
    harness: Harness, two_way: dict, halo: HaloFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    tid = raise_alert(harness)
    monkeypatch.delenv("AzureWebJobsStorage")
    code, body = post_signl4(harness, ack(tid))
    assert (code, body["result"]) == (200, "ignored")
    assert (
        body["reason"]
        == "no alert raised by this relay (no storage: the relay keeps no record of its alerts)"
    )
    assert not halo.requests
