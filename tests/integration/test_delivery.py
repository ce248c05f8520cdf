"""The delivery suite (tests/suites/delivery.py) over Azurite: the TableStore ledger and storage
queues, as in Azure (the `harness` fixture of tests/integration/conftest.py)."""

from __future__ import annotations

from tests.suites.delivery import *  # noqa: F403 (the suite's cases, collected here on Azurite)
