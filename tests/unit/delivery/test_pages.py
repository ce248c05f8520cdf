"""The delivery suite (tests/suites/delivery.py) over the in-memory adapters: MemoryStore
(AzureWebJobsStorage=memory) and in-process queues; and a ledger that cannot be reached."""

from __future__ import annotations

import pytest

from tests.conftest import Harness, Signl4Fake, answer, call_halopsa, http_post, new_ticket_id
from tests.suites.delivery import *  # noqa: F403 (the suite's cases, collected here in memory)
from tests.suites.delivery import sent, webhook


@pytest.fixture
def harness(memory_harness: Harness) -> Harness:
    return memory_harness


def test_unreachable_ledger_still_delivers_and_warns(
    functions: dict,
    signl4: Signl4Fake,
    live_env: dict,
    monkeypatch: pytest.MonkeyPatch,
    unused_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(
        "AzureWebJobsStorage",
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        f"TableEndpoint=http://127.0.0.1:{unused_port}/devstoreaccount1;",
    )
    tid = new_ticket_id()
    for _ in range(2):
        response, _ = call_halopsa(functions, http_post(webhook(tid, "new ticket logged")))
        assert answer(response)[1]["result"] == "sent"
    assert sent(signl4, f"HaloPSA-{tid}") == ["new", "new"]  # a duplicate beats a lost page
    assert "ledger unreachable" in caplog.text and "Eby8" not in caplog.text
