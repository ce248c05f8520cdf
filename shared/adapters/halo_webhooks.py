"""Halo's side of the pipe: the webhooks Halo has aimed at this relay (GET /api/Webhook).

Halo turns a failing webhook off after its auto-disable attempts; from then on nothing calls the
relay and nothing in the relay looks wrong. `check --live` reports each webhook; the heartbeat
withholds its beat while one is confirmed off. Read with the write-back's API client; what Halo
answers is untrusted (names made inert and cut short). A refusal or no answer is "unknown".
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.errors import HaloRejected, HaloUnavailable, RelayError
from shared.redaction import log_safe
from shared.settings import RelaySettings

NAME_MAX_CHARS = 60
EVENTS_SHOWN = 10
FAILURES_SHOWN = 3
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# The heartbeat asks Halo at most this often (per Halo instance and relay host).
RECHECK_SECONDS = 300.0


@dataclass(frozen=True)
class Webhook:
    """One of Halo's webhooks, as far as the relay reads it."""

    ident: str
    name: str
    active: bool
    disabled: bool
    events: tuple[str, ...]
    last_status: int | None
    uuid: str | None = None  # Halo's id as sent back to it (GET /api/WebhookEvent), if a uuid

    @property
    def off(self) -> bool:
        """Halo does not call it: disabled (by Halo, after failures) or not active."""
        return self.disabled or not self.active

    def describe(self) -> str:
        """Its state, events and last status, for a finding or a log line."""
        state = "disabled" if self.disabled else ("active" if self.active else "inactive")
        shown = ", ".join(self.events[:EVENTS_SHOWN]) or "none"
        if len(self.events) > EVENTS_SHOWN:
            shown += f" and {len(self.events) - EVENTS_SHOWN} more"
        last = self.last_status if self.last_status is not None else "-"
        return (
            f"webhook {self.name} (id {self.ident}): {state}, events: {shown}, last status {last}"
        )


@dataclass(frozen=True)
class HaloSide:
    """What Halo said about its webhooks aimed at `host`; `unknown` says why it could not."""

    host: str | None
    webhooks: tuple[Webhook, ...] = ()
    unknown: str | None = None
    refused: bool = False

    @property
    def off(self) -> tuple[Webhook, ...]:
        return tuple(w for w in self.webhooks if w.off)


def aimed_at(listed: Any, host: str) -> tuple[Webhook, ...]:
    """The webhooks in GET /api/Webhook's answer whose url's host is `host`."""
    if isinstance(listed, dict):
        listed = listed.get("webhooks") or listed.get("records") or []
    found = []
    for item in listed if isinstance(listed, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            continue
        try:
            item_host = (urlsplit(item["url"].strip()).hostname or "").lower()
        except ValueError:
            continue
        if item_host == host:
            found.append(_webhook(item))
    return tuple(found)


def _webhook(item: dict[str, Any]) -> Webhook:
    def text(value: Any) -> str:
        raw = value if isinstance(value, (str, int)) and not isinstance(value, bool) else "?"
        return log_safe(str(raw).strip()[:NAME_MAX_CHARS], quoted=True)

    events = item.get("events") if isinstance(item.get("events"), list) else []
    names = tuple(text(e.get("name") or e.get("id")) for e in events if isinstance(e, dict))
    last = item.get("last_status")
    raw_id = item.get("id")
    uuid = raw_id if isinstance(raw_id, str) and UUID.fullmatch(raw_id) else None
    return Webhook(
        uuid=uuid,
        ident=text(item.get("id")),
        name=text(item.get("name")),
        active=item.get("active") is not False,  # absent: not known to be off
        disabled=item.get("disabled") is True,
        events=names,
        last_status=last if isinstance(last, int) and not isinstance(last, bool) else None,
    )


def read_halo_side(settings: RelaySettings) -> HaloSide | None:
    """Ask Halo now. None when there is nothing to ask: no API credentials."""
    if not settings.two_way:
        return None
    host = settings.relay_host
    if host is None:
        return HaloSide(None, unknown="the relay's host is not known (set RELAY_PUBLIC_URL)")
    from shared.adapters.halo import HaloClient

    try:
        listed = HaloClient(settings).call("GET", "/api/Webhook")
    except HaloRejected as error:
        return HaloSide(host, unknown=error.message, refused=error.remote_status in (401, 403))
    except HaloUnavailable as error:
        return HaloSide(host, unknown=error.message)
    except RelayError as error:
        return HaloSide(host, unknown=error.message)
    return HaloSide(host, aimed_at(listed, host))


def recent_failures(settings: RelaySettings, hook: Webhook) -> tuple[str, ...]:
    """The last failed deliveries Halo logged for `hook` (GET /api/WebhookEvent), newest first,
    as "<time> HTTP <status>"; empty when Halo refuses, does not answer, or logged none."""
    if hook.uuid is None or not settings.two_way:
        return ()
    from shared.adapters.halo import HaloClient

    params = {"webhook_id": hook.uuid, "count": "20", "order": "timestamp", "orderdesc": "true"}
    try:
        listed = HaloClient(settings).call("GET", "/api/WebhookEvent", params=params)
    except RelayError:
        return ()
    if isinstance(listed, dict):
        listed = listed.get("webhookevents") or listed.get("records") or []
    found: list[str] = []
    for item in listed if isinstance(listed, list) else []:
        if not isinstance(item, dict) or len(found) == FAILURES_SHOWN:
            continue
        status = item.get("responsestatus")
        status = status if isinstance(status, int) and not isinstance(status, bool) else None
        if item.get("error") is not True and status is not None and 200 <= status < 300:
            continue
        when = item.get("timestamp") if isinstance(item.get("timestamp"), str) else "?"
        shown = log_safe(when[:25])
        found.append(f"{shown} HTTP {status}" if status is not None else f"{shown} no answer")
    return tuple(found)


_known: dict[tuple[str, str], tuple[HaloSide, float]] = {}
_lock = threading.Lock()


def cached_halo_side(settings: RelaySettings) -> HaloSide | None:
    """`read_halo_side`, asked at most every RECHECK_SECONDS (the heartbeat's view). Never
    raises: anything unforeseen is an unknown state, and the heartbeat beats on."""
    if not settings.two_way:
        return None
    key = (settings.halo_base_url or "", settings.relay_host or "")
    with _lock:
        known = _known.get(key)
    if known is not None and known[1] > time.monotonic():
        return known[0]
    try:
        side = read_halo_side(settings)
    except Exception as error:  # its kind only: the beat must not stop on a surprise
        side = HaloSide(key[1] or None, unknown=f"unreadable ({type(error).__name__})")
    if side is not None:
        with _lock:
            _known[key] = (side, time.monotonic() + RECHECK_SECONDS)
    return side


def forget_halo_side() -> None:
    """Drop the heartbeat's cached view (tests; it is renewed every RECHECK_SECONDS)."""
    with _lock:
        _known.clear()
