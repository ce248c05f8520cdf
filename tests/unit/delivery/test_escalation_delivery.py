"""The escalation suite (tests/suites/escalation.py) over the in-memory adapters (MemoryStore,
in-process queues)."""

from __future__ import annotations

import pytest

from tests.conftest import Harness
from tests.suites.escalation import *  # noqa: F403 (the suite's cases, collected here in memory)
from tests.suites.routing import network_team  # noqa: F401 (a fixture of the suite's cases)


@pytest.fixture
def harness(memory_harness: Harness) -> Harness:
    return memory_harness
