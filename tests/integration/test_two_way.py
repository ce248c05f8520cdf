"""The two-way suite (tests/suites/two_way.py) over Azurite: the TableStore ledger and storage
queues, the halo-outbox queues emptied before each case."""

from __future__ import annotations

import contextlib

import pytest

from tests.conftest import Harness
from tests.suites.two_way import *  # noqa: F403 (the suite's cases, collected here on Azurite)
from tests.suites.two_way import HALO_OUTBOX, HALO_POISON


@pytest.fixture
def harness(functions: dict, indexed_functions: list, storage_env: str, live_env: dict) -> Harness:
    from azure.storage.queue import QueueServiceClient

    service = QueueServiceClient.from_connection_string(storage_env)
    for name in (HALO_OUTBOX, HALO_POISON):
        queue = service.get_queue_client(name)
        with contextlib.suppress(Exception):
            queue.create_queue()
        queue.clear_messages()
    return Harness(functions, indexed_functions, storage_env)
