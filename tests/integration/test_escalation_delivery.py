"""The escalation suite (tests/suites/escalation.py) over Azurite: the TableStore ledger (the
`triage` row beside the `alert` row) and storage queues, as in Azure."""

from __future__ import annotations

from tests.suites.escalation import *  # noqa: F403 (the suite's cases, collected here on Azurite)
from tests.suites.routing import network_team  # noqa: F401 (a fixture of the suite's cases)
