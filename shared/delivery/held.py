"""Pages held back by a quiet-hours schedule or a maintenance window (service).

A rule with `page_after_window` keeps each ticket whose `new` it suppressed as a row of one
partition, `suppressed`, of the ledger's table: row key the external id, with the rule, the
window, the routing target and the exact payload. The timer (function_app.py `held_pages`)
reads that one partition, and pages each ticket whose window has ended and that is still open
(no acknowledge or resolve since). A row leaves when the ticket pages, or when it is resolved.
Best effort on writes: a store that is down loses the hold (logged), never the answer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from shared.adapters.store import Conflict, Op, Unavailable
from shared.delivery.ledger import Ledger
from shared.domain.alert import fit_payload
from shared.redaction import log_safe

PARTITION = "suppressed"

logger = logging.getLogger("shared.relay")


@dataclass(frozen=True)
class HeldPage:
    """One ticket whose page waits for its window to end."""

    external_id: str
    rule: str
    window: str
    target: str
    payload: dict[str, Any]
    etag: str | None = None


def hold(
    ledger: Ledger, external_id: str, rule: str, window: str, target: str, payload: dict[str, Any]
) -> None:
    """Remember the ticket's page until its window ends (a repeat keeps the first payload)."""
    entity = {
        "Rule": rule[:100],
        "Window": window[:100],
        "Target": target,
        "Payload": json.dumps(fit_payload(payload), ensure_ascii=False),
        "HeldUtc": ledger.clock(),
    }
    try:
        ledger.store.commit(PARTITION, [Op("create", external_id, entity)])
    except Conflict:
        return  # held already
    except Unavailable as error:
        logger.warning(
            "relay: could not hold %s for after window %s (%s): it will not page then",
            log_safe(external_id),
            log_safe(window, quoted=True),
            log_safe(error),
        )


def release(ledger: Ledger, external_id: str, etag: str | None = None) -> None:
    """The ticket paged or closed: nothing to page when its window ends."""
    try:
        ledger.store.commit(PARTITION, [Op("delete", external_id, etag=etag)])
    except Conflict:
        return  # not held (the usual case), or taken by another timer run
    except Unavailable as error:
        logger.warning(
            "relay: could not release the held page of %s (%s)",
            log_safe(external_id),
            log_safe(error),
        )


def held_pages(ledger: Ledger) -> list[HeldPage]:
    """Every held page: one read of one partition."""
    rows = ledger.store.read(PARTITION)
    return [
        HeldPage(
            external_id=key,
            rule=str(row.entity.get("Rule") or ""),
            window=str(row.entity.get("Window") or ""),
            target=str(row.entity.get("Target") or ""),
            payload=json.loads(row.entity.get("Payload") or "{}"),
            etag=row.etag,
        )
        for key, row in sorted(rows.items())
    ]
