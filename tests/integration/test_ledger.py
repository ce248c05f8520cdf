"""The ledger suite (tests/suites/ledger.py) over Azure Table storage on Azurite, through the
table adapter open_ledger picks (azure-data-tables)."""

from __future__ import annotations

import pytest

from shared.adapters.table_sdk import TableStore
from shared.delivery.ledger import Ledger
from shared.entry.storage import open_ledger
from shared.settings import RelaySettings
from tests.suites.ledger import *  # noqa: F403 (the suite's cases, collected here over Azure Table)


@pytest.fixture
def ledger(azurite: str) -> Ledger:
    opened = open_ledger(RelaySettings.from_env({"AzureWebJobsStorage": azurite}))
    assert opened is not None
    assert isinstance(opened.store, TableStore)  # what the relay uses
    return opened
