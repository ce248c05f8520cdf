"""The ledger on Azurite: claims are conditional, and an unreachable table says so fast."""

from __future__ import annotations

import time

import pytest

from shared.halo import AlertStatus
from shared.ledger import Ledger, LedgerConflict, LedgerUnavailable, open_ledger
from shared.settings import RelaySettings
from tests.conftest import new_ticket_id


@pytest.fixture
def ledger(azurite: str) -> Ledger:
    opened = open_ledger(RelaySettings.from_env({"AzureWebJobsStorage": azurite}))
    assert opened is not None
    return opened


def test_no_storage_setting_means_no_ledger() -> None:
    assert open_ledger(RelaySettings.from_env({})) is None


def test_claim_confirm_and_read_back(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    assert ledger.get(external_id) is None
    claimed = ledger.claim(external_id, AlertStatus.NEW, None)
    assert (claimed.seq, claimed.status, claimed.delivered_seq) == (1, AlertStatus.NEW, 0)
    ledger.confirm(external_id, claimed.seq, "evt-9")
    entry = ledger.get(external_id)
    assert entry is not None
    assert (entry.seq, entry.delivered_seq, entry.event_id) == (1, 1, "evt-9")
    assert entry.already_has(AlertStatus.NEW) and not entry.already_has(AlertStatus.RESOLVED)
    resolved = ledger.claim(external_id, AlertStatus.RESOLVED, entry)
    assert resolved.seq == 2 and resolved.event_id == "evt-9"


def test_two_claims_from_the_same_read_cannot_both_win(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    with pytest.raises(LedgerConflict):
        ledger.claim(external_id, AlertStatus.NEW, None)
        ledger.claim(external_id, AlertStatus.NEW, None)
    first = ledger.get(external_id)
    assert first is not None
    ledger.claim(external_id, AlertStatus.RESOLVED, first)
    with pytest.raises(LedgerConflict):
        ledger.claim(external_id, AlertStatus.ACKNOWLEDGED, first)  # stale ETag


def test_release_undoes_a_refused_claim(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    first = ledger.claim(external_id, AlertStatus.NEW, None)
    ledger.release(first, None)
    assert ledger.get(external_id) is None
    first = ledger.claim(external_id, AlertStatus.NEW, None)
    ledger.confirm(external_id, first.seq, "evt-1")
    previous = ledger.get(external_id)
    assert previous is not None
    second = ledger.claim(external_id, AlertStatus.RESOLVED, previous)
    ledger.release(second, previous)
    restored = ledger.get(external_id)
    assert restored is not None
    assert restored.status is AlertStatus.NEW and restored.seq == 2  # the sequence never goes back


def test_a_failed_event_is_not_a_duplicate(ledger: Ledger) -> None:
    external_id = f"HaloPSA-{new_ticket_id()}"
    ledger.claim(external_id, AlertStatus.NEW, None)
    ledger.mark_failed(external_id, "SIGNL4 rejected the event with HTTP 400")
    entry = ledger.get(external_id)
    assert entry is not None and entry.failed_reason
    assert not entry.already_has(AlertStatus.NEW)


def test_unreachable_table_fails_fast(unused_port: int) -> None:
    connection = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        f"TableEndpoint=http://127.0.0.1:{unused_port}/devstoreaccount1;"
    )
    ledger = open_ledger(RelaySettings.from_env({"AzureWebJobsStorage": connection}))
    assert ledger is not None
    started = time.monotonic()
    with pytest.raises(LedgerUnavailable) as raised:
        ledger.get("HaloPSA-1")
    assert time.monotonic() - started < 10
    assert "AccountKey" not in str(raised.value) and "Eby8" not in str(raised.value)
