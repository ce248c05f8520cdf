"""The ledger suite (tests/suites/ledger.py) over Azure Table storage on Azurite."""

from __future__ import annotations

import pytest

from shared.ledger import Ledger, open_ledger
from shared.settings import RelaySettings
from tests.suites.ledger import *  # noqa: F403 (the suite's cases, collected here over TableStore)


@pytest.fixture
def ledger(azurite: str) -> Ledger:
    opened = open_ledger(RelaySettings.from_env({"AzureWebJobsStorage": azurite}))
    assert opened is not None
    return opened
