"""Pages held back by a quiet-hours schedule or a maintenance window (service).

A rule with `page_after_window` keeps each ticket whose `new` it suppressed in the ledger
(schema.HELD_PARTITION, with the rule, the window, the routing target and the exact payload).
The timer (function_app.py `held_pages`) reads them, and pages each ticket whose window has
ended and that is still open (no acknowledge or resolve since). A held page goes when the ticket
pages, or when it is resolved. Best effort on writes: a store that is down loses the hold
(logged), never the answer.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.delivery.ledger import HeldPage, Ledger
from shared.errors import Conflict, Unavailable
from shared.redaction import log_safe

logger = logging.getLogger("shared.relay")

__all__ = ["HeldPage", "held_pages", "hold", "release"]


def hold(
    ledger: Ledger,
    external_id: str,
    *,
    rule: str,
    window: str,
    target: str,
    payload: dict[str, Any],
    basis: str = "",
) -> None:
    """Remember the ticket's page until its window ends (a repeat keeps the first payload).
    `basis`: what the page rests on, recorded with the alert when it opens."""
    try:
        ledger.hold(
            external_id, rule=rule, window=window, target=target, payload=payload, basis=basis
        )
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
        ledger.release_held(external_id, etag)
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
    return ledger.held_pages()
