"""The routing suite (tests/suites/routing.py) over Azurite: the TableStore ledger (its
`alert` rows' Target, the `suppressed` partition) and storage queues, as in Azure."""

from __future__ import annotations

from tests.suites.routing import *  # noqa: F403 (the suite's cases, collected here on Azurite)
