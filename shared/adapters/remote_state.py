"""What the remote clients learnt in this process, for GET /api/health to report.

The SIGNL4 client records when SIGNL4 last accepted an event, the Halo webhook when Halo last
called; the Halo client records what limits its write-back (a scope Halo refused, an outcome it does not offer). Kept here, in the adapters
layer, so the clients record it without importing the entry layer; health only reads it.
"""

from __future__ import annotations

from datetime import datetime, timezone

_last_delivery: datetime | None = None


def record_delivery(when: datetime | None = None) -> None:
    """SIGNL4 accepted an event (called by the client on every 2xx). Process-wide, lock-free:
    a plain assignment, the latest writer wins."""
    global _last_delivery
    _last_delivery = when or datetime.now(timezone.utc)


def last_delivery() -> datetime | None:
    return _last_delivery


_last_halo_event: datetime | None = None


def record_halo_event(when: datetime | None = None) -> None:
    """A request from Halo passed the webhook's authentication: Halo still calls this worker
    (a webhook Halo turned off stops it). Plain assignment, as record_delivery."""
    global _last_halo_event
    _last_halo_event = when or datetime.now(timezone.utc)


def last_halo_event() -> datetime | None:
    return _last_halo_event


# What the Halo write-back last learnt that limits it (a refused scope, an unknown outcome), by
# topic: health reports it without calling Halo (an anonymous probe must not cost Halo calls).
_halo_warnings: dict[str, str] = {}


def record_halo_warning(topic: str, text: str | None) -> None:
    """Set (or, with None, clear) the Halo write-back's warning on `topic`."""
    if text is None:
        _halo_warnings.pop(topic, None)
    else:
        _halo_warnings[topic] = text


def halo_warnings() -> list[str]:
    """The Halo write-back's current warnings, sorted by topic (empty: none known)."""
    return [_halo_warnings[topic] for topic in sorted(_halo_warnings)]


def clear_halo_warnings() -> None:
    _halo_warnings.clear()
