"""The ledger over the in-memory adapter (the suite in tests/suites/ledger.py), and what needs no
table at all: no storage setting means no ledger, and an unreachable table says so fast."""

from __future__ import annotations

import re
import threading
from dataclasses import replace

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from shared.adapters.store import Conflict, MemoryStore, Unavailable
from shared.delivery.conversation import Conversation, Pending, Step, absent
from shared.delivery.ledger import KnownStates, Ledger
from shared.domain.alert import AlertStatus
from shared.entry.storage import describe_ledger, open_ledger
from shared.settings import RelaySettings
from tests.suites.ledger import *  # noqa: F403 (the suite's cases, collected here over MemoryStore)


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(MemoryStore())


def test_no_storage_setting_means_no_ledger() -> None:
    assert open_ledger(RelaySettings.from_env({})) is None


def _ledger_at(table_endpoint: str) -> Ledger:
    connection = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        f"TableEndpoint={table_endpoint};"
    )
    ledger = open_ledger(RelaySettings.from_env({"AzureWebJobsStorage": connection}))
    assert ledger is not None
    return ledger


def test_describe_ledger_names_the_store_never_the_connection_string() -> None:
    key = "c2VjcmV0LWFjY291bnQta2V5"
    connection = f"DefaultEndpointsProtocol=http;AccountName=dev;AccountKey={key};"
    described = {
        storage: describe_ledger(RelaySettings.from_env({"AzureWebJobsStorage": storage}))
        for storage in ("memory", connection, "")
    }
    assert described["memory"] == "ledger: in memory; lost when serve stops"
    assert described[connection].startswith("ledger: Azure Table relayledger")
    assert key not in described[connection]
    assert described[""].startswith("ledger: none")


def test_unreachable_table_fails_fast(unused_port: int, httpserver: HTTPServer) -> None:
    ledger = _ledger_at(f"http://127.0.0.1:{unused_port}/devstoreaccount1")
    with pytest.raises(Unavailable) as raised:
        ledger.read("HaloPSA-1")
    assert "AccountKey" not in str(raised.value) and "Eby8" not in str(raised.value)
    # Fast, counted rather than timed: one try and one retry (the SDK's default is 1 + 10
    # retries with growing backoff, minutes in all).
    requests: list[str] = []

    def busy(request: Request) -> Response:
        requests.append(request.path)
        return Response("busy", status=503)

    httpserver.expect_request(re.compile(r"^/busytable/")).respond_with_handler(busy)
    with pytest.raises(Unavailable):
        _ledger_at(httpserver.url_for("/busytable")).read("HaloPSA-1")
    assert len(requests) == 2, requests


# --- KnownStates: what this process remembers, and its writes after the answer ---


def _state(key: str, version: str | None = 'W/"1"', **changes: object) -> Conversation:
    return replace(
        absent(key), exists=True, status=AlertStatus.NEW, seq=1, version=version, **changes
    )


def test_known_states_keep_the_latest_and_drop_the_least_recently_used() -> None:
    known = KnownStates(size=2)
    known.remember(_state("a"))
    known.remember(_state("b"))
    assert known.get("a") is not None  # a is now the most recently used
    known.remember(_state("c"))
    assert (known.get("a") is not None, known.get("b"), known.get("c") is not None) == (
        True,
        None,
        True,
    )
    assert len(known) == 2


def test_known_states_keep_no_mailbox_and_forget_what_is_not_a_guess() -> None:
    known = KnownStates()
    pending = Pending(2, AlertStatus.RESOLVED, {"X-S4-Status": "resolved"})
    known.remember(_state("a", pending_count=1, mailbox=(pending,)))
    kept = known.get("a")
    assert kept is not None and kept.pending_count == 1 and kept.mailbox == ()
    known.remember(absent("a"))  # deleted: nothing to claim against
    assert known.get("a") is None
    known.remember(_state("b", version=None))  # no ETag: a claim could not be conditional
    assert known.get("b") is None
    known.remember(_state("c"))
    known.clear()
    assert len(known) == 0


def test_a_conflict_or_an_outage_forgets_the_guess() -> None:
    store = MemoryStore()
    ledger = Ledger(store)
    first = ledger.apply(absent("k"), Step(_state("k", version=None)))
    assert ledger.known.get("k") == first
    with pytest.raises(Conflict):
        ledger.apply(absent("k"), Step(_state("k", version=None)))  # create: exists already
    assert ledger.known.get("k") is None
    assert ledger.guess("k") == absent("k")
    assert ledger.read("k") == first and ledger.known.get("k") == first


def test_settle_waits_for_the_keys_write_after_the_answer() -> None:
    known = KnownStates()
    go, done = threading.Event(), []
    known.later("k", lambda: (go.wait(20), done.append("k")))
    threading.Thread(target=go.set).start()
    known.settle("k")
    assert done == ["k"]
    known.settle("other")  # nothing pending: returns at once


def test_writes_after_the_answer_keep_their_order_per_key() -> None:
    known = KnownStates()
    go, done = threading.Event(), []
    known.later("k", lambda: (go.wait(20), done.append(1)))
    known.later("k", lambda: done.append(2))  # waits for the first, though a thread is free
    go.set()
    known.settle("k")
    assert done == [1, 2]
    assert known.pending() == []


def test_a_failing_write_after_the_answer_is_logged_not_lost_silently(
    caplog: pytest.LogCaptureFixture,
) -> None:
    known = KnownStates()

    def fails() -> None:
        raise RuntimeError("table said no")

    known.later("k", fails)
    known.settle("k")
    # Logged by kind: an unexpected error's text could hold a storage URL with its SAS token.
    assert "ledger: a write after the answer failed: RuntimeError" in caplog.text
    assert "table said no" not in caplog.text


def test_in_memory_the_confirm_is_written_at_once() -> None:
    ledger = Ledger(MemoryStore())
    claimed = ledger.apply(absent("k"), Step(_state("k", version=None, inflight_seq=1)))
    ledger.confirm_later(claimed, "evt-1")
    assert ledger.known.pending() == []  # no thread: the write is done already
    stored = ledger.store.read("k", "alert")["alert"].entity
    assert (stored["InflightSeq"], stored["DeliveredSeq"], stored["EventId"]) == (0, 1, "evt-1")
