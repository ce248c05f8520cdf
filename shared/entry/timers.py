"""The timer functions' bodies: the heartbeat to SIGNL4's heartbeat monitoring, and the held pages.

`beat` POSTs to SIGNL4_HEARTBEAT_URL (Integrations > Gallery > Heartbeat; SIGNL4 pages when no
call arrives in its interval) only when settings are valid, storage answers and Halo's webhook to
the relay is not confirmed off, so a broken or cut-off pipe falls silent. The URL is never logged.
`release_held_pages` pages the tickets a quiet-hours window held back, once the window ends.
Loaded on the first tick, not at cold start; requests loads on the first beat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared import __version__
from shared.adapters.store import Conflict, Unavailable
from shared.delivery import held
from shared.delivery.pages import Delivery, EventTrace, deliver_held
from shared.entry.bootstrap import load_settings, open_ledger_or_none, page_delivery
from shared.entry.health import storage_state
from shared.errors import RelayError
from shared.redaction import log_safe
from shared.settings import RelaySettings, SettingsError

TIMEOUT_SECONDS = 10.0

logger = logging.getLogger("shared.heartbeat")
relay_logger = logging.getLogger("shared.relay")

Poster = Callable[[str, dict[str, str]], int]


@dataclass(frozen=True)
class Beat:
    sent: bool
    reason: str
    status_code: int | None = None
    alert: bool = False  # logged at ERROR: a person must act (Halo's webhook is off)


def beat(environ: Mapping[str, str], post: Poster | None = None) -> Beat:
    """One heartbeat if the relay is healthy; logs one line either way. Never raises.

    The timer function (function_app.py, schedule RELAY_HEARTBEAT_SCHEDULE) calls it: it POSTs
    only when the settings are valid and storage answers, so a misconfigured or cut-off relay
    falls silent and SIGNL4 pages. A dead app (not started, scaled away by a fault) is silent too.
    SIGNL4's heartbeat URL can be shared by several checks through a keyword (`?param=relay`).
    """
    result = _beat(environ, post or _post)
    quiet = result.sent or result.reason == "off"
    logger.log(
        logging.ERROR if result.alert else logging.INFO if quiet else logging.WARNING,
        "heartbeat sent=%s reason=%s status=%s",
        str(result.sent).lower(),
        result.reason,
        result.status_code if result.status_code is not None else "-",
    )
    return result


def _beat(environ: Mapping[str, str], post: Poster) -> Beat:
    try:
        settings = RelaySettings.from_env(environ)
    except SettingsError:
        return Beat(False, "settings invalid (see GET /api/health)")
    if not settings.signl4_heartbeat_url:
        return Beat(False, "off")
    state = storage_state(settings)
    if state.storage == "unreachable":
        return Beat(False, "storage unreachable")
    halo_off = _halo_webhook_off(settings)
    if halo_off is not None:
        return Beat(False, halo_off, alert=True)
    try:
        status = post(
            settings.signl4_heartbeat_url, {"relay": __version__, "storage": state.storage}
        )
    except Exception as error:  # the kind only: requests' messages carry the URL
        return Beat(False, f"heartbeat URL not reached ({type(error).__name__})")
    if 200 <= status < 300:
        return Beat(True, "healthy", status)
    return Beat(False, "heartbeat URL refused the call", status)


def _halo_webhook_off(settings: RelaySettings) -> str | None:
    """Why not to beat: Halo confirmed its webhook to this relay is off (Halo calls no one, so
    SIGNL4's missing-heartbeat alert must page). None otherwise: no API credentials, or Halo
    did not answer or refused the read (a Halo outage must not silence a healthy relay)."""
    from shared.adapters.halo_webhooks import cached_halo_side

    side = cached_halo_side(settings)
    if side is None or not side.off:
        return None
    named = "; ".join(hook.describe() for hook in side.off)
    return (
        f"Halo's webhook to this relay is off, so no ticket pages: {named}; re-enable it in Halo "
        "(Configuration > Integrations > Webhooks) once its failures are fixed"
    )


def _post(url: str, body: dict[str, str]) -> int:
    import requests

    with requests.Session() as session:
        session.trust_env = False
        response = session.post(url, json=body, timeout=TIMEOUT_SECONDS, allow_redirects=False)
        return int(response.status_code)


# --- held pages: the timer that pages tickets still open when their window ends ---


def release_held_pages(
    environ: Mapping[str, str],
    *,
    now: Callable[[], datetime] | None = None,
    sender: Callable[..., Any] | None = None,
) -> list[str]:
    """The `held_pages` timer's body: page every ticket a window held back (a rule with
    `page_after_window`) whose window has ended at `now()` and that is still open. One read of
    the `suppressed` partition; nothing at all when no rule holds pages back, or in dry-run.
    Returns one line per ticket looked at (also logged). `now` and `sender` are the tests'."""
    settings = load_settings(environ)
    if not settings.relay_routes.holds_back_pages or settings.dry_run:
        return []
    ledger = open_ledger_or_none(settings)
    if ledger is None:
        return []
    clock = now or ledger.clock
    at = clock()
    lines: list[str] = []
    for page in held.held_pages(ledger):
        rule = settings.relay_routes.named(page.rule)
        if rule is not None and rule.window_at(at) is not None:
            continue  # still inside a window (the same one, or the next)
        delivery = page_delivery(settings, None, ledger=ledger, sender=sender, clock=clock)
        line = _release(page, delivery)
        relay_logger.info("%s", log_safe(line))
        lines.append(line)
    return lines


def _release(page: held.HeldPage, delivery: Delivery) -> str:
    """Page one held ticket (if still open) and drop its held row; the line says what happened.
    A failure keeps the row: the next tick tries again."""
    trace = EventTrace(external_id=page.external_id, route=page.rule)
    try:
        outcome = deliver_held(page, delivery, trace)
    except RelayError as error:
        return f"held externalId={page.external_id} route={page.rule} result=kept ({error.code})"
    except (Conflict, Unavailable) as error:
        return f"held externalId={page.external_id} route={page.rule} result=kept ({error})"
    assert delivery.ledger is not None
    held.release(delivery.ledger, page.external_id, page.etag)
    return (
        f"held externalId={page.external_id} route={page.rule} "
        f"window={page.window!r} result={outcome.result}"
    )
