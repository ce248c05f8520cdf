"""The full-ticket suite (tests/suites/full_ticket.py) over Azurite: the TableStore ledger and
storage queues, as in Azure."""

from __future__ import annotations

from tests.suites.full_ticket import *  # noqa: F403 (the suite's cases, collected here on Azurite)
