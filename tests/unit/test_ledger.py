"""The ledger over the in-memory adapter (the suite in tests/suites/ledger.py), and what needs no
table at all: no storage setting means no ledger, and an unreachable table says so fast."""

from __future__ import annotations

import re

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from shared.ledger import Ledger, LedgerUnavailable, describe_ledger, open_ledger
from shared.settings import RelaySettings
from shared.store import MemoryStore
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
    with pytest.raises(LedgerUnavailable) as raised:
        ledger.get("HaloPSA-1")
    assert "AccountKey" not in str(raised.value) and "Eby8" not in str(raised.value)
    # Fast, counted rather than timed: one try and one retry (the SDK's default is 1 + 10
    # retries with growing backoff, minutes in all).
    requests: list[str] = []

    def busy(request: Request) -> Response:
        requests.append(request.path)
        return Response("busy", status=503)

    httpserver.expect_request(re.compile(r"^/busytable/")).respond_with_handler(busy)
    with pytest.raises(LedgerUnavailable):
        _ledger_at(httpserver.url_for("/busytable")).get("HaloPSA-1")
    assert len(requests) == 2, requests
