"""Queue triggers and queue outputs for the local host, so `python -m devhost serve` loses nothing.

The Functions host delivers queue output bindings to Azure Storage and runs queue-triggered
functions, retrying a failed message after `visibilityTimeout` until `maxDequeueCount`, then
moving it to `<queue>-poison`. This module does the same for the local host:

- `StorageQueues`: the real queues of the `AzureWebJobsStorage` connection string (Azurite
  locally), messages base64-encoded like the host's, so `func start` on the same Azurite sees
  them too;
- `MemoryQueues`: the same semantics in-process, used when no storage is configured (or
  `AzureWebJobsStorage=memory`) or it cannot be reached; queued events then survive SIGNL4
  outages but not a restart of the process.

`QueueRunner` polls the queues that have a queue-triggered function and invokes it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import azure.functions as func
from azure.functions.decorators.core import Binding, BindingDirection
from azure.functions.decorators.function_app import Function

from devhost.functions import OutValue
from shared.entry.storage import MEMORY_STORAGE
from shared.redaction import log_safe

log = logging.getLogger(__name__)

POISON_SUFFIX = "-poison"
# How long `serve` waits for storage at start-up before it runs without it.
CHECK_TIMEOUT_SECONDS = 2
AZURITE_HINT = (
    "start Azurite (`npx azurite --inMemoryPersistence --silent` after `npm ci`) or blank "
    "AzureWebJobsStorage in local.settings.json"
)


@dataclass
class QueuedMessage:
    queue: str
    id: str
    text: str
    dequeue_count: int
    pop_receipt: str = ""
    native: Any = None


class Queues(Protocol):
    description: str

    def put(self, queue: str, text: str) -> None: ...
    def receive(
        self, queue: str, max_messages: int, visibility_timeout: float
    ) -> list[QueuedMessage]: ...
    def delete(self, message: QueuedMessage) -> None: ...


@dataclass
class _MemoryItem:
    id: str
    text: str
    visible_at: float = 0.0
    dequeue_count: int = 0


@dataclass
class MemoryQueues:
    """In-process queues with the storage semantics the runner relies on."""

    description: str = "in-process queues (kept in memory: lost if this process stops)"
    _items: dict[str, list[_MemoryItem]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, queue: str, text: str) -> None:
        with self._lock:
            self._items.setdefault(queue, []).append(_MemoryItem(uuid.uuid4().hex, text))

    def receive(
        self, queue: str, max_messages: int, visibility_timeout: float
    ) -> list[QueuedMessage]:
        now = time.monotonic()
        taken: list[QueuedMessage] = []
        with self._lock:
            for item in self._items.get(queue, []):
                if len(taken) >= max_messages:
                    break
                if item.visible_at <= now:
                    item.visible_at = now + visibility_timeout
                    item.dequeue_count += 1
                    taken.append(QueuedMessage(queue, item.id, item.text, item.dequeue_count))
        return taken

    def delete(self, message: QueuedMessage) -> None:
        with self._lock:
            items = self._items.get(message.queue, [])
            self._items[message.queue] = [item for item in items if item.id != message.id]


class StorageQueues:
    """Azure Storage queues (Azurite locally) through azure-storage-queue."""

    def __init__(self, connection_string: str) -> None:
        from azure.storage.queue import (
            QueueServiceClient,
            TextBase64DecodePolicy,
            TextBase64EncodePolicy,
        )

        from shared.adapters.table_sdk import quiet_azure_sdk

        quiet_azure_sdk()
        self._connection_string = connection_string
        self._service = QueueServiceClient.from_connection_string(
            connection_string, connection_timeout=2, read_timeout=5, retry_total=1
        )
        self._encode = TextBase64EncodePolicy
        self._decode = TextBase64DecodePolicy
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.endpoint = self._service.url.split("?")[0]
        self.description = f"storage queues at {self.endpoint}"

    def _client(self, queue: str) -> Any:
        with self._lock:
            if queue not in self._clients:
                from azure.core.exceptions import ResourceExistsError

                client = self._service.get_queue_client(
                    queue,
                    message_encode_policy=self._encode(),
                    message_decode_policy=self._decode(),
                )
                with contextlib.suppress(ResourceExistsError):
                    client.create_queue()
                self._clients[queue] = client
            return self._clients[queue]

    def check(self, queues: list[str]) -> None:
        """Fail now, not on the first outage, when storage cannot be reached: once, without
        the SDK's retry (its first backoff alone is 15 s), within CHECK_TIMEOUT_SECONDS."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.queue import QueueServiceClient

        probe = QueueServiceClient.from_connection_string(
            self._connection_string,
            connection_timeout=CHECK_TIMEOUT_SECONDS,
            read_timeout=CHECK_TIMEOUT_SECONDS,
            retry_total=0,
        )
        for queue in queues:
            with contextlib.suppress(ResourceExistsError):
                probe.get_queue_client(queue).create_queue()
        for queue in queues:
            self._client(queue)

    def put(self, queue: str, text: str) -> None:
        self._client(queue).send_message(text)

    def receive(
        self, queue: str, max_messages: int, visibility_timeout: float
    ) -> list[QueuedMessage]:
        client = self._client(queue)
        received = client.receive_messages(
            messages_per_page=max_messages,
            max_messages=max_messages,
            visibility_timeout=max(1, round(visibility_timeout)),
        )
        return [
            QueuedMessage(queue, m.id, m.content, m.dequeue_count or 1, m.pop_receipt, m)
            for m in received
        ]

    def delete(self, message: QueuedMessage) -> None:
        self._client(message.queue).delete_message(message.id, message.pop_receipt)


