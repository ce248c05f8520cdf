"""The composition root: settings -> ledger -> the SIGNL4 and Halo clients -> a Delivery.

Only the entry layer wires the ledger to the adapters; the handlers ask here for what one
request or message delivers with. Also what the local host prints and scrubs at start-up
(`describe_mode`, `secret_values`). The Halo client loads on the first write-back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping
from datetime import datetime
from typing import Any

from shared.adapters.signl4 import send_event
from shared.adapters.ticket_source import TicketReader
from shared.delivery.ledger import Ledger
from shared.delivery.pages import Delivery, Sender
from shared.domain.alert import AlertStatus
from shared.domain.signl4_params import NO_PARAMS, SignalParams
from shared.entry.storage import MEMORY_STORAGE, describe_ledger, open_ledger
from shared.errors import ConfigurationError
from shared.settings import RelaySettings, SettingsError

logger = logging.getLogger("shared.relay")


def load_settings(environ: Mapping[str, str]) -> RelaySettings:
    """The settings, or ConfigurationError naming the bad one (answered, never a traceback)."""
    try:
        return RelaySettings.from_env(environ)
    except SettingsError as error:
        raise ConfigurationError(str(error)) from None


def open_ledger_or_none(
    settings: RelaySettings, *, status_type: Callable[[str], Hashable] = AlertStatus
) -> Ledger | None:
    """The ledger, or None: in a dry run, without storage, or when it cannot be opened (the
    relay then delivers without it: a duplicate beats a lost page)."""
    if settings.dry_run and status_type is AlertStatus:
        return None  # a dry run must not claim anything a live run would then call a duplicate
    try:
        return open_ledger(settings, status_type=status_type)
    except Exception as error:
        # The kind only: the SDK's text and traceback may hold parts of the connection string.
        logger.error(
            "relay: the ledger could not be opened (%s); delivering without it",
            type(error).__name__,
        )
        return None


def signl4_sender() -> Sender:
    """SIGNL4's client (its HTTP library loads on the first send)."""
    return send_event


def halo_sender() -> Sender:
    """The Halo write-back client, loaded on the first write-back (not at cold start)."""
    from shared.adapters.halo import write_back

    return write_back


def page_delivery(
    settings: RelaySettings,
    outbox: list[str] | None,
    *,
    params: SignalParams = NO_PARAMS,
    ledger: Ledger | None = None,
    sender: Sender | None = None,
    clock: Callable[[], datetime] | None = None,
    confirm_after_answer: bool = False,
) -> Delivery:
    """What Halo's events are paged with: the ledger (`ledger`, or opened here), SIGNL4's
    client (or the tests' `sender`) and this invocation's queue messages (`outbox`)."""
    return Delivery(
        settings,
        open_ledger_or_none(settings) if ledger is None else ledger,
        outbox,
        params=params,
        sender=sender or signl4_sender(),
        clock=clock,
        confirm_after_answer=confirm_after_answer,
        tickets=ticket_reader(settings),
    )


def ticket_reader(settings: RelaySettings) -> TicketReader | None:
    """Halo's ticket reader when the API credentials are set (its client loads on the first
    read, not at cold start); None without them."""
    if not settings.two_way:
        return None

    def read(ticket_id: int, with_settings: RelaySettings) -> dict[str, Any]:
        from shared.adapters.halo import read_ticket

        return read_ticket(ticket_id, with_settings)

    return read


def writeback_delivery(settings: RelaySettings, outbox: list[str] | None) -> Delivery:
    """What SIGNL4's notifications are written into Halo with: the write-backs' ledger (stored
    statuses read as text) and the Halo client."""
    ledger = open_ledger_or_none(settings, status_type=str)
    return Delivery(settings, ledger, outbox, sender=halo_sender())


def describe_mode(environ: Mapping[str, str]) -> str:
    """`python -m devhost serve`'s banner: will SIGNL4 really be paged, and where the ledger is."""
    try:
        settings = load_settings(environ)
    except ConfigurationError as error:
        return f"Relay is MISCONFIGURED: {error.message}"
    if settings.dry_run:
        why = "RELAY_DRY_RUN is set" if settings.relay_dry_run else "SIGNL4_TEAM_SECRET is not set"
        return (
            f"Relay is in DRY-RUN ({why}): events are answered with the payload, nothing is sent."
        )
    return f"Relay is LIVE: events are sent to SIGNL4.\n{describe_ledger(settings)}"


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The values of every secret setting that is set: `python -m devhost serve` scrubs them
    from its access log (a team secret pasted into a URL, say). `AzureWebJobsStorage=memory`
    names no account: scrubbing the word would only garble tracebacks."""
    from shared.settings import team_secret_items

    return (
        [
            environ[name].strip()
            for name in RelaySettings.secret_setting_names()
            if environ.get(name, "").strip() not in ("", MEMORY_STORAGE)
        ]
        + [value.strip() for _, value in team_secret_items(environ)]
        + _bundled_secrets(environ)
    )


def _bundled_secrets(environ: Mapping[str, str]) -> list[str]:
    """Each team secret inside SIGNL4_TEAM_SECRETS (scrubbed one by one, not only as a whole)."""
    try:
        settings = load_settings(environ)
    except ConfigurationError:
        return []
    return [secret.get_secret_value().strip() for secret in settings.signl4_team_secrets.values()]
