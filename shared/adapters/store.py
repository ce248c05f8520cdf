"""The storage port: partitions of rows, read whole (or named rows), written by conditional batches.

`PartitionStore` is all the delivery service needs from storage: read a partition's rows with
their ETags (whole, or named rows: point reads, whose cost does not grow with the partition), and
commit a batch within one partition atomically, each operation conditional (create-if-absent,
replace-if-ETag, delete-if-ETag). A failed condition raises `Conflict`, a transport failure
`Unavailable`. Adapters: `MemoryStore` below, and azure-data-tables (shared/adapters/table_sdk.py).
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from shared.errors import Conflict, Unavailable

__all__ = ["Conflict", "MemoryStore", "Op", "PartitionStore", "Row", "Unavailable"]


@dataclass(frozen=True)
class Row:
    """A stored row: its properties and the ETag it has now."""

    key: str
    entity: dict[str, Any]
    etag: str


@dataclass(frozen=True)
class Op:
    """One conditional write. create: only if absent; replace/delete: only if the row still has
    `etag` (delete with etag None: only if it exists)."""

    kind: Literal["create", "replace", "delete"]
    key: str
    entity: dict[str, Any] | None = None
    etag: str | None = None


class PartitionStore(Protocol):
    def read(self, partition: str, row: str | None = None) -> dict[str, Row]:
        """The partition's rows by key (only `row` when given; {} when absent)."""
        ...

    def read_rows(self, partition: str, rows: Sequence[str]) -> dict[str, Row]:
        """Only the named rows that exist, by key (point reads: never a partition scan)."""
        ...

    def commit(self, partition: str, ops: Sequence[Op]) -> dict[str, str]:
        """Apply all of `ops` or none; returns the new ETag of each created/replaced row."""
        ...


class MemoryStore:
    """A dict with the same conditional semantics; every write gives the row a new ETag.
    Thread-safe. `fail` lets a test make it unreachable."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Row]] = {}
        self._lock = threading.Lock()
        self._etags = itertools.count(1)
        self.fail = False
        self.reads = 0
        self.scans = 0  # reads of a whole partition (the rest are point reads)
        self.commits = 0

    def read(self, partition: str, row: str | None = None) -> dict[str, Row]:
        with self._lock:
            if self.fail:
                raise Unavailable("memory store switched off")
            self.reads += 1
            self.scans += row is None
            rows = self._rows.get(partition, {})
            picked = rows if row is None else {k: v for k, v in rows.items() if k == row}
            return {k: Row(k, copy.deepcopy(v.entity), v.etag) for k, v in sorted(picked.items())}

    def read_rows(self, partition: str, rows: Sequence[str]) -> dict[str, Row]:
        with self._lock:
            if self.fail:
                raise Unavailable("memory store switched off")
            self.reads += 1
            stored = self._rows.get(partition, {})
            return {
                k: Row(k, copy.deepcopy(stored[k].entity), stored[k].etag)
                for k in sorted(set(rows))
                if k in stored
            }

    def commit(self, partition: str, ops: Sequence[Op]) -> dict[str, str]:
        with self._lock:
            if self.fail:
                raise Unavailable("memory store switched off")
            self.commits += 1
            rows = dict(self._rows.get(partition, {}))
            etags: dict[str, str] = {}
            for op in ops:
                current = rows.get(op.key)
                if op.kind == "create":
                    if current is not None:
                        raise Conflict(f"{partition}/{op.key} exists")
                elif current is None or (op.etag is not None and current.etag != op.etag):
                    raise Conflict(f"{partition}/{op.key} changed")
                if op.kind == "delete":
                    del rows[op.key]
                    continue
                assert op.entity is not None
                etag = f'W/"{next(self._etags)}"'
                rows[op.key] = Row(op.key, copy.deepcopy(op.entity), etag)
                etags[op.key] = etag
            self._rows[partition] = rows
            return etags
