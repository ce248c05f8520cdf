"""The full-ticket suite (tests/suites/full_ticket.py) over the in-memory adapters (MemoryStore,
in-process queues)."""

from __future__ import annotations

import pytest

from tests.conftest import Harness
from tests.suites.full_ticket import *  # noqa: F403 (the suite's cases, collected here in memory)


@pytest.fixture
def harness(memory_harness: Harness) -> Harness:
    return memory_harness
