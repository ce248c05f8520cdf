"""`python -m shared send-test`: one clearly labelled test alert, resolved after a while.

The payload (pure) says "test" in its title, with the relay's version and the time; its
external id `relay-test-<UTC time>` can never match a Halo ticket (those are `HaloPSA-<id>`),
so the test neither opens nor closes a real ticket's alert. Sent with the relay's own client
(retries, secret scrubbing) straight to SIGNL4; the ledger is not involved.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from shared import __version__
from shared.adapters.sender import SendResult
from shared.adapters.signl4 import send_event
from shared.domain.alert import SOURCE_SYSTEM, AlertStatus
from shared.settings import RelaySettings

TEST_ID_PREFIX = "relay-test-"

Sender = Callable[[dict[str, Any], RelaySettings], SendResult]


def alert_id(now: datetime) -> str:
    return TEST_ID_PREFIX + now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def alert_payload(status: AlertStatus, now: datetime, external_id: str) -> dict[str, Any]:
    """The test alert's SIGNL4 payload (pure)."""
    stamp = now.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return {
        "Title": f"HaloPSA relay test alert (relay {__version__}, {stamp})",
        "Message": (
            "This is a test from `python -m shared send-test`: the HaloPSA -> SIGNL4 relay can "
            "page this team. No ticket is involved; the alert is resolved automatically unless "
            "--keep was given."
        ),
        "X-S4-ExternalID": external_id,
        "X-S4-Status": status.value,
        "X-S4-SourceSystem": SOURCE_SYSTEM,
        "RelayVersion": __version__,
        "SentUtc": now.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
    }


@dataclass(frozen=True)
class SendTestResult:
    external_id: str
    raised: SendResult
    resolved: SendResult | None  # None: kept open (--keep)


def send_test(
    settings: RelaySettings,
    *,
    keep: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    sleep: Callable[[float], None] = time.sleep,
    sender: Sender = send_event,
    progress: Callable[[str], None] = lambda line: None,
) -> SendTestResult:
    """Raise the test alert, wait RELAY_TEST_RESOLVE_SECONDS, resolve it. Raises the client's
    errors (Signl4Rejected, Signl4Unavailable) and ValueError in dry-run."""
    if settings.dry_run:
        why = "RELAY_DRY_RUN is true" if settings.relay_dry_run else "SIGNL4_TEAM_SECRET is not set"
        raise ValueError(f"nothing can be sent: {why}")
    started = now()
    external_id = alert_id(started)
    raised = sender(alert_payload(AlertStatus.NEW, started, external_id), settings)
    progress(f"raised test alert {external_id} (SIGNL4 event {raised.event_id or '-'})")
    if keep:
        return SendTestResult(external_id, raised, None)
    wait = settings.relay_test_resolve_seconds
    if wait:
        progress(f"resolving it in {wait:g} s (RELAY_TEST_RESOLVE_SECONDS; Ctrl+C keeps it open)")
        sleep(wait)
    resolved = sender(alert_payload(AlertStatus.RESOLVED, now(), external_id), settings)
    progress(f"resolved test alert {external_id}")
    return SendTestResult(external_id, raised, resolved)
