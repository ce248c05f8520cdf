"""The ledger suite (tests/suites/ledger.py) over Azure Table storage on Azurite, through both
table adapters: the REST one open_ledger picks, and the SDK one it falls back to."""

from __future__ import annotations

import pytest

from shared.adapters.table_rest import RestTableStore
from shared.adapters.table_sdk import TableStore, open_table_store
from shared.delivery.ledger import Ledger
from shared.delivery.schema import TABLE_NAME
from shared.entry.storage import open_ledger
from shared.settings import RelaySettings
from tests.suites.ledger import *  # noqa: F403 (the suite's cases, collected here over Azure Table)


@pytest.fixture(params=["rest", "sdk"])
def ledger(azurite: str, request: pytest.FixtureRequest) -> Ledger:
    settings = RelaySettings.from_env({"AzureWebJobsStorage": azurite})
    opened = open_ledger(settings)
    assert opened is not None
    assert isinstance(opened.store, RestTableStore)  # what the relay uses
    if request.param == "rest":
        return opened
    sdk = open_table_store(settings, TABLE_NAME)
    assert isinstance(sdk, TableStore)
    return Ledger(sdk)
