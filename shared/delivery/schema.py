"""The ledger's table schema: the one place that names the table, its partitions, rows and limits.

Table `relayledger`, partition = a conversation key (`HaloPSA-<id>`; write-backs to Halo:
`halo:HaloPSA-<id>`) or a fixed partition: `suppressed` (held pages, row = external id) and
`relay-health-probe` (read, never written). Rows: `alert` (the state), `pending-<seq:010d>`
(the mailbox), `seen-<notification id>` (a write-back taken), `signl4-alert` (SIGNL4's alert
id of the verified alert) and `triage` (a ticket not paged: escalation). Only shared/delivery/ledger.py reads or writes them; the row
properties are listed where the ledger builds them.
"""

from __future__ import annotations

import hashlib
import re

TABLE_NAME = "relayledger"

# -- partitions --
WRITEBACK_PREFIX = "halo:"  # + the SIGNL4 external id: the write-back direction's partition
HELD_PARTITION = "suppressed"  # pages held back by quiet hours or a maintenance window
PROBE_PARTITION = "relay-health-probe"  # health's read (absent: no ticket key looks like it)

# -- rows of a conversation's partition --
STATE_ROW = "alert"
PENDING_PREFIX = "pending-"
SEEN_PREFIX = "seen-"
ALERT_ROW = "signl4-alert"
TRIAGE_ROW = "triage"  # the fields a decision not to page rested on (apart from `alert`)

# -- limits --
# Azure Table (Table service data model): a string property holds at most 64 KiB of UTF-16,
# i.e. 32,768 code units; an entity at most 1 MiB; an entity-group transaction at most 100
# entities and 4 MiB.
TABLE_STRING_MAX_UTF16_UNITS = 32 * 1024
TABLE_ENTITY_MAX_BYTES = 1024 * 1024
TABLE_TRANSACTION_MAX_ENTITIES = 100
TABLE_TRANSACTION_MAX_BYTES = 4 * 1024 * 1024
# What the relay ever writes in one transaction: the state row, one mailbox row and (write-backs
# to Halo) the notification's small `seen-<id>` row.
TRANSACTION_MAX_ROWS = 3
REASON_MAX_CHARS = 500  # a reason kept in a row or a queue message
NOTIFICATION_MAX_CHARS = 200  # the notification id kept in its `seen-` row
HELD_LABEL_MAX_CHARS = 100  # a held page's rule and window names

_SAFE_ROW_KEY = re.compile(r"[A-Za-z0-9._-]{1,200}")


def pending_key(seq: int) -> str:
    """A mailbox row: zero-padded, so row keys sort in sequence order."""
    return f"{PENDING_PREFIX}{seq:010d}"


def seen_key(notification_id: str) -> str:
    """The row that says a notification was taken (Azure Table keys refuse / \\ # ? and
    control characters: an id that holds any is hashed)."""
    if _SAFE_ROW_KEY.fullmatch(notification_id):
        return SEEN_PREFIX + notification_id
    return SEEN_PREFIX + "sha256-" + hashlib.sha256(notification_id.encode("utf-8")).hexdigest()


def writeback_partition(external_id: str) -> str:
    """The write-back direction's partition of a ticket (its SIGNL4 external id prefixed)."""
    return WRITEBACK_PREFIX + external_id


def short_reason(text: str) -> str:
    """A reason as the ledger and queue messages keep it: at most REASON_MAX_CHARS, as said
    (log lines escape it), but never a lone surrogate, which cannot be encoded at all."""
    return text[:REASON_MAX_CHARS].encode("utf-8", "replace").decode("utf-8")


def utf16_units(text: str) -> int:
    """The length Azure Table measures a string property in."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2
