"""The queue functions' bodies: signl4-outbox and halo-outbox (send what waits, oldest first) and
their poison queues (one alertable ERROR line per message given up on).

Raising hands a message back to the queue extension, which redelivers it later: that is how
SIGNL4 or Halo being unavailable, or settings that cannot be read, are retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from shared.delivery.mailbox import deliver_queued, give_up
from shared.delivery.outbox import describe_poison
from shared.domain.alert import AlertStatus
from shared.entry.bootstrap import halo_sender, load_settings, open_ledger_or_none, signl4_sender
from shared.errors import ConfigurationError
from shared.redaction import log_safe

logger = logging.getLogger("shared.relay")


def deliver_outbox_message(raw: str, environ: Mapping[str, str]) -> list[str] | None:
    """The queue function's body. Returns JSON for the poison queue when SIGNL4 refused for good;
    raises (SIGNL4 unavailable, bad settings) so the queue extension redelivers the message."""
    return _deliver_outbox(raw, environ, halo=False)


def deliver_halo_outbox_message(raw: str, environ: Mapping[str, str]) -> list[str] | None:
    """The halo-outbox function's body: the ticket's waiting write-backs, oldest first, with
    the same machinery as the SIGNL4 outbox. Raises (Halo unavailable) to be redelivered."""
    return _deliver_outbox(raw, environ, halo=True)


def _deliver_outbox(raw: str, environ: Mapping[str, str], *, halo: bool) -> list[str] | None:
    """Either outbox: the same machinery, with SIGNL4 or Halo as the sender; one log line."""
    started = time.perf_counter()
    settings = load_settings(environ)
    if halo:
        ledger = open_ledger_or_none(settings, status_type=str)
        outcome = deliver_queued(raw, settings, ledger, sender=halo_sender())
    else:
        ledger = open_ledger_or_none(settings)
        outcome = deliver_queued(raw, settings, ledger, sender=signl4_sender())
    logger.log(
        logging.ERROR if outcome.result == "poison" else logging.INFO,
        "outbox externalId=%s result=%s sent=%d %s=%s reason=%s elapsedMs=%.1f",
        log_safe(outcome.external_id or "-"),
        outcome.result,
        outcome.sent,
        "haloActionId" if halo else "eventId",
        log_safe(outcome.event_id or "-"),
        log_safe(outcome.reason or "-"),
        (time.perf_counter() - started) * 1000,
    )
    return outcome.poison or None


def report_poison(raw: str, environ: Mapping[str, str], *, halo: bool = False) -> None:
    """The alertable ERROR line for a message in the poison queue. A mailbox nudge that ran out
    of attempts gives up the ticket's waiting events, so a re-send from Halo pages once.
    `halo`: a write-back (halo-outbox-poison): the same line, saying it never reached Halo.
    The poison alert counts this invocation's request row (host.json never samples requests;
    the line is a trace, which it may): the line names the ticket when sampling keeps it."""
    external_id, reason, seq = describe_poison(raw)
    try:
        settings = load_settings(environ)
    except ConfigurationError as error:
        # The line the alert rule watches for goes out whatever the settings; the mailbox is
        # given up when the host retries the message with usable settings.
        logger.error(
            "poison externalId=%s reason=%s: never reached %s (mailbox kept: %s)",
            log_safe(external_id),
            log_safe(reason),
            "Halo" if halo else "SIGNL4",
            log_safe(error.message),
        )
        raise
    ledger = open_ledger_or_none(settings, status_type=str if halo else AlertStatus)
    given_up = give_up(external_id, reason, seq, ledger)
    logger.error(
        "poison externalId=%s reason=%s%s: never reached %s",
        log_safe(external_id),
        log_safe(reason),
        f" events={log_safe(given_up)}" if given_up else "",
        "Halo" if halo else "SIGNL4",
    )