class QueueRunner:
    """Invokes the app's queue-triggered functions and delivers queue output bindings."""

    def __init__(
        self,
        functions: list[Function],
        queues: Queues,
        *,
        visibility_timeout: float = 30.0,
        max_dequeue_count: int = 5,
        poll_seconds: float = 1.0,
        batch_size: int = 16,
    ) -> None:
        self.queues = queues
        self.visibility_timeout = visibility_timeout
        self.max_dequeue_count = max_dequeue_count
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.triggers: dict[str, Function] = {}
        for function in functions:
            trigger = function.get_trigger()
            if trigger is not None and trigger.get_binding_name() == "queueTrigger":
                self.triggers[trigger.queue_name] = function
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- output bindings (also the LocalHost's output_sink) --

    def deliver_output(self, binding_type: str, binding: Binding, value: Any) -> None:
        if binding_type != "queue":
            log.warning("output binding %s %s has no local delivery", binding_type, binding.name)
            return
        for text in value if isinstance(value, list) else [value]:
            self.queues.put(binding.queue_name, text if isinstance(text, str) else json.dumps(text))

    # -- triggers --

    def run_once(self) -> int:
        """One poll of every triggered queue; returns how many messages were handled."""
        handled = 0
        for queue, function in self.triggers.items():
            for message in self.queues.receive(queue, self.batch_size, self.visibility_timeout):
                self._handle(function, message)
                handled += 1
        return handled

    def _handle(self, function: Function, message: QueuedMessage) -> None:
        trigger = function.get_trigger()
        kwargs: dict[str, Any] = {
            trigger.name: func.QueueMessage(
                id=message.id,
                body=message.text.encode("utf-8"),
                pop_receipt=message.pop_receipt,
            )
        }
        outs: dict[str, tuple[Binding, OutValue]] = {}
        for binding in function.get_bindings():
            if binding.direction == BindingDirection.OUT.value and binding.name != "$return":
                outs[binding.name] = (binding, OutValue())
                kwargs[binding.name] = outs[binding.name][1]
        try:
            function.get_user_function()(**kwargs)
        except Exception as error:
            if message.dequeue_count >= self.max_dequeue_count:
                self.queues.put(message.queue + POISON_SUFFIX, message.text)
                self.queues.delete(message)
                log.error(
                    "%s: message %s failed %d time(s) (%s); moved to %s",
                    function.get_function_name(),
                    message.id,
                    message.dequeue_count,
                    type(error).__name__,
                    message.queue + POISON_SUFFIX,
                )
            else:
                log.warning(
                    "%s: message %s failed (attempt %d of %d: %s); retry in %.0fs",
                    function.get_function_name(),
                    message.id,
                    message.dequeue_count,
                    self.max_dequeue_count,
                    log_safe(error),
                    self.visibility_timeout,
                )
            return
        for binding, out in outs.values():
            if out.is_set:
                self.deliver_output(binding.type, binding, out.get())
        self.queues.delete(message)

    # -- background polling for `serve` --

    def start(self) -> None:
        if not self.triggers or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="queue-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception as error:  # storage hiccup: keep polling, like the host
                log.warning("queue runner: poll failed: %s", type(error).__name__)
                busy = 0
            if not busy:
                self._stop.wait(self.poll_seconds)


def open_queues(
    connection_string: str | None,
    queue_names: list[str],
    announce: Callable[[str], None] | None = None,
) -> Queues:
    """Storage queues when a connection string works, else in-process ones (and say why).
    `memory` (the in-memory ledger's setting) is in-process queues, Azure is never tried.
    `announce` gets a line before the connection attempt and one when it fails."""
    if (connection_string or "").strip() == MEMORY_STORAGE:
        memory = MemoryQueues()
        memory.description += f"; AzureWebJobsStorage={MEMORY_STORAGE}"
        return memory
    if connection_string and connection_string.strip():
        say = announce or (lambda line: None)
        endpoint = "the storage in AzureWebJobsStorage"
        try:
            queues = StorageQueues(connection_string)
            endpoint = queues.endpoint
            say(f"connecting to storage at {endpoint} ...")
            queues.check(queue_names)
            return queues
        except Exception as error:
            say(
                f"storage at {endpoint} did not answer ({type(error).__name__}); running "
                f"without it: {AZURITE_HINT}"
            )
            memory = MemoryQueues()
            memory.description += f"; AzureWebJobsStorage unreachable ({type(error).__name__})"
            return memory
    memory = MemoryQueues()
    memory.description += "; AzureWebJobsStorage is not set"
    return memory
