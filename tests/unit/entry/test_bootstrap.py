"""The composition root (shared/entry/bootstrap.py): what it logs when the ledger cannot be
opened. A connection string the SDK cannot read is a real input here, not a mock."""

from __future__ import annotations

import logging

import pytest

from shared.entry.bootstrap import open_ledger_or_none
from shared.settings import RelaySettings

KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0"
MALFORMED = f"AccountKey={KEY};garbage"  # the SDK raises ValueError parsing it


def test_a_ledger_that_cannot_be_opened_is_logged_by_kind_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = RelaySettings.from_env(
        {"AzureWebJobsStorage": MALFORMED, "SIGNL4_TEAM_SECRET": "team-secret-123456"}
    )
    with caplog.at_level(logging.DEBUG):
        assert open_ledger_or_none(settings) is None
    (record,) = [r for r in caplog.records if "ledger could not be opened" in r.getMessage()]
    assert record.getMessage() == (
        "relay: the ledger could not be opened (ValueError); delivering without it"
    )
    assert record.exc_info is None  # no traceback: its frames may hold the connection string
    assert not any(KEY[:6] in r.getMessage() for r in caplog.records)
